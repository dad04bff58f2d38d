#!/usr/bin/env bash
# Soak: herald under continuous loopback load (wrk) while a writer adds, edits, renames and
# deletes articles. Reports requests served, errors, whether the final entry set is the
# expected one, and RSS at start and end.
#
#   bench/soak.sh                 # 10 minutes
#   DURATION=60 bench/soak.sh
source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-600}
need wrk wrk
build_release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/content"
cat >"$work/herald.toml" <<CFG
[site]
base_url = "http://127.0.0.1:18086/"
[server]
listen = ["127.0.0.1:18086"]
max_connections = 4096
[feed]
entries = 100000
[watch]
debounce_ms = 100
[log]
level = "warn"
CFG
"$HERALD" --config "$work/herald.toml" --content "$work/content" --state-dir "$work/state" serve >/dev/null 2>"$work/herald.log" &
pid=$!
wait_http http://127.0.0.1:18086/healthz
rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")

wrk -t1 -c16 -d"${DURATION}s" -H 'Accept-Encoding: gzip' http://127.0.0.1:18086/feed.atom >"$work/wrk1.out" &
wrk1=$!
wrk -t1 -c16 -d"${DURATION}s" http://127.0.0.1:18086/feed.json >"$work/wrk2.out" &
wrk2=$!

# The writer: expected[file] = title of every article that should be published.
declare -A expected
n=0
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
  files=("${!expected[@]}")
  action=$(( RANDOM % 10 ))
  if [ ${#files[@]} -lt 5 ] || [ $action -lt 4 ]; then
    n=$((n + 1)); f="a$n.md"; t="Soak article $n"
    printf -- '---\ntitle: "%s"\n---\nBody %s.\n' "$t" "$RANDOM" >"$work/content/$f"
    expected[$f]=$t
  else
    f=${files[$(( RANDOM % ${#files[@]} ))]}
    case $action in
      4|5|6) printf -- '---\ntitle: "%s"\n---\nEdited %s.\n' "${expected[$f]}" "$RANDOM" >"$work/content/$f" ;;
      7|8) n=$((n + 1)); g="r$n.md"; mv "$work/content/$f" "$work/content/$g"; expected[$g]=${expected[$f]}; unset "expected[$f]" ;;
      9) rm "$work/content/$f"; unset "expected[$f]" ;;
    esac
  fi
  sleep 0.05
done
wait $wrk1 $wrk2 || true

# Let the last changes land, then compare the published set with the expected one.
printf '%s\n' "${expected[@]}" | sort >"$work/expected"
deadline=$(( $(date +%s) + 30 ))
while :; do
  curl -s http://127.0.0.1:18086/feed.json | python3 -c 'import json,sys; [print(i["title"]) for i in json.load(sys.stdin)["items"]]' | sort >"$work/published"
  if cmp -s "$work/expected" "$work/published" || [ "$(date +%s)" -ge "$deadline" ]; then break; fi
  sleep 0.5
done
rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
requests=$(( $(awk '/requests in/ {print $1}' "$work/wrk1.out") + $(awk '/requests in/ {print $1}' "$work/wrk2.out") ))
errors=$(( $(awk '/Non-2xx/ {print $NF}' "$work/wrk1.out" | head -1) + $(awk '/Non-2xx/ {print $NF}' "$work/wrk2.out" | head -1) + 0 ))
socket_errors=$(grep -h "Socket errors" "$work/wrk1.out" "$work/wrk2.out" || true)
echo "duration:          ${DURATION}s, writer actions: $n files created"
echo "requests served:   $requests"
echo "non-2xx/3xx:       $errors ${socket_errors:+($socket_errors)}"
if cmp -s "$work/expected" "$work/published"; then
  echo "final entry set:   matches ($(wc -l <"$work/expected") articles)"
else
  echo "final entry set:   MISMATCH"; diff "$work/expected" "$work/published" | head -20; exit 1
fi
echo "RSS:               start $((rss_start / 1024)) MB, end $((rss_end / 1024)) MB"
[ "$errors" -eq 0 ] || exit 1

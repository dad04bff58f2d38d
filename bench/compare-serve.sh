#!/usr/bin/env bash
# Two herald binaries side by side, interleaved: req/s and p99 for /feed.atom (plain, gzip,
# 304) from the same corpus, ROUNDS wrk runs each, alternating old and new; prints every run
# and the medians.
#
#   bench/compare-serve.sh OLD_BINARY [NEW_BINARY]     # NEW defaults to target/release/herald
#   ROUNDS=5 DURATION=5 bench/compare-serve.sh /tmp/old/herald
source "$(dirname "$0")/common.sh"
OLD=${1:?usage: bench/compare-serve.sh OLD_BINARY [NEW_BINARY]}
NEW=${2:-$HERALD}
COUNT=${COUNT:-1000}
CONNS=${CONNS:-64}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-$(nproc)}
need wrk wrk
build_release
CONTENT=${CORPUS_DIR:-$(corpus_dir "$COUNT")}
corpus "$CONTENT" "$COUNT"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

# start <binary> <port> <name>
start() {
  # Older binaries may not know newer keys: the config has only what every version knows.
  printf '[site]\nbase_url = "http://127.0.0.1:%d/"\n[server]\nlisten = ["127.0.0.1:%d"]\nmax_connections = 4096\n[log]\nlevel = "warn"\n' \
    "$2" "$2" >"$work/$3.toml"
  TOKIO_WORKER_THREADS=$WORKERS "$1" --config "$work/$3.toml" --content "$CONTENT" --state-dir "$work/state-$3" serve 2>"$work/$3.log" &
  wait_http "http://127.0.0.1:$2/healthz"
}
start "$OLD" 18091 old
start "$NEW" 18092 new
sleep 1 # let the background compression finish

etag() { curl -s -D - -o /dev/null "$1" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r'; }
# run <url> [header]: "requests/s p99_ms"
run() {
  local url=$1; shift
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" "$url" >"$work/wrk.out"
  awk '/Requests\/sec/ {r=$2} $1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p=v} END {print r, p}' "$work/wrk.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

cmp -s <(curl -s http://127.0.0.1:18091/feed.atom) <(curl -s http://127.0.0.1:18092/feed.atom) \
  && echo "feed.atom: the same bytes from both" || echo "feed.atom: the bytes differ"
printf "%-6s %-5s %-4s %12s %8s\n" case round bin "req/s" "p99 ms"
declare -A rps
for case in plain gzip 304; do
  for ((r = 1; r <= ROUNDS; r++)); do
    for which in old new; do
      port=18091; [ "$which" = new ] && port=18092
      url=http://127.0.0.1:$port/feed.atom
      case $case in
        plain) h=() ;;
        gzip) h=("Accept-Encoding: gzip") ;;
        304) h=("If-None-Match: $(etag "$url")") ;;
      esac
      read -r q p < <(run "$url" "${h[@]}")
      printf "%-6s %-5s %-4s %12s %8s\n" "$case" "$r" "$which" "$q" "$p"
      rps[$case-$which]+="$q "
    done
  done
done
echo
printf "%-6s %14s %14s %7s\n" case "old median" "new median" "new/old"
for case in plain gzip 304; do
  o=$(tr ' ' '\n' <<<"${rps[$case-old]}" | grep . | median)
  n=$(tr ' ' '\n' <<<"${rps[$case-new]}" | grep . | median)
  printf "%-6s %14.0f %14.0f %7.2f\n" "$case" "$o" "$n" "$(awk -v a="$n" -v b="$o" 'BEGIN {print a/b}')"
done
echo "$COUNT articles; $CONNS connections, $THREADS wrk threads, ${DURATION}s per run, $WORKERS workers each, $ROUNDS rounds"

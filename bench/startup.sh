#!/usr/bin/env bash
# Cold start and warm restart over a large corpus: time from start to /healthz 200 and peak
# RSS, next to the time one process takes to read every file once (page cache warm).
#
#   bench/startup.sh              # 100 000 articles
#   COUNT=10000 bench/startup.sh
source "$(dirname "$0")/common.sh"
COUNT=${COUNT:-100000}
CONTENT=${CORPUS_DIR:-$(corpus_dir "$COUNT")}
build_release
corpus "$CONTENT" "$COUNT"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
bench_config "$work/herald.toml" 18083

# Baseline: a plain open/read loop over the tree in one process (twice: the second is warm).
read_all() {
  python3 - "$CONTENT" <<'PY'
import os, sys, time
t = time.time()
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        with open(os.path.join(root, f), "rb") as fh:
            fh.read()
print(f"{time.time() - t:.2f}")
PY
}
read_all >/dev/null
read_s=$(read_all)

# start <label>: runs herald until /healthz is 200; prints "seconds peak_rss_mb cpu_seconds".
start() {
  local t0 pid secs
  t0=$(now)
  "$HERALD" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$work/state" serve >/dev/null 2>>"$work/herald.log" &
  pid=$!
  wait_http http://127.0.0.1:18083/healthz
  secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  echo "$secs $(peak_rss_mb "$pid") $(cpu_seconds "$pid")" >"$work/result"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}
rm -rf "$work/state"
start
read -r cold_s cold_rss cold_cpu <"$work/result"
start
read -r warm_s warm_rss warm_cpu <"$work/result"
printf "%-28s | %9s | %13s | %8s\n" "$COUNT articles" seconds "peak RSS (MB)" "CPU (s)"
printf -- "-----------------------------|-----------|---------------|---------\n"
printf "%-28s | %9s | %13s | %8s\n" "read every file once" "$read_s" - -
printf "%-28s | %9s | %13s | %8s\n" "cold start to /healthz 200" "$cold_s" "$cold_rss" "$cold_cpu"
printf "%-28s | %9s | %13s | %8s\n" "warm restart to /healthz 200" "$warm_s" "$warm_rss" "$warm_cpu"
echo "cold start = $(awk -v a="$cold_s" -v b="$read_s" 'BEGIN { printf "%.1f", a / b }')x the read time (target <= 3x); corpus $(du -sh "$CONTENT" | cut -f1) on $(nproc) cores"

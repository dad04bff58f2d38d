#!/usr/bin/env bash
# Two herald binaries side by side, interleaved: cold start and warm restart to /healthz 200
# and peak RSS (VmHWM at that moment) over the same corpus, ROUNDS times each.
#
#   bench/compare-startup.sh OLD_BINARY [NEW_BINARY]     # NEW defaults to target/release/herald
#   COUNT=100000 ROUNDS=3 bench/compare-startup.sh /tmp/old/herald
source "$(dirname "$0")/common.sh"
OLD=${1:?usage: bench/compare-startup.sh OLD_BINARY [NEW_BINARY]}
NEW=${2:-$HERALD}
COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-3}
CONTENT=${CORPUS_DIR:-$(corpus_dir "$COUNT")}
build_release
corpus "$CONTENT" "$COUNT"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=18198

# start <binary> <state dir>: seconds to /healthz 200 and VmHWM (MiB) then.
start() {
  # Older binaries may not know newer keys: the config has only what every version knows.
  printf '[site]\nbase_url = "http://127.0.0.1:%d/"\n[server]\nlisten = ["127.0.0.1:%d"]\nmax_connections = 4096\n[log]\nlevel = "warn"\n' \
    "$port" "$port" >"$work/herald.toml"
  local t0 t1 pid hwm
  t0=$(now)
  "$1" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$2" serve 2>/dev/null &
  pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  t1=$(now)
  hwm=$(peak_rss_mb "$pid")
  sleep 3 # let the first start's records and cache be written
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf "%.2f %s" "$(echo "$t1 - $t0" | bc)" "$hwm"
}

printf "%-6s %-4s %10s %9s %10s %9s\n" round bin cold_s cold_MiB warm_s warm_MiB
for ((r = 1; r <= ROUNDS; r++)); do
  for which in old new; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    rm -rf "$work/state-$which"
    read -r cs cm <<<"$(start "$bin" "$work/state-$which")"
    read -r ws wm <<<"$(start "$bin" "$work/state-$which")"
    printf "%-6s %-4s %10s %9s %10s %9s\n" "$r" "$which" "$cs" "$cm" "$ws" "$wm"
  done
done

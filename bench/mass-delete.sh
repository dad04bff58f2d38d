#!/usr/bin/env bash
# Mass deletion and rename floods: how long publishing stalls while N files are deleted at
# once (it must grow linearly with N), for N = 10 000, 20 000 and 40 000 small articles in
# one folder. Prints N, seconds from `rm` to a feed without them, and herald's CPU seconds.
# Usage: bench/mass-delete.sh [N ...]
source "$(dirname "$0")/common.sh"
build_release
port=18197
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
printf "%8s %10s %10s\n" files seconds cpu_s
for n in "${@:-10000 20000 40000}"; do
  rm -rf "$tmp/content" "$tmp/state"; mkdir -p "$tmp/content/flat"
  for ((i = 0; i < n; i++)); do printf "Article %d\n\nBody %d.\n" "$i" "$i" >"$tmp/content/flat/a$i.txt"; done
  echo "Survivor title" >"$tmp/content/keep.txt"
  bench_config "$tmp/herald.toml" "$port"
  "$HERALD" --config "$tmp/herald.toml" --content "$tmp/content" --state-dir "$tmp/state" serve 2>"$tmp/log" &
  pid=$!
  wait_http "http://127.0.0.1:$port/healthz"
  cpu0=$(cpu_seconds "$pid")
  t0=$(now)
  rm -rf "$tmp/content/flat"
  until curl -sf "http://127.0.0.1:$port/feed.json" >"$tmp/feed.json" && ! grep -q '"title": "Article ' "$tmp/feed.json"; do sleep 0.05; done
  t1=$(now)
  printf "%8d %10.2f %10.2f\n" "$n" "$(echo "$t1 - $t0" | bc)" "$(echo "$(cpu_seconds "$pid") - $cpu0" | bc)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

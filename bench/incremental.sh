#!/usr/bin/env bash
# Incremental update with a large index: from a new file's close to its entry being served
# (p50/p99 over COUNT files), and the latency of requests served meanwhile.
#
#   bench/incremental.sh           # 100 000 articles indexed, 100 new files
source "$(dirname "$0")/common.sh"
ARTICLES=${ARTICLES:-100000}
COUNT=${COUNT:-100}
CONTENT=${CORPUS_DIR:-$(corpus_dir "$ARTICLES")}
build_release
(cd "$ROOT" && cargo build --release --quiet --example latency)
corpus "$CONTENT" "$ARTICLES"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work" "$CONTENT/latency-probe"' EXIT
bench_config "$work/herald.toml" 18084
"$HERALD" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$work/state" serve >/dev/null 2>"$work/herald.log" &
wait_http http://127.0.0.1:18084/healthz
sleep 2
echo "debounce: $(grep -o 'debounce_ms = [0-9]*' "$ROOT/config/herald.toml" | head -1) (a closed file is taken without waiting for it); $ARTICLES articles indexed"
"$ROOT/target/release/examples/latency" --addr 127.0.0.1:18084 --content "$CONTENT" --count "$COUNT"

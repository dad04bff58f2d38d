#!/usr/bin/env bash
# WebSub push latency: SUBSCRIBERS subscribers on loopback, each new file's close → its signed
# delivery received by every subscriber (p50/p99/max over all deliveries), with the debounce
# in force (herald takes a closed file at once; the debounce holds files still open).
#
#   bench/websub.sh                       # 1 000 articles, 100 subscribers, 20 files
#   ARTICLES=100000 SUBSCRIBERS=100 bench/websub.sh
source "$(dirname "$0")/common.sh"
ARTICLES=${ARTICLES:-1000}
SUBSCRIBERS=${SUBSCRIBERS:-100}
ROUNDS=${ROUNDS:-20}
CONTENT=${CORPUS_DIR:-$(corpus_dir "$ARTICLES")}
build_release
(cd "$ROOT" && cargo build --release --quiet --example websub_subscribers)
corpus "$CONTENT" "$ARTICLES"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work" "$CONTENT/websub-probe"' EXIT
port=18086
bench_config "$work/herald.toml" $port
printf '[websub]\nbuiltin = true\nallow_private_callbacks = true\n' >>"$work/herald.toml"
"$HERALD" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$work/state" serve >/dev/null 2>"$work/herald.log" &
wait_http "http://127.0.0.1:$port/healthz"
sleep 1
echo "$ARTICLES articles; debounce $(grep -o 'debounce_ms = [0-9]*' "$ROOT/config/herald.toml" | head -1)"
"$ROOT/target/release/examples/websub_subscribers" --addr "127.0.0.1:$port" \
  --topic "http://127.0.0.1:$port/feed.atom" --content "$CONTENT" \
  --subscribers "$SUBSCRIBERS" --rounds "$ROUNDS"

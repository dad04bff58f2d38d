# Shared helpers for the benchmark scripts (sourced). Everything runs on loopback.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERALD="$ROOT/target/release/herald"
CORPUS_BIN="$ROOT/target/release/examples/corpus"

need() { # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (for $1)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

build_release() {
  (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example corpus)
}

# SHAPE: the corpus's shape, as examples/corpus.rs takes it ("" = nested folders of 100
# and the 42 built-in terms; e.g. SHAPE="--flat --terms 250" or "--per-folder 1000
# --terms 10000"). SHAPE_NAME names it in paths.
SHAPE=${SHAPE:-}
SHAPE_NAME=$(echo "$SHAPE" | tr -d '-' | tr ' ' '_')

# corpus <dir> <count> [format]: a deterministic corpus (seed 1) of SHAPE, made once and
# reused.
corpus() {
  local dir=$1 count=$2 format=${3:-txt}
  local done="$dir/.done-$count-$format-$SHAPE_NAME"
  if [ ! -f "$done" ]; then
    rm -rf "$dir"
    # shellcheck disable=SC2086 # SHAPE is a list of arguments
    "$CORPUS_BIN" --count "$count" --seed 1 --format "$format" $SHAPE --out "$dir" >&2
    touch "$done"
  fi
}

# The default corpus dir of COUNT articles in SHAPE.
corpus_dir() { echo "/tmp/herald-bench-corpus-$1${SHAPE_NAME:+-$SHAPE_NAME}"; }

now() { date +%s.%N; }

# wait_http <url> [timeout s]: poll until the URL answers 200.
wait_http() {
  local url=$1 deadline=$(( $(date +%s) + ${2:-600} ))
  until curl -sf -o /dev/null "$url"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timeout waiting for $url" >&2; return 1; }
    sleep 0.02
  done
}

# config <file> <port>: a minimal herald config for benchmarks.
bench_config() {
  cat >"$1" <<CFG
[site]
base_url = "http://127.0.0.1:$2/"
[server]
listen = ["127.0.0.1:$2"]
max_connections = 4096
max_connections_per_client = 0
[log]
level = "warn"
CFG
}

peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"; }

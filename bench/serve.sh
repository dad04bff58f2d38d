#!/usr/bin/env bash
# Serving throughput and tail latency: herald vs nginx serving the same /feed.atom bytes
# (nginx: gzip_static on, etag on, access_log off, the same number of workers), with the
# same load tool (wrk), connections and duration, back to back. Prints a table.
#
#   bench/serve.sh                # defaults: 1000 articles, 64 connections, 10 s per run
#   CONNS=128 DURATION=20 bench/serve.sh
source "$(dirname "$0")/common.sh"
COUNT=${COUNT:-1000}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-$(nproc)}
need wrk wrk
need nginx nginx-light
build_release
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run unprivileged
trap 'kill $(jobs -p) 2>/dev/null; nginx -c "$work/nginx.conf" -s stop 2>/dev/null; rm -rf "$work"' EXIT
corpus "${CORPUS_DIR:-$(corpus_dir "$COUNT")}" "$COUNT"
CONTENT="${CORPUS_DIR:-$(corpus_dir "$COUNT")}"

bench_config "$work/herald.toml" 18081
TOKIO_WORKER_THREADS=$WORKERS "$HERALD" --config "$work/herald.toml" --content "$CONTENT" --state-dir "$work/state" serve 2>"$work/herald.log" &
wait_http http://127.0.0.1:18081/healthz
sleep 1 # let the background compression finish

# The same bytes for nginx: identity and precompressed gzip.
mkdir -p "$work/www"
curl -s http://127.0.0.1:18081/feed.atom -o "$work/www/feed.atom"
curl -s -H 'Accept-Encoding: gzip' http://127.0.0.1:18081/feed.atom -o "$work/www/feed.atom.gz"
touch -r "$work/www/feed.atom" "$work/www/feed.atom.gz"
cat >"$work/nginx.conf" <<NGINX
worker_processes $WORKERS;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { application/atom+xml atom; }
  server {
    listen 127.0.0.1:18082;
    root $work/www;
    etag on;
    gzip_static on;
  }
}
NGINX
chmod -R a+rX "$work/www"
nginx -c "$work/nginx.conf"
wait_http http://127.0.0.1:18082/feed.atom

etag() { curl -s -D - -o /dev/null ${2:+-H "Accept-Encoding: $2"} "$1" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r'; }
# run <url> [header…]: "requests/s p99_ms"
run() {
  local url=$1; shift
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" "$url" >"$work/wrk.out"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$work/wrk.out")
  echo "$rps $p99"
}

printf "%-8s | %14s | %14s | %6s | %13s | %13s\n" case "herald req/s" "nginx req/s" ratio "herald p99 ms" "nginx p99 ms"
printf -- "---------|----------------|----------------|--------|---------------|--------------\n"
for case in plain gzip 304; do
  case $case in
    plain) h=(); n=() ;;
    gzip) h=("Accept-Encoding: gzip"); n=("Accept-Encoding: gzip") ;;
    304) h=("If-None-Match: $(etag http://127.0.0.1:18081/feed.atom)"); n=("If-None-Match: $(etag http://127.0.0.1:18082/feed.atom)") ;;
  esac
  read -r hr hp < <(run http://127.0.0.1:18081/feed.atom "${h[@]}")
  read -r nr np < <(run http://127.0.0.1:18082/feed.atom "${n[@]}")
  ratio=$(awk -v a="$hr" -v b="$nr" 'BEGIN { printf "%.2f", a/b }')
  printf "%-8s | %14s | %14s | %6s | %13s | %13s\n" "$case" "$hr" "$nr" "$ratio" "$hp" "$np"
done
echo "feed.atom: $(wc -c <"$work/www/feed.atom") bytes, gzip $(wc -c <"$work/www/feed.atom.gz") bytes; $CONNS connections, $THREADS wrk threads, ${DURATION}s per run, $WORKERS workers each"

#!/usr/bin/env bash
# Serving throughput, tail latency and server CPU per request: herald vs nginx serving the
# same /feed.atom bytes (nginx: gzip_static on, etag on, access_log off, the same number of
# workers), with the same load tool (wrk), connections and duration, interleaved
# (herald, nginx, herald, …) ROUNDS times per case; prints the medians.
#
#   bench/serve.sh                # defaults: 1000 articles, 64 connections, 10 s, 3 rounds
#   CONNS=128 DURATION=20 ROUNDS=5 bench/serve.sh
#   COUNT=100000 SHAPE="--flat --terms 250" bench/serve.sh
source "$(dirname "$0")/common.sh"
COUNT=${COUNT:-1000}
CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
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

herald_pid=$(pgrep -f "state-dir $work/state serve" | head -n1)
nginx_pids() { pgrep -f "nginx: worker process" | tr '\n' ' '; }
# cpu <pids…>: user+system seconds of those processes.
cpu() { local t=0 p; for p in "$@"; do t=$(awk -v t="$t" -v hz="$(getconf CLK_TCK)" '{printf "%.4f", t + ($14+$15)/hz}' "/proc/$p/stat"); done; echo "$t"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

etag() { curl -s -D - -o /dev/null ${2:+-H "Accept-Encoding: $2"} "$1" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r'; }
# run <pids> <url> [header…]: "requests/s p99_ms server_cpu_us_per_request"
run() {
  local pids=$1 url=$2; shift 2
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  # shellcheck disable=SC2086 # a list of pids
  local c0; c0=$(cpu $pids)
  wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" "$url" >"$work/wrk.out"
  # shellcheck disable=SC2086
  local c1; c1=$(cpu $pids)
  local rps p99 n
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$work/wrk.out")
  echo "$rps $p99 $(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')"
}

printf "%-6s | %12s | %12s | %5s | %9s | %9s | %10s | %10s\n" case "herald req/s" "nginx req/s" ratio "herald p99" "nginx p99" "herald CPU" "nginx CPU"
printf "%-6s | %12s | %12s | %5s | %9s | %9s | %10s | %10s\n" "" "(median)" "(median)" "" "ms" "ms" "us/req" "us/req"
printf -- "-------|--------------|--------------|-------|-----------|-----------|------------|-----------\n"
for case in plain gzip 304; do
  case $case in
    plain) h=(); n=() ;;
    gzip) h=("Accept-Encoding: gzip"); n=("Accept-Encoding: gzip") ;;
    304) h=("If-None-Match: $(etag http://127.0.0.1:18081/feed.atom)"); n=("If-None-Match: $(etag http://127.0.0.1:18082/feed.atom)") ;;
  esac
  hr=() hp=() hc=() nr=() np=() nc=()
  for _ in $(seq 1 "$ROUNDS"); do
    read -r r p c < <(run "$herald_pid" http://127.0.0.1:18081/feed.atom "${h[@]}")
    hr+=("$r") hp+=("$p") hc+=("$c")
    read -r r p c < <(run "$(nginx_pids)" http://127.0.0.1:18082/feed.atom "${n[@]}")
    nr+=("$r") np+=("$p") nc+=("$c")
  done
  m() { echo "$@" | median; }
  HR=$(m "${hr[*]}") NR=$(m "${nr[*]}")
  ratio=$(awk -v a="$HR" -v b="$NR" 'BEGIN { printf "%.2f", a/b }')
  printf "%-6s | %12s | %12s | %5s | %9s | %9s | %10s | %10s\n" "$case" "$HR" "$NR" "$ratio" "$(m "${hp[*]}")" "$(m "${np[*]}")" "$(m "${hc[*]}")" "$(m "${nc[*]}")"
  echo "  single runs herald: ${hr[*]}; nginx: ${nr[*]}"
done
echo "feed.atom: $(wc -c <"$work/www/feed.atom") bytes, gzip $(wc -c <"$work/www/feed.atom.gz") bytes; $COUNT articles; $CONNS connections, $THREADS wrk threads, ${DURATION}s per run, $ROUNDS interleaved rounds, $WORKERS workers each"

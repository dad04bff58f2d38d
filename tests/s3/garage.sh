#!/usr/bin/env bash
# A single-node Garage (https://garagehq.deuxfleurs.fr/) on loopback for tests/s3.rs:
#   tests/s3/garage.sh DIR S3_PORT RPC_PORT ADMIN_PORT
# writes DIR/garage.toml, starts `garage server` (its pid in DIR/pid, its log in
# DIR/garage.log), lays out one node, creates the bucket "herald" and a key allowed to use
# it, and prints the key as two lines: KEY_ID=… and SECRET=…. Run again on the same DIR
# (after the server was stopped) it only starts the server: the data and the key stay.
set -euo pipefail
dir=$1 s3_port=$2 rpc_port=$3 admin_port=$4
mkdir -p "$dir"
cfg="$dir/garage.toml"
g() { garage -c "$cfg" "$@"; }
fresh=false
if [ ! -f "$cfg" ]; then
  fresh=true
  cat >"$cfg" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
TOML
fi
RUST_LOG=warn garage -c "$cfg" server >>"$dir/garage.log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 1 100); do
  g status >/dev/null 2>&1 && break
  sleep 0.1
done
if $fresh; then
  node=$(g node id -q | cut -d@ -f1)
  g layout assign -z dc1 -c 1G "$node" >/dev/null
  g layout apply --version 1 >/dev/null
  for _ in $(seq 1 100); do
    g bucket create herald >/dev/null 2>&1 && break
    sleep 0.1
  done
  out=$(g key create herald-key)
  key=$(sed -n 's/^Key ID: *//p' <<<"$out" | head -n1)
  secret=$(sed -n 's/^Secret key: *//p' <<<"$out" | head -n1)
  g bucket allow --read --write --owner herald --key herald-key >/dev/null
  printf 'KEY_ID=%s\nSECRET=%s\n' "$key" "$secret" >"$dir/key"
fi
# Ready when the S3 port answers.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
  sleep 0.1
done
cat "$dir/key"

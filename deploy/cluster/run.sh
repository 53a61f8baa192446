#!/usr/bin/env bash
# Runs tally on a NATS cluster, all on loopback, for anyone to try:
#   - three nats-server processes (n1..n3, clients on 127.0.0.1:4222-4224,
#     routes on 6222-6224, monitoring on 8222-8224), built from the
#     nats-server module tally depends on, JetStream fsyncing every write;
#   - the Long Biên example election, every station sealed with a new key
#     ('tally keys seal'), and the servers' permissions from 'tally nats-config':
#     each station may publish only its own minutes, anonymous clients are
#     refused;
#   - two tally nodes, a (http://127.0.0.1:8081) and b (:8082), each with its
#     own --node and --data, the stream replicated on all three servers.
# Everything lives under $TALLY_CLUSTER_DIR (default: a new temporary
# directory); run it again with the same directory to resume. Ctrl-C stops it.
#
# Usage: deploy/cluster/run.sh [ELECTION_FILE]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/deploy/cluster"
election=${1:-$root/examples/longbien/election.json}
work=${TALLY_CLUSTER_DIR:-$(mktemp -d -t tally-cluster.XXXXXX)}
mkdir -p "$work/bin" "$work/logs"
cd "$root"

echo "building nats-server and tally into $work/bin"
go build -o "$work/bin/nats-server" github.com/nats-io/nats-server/v2
go build -o "$work/bin/tally" ./cmd/tally
tally="$work/bin/tally"

if [ ! -f "$work/sealed/election.json" ]; then
  "$tally" keys seal --election "$election" --out "$work/sealed" >/dev/null
fi
"$tally" nats-config --election "$work/sealed/election.json" --seed-dir "$work/keys" >"$work/auth.conf"
cp "$here"/n1.conf "$here"/n2.conf "$here"/n3.conf "$work/"

pids=()
stopping=0
stop() {
  trap - INT TERM EXIT
  stopping=1
  echo "stopping"
  # tally nodes first (they drain their folds), then the servers.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop INT TERM EXIT

cd "$work"
for n in n1 n2 n3; do
  "$work/bin/nats-server" -c "$work/$n.conf" >"$work/logs/$n.log" 2>&1 &
  pids+=($!)
done
nats=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
# Wait until each server listens (its monitoring port answers).
for port in 8222 8223 8224; do
  for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$port/varz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/varz" >/dev/null || { echo "nats-server with monitoring on :$port did not start; see $work/logs"; exit 1; }
done

# tally waits for the cluster's JetStream to come up, and creates the
# stream with 3 replicas if it is missing.
port=8081
for node in a b; do
  "$tally" serve --election "$work/sealed/election.json" --data "$work/$node" --node "$node" \
    --nats "$nats" --nats-seed-dir "$work/keys" --replicas 3 \
    --http "127.0.0.1:$port" --nats-listen none >"$work/logs/$node.log" 2>&1 &
  pids+=($!)
  port=$((port + 1))
done
for port in 8081 8082; do
  for _ in $(seq 600); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/readyz" || { echo; echo "tally on :$port is not ready; see $work/logs"; exit 1; }
  echo
done

cat <<MSG

tally runs on a 3-server NATS cluster (logs in $work/logs):
  node a: http://127.0.0.1:8081/   node b: http://127.0.0.1:8082/
Submit sealed minutes to either node, and read the results from both:
  $tally submit --server http://127.0.0.1:8081 --seal-dir $work/sealed $root/examples/longbien/minutes.ndjson
  $tally results --server http://127.0.0.1:8082 --contest QH --unit QH-HN-02
Kill the stream's leader and watch both nodes go on. nats-server's monitoring
(:8222-8224) names the cluster's meta leader, then the stream's leader:
  curl -s 'http://127.0.0.1:8222/jsz?accounts=true&streams=true' | grep -o '"leader": *"[^"]*"'
then kill that server (n1 listens on 4222, n2 on 4223, n3 on 4224) and
start it again from $work: $work/bin/nats-server -c nN.conf
Ctrl-C stops everything; TALLY_CLUSTER_DIR=$work $0 resumes.
MSG
wait -n "${pids[@]}" || true
if [ "$stopping" = 0 ]; then
  echo "a process exited; see $work/logs"
fi

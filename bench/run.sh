#!/usr/bin/env bash
# Benchmarks Klaxon's push path on this machine and prints one report per scenario.
#
#   bench/run.sh sqlite            # embedded SQLite in a fresh temporary data directory
#   bench/run.sh postgres URL      # a fresh database created from URL (e.g. postgres://postgres@127.0.0.1:5432/postgres)
#
# Environment: DURATION (s, default 20), CONNECTIONS (default 64), MIX (default new=100),
# RATE (events/s, 0 = flat out), SYNC_FULL (SQLite synchronous=FULL, default true),
# ACCEPT_ONLY=1 (run the load with the inbox worker off, then restart with it on and time how
# long processing takes to empty the inbox: acceptance and processing measured apart).
# The server runs with push rate limits switched off (the defaults of ING-007 would cap a single
# integration at 100 requests/s); everything else is the default configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
duration="${DURATION:-20}"
connections="${CONNECTIONS:-64}"
mix="${MIX:-new=100}"
rate="${RATE:-0}"

cargo build --release -q -p klaxon -p klaxon-bench
work="$(mktemp -d)"
db_url=""
if [ "$backend" = postgres ]; then
  base="${2:?postgres needs a URL}"
  name="klaxon_bench_$(date +%s)"
  psql "$base" -qc "CREATE DATABASE ${name}"
  db_url="${base%/*}/${name}"
fi

start_server() {
  KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND=0 \
  KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE=0 \
  KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
  KLAXON_STORAGE_SQLITE_SYNCHRONOUS_FULL="${SYNC_FULL:-true}" \
  KLAXON_WORKERS_INBOX="${1:-true}" \
  KLAXON_LOG=warn \
  target/release/klaxon serve --listen 127.0.0.1:18080 --data-dir "$work/data" \
    ${db_url:+--database-url "$db_url"} >"$work/banner.txt" &
  server=$!
  for _ in $(seq 1 200); do
    curl -fs http://127.0.0.1:18080/readyz >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "server did not become ready" >&2
  return 1
}

# First start: creates the database; then measure a restart on the existing data.
start_server
key="$(sed -n 's/.*integration_key=\([0-9a-f]*\).*/\1/p' "$work/banner.txt" | head -n 1)"
kill -TERM "$server"; wait "$server" || true
t0=$(date +%s%N)
if [ "${ACCEPT_ONLY:-0}" = 1 ]; then start_server false; else start_server; fi
t1=$(date +%s%N)
echo "start to ready on an existing data directory: $(( (t1 - t0) / 1000000 )) ms"
sleep 2
echo "idle RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' "/proc/$server/status")"

target/release/klaxon-loadgen --url http://127.0.0.1:18080 --integration-key "$key" \
  --connections "$connections" --duration "$duration" --rate "$rate" --mix "$mix" \
  --server-pid "$server"

if [ "${ACCEPT_ONLY:-0}" = 1 ]; then
  echo "restarting with the inbox worker on"
  kill -TERM "$server"; wait "$server" || true
  start_server
fi
# How long the inbox worker needs to catch up with what was accepted.
t0=$(date +%s%N)
for _ in $(seq 1 6000); do
  depth="$(curl -fs http://127.0.0.1:18080/metrics | sed -n 's/^klaxon_inbox_depth \(.*\)/\1/p')"
  [ "$depth" = 0 ] && break
  sleep 0.05
done
t1=$(date +%s%N)
echo "inbox drained $(( (t1 - t0) / 1000000 )) ms after the load ended"
curl -fs http://127.0.0.1:18080/metrics | grep -E '^klaxon_(push_events_accepted_total|inbox_events_processed_total)'
echo "RSS after load: $(awk '/VmRSS/ {print $2/1024 " MiB"}' "/proc/$server/status")"
kill -TERM "$server"; wait "$server" || true
if [ "$backend" = postgres ]; then
  psql "$base" -qc "DROP DATABASE ${name} WITH (FORCE)"
fi
rm -rf "$work"

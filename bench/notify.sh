#!/usr/bin/env bash
# Notification latency (issue 7): from an event accepted to the first notification request
# arriving at a local receiver, while other events are ingested in the background.
#
#   bench/notify.sh sqlite
#   bench/notify.sh postgres postgres://postgres@127.0.0.1:5432/postgres
#
# `klaxon-loadgen notify-latency` configures a channel whose escalation rule notifies a Slack
# bot pointing at its own receiver, plus an incident webhook (i_new) to the same receiver, and
# sends probe events to that channel; meanwhile `klaxon-loadgen` pushes RATE events/s
# (new/repeat/recover mix) into the default channel. The probes' report gives p50/p90/p99/max
# per path and for the first of the two, and the server's memory.
#
# Environment: RATE (background events/s, default 500), DURATION (s of probes, default 30),
# INTERVAL_MS (between probes, default 100), CONNECTIONS (background, default 16),
# MIX (default new=80,repeat=15,recover=5), SYNC_FULL (SQLite synchronous=FULL, default true),
# NICE (default 0; the build always runs niced), PROFILE (release, or debug to check the
# script), BUILD=0 to use the binaries already in $CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
rate="${RATE:-500}"
duration="${DURATION:-30}"
interval="${INTERVAL_MS:-100}"
connections="${CONNECTIONS:-16}"
mix="${MIX:-new=80,repeat=15,recover=5}"
nice_level="${NICE:-0}"
profile="${PROFILE:-release}"
bin="${CARGO_TARGET_DIR:-target}/$profile"
port=18083
base=""
[ "$backend" = postgres ] && base="${2:?postgres needs a URL}"

if [ "${BUILD:-1}" = 0 ]; then
  : # use the binaries already built
elif [ "$profile" = release ]; then
  nice -n 19 cargo build --release -q -p klaxon -p klaxon-bench
else
  nice -n 19 cargo build -q -p klaxon -p klaxon-bench
fi
work="$(mktemp -d)"
server=""
background=""
db_name=""
cleanup() {
  [ -n "$background" ] && { kill -TERM "$background" 2>/dev/null || true; wait "$background" 2>/dev/null || true; }
  [ -n "$server" ] && { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  [ -n "$db_name" ] && psql "$base" -qc "DROP DATABASE IF EXISTS ${db_name} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

db_url=""
if [ "$backend" = postgres ]; then
  db_name="klaxon_notify_$(date +%s)"
  psql "$base" -qc "CREATE DATABASE ${db_name}"
  db_url="${base%/*}/${db_name}"
fi

# The receiver is on 127.0.0.1: bots and webhooks must be allowed to reach private addresses.
cat >"$work/klaxon.toml" <<TOML
[notify]
allow_private_targets = true
TOML

KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND=0 \
KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE=0 \
KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
KLAXON_API_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
KLAXON_API_LIMITS_PER_ACCOUNT_PER_MINUTE=0 \
KLAXON_STORAGE_SQLITE_SYNCHRONOUS_FULL="${SYNC_FULL:-true}" \
KLAXON_LOG=warn \
nice -n "$nice_level" "$bin"/klaxon serve --config "$work/klaxon.toml" --listen "127.0.0.1:$port" \
  --data-dir "$work/data" ${db_url:+--database-url "$db_url"} >"$work/banner.txt" \
  2>>"$work/server.log" &
server=$!
for _ in $(seq 1 400); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.025
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "server did not become ready" >&2; cat "$work/server.log" >&2; exit 1; }
app_key="$(sed -n 's/.*APP key: *\([0-9a-zA-Z_-]*\).*/\1/p' "$work/banner.txt" | head -n 1)"
key="$(sed -n 's/.*integration_key=\([0-9a-f]*\).*/\1/p' "$work/banner.txt" | head -n 1)"

echo "== $backend ($profile build): probes every ${interval} ms for ${duration} s, background ${rate} events/s ($mix)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The background load runs a little longer than the probes on both sides.
"$bin"/klaxon-loadgen --url "http://127.0.0.1:$port" --integration-key "$key" \
  --connections "$connections" --rate "$rate" --mix "$mix" --warmup 2 \
  --duration "$(( duration + 6 ))" --json >"$work/background.json" &
background=$!
sleep 2
"$bin"/klaxon-loadgen notify-latency --url "http://127.0.0.1:$port" --app-key "$app_key" \
  --duration "$duration" --warmup 2 --interval-ms "$interval" --server-pid "$server" \
  --json >"$work/probes.json"
wait "$background"; background=""
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$work/probes.json" "$work/background.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
print(f"background: {b['accepted_per_s']:.0f} events/s accepted, push p99 {b['latency_ms']['p99']} ms, errors {b['errors_total']}")
print(f"probes: {p['probes']} measured, {p['rejected']} rejected")
for name, key in [("first request", "first"), ("escalation bot", "bot"), ("incident webhook", "webhook")]:
    s = p[key]
    print(f"  {name:<17} p50 {s['p50_ms']} ms  p90 {s['p90_ms']} ms  p99 {s['p99_ms']} ms  "
          f"max {s['max_ms']} ms  (missing {s['missing']})")
rss = p.get("server_rss_mib")
if rss:
    print(f"server RSS: start {rss['start']} MiB, peak {rss['peak']} MiB, end {rss['end']} MiB")
PY
grep -E '^klaxon_(notify_delay_seconds|inbox_depth|notify_backlog)' <(curl -fs "http://127.0.0.1:$port/metrics") | grep -v bucket || true

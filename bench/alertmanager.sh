#!/usr/bin/env bash
# Side by side: Klaxon's Alertmanager-compatible endpoint against Alertmanager itself, loaded
# the same way in one run (issue: "accepts batches of 100 alerts at least as fast as
# Alertmanager does on this machine").
#
#   bench/alertmanager.sh            # needs `prometheus-alertmanager` (Debian) on PATH
#
# Environment: DURATION (s, default 20), CONNECTIONS (default 16), BATCH (default 100),
# MIX (default new=80,repeat=20: Prometheus re-sends firing alerts every evaluation),
# AM_GROUP_BY (Alertmanager's route group_by, default "alertname": every alert joins one
# aggregation group, Alertmanager's cheapest case; "alertname,instance" makes one group per
# alert, which costs Alertmanager far more memory and time).
# Both servers get the same generator settings: `POST /api/v2/alerts` with BATCH postable
# alerts per request, flat out, one generator thread. Klaxon runs on embedded SQLite with
# synchronous=FULL (every 2xx is durably committed) and push rate limits off; Alertmanager
# runs with its default settings and a receiver that is never called during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${DURATION:-20}"
connections="${CONNECTIONS:-16}"
batch="${BATCH:-100}"
mix="${MIX:-new=80,repeat=20}"
group_by="${AM_GROUP_BY:-alertname}"
am="$(command -v prometheus-alertmanager || command -v alertmanager || true)"
[ -n "$am" ] || { echo "prometheus-alertmanager is not installed" >&2; exit 1; }

cargo build --release -q -p klaxon -p klaxon-bench
work="$(mktemp -d)"
cleanup() { kill -TERM "${klaxon:-}" "${amp:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_ready() {
  for _ in $(seq 1 300); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$1 did not become ready" >&2
  return 1
}

# --- Alertmanager 0.25 (Debian's build) -------------------------------------------------------
cat >"$work/am.yml" <<YML
route:
  receiver: sink
  group_by: [${group_by}]
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:9/never
        send_resolved: false
YML
"$am" --config.file="$work/am.yml" --storage.path="$work/am-data" \
  --web.listen-address=127.0.0.1:19093 --cluster.listen-address= --log.level=warn \
  >"$work/am.log" 2>&1 &
amp=$!
wait_ready http://127.0.0.1:19093/-/ready
echo "== Alertmanager $("$am" --version 2>&1 | head -n 1), group_by [${group_by}]"
target/release/klaxon-loadgen --url http://127.0.0.1:19093 --integration-key unused \
  --protocol alertmanager --batch "$batch" --connections "$connections" \
  --duration "$duration" --mix "$mix" --server-pid "$amp" --json >"$work/am.json"
kill -TERM "$amp"; wait "$amp" || true; amp=""

# --- Klaxon ------------------------------------------------------------------------------------
start_klaxon() {
  KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND=0 \
  KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE=0 \
  KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
  KLAXON_STORAGE_SQLITE_SYNCHRONOUS_FULL=true \
  KLAXON_LOG=warn \
  target/release/klaxon serve --listen 127.0.0.1:18081 --data-dir "$work/klaxon" >"$work/banner.txt" &
  klaxon=$!
  wait_ready http://127.0.0.1:18081/readyz
}
start_klaxon
app_key="$(sed -n 's/.*APP key: *\([0-9a-zA-Z_-]*\).*/\1/p' "$work/banner.txt" | head -n 1)"
channel="$(curl -fs -X POST "http://127.0.0.1:18081/channel/list?app_key=$app_key" \
  -H 'Content-Type: application/json' -d '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["items"][0]["channel_id"])')"
key="$(curl -fs -X POST "http://127.0.0.1:18081/integration/create?app_key=$app_key" \
  -H 'Content-Type: application/json' \
  -d "{\"integration_name\": \"bench prometheus\", \"type\": \"prometheus\", \"kind\": \"dedicated\", \"channel_id\": $channel}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["integration_key"])')"
echo "== Klaxon (SQLite, synchronous=FULL)"
target/release/klaxon-loadgen --url http://127.0.0.1:18081 --integration-key "$key" \
  --protocol alertmanager --batch "$batch" --connections "$connections" \
  --duration "$duration" --mix "$mix" --server-pid "$klaxon" --json >"$work/klaxon.json"

python3 - "$work/am.json" "$work/klaxon.json" <<'PY'
import json, sys
am, kx = (json.load(open(p)) for p in sys.argv[1:3])
def line(name, r):
    lat = r["latency_ms"]
    rss = r.get("server_rss_mib") or {}
    print(f"{name:<13} {r['alerts_accepted_per_s']:>10.0f} alerts/s  {r['accepted_per_s']:>8.1f} req/s"
          f"  p50 {lat['p50']} ms  p99 {lat['p99']} ms  errors {r['errors_total']}"
          f"  peak RSS {rss.get('peak')} MiB")
print(f"batches of {kx['batch']} alerts, {kx['connections']} connections, {kx['elapsed_s']} s each")
line("Alertmanager", am)
line("Klaxon", kx)
ratio = kx["alerts_accepted_per_s"] / am["alerts_accepted_per_s"] if am["alerts_accepted_per_s"] else float("inf")
print(f"ratio Klaxon / Alertmanager: {ratio:.2f}")
PY

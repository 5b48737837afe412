#!/usr/bin/env bash
# The cost of noise reduction on ingest, measured side by side in one run (issue 3): the same
# load against a plain channel and against a channel with rule-based grouping, 50 silence
# rules, 20 inhibit rules and 10 enrichment rules with a 10,000-row mapping table
# (`klaxon-loadgen setup-noise`), alternately: plain, noisy, plain, noisy, … each on a fresh
# data directory (or a fresh PostgreSQL database).
#
#   bench/noise.sh sqlite
#   bench/noise.sh postgres postgres://postgres@127.0.0.1:5432/postgres
#
# Each run is split like `ACCEPT_ONLY=1 bench/run.sh`: the load goes to a node with the inbox
# worker off (acceptance alone), then the node restarts with the worker on and the time to
# empty the inbox gives the processing rate (events processed / drain time). Processing is
# where the rules run, so its ratio is the figure that matters; acceptance should not move.
#
# Environment: ROUNDS (pairs of runs, default 2), DURATION (s of load, default 10),
# CONNECTIONS (default 64), MIX (default new=80,repeat=15,recover=5), RATE (0 = flat out),
# SYNC_FULL (SQLite synchronous=FULL, default true), NICE (default 19: the build and the
# server run niced on a shared machine; set 0 on a quiet one), PROFILE (release, or debug for a
# quick check of the script: debug figures say nothing about the rules' real cost).
# Binaries are taken from $CARGO_TARGET_DIR (default target/); BUILD=0 skips building them.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
rounds="${ROUNDS:-2}"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-64}"
mix="${MIX:-new=80,repeat=15,recover=5}"
rate="${RATE:-0}"
nice_level="${NICE:-19}"
profile="${PROFILE:-release}"
bin="${CARGO_TARGET_DIR:-target}/$profile"
port=18082
base=""
[ "$backend" = postgres ] && base="${2:?postgres needs a URL}"

if [ "${BUILD:-1}" = 0 ]; then
  : # use the binaries already built
elif [ "$profile" = release ]; then
  nice -n "$nice_level" cargo build --release -q -p klaxon -p klaxon-bench
else
  nice -n "$nice_level" cargo build -q -p klaxon -p klaxon-bench
fi
work="$(mktemp -d)"
server=""
db_url=""
db_name=""
cleanup() {
  [ -n "$server" ] && { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  [ -n "$db_name" ] && psql "$base" -qc "DROP DATABASE IF EXISTS ${db_name} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

start_server() { # $1: inbox worker on (true/false)
  KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND=0 \
  KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE=0 \
  KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
  KLAXON_STORAGE_SQLITE_SYNCHRONOUS_FULL="${SYNC_FULL:-true}" \
  KLAXON_WORKERS_INBOX="$1" \
  KLAXON_LOG=warn \
  nice -n "$nice_level" "$bin"/klaxon serve --listen "127.0.0.1:$port" \
    --data-dir "$work/data" ${db_url:+--database-url "$db_url"} >"$work/banner.txt" \
    2>>"$work/server.log" &
  server=$!
  for _ in $(seq 1 400); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.025
  done
  echo "server did not become ready" >&2
  return 1
}

stop_server() {
  kill -TERM "$server"; wait "$server" || true; server=""
}

metric() {
  curl -fs "http://127.0.0.1:$port/metrics" | sed -n "s/^$1 \(.*\)/\1/p"
}

one_run() { # $1: plain | noisy; appends one JSON line to $work/results
  local config="$1"
  rm -rf "$work/data"
  db_url=""
  if [ "$backend" = postgres ]; then
    db_name="klaxon_noise_$(date +%s%N)"
    psql "$base" -qc "CREATE DATABASE ${db_name}"
    db_url="${base%/*}/${db_name}"
  fi
  start_server true
  local app_key key
  app_key="$(sed -n 's/.*APP key: *\([0-9a-zA-Z_-]*\).*/\1/p' "$work/banner.txt" | head -n 1)"
  key="$(sed -n 's/.*integration_key=\([0-9a-f]*\).*/\1/p' "$work/banner.txt" | head -n 1)"
  if [ "$config" = noisy ]; then
    "$bin"/klaxon-loadgen setup-noise --url "http://127.0.0.1:$port" \
      --app-key "$app_key" --integration-key "$key" >&2
  fi
  stop_server

  # Acceptance alone.
  start_server false
  "$bin"/klaxon-loadgen --url "http://127.0.0.1:$port" --integration-key "$key" \
    --labels noise --connections "$connections" --duration "$duration" --rate "$rate" \
    --mix "$mix" --server-pid "$server" --json >"$work/load.json"
  stop_server

  # Processing alone: restart with the inbox worker on and time the drain.
  local t0 t1 depth processed
  t0=$(date +%s%N)
  start_server true
  for _ in $(seq 1 24000); do
    depth="$(metric klaxon_inbox_depth)"
    [ "$depth" = 0 ] && break
    sleep 0.05
  done
  t1=$(date +%s%N)
  processed="$(metric klaxon_inbox_events_processed_total)"
  local outcomes
  outcomes="$(curl -fs -X POST "http://127.0.0.1:$port/incident/list?app_key=$app_key" \
    -H 'Content-Type: application/json' \
    -d "{\"start_time\": $(( $(date +%s) - 3600 )), \"end_time\": $(( $(date +%s) + 60 )), \"limit\": 1}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["total"])')"
  stop_server
  if [ -n "$db_name" ]; then
    psql "$base" -qc "DROP DATABASE ${db_name} WITH (FORCE)"
    db_name=""
  fi
  python3 - "$work/load.json" "$config" "$(( (t1 - t0) / 1000000 ))" "$processed" "$outcomes" \
    "$(cut -d' ' -f1 /proc/loadavg)" >>"$work/results" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
config, drain_ms, processed, incidents, loadavg = sys.argv[2:7]
processed = float(processed or 0)
drain_s = int(drain_ms) / 1000
print(json.dumps({
    "config": config,
    "accepted_per_s": load["accepted_per_s"],
    "accepted": load["accepted"] + load["warmup_accepted"],
    "p99_ms": load["latency_ms"]["p99"],
    "errors": load["errors_total"],
    "processed": int(processed),
    "drain_s": drain_s,
    "processed_per_s": processed / drain_s if drain_s > 0 else 0,
    "incidents": int(incidents),
    "loadavg": float(loadavg),
}))
PY
  tail -n 1 "$work/results" | python3 -c 'import json, sys
r = json.load(sys.stdin)
print("{config:<6} accepted {accepted_per_s:>8.0f}/s (p99 {p99_ms} ms, errors {errors})"
      "  processed {processed} in {drain_s:.1f} s = {processed_per_s:>6.0f}/s"
      "  incidents {incidents}  load avg {loadavg}".format(**r))'
}

echo "== $backend ($profile build): $rounds rounds, ${duration} s of load each, $connections connections, mix $mix"
for round in $(seq 1 "$rounds"); do
  one_run plain
  one_run noisy
done

python3 - "$work/results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def mean(config, field):
    v = [r[field] for r in rows if r["config"] == config]
    return sum(v) / len(v)
print("mean over the rounds:")
for field, name in [("accepted_per_s", "accepted/s"), ("processed_per_s", "processed/s")]:
    p, n = mean("plain", field), mean("noisy", field)
    print(f"  {name:<12} plain {p:>8.0f}  noisy {n:>8.0f}  noisy/plain {n / p:.2f}")
pairs = [(a, b) for a, b in zip(rows[0::2], rows[1::2])]
ratios = [b["processed_per_s"] / a["processed_per_s"] for a, b in pairs if a["processed_per_s"]]
print("  processing noisy/plain per round: " + ", ".join(f"{r:.2f}" for r in ratios))
PY

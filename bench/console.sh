#!/usr/bin/env bash
# Measures how long the console takes to answer its incident list with 1,000 incidents in the
# account (issue 10's target: rendered on the server in under 50 ms), on this machine.
#
#   bench/console.sh sqlite            # embedded SQLite in a fresh temporary data directory
#   bench/console.sh postgres URL      # a fresh database created from URL
#
# Environment: INCIDENTS (default 1000), REQUESTS (timed page loads per page, default 200),
# BUILD=0 to use the binary already in target/release (or KLAXON_BIN=path).
#
# Each alert gets its own alert key, so each opens its own incident (no grouping). The owner
# signs in through the console form; then the list (first page, 100 rows), the list with
# every progress and severity ticked, a search that scans the window, and one incident's
# detail page are each fetched REQUESTS times over one keep-alive connection, after 20
# untimed warm-up loads. curl's time_total is the whole answer on the loopback interface:
# request, render on the server, and transfer of the HTML.
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
incidents="${INCIDENTS:-1000}"
requests="${REQUESTS:-200}"
bin="${KLAXON_BIN:-target/release/klaxon}"
if [ "${BUILD:-1}" = 1 ] && [ -z "${KLAXON_BIN:-}" ]; then
  cargo build --release -q -p klaxon
fi
work="$(mktemp -d)"
db_url=""
if [ "$backend" = postgres ]; then
  base="${2:?postgres needs a URL}"
  name="klaxon_console_bench_$(date +%s)"
  psql "$base" -qc "CREATE DATABASE ${name}"
  db_url="${base%/*}/${name}"
fi
server=""
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ "$backend" = postgres ]; then psql "$base" -qc "DROP DATABASE IF EXISTS ${name} WITH (FORCE)"; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=18090
url="http://127.0.0.1:$port"
KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND=0 \
KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE=0 \
KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
KLAXON_LOG=warn \
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  ${db_url:+--database-url "$db_url"} >"$work/banner.txt" &
server=$!
for _ in $(seq 1 500); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  sleep 0.02
done
key="$(sed -n 's/.*integration_key=\([0-9a-f]*\).*/\1/p' "$work/banner.txt" | head -n 1)"
owner="$(sed -n 's/^  Owner: *\([^ ]*\) \/ \([^ ]*\) .*/\1 \2/p' "$work/banner.txt")"
email="${owner% *}"
password="${owner#* }"

echo "pushing $incidents alerts (one incident each) ..."
t0=$(date +%s%N)
for ((i = 0; i < incidents; i += 100)); do
  batch="["
  for ((j = i; j < i + 100 && j < incidents; j++)); do
    sev=$([ $((j % 3)) = 0 ] && echo Critical || ([ $((j % 3)) = 1 ] && echo Warning || echo Info))
    batch+="{\"event_status\":\"$sev\",\"title_rule\":\"Disk filling on db-$j\",\"alert_key\":\"bench-$j\",\"description\":\"/var at 9$((j % 10))% on db-$j\",\"labels\":{\"host\":\"db-$j\",\"service\":\"svc-$((j % 20))\",\"env\":\"prod\"}},"
  done
  batch="${batch%,}]"
  curl -fsS -o /dev/null -X POST "$url/event/push/alert/standard?integration_key=$key" \
    -H 'Content-Type: application/json' -d "$batch"
done
for _ in $(seq 1 6000); do
  depth="$(curl -fs "$url/metrics" | sed -n 's/^klaxon_inbox_depth \(.*\)/\1/p')"
  [ "$depth" = 0 ] && break
  sleep 0.05
done
t1=$(date +%s%N)
echo "pushed and processed in $(( (t1 - t0) / 1000000 )) ms"

jar="$work/cookies"
curl -fsS -o /dev/null -c "$jar" -X POST "$url/signin" \
  -H 'Content-Type: application/x-www-form-urlencoded' \
  --data-urlencode "email=$email" --data-urlencode "password=$password"
first="$(curl -fsS -b "$jar" "$url/incidents?who=all" | grep -o '/incident/detail/[0-9a-f]*' | head -n 1)"
count="$(curl -fsS -b "$jar" "$url/incidents?who=all" | grep -c 'href="/incident/detail/' || true)"
echo "incident list shows $count links on its first page"

# time_total of REQUESTS loads over one connection (curl reuses it for repeated URLs).
measure() {
  local label="$1" path="$2" size
  local urls=()
  for _ in $(seq 1 20); do urls+=("$url$path"); done
  curl -fsS -b "$jar" -o /dev/null "${urls[@]}"
  urls=()
  for _ in $(seq 1 "$requests"); do urls+=("$url$path"); done
  size="$(curl -fsS -b "$jar" "$url$path" | wc -c)"
  curl -fsS -b "$jar" -o /dev/null -w '%{time_total}\n' "${urls[@]}" | sort -n >"$work/times"
  awk -v label="$label" -v size="$size" '
    { t[NR] = $1 * 1000 }
    END {
      n = NR
      printf "%-44s n=%d  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (%d KiB)\n",
        label, n, t[int(n * 0.5)], t[int(n * 0.9)], t[int(n * 0.99)], t[n], size / 1024
    }' "$work/times"
}

measure "list, first page (100 of $incidents)" "/incidents?who=all"
measure "list, every progress and severity ticked" \
  "/incidents?who=all&progress=Triggered&progress=Processing&progress=Closed&severity=Critical&severity=Warning&severity=Info"
measure "list, title search over the window" "/incidents?who=all&q=db-99"
measure "list, label filter (regex)" "/incidents?who=all&label=service%3D%2F%5Esvc-1%5B0-9%5D%24%2F"
measure "incident detail" "$first"
echo "RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' "/proc/$server/status")"

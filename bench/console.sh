#!/usr/bin/env bash
# Console render time (issue 10): the incident list with 1,000 matching incidents, and one
# incident's page, as a signed-in browser asks for them.
#
#   bench/console.sh sqlite
#   bench/console.sh postgres postgres://postgres@127.0.0.1:5432/postgres
#
# Starts a node, pushes INCIDENTS alerts with distinct keys (grouping off: one incident each),
# signs the first-start owner in through the sign-in form, then requests the list
# (`/incidents?who=all&range=7d`: the 1,000 newest match, the page draws the first 100 rows
# and the `1000+` count, RSP-504) and an incident's detail REQUESTS times each, one at a
# time, and reports p50/p90/p99/max of the whole request as curl sees it on loopback (the
# page is drawn on the server; the network part is a local socket) and the server's memory.
#
# Environment: INCIDENTS (default 1000), REQUESTS (default 100), NICE (default 0),
# PROFILE (release, or debug to check the script), BUILD=0 to use the binaries already in
# $CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
incidents="${INCIDENTS:-1000}"
requests="${REQUESTS:-100}"
nice_level="${NICE:-0}"
profile="${PROFILE:-release}"
bin="${CARGO_TARGET_DIR:-target}/$profile"
port=18084
base=""
[ "$backend" = postgres ] && base="${2:?postgres needs a URL}"

if [ "${BUILD:-1}" = 0 ]; then
  : # use the binaries already built
elif [ "$profile" = release ]; then
  nice -n 19 cargo build --release -q -p klaxon
else
  nice -n 19 cargo build -q -p klaxon
fi
work="$(mktemp -d)"
server=""
db_name=""
cleanup() {
  [ -n "$server" ] && { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  [ -n "$db_name" ] && psql "$base" -qc "DROP DATABASE IF EXISTS ${db_name} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

db_url=""
if [ "$backend" = postgres ]; then
  db_name="klaxon_console_$(date +%s)"
  psql "$base" -qc "CREATE DATABASE ${db_name}"
  db_url="${base%/*}/${db_name}"
fi

KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND=0 \
KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE=0 \
KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
KLAXON_API_LIMITS_PER_ACCOUNT_PER_SECOND=0 \
KLAXON_API_LIMITS_PER_ACCOUNT_PER_MINUTE=0 \
KLAXON_LOG=warn \
nice -n "$nice_level" "$bin"/klaxon serve --listen "127.0.0.1:$port" \
  --data-dir "$work/data" ${db_url:+--database-url "$db_url"} >"$work/banner.txt" \
  2>>"$work/server.log" &
server=$!
for _ in $(seq 1 400); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.025
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "server did not become ready" >&2; cat "$work/server.log" >&2; exit 1; }

python3 - "$port" "$work/banner.txt" "$incidents" "$requests" "$server" <<'PY'
import http.client, json, re, statistics, sys, time, urllib.parse

port, banner_path, incidents, requests, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
banner = open(banner_path).read()
key = re.search(r"integration_key=([0-9a-f]+)", banner).group(1)
owner = re.search(r"Owner:\s+(\S+) / (\S+)", banner)
email, password = owner.group(1), owner.group(2)

def conn():
    return http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)

def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

c = conn()
sev = ["Critical", "Warning", "Info"]
for i in range(incidents):
    body = json.dumps({"event_status": sev[i % 3], "alert_key": f"console-bench-{i}",
                       "title_rule": f"disk almost full on host-{i}",
                       "labels": {"host": f"host-{i}", "service": f"svc-{i % 20}", "env": "prod"}})
    c.request("POST", f"/event/push/alert/standard?integration_key={key}", body,
              {"content-type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
# Wait for the inbox to drain.
for _ in range(2000):
    c.request("GET", "/metrics"); text = c.getresponse().read().decode()
    depth = [l for l in text.splitlines() if l.startswith("klaxon_inbox_depth ")]
    if depth and float(depth[0].split()[1]) == 0.0:
        break
    time.sleep(0.05)

form = urllib.parse.urlencode({"email": email, "password": password})
c.request("POST", "/signin", form, {"content-type": "application/x-www-form-urlencoded"})
r = c.getresponse(); r.read()
assert r.status == 303, r.status
cookies = "; ".join(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")

def timed(path):
    out = []
    size = 0
    for _ in range(requests):
        t0 = time.perf_counter()
        c.request("GET", path, headers={"cookie": cookies})
        r = c.getresponse(); body = r.read()
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (path, r.status)
        size = len(body)
    return out, size, body

def report(name, samples, size):
    s = sorted(samples)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]
    print(f"  {name:<28} p50 {q(0.5):6.1f} ms  p90 {q(0.9):6.1f} ms  p99 {q(0.99):6.1f} ms  "
          f"max {s[-1]:6.1f} ms  ({size // 1024} KiB)")

rss_before = rss_mib()
lst, size, body = timed("/incidents?who=all&range=7d")
count = re.search(r'class="count"[^>]*><strong>([^<]+)</strong>', body.decode())
assert count and count.group(1).rstrip("+") == str(min(incidents, 1000)), count and count.group(1)
report(f"list ({count.group(1)} matching)", lst, size)
m = re.search(r'/incident/detail/([0-9a-f]{24})', body.decode())
det, dsize, _ = timed(f"/incident/detail/{m.group(1)}")
report("incident detail", det, dsize)
print(f"  server RSS: {rss_before:.0f} MiB before the requests, {rss_mib():.0f} MiB after")
PY

#!/usr/bin/env bash
# Bounded soak: claimdb (release build, embedded SQLite) under a steady mixed load — authorized
# point reads, single writes, 5-write batches and queries, with tokens from an IdP on loopback
# (its JWKS served by a local static server, as in bench/auth.sh) — for DURATION seconds at RATE
# requests/s, sampling the server every SAMPLE seconds: RSS, open file descriptors, the SQLite
# WAL's size, the audit directory's size. Prints one table row per sample, then a verdict per
# metric, and exits 1 on:
#   - any 5xx answer or transport error (other 4xx are counted: the load includes none),
#   - a growth trend of RSS, fds or WAL: the second half's mean above the first half's by more
#     than TOLERANCE (relative) and the floor (absolute), while a least-squares line through the
#     second half still rises by more than the floor over that half (a warm-up that levels off
#     passes; a leak does not),
#   - audit bytes per request rising the same way (the log grows with traffic by design, so its
#     size per request is what must stay flat), or the audit directory above AUDIT_MAX_BYTES.
# Usage: bench/soak.sh   (env: DURATION=600 RATE=150 SAMPLE=5 USERS=200 N=2000 WORKERS=8
#                               PORT=18897 TOLERANCE=0.25 AUDIT_MAX_BYTES= EXTRA_CONFIG=
#                               KEEP=0 (1 keeps the work directory))
# EXTRA_CONFIG is appended to the server's TOML (e.g. retention settings under test). Tokens are
# valid for two hours: DURATION is capped at 7000 s.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600} RATE=${RATE:-150} SAMPLE=${SAMPLE:-5} USERS=${USERS:-200} N=${N:-2000}
WORKERS=${WORKERS:-8} PORT=${PORT:-18897} TOLERANCE=${TOLERANCE:-0.25}
AUDIT_MAX_BYTES=${AUDIT_MAX_BYTES:-} EXTRA_CONFIG=${EXTRA_CONFIG:-} KEEP=${KEEP:-0}
if [ "$DURATION" -gt 7000 ]; then echo "DURATION is capped at 7000 s (token lifetime)" >&2; exit 2; fi
cargo build --release --quiet -p claimdb
cargo build --release --quiet -p claimdb --example bench_tokens
BIN=target/release/claimdb
WORK=$(mktemp -d)
PIDS=""
cleanup() {
  kill $PIDS 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ISSUER="https://idp.soak.test/" AUD="claimdb-soak"
target/release/examples/bench_tokens "$WORK" "$ISSUER" "$AUD" "$USERS" 1
(cd "$WORK" && exec python3 -m http.server "$((PORT + 2))" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS="$PIDS $!"
cat > "$WORK/soak.rules" <<'RULES'
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /soak/{id} {
      allow read: if request.auth != null;
      allow write: if request.auth != null && request.resource.data.owner == request.auth.uid;
    }
  }
}
RULES
cat > "$WORK/claimdb.toml" <<TOML
rules = "$WORK/soak.rules"
admin_key = "soak-admin-key-0123456789"
explain_denials = false
$EXTRA_CONFIG

[[providers]]
name = "soak"
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$((PORT + 2))/jwks.json"
audience = ["$AUD"]
algorithms = ["ES256"]
TOML
python3 - "$N" "$USERS" > "$WORK/seed.jsonl" <<'PY'
import json, sys
n, users = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(json.dumps({"path": f"soak/d{i}", "data": {"owner": f"user{i % users}", "n": i, "title": "soak document"}}))
PY
"$BIN" import --data-dir "$WORK/db" "$WORK/seed.jsonl" >/dev/null
CLAIMDB_LOG=warn "$BIN" serve --config "$WORK/claimdb.toml" --data-dir "$WORK/db" \
  --listen "127.0.0.1:$PORT" > "$WORK/server.log" 2>&1 &
SERVER=$!
PIDS="$PIDS $SERVER"
for _ in $(seq 5000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.002; done
kill -0 "$SERVER" 2>/dev/null || { echo "claimdb did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
echo "== soak: ${DURATION}s at ${RATE} req/s (reads 50%, writes 25%, batches 10%, queries 15%), sample every ${SAMPLE}s, $(nproc) cores"
rc=0
(python3 - "$PORT" "$SERVER" "$WORK" "$DURATION" "$RATE" "$SAMPLE" "$WORKERS" "$N" \
  "$TOLERANCE" "$AUDIT_MAX_BYTES" <<'PY'
import http.client, json, os, random, sys, threading, time

port, pid, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
duration, rate, sample = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
workers, ndocs, tolerance = int(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9])
audit_max = int(sys.argv[10]) if sys.argv[10] else None
tokens = [line.split() for line in open(os.path.join(work, "tokens.txt"))]
db = os.path.join(work, "db")
lock = threading.Lock()
counts = {"requests": 0, "2xx": 0, "4xx": 0, "5xx": 0, "transport": 0}
failures = []
stop_at = time.monotonic() + duration

def one(conn, rng):
    uid, token = rng.choice(tokens)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    r = rng.random()
    if r < 0.50:
        method, path, body = "GET", f"/v1/docs/soak/d{rng.randrange(ndocs)}", None
    elif r < 0.75:
        method, path = "PUT", f"/v1/docs/soak/{uid}-{rng.randrange(50)}"
        body = json.dumps({"owner": uid, "n": rng.randrange(10**9), "title": "soak write"})
    elif r < 0.85:
        writes = [{"op": "set", "path": f"soak/{uid}-b{k}",
                   "data": {"owner": uid, "n": rng.randrange(10**9)}} for k in rng.sample(range(50), 5)]
        method, path, body = "POST", "/v1/batch", json.dumps({"writes": writes})
    else:
        method, path = "POST", "/v1/query"
        body = json.dumps({"collection": "soak", "where": [["owner", "==", uid]], "limit": 20})
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read()
    return resp.status, method, path, text

def worker(i):
    rng = random.Random(i)
    interval = workers / rate
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    next_at = time.monotonic() + rng.random() * interval
    while True:
        now = time.monotonic()
        if now >= stop_at:
            return
        if next_at > now:
            time.sleep(next_at - now)
        next_at += interval
        try:
            status, method, path, text = one(conn, rng)
            kind = f"{status // 100}xx" if status // 100 in (2, 4, 5) else "5xx"
        except Exception as e:  # a reset or timeout: reconnect, count it
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            kind, status, method, path, text = "transport", 0, "?", "?", repr(e).encode()
        with lock:
            counts["requests"] += 1
            counts[kind] += 1
            if kind in ("4xx", "5xx", "transport") and len(failures) < 10:
                failures.append(f"{method} {path} -> {status}: {text[:200]!r}")

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0

def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(size(os.path.join(root, f)) for f in files)
    return total

threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
start = time.monotonic()
for t in threads:
    t.start()
rows = []
print(f"{'t_s':>6} {'rss_MiB':>8} {'fds':>5} {'wal_MiB':>8} {'audit_MiB':>9} {'requests':>9} {'req/s':>6} {'errors':>6}")
last_req, last_t = 0, start
while True:
    time.sleep(sample)
    now = time.monotonic()
    if not os.path.exists(f"/proc/{pid}"):
        print("claimdb exited during the soak", file=sys.stderr)
        sys.exit(1)
    with lock:
        req = counts["requests"]
        errors = counts["5xx"] + counts["transport"] + counts["4xx"]
    row = {"t": now - start, "rss": rss_kb() * 1024, "fds": len(os.listdir(f"/proc/{pid}/fd")),
           "wal": size(os.path.join(db, "claimdb.sqlite3-wal")),
           "audit": dir_size(os.path.join(db, "audit")), "requests": req}
    rows.append(row)
    print(f"{row['t']:6.0f} {row['rss']/2**20:8.1f} {row['fds']:5d} {row['wal']/2**20:8.2f} "
          f"{row['audit']/2**20:9.2f} {req:9d} {(req - last_req) / (now - last_t):6.0f} {errors:6d}", flush=True)
    last_req, last_t = req, now
    if now >= stop_at:
        break
for t in threads:
    t.join(timeout=35)

def mean(xs):
    return sum(xs) / len(xs)

def slope(points):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = mean(xs), mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0

verdicts, failed = [], False
half = len(rows) // 2
# (name, value of a row, absolute floor, unit)
metrics = [
    ("rss", lambda r: r["rss"], 8 * 2**20, "MiB"),
    ("fds", lambda r: r["fds"], 8, ""),
    ("wal", lambda r: r["wal"], 8 * 2**20, "MiB"),
    ("audit bytes/request", lambda r: r["audit"] / max(r["requests"], 1), 16, "B"),
]
if half < 2:
    print("too few samples for a trend (raise DURATION or lower SAMPLE)", file=sys.stderr)
    sys.exit(1)
for name, value, floor, unit in metrics:
    first = [value(r) for r in rows[:half]]
    second = [(r["t"], value(r)) for r in rows[half:]]
    m1, m2 = mean(first), mean([v for _, v in second])
    rise = slope(second) * (second[-1][0] - second[0][0])
    growing = m2 - m1 > max(tolerance * m1, floor) and rise > floor
    failed |= growing
    scale = 2**20 if unit == "MiB" else 1
    verdicts.append(f"{name:>20}: first half {m1/scale:10.2f}{unit}, second half {m2/scale:10.2f}{unit}, "
                    f"fitted rise over second half {rise/scale:+10.2f}{unit} -> {'GROWING' if growing else 'ok'}")
last = rows[-1]
if audit_max is not None and last["audit"] > audit_max:
    failed = True
    verdicts.append(f"audit directory {last['audit']} bytes exceeds AUDIT_MAX_BYTES={audit_max}")
with lock:
    c = dict(counts)
elapsed = time.monotonic() - start
print(f"== {c['requests']} requests in {elapsed:.0f}s ({c['requests']/elapsed:.0f}/s): "
      f"2xx {c['2xx']}, 4xx {c['4xx']}, 5xx {c['5xx']}, transport errors {c['transport']}")
print(f"== peak: rss {max(r['rss'] for r in rows)/2**20:.1f} MiB, fds {max(r['fds'] for r in rows)}, "
      f"wal {max(r['wal'] for r in rows)/2**20:.2f} MiB, audit {last['audit']/2**20:.2f} MiB")
for v in verdicts:
    print(v)
for f in failures:
    print("   ", f)
if c["5xx"] or c["transport"] or c["4xx"]:
    failed = True
    print("FAIL: error answers during the soak")
print("FAIL" if failed else "PASS")
sys.exit(1 if failed else 0)
PY
) || rc=$?
exit "$rc"

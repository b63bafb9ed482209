#!/usr/bin/env bash
# Instructions per authorized request, counted by valgrind's callgrind: unlike req/s or CPU time,
# the count does not depend on what else the machine is doing, so two builds can be compared on
# a busy machine. The server (release build) runs under callgrind twice per mode, serving R1 and
# then R2 requests over one keep-alive connection from a Python client; the difference of the two
# totals divided by R2 - R1 is the cost of one request, start-up and shutdown cancelled out.
# Modes: `hit` — point reads with 200 users' tokens, each already verified (cache hits); `new` —
# point reads each with a token never seen before (full ES256 verification and a cache insert);
# `write` — owner-checked PUTs, each with a token never seen before (so mostly ES256); `put` —
# the same PUTs with the `hit` mode's 200 already-verified tokens (the write path itself). The
# commit's fsync is a system call: not counted.
# Usage: bench/instructions.sh            (env: BIN=path/to/claimdb to measure another build,
#          TOKENS_BIN=path/to/bench_tokens, MODES="hit new write put" R1=300 R2=1300 PORT=18897,
#          KEEP=dir to keep the callgrind profiles there, for callgrind_annotate)
# Counts user-space instructions of every thread (valgrind runs them one at a time), including
# the audit writer's; kernel work (TCP, fsync) is not counted.
set -euo pipefail
cd "$(dirname "$0")/.."
MODES=${MODES:-hit new write put} R1=${R1:-300} R2=${R2:-1300} PORT=${PORT:-18897}
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 2; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=$TARGET/release/claimdb
fi
if [ -z "${TOKENS_BIN:-}" ]; then
  cargo build --release --quiet -p claimdb --example bench_tokens
  TOKENS_BIN=$TARGET/release/examples/bench_tokens
fi
WORK=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT
ISSUER="https://idp.bench.test/" AUD="claimdb-bench"
# Enough distinct tokens for the `new` mode's R2 requests plus the `hit` mode's 200 users.
"$TOKENS_BIN" "$WORK" "$ISSUER" "$AUD" "$((R2 + 200))" 1
(cd "$WORK" && exec python3 -m http.server "$((PORT + 2))" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS="$PIDS $!"
cat > "$WORK/bench.rules" <<'RULES'
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /bench/{id} {
      allow read: if request.auth != null && request.auth.token.tier in ['free', 'pro'];
    }
    match /notes/{id} {
      allow write: if request.auth != null && request.resource.data.owner == request.auth.uid;
    }
  }
}
RULES
cat > "$WORK/claimdb.toml" <<TOML
rules = "$WORK/bench.rules"
admin_key = "bench-admin-key-0123456789"
explain_denials = false

[[providers]]
name = "bench"
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$((PORT + 2))/jwks.json"
audience = ["$AUD"]
algorithms = ["ES256"]
TOML
python3 - > "$WORK/seed.jsonl" <<'PY'
import json
for i in range(1, 1001):
    print(json.dumps({"path": f"bench/d{i}", "data": {"owner": f"user{i % 1000}", "n": i, "title": "benchmark document", "tags": ["a", "b"]}}))
PY
cat > "$WORK/client.py" <<'PY'
import http.client, json, sys
mode, count, port, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = [l.split() for l in open(tokens)]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
for i in range(count):
    if mode in ("hit", "put"):
        uid, token = lines[i % 200]
    else:
        uid, token = lines[200 + i]
    headers = {"Authorization": "Bearer " + token}
    if mode in ("write", "put"):
        body = json.dumps({"owner": uid, "n": i, "title": "benchmark note"})
        headers["Content-Type"] = "application/json"
        conn.request("PUT", f"/v1/docs/notes/{uid}-{i}", body=body, headers=headers)
    else:
        conn.request("GET", f"/v1/docs/bench/d{i % 1000 + 1}", headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status not in (200, 201):
        sys.exit(f"request {i}: status {r.status}")
PY
# One server under callgrind: prime the `hit` mode's tokens (outside the counted difference,
# since both runs do it), serve COUNT requests, stop; print the total instruction count.
measure() {
  local mode=$1 count=$2 db="$WORK/db-$1-$2"
  "$BIN" import --data-dir "$db" "$WORK/seed.jsonl" >/dev/null
  CLAIMDB_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$mode.$count" \
    "$BIN" serve --config "$WORK/claimdb.toml" --data-dir "$db" --listen "127.0.0.1:$PORT" \
    > "$WORK/server.log" 2>&1 &
  local server=$!
  for _ in $(seq 6000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.05; done
  case "$mode" in hit|put) python3 "$WORK/client.py" hit 200 "$PORT" "$TOKENS" ;; esac
  python3 "$WORK/client.py" "$mode" "$count" "$PORT" "$TOKENS"
  kill -TERM "$server"
  wait "$server" || true
  awk '/^totals:/ {print $2}' "$WORK/cg.$mode.$count"
}
TOKENS="$WORK/tokens.txt"
echo "== $BIN: instructions per request (callgrind; R1=$R1, R2=$R2)"
for mode in $MODES; do
  a=$(measure "$mode" "$R1")
  b=$(measure "$mode" "$R2")
  echo "$mode: $(( (b - a) / (R2 - R1) )) instructions/request (totals $a, $b)"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK/cg.$mode.$R1" "$WORK/cg.$mode.$R2" "$KEEP/"; fi
done

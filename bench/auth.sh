#!/usr/bin/env bash
# End-to-end authorized HTTP benchmark over loopback: USERS users, each with TOKENS_PER_USER
# distinct ES256 tokens from an IdP (its JWKS served by a local static server), rules reading the
# token's claims; point reads of N seeded documents and durable owner-checked writes, each with
# wrk (throughput, p50/p99). Then the same reads at half the measured maximum rate (wrk2-style
# pacing is not available in wrk, so: half the connections) for the p99 budget.
# Usage: bench/auth.sh   (env: N=10000 USERS=5000 TOKENS_PER_USER=4 DURATION=15s CONNS=32
#                               THREADS=2 PORT=18797 AUDIT=1 (0 turns the audit log off),
#                               BIN=path/to/claimdb and TOKENS_BIN=path/to/bench_tokens to
#                               measure other builds, PHASES="read half write" to run some)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000} USERS=${USERS:-5000} TOKENS_PER_USER=${TOKENS_PER_USER:-4} DURATION=${DURATION:-15s}
CONNS=${CONNS:-32} THREADS=${THREADS:-2} PORT=${PORT:-18797} AUDIT=${AUDIT:-1}
export N
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=$TARGET/release/claimdb
fi
if [ -z "${TOKENS_BIN:-}" ]; then
  cargo build --release --quiet -p claimdb --example bench_tokens
  TOKENS_BIN=$TARGET/release/examples/bench_tokens
fi
PHASES=${PHASES:-read half write}
WORK=$(mktemp -d)
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT
ISSUER="https://idp.bench.test/" AUD="claimdb-bench"
"$TOKENS_BIN" "$WORK" "$ISSUER" "$AUD" "$USERS" "$TOKENS_PER_USER"
export TOKENS="$WORK/tokens.txt"
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
$( [ "$AUDIT" = 0 ] && echo 'audit = false' )

[[providers]]
name = "bench"
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$((PORT + 2))/jwks.json"
audience = ["$AUD"]
algorithms = ["ES256"]
TOML
python3 - "$N" > "$WORK/seed.jsonl" <<'PY'
import json, sys
for i in range(1, int(sys.argv[1]) + 1):
    print(json.dumps({"path": f"bench/d{i}", "data": {"owner": f"user{i % 1000}", "n": i, "title": "benchmark document", "tags": ["a", "b"]}}))
PY
"$BIN" import --data-dir "$WORK/db" "$WORK/seed.jsonl"
CLAIMDB_LOG=warn "$BIN" serve --config "$WORK/claimdb.toml" --data-dir "$WORK/db" --listen "127.0.0.1:$PORT" > "$WORK/server.log" &
SERVER=$!
PIDS="$PIDS $SERVER"
for _ in $(seq 5000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.002; done
# Not another process that already held the port.
kill -0 "$SERVER" 2>/dev/null || { echo "claimdb did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
# wrk's report, then the server's CPU time (user + system, from /proc) per request served: steadier
# than req/s on a shared machine, where wrk and the server compete for the same cores.
run() {
  local conns=$1 script=$2 before after out
  before=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
  out=$(wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency -s "$script" "http://127.0.0.1:$PORT")
  after=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
  echo "$out"
  echo "$out" | awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" \
    '/requests in/ {printf "server CPU per request: %.1f us\n", t / hz * 1e6 / $1}'
}
echo "== $(nproc) cores; $USERS users x $TOKENS_PER_USER tokens ($(wc -l < "$TOKENS") distinct), audit=$AUDIT"
for phase in $PHASES; do
  case "$phase" in
    read)
      echo "== authorized point reads (N=$N, $CONNS connections, $DURATION)"
      run "$CONNS" bench/wrk/auth_read.lua ;;
    half)
      echo "== authorized point reads at half the connections ($((CONNS / 2)))"
      run "$((CONNS / 2))" bench/wrk/auth_read.lua ;;
    write)
      echo "== authorized durable writes ($CONNS connections, $DURATION)"
      run "$CONNS" bench/wrk/auth_write.lua ;;
    *) echo "unknown phase $phase" >&2; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# The HTTP benchmark of bench/http.sh (same wrk scripts, same seed) with PostgreSQL storage: one
# node, then two nodes on the same schema with wrk driving both at once (half the connections
# each; the report sums their throughput). Uses a fresh schema, dropped at the end.
# Usage: bench/http-postgres.sh
#   (env: PG_URL=postgres://postgres@127.0.0.1:5432/test N=10000 DURATION=15s CONNS=32 THREADS=2
#    PORT=18787 POOL=16; BIN=path/to/claimdb benchmarks that binary instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
N=${N:-10000} DURATION=${DURATION:-15s} CONNS=${CONNS:-32} THREADS=${THREADS:-2} PORT=${PORT:-18787} POOL=${POOL:-16}
export N
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
command -v psql >/dev/null || { echo "psql is required to drop the benchmark schema" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=${CARGO_TARGET_DIR:-target}/release/claimdb
fi
WORK=$(mktemp -d)
SCHEMA="claimdb_bench_$$"
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export CLAIMDB_DATA_DIR="$WORK/data" CLAIMDB_STORAGE=postgres CLAIMDB_POSTGRES_URL="$PG_URL" CLAIMDB_POSTGRES_SCHEMA="$SCHEMA" CLAIMDB_POSTGRES_POOL_SIZE="$POOL"
python3 - "$N" > "$WORK/seed.jsonl" <<'PY'
import json, sys
for i in range(1, int(sys.argv[1]) + 1):
    print(json.dumps({"path": f"bench/d{i}", "data": {"owner": f"u{i % 1000}", "n": i, "title": "benchmark document", "tags": ["a", "b"]}}))
PY
"$BIN" import "$WORK/seed.jsonl"
# Storage and HTTP only: rules that allow everything, no providers (bench/auth.sh measures the
# authorized path).
printf '%s\n' "rules_version = '2';" 'service cloud.firestore { match /databases/{db}/documents { match /{d=**} { allow read, write: if true; } } }' > "$WORK/open.rules"
export CLAIMDB_RULES="$WORK/open.rules"
start_node() { # port
  CLAIMDB_LOG=warn "$BIN" serve --listen "127.0.0.1:$1" > "$WORK/server-$1.log" &
  PIDS="$PIDS $!"
  for _ in $(seq 5000); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.002; done
  echo "node on $1 did not become ready" >&2; exit 2
}
# Sums "Requests/sec" of the wrk reports given, and shows each report's latency lines.
report() {
  for f in "$@"; do grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors" "$f" | sed "s|^|  $(basename "$f"): |"; done
  awk '/Requests\/sec/ {s += $2} END {printf "  total: %.0f req/s\n", s}' "$@"
}
start_node "$PORT"
echo "== one node: point reads (N=$N, $CONNS connections, $DURATION)"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/wrk/read.lua "http://127.0.0.1:$PORT" > "$WORK/r1"
report "$WORK/r1"
echo "== one node: durable single-document writes ($CONNS connections, $DURATION)"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/wrk/write.lua "http://127.0.0.1:$PORT" > "$WORK/w1"
report "$WORK/w1"
start_node "$((PORT + 1))"
HALF=$((CONNS / 2))
echo "== two nodes: point reads ($HALF connections to each, $DURATION)"
wrk -t1 -c"$HALF" -d"$DURATION" --latency -s bench/wrk/read.lua "http://127.0.0.1:$PORT" > "$WORK/r2a" &
BG=$!
wrk -t1 -c"$HALF" -d"$DURATION" --latency -s bench/wrk/read.lua "http://127.0.0.1:$((PORT + 1))" > "$WORK/r2b"
wait "$BG"
report "$WORK/r2a" "$WORK/r2b"
echo "== two nodes: durable single-document writes ($HALF connections to each, $DURATION)"
PREFIX=a wrk -t1 -c"$HALF" -d"$DURATION" --latency -s bench/wrk/write.lua "http://127.0.0.1:$PORT" > "$WORK/w2a" &
BG=$!
PREFIX=b wrk -t1 -c"$HALF" -d"$DURATION" --latency -s bench/wrk/write.lua "http://127.0.0.1:$((PORT + 1))" > "$WORK/w2b"
wait "$BG"
report "$WORK/w2a" "$WORK/w2b"
echo "== memory of the nodes after the run"
for p in $PIDS; do grep VmRSS "/proc/$p/status"; done

#!/usr/bin/env bash
# HTTP benchmark of the embedded store over loopback: point reads of N seeded documents and
# durable single-document writes, each with wrk. Prints wrk's reports (throughput, latency
# percentiles), then a bare hyper server in the same run as the baseline. Usage: bench/http.sh   (env: N=10000 DURATION=15s CONNS=32 THREADS=2 PORT=18787)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000} DURATION=${DURATION:-15s} CONNS=${CONNS:-32} THREADS=${THREADS:-2} PORT=${PORT:-18787}
export N
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet -p claimdb
cargo build --release --quiet -p claimdb-server --example bare_hyper
BIN=target/release/claimdb
WORK=$(mktemp -d)
BARE=""
trap 'kill "$PID" $BARE 2>/dev/null || true; rm -rf "$WORK"' EXIT
python3 - "$N" > "$WORK/seed.jsonl" <<'PY'
import json, sys
for i in range(1, int(sys.argv[1]) + 1):
    print(json.dumps({"path": f"bench/d{i}", "data": {"owner": f"u{i % 1000}", "n": i, "title": "benchmark document", "tags": ["a", "b"]}}))
PY
"$BIN" import --data-dir "$WORK/db" "$WORK/seed.jsonl"
START=$(date +%s%N)
# Storage and HTTP only: rules that allow everything, no providers (bench/auth.sh measures the
# authorized path).
printf '%s\n' "rules_version = '2';" 'service cloud.firestore { match /databases/{db}/documents { match /{d=**} { allow read, write: if true; } } }' > "$WORK/open.rules"
CLAIMDB_RULES="$WORK/open.rules" CLAIMDB_LOG=warn "$BIN" serve --data-dir "$WORK/db" --listen "127.0.0.1:$PORT" > "$WORK/server.log" &
PID=$!
for _ in $(seq 2000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.002; done
echo "== start to ready: $(( ($(date +%s%N) - START) / 1000000 )) ms (polling /readyz every 2 ms)"
sleep 1
echo "== idle memory: $(grep VmRSS "/proc/$PID/status")"
echo "== point reads (N=$N, $CONNS connections, $DURATION)"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/wrk/read.lua "http://127.0.0.1:$PORT"
echo "== durable single-document writes ($CONNS connections, $DURATION)"
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/wrk/write.lua "http://127.0.0.1:$PORT"
echo "== baseline: bare hyper answering a fixed JSON body ($CONNS connections, $DURATION)"
target/release/examples/bare_hyper "127.0.0.1:$((PORT + 1))" > /dev/null &
BARE=$!
sleep 0.3
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$((PORT + 1))/"
echo "== memory of claimdb after the run"
grep VmRSS "/proc/$PID/status"

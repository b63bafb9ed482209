#!/usr/bin/env bash
# Firestore gRPC next to Firestore REST on one claimdb: a point read, `BatchGetDocuments` of one
# document over gRPC against `:batchGet` of the same document over REST, both over h2c with
# h2load (Debian's nghttp2-client) — same server, same connection count, same credential — so
# the difference is the protocols' own cost: for gRPC the protobuf codec plus the detour through
# proto3 JSON (the request message serialized to JSON for the shared RPC table, the JSON answer
# read back into the response message); for REST the JSON body parse and the answer's
# serialization. Rounds alternate the order (this VM drifts run to run).
#
# Runs `claimdb emulator` (release build) as `Bearer owner` (decided by allow-all rules and
# audited like any caller), so no IdP is needed; both protocols take the same path through the
# engine. Checks before the rounds that each request answers the document, and after them that
# the server counted no gRPC call with a non-OK code.
#
# Usage: bench/grpc.sh  (env: DURATION=10 WARMUP=3 CONNS=32 STREAMS=1 THREADS=2 ROUNDS=3
#   PORT=18830, BIN=path/to/claimdb to measure another build, PERF=1 to record a profile of the
#   gRPC round into $OUT/perf.data, OUT=dir to keep the reports)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10} WARMUP=${WARMUP:-3} CONNS=${CONNS:-32} STREAMS=${STREAMS:-1}
THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-3} PORT=${PORT:-18830}
command -v h2load >/dev/null || { echo "h2load is required (apt-get install nghttp2-client)" >&2; exit 2; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=$TARGET/release/claimdb
fi
WORK=$(mktemp -d)
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; else OUT=$WORK/out; mkdir -p "$OUT"; fi
PID=""
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
BASE=http://127.0.0.1:$PORT
DB="projects/demo-bench/databases/(default)"
DOC="$DB/documents/bench/d1"

"$BIN" emulator --listen "127.0.0.1:$PORT" --project-id demo-bench >"$OUT/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -X PATCH "$BASE/v1/$DOC" -H 'authorization: Bearer owner' -d '{"fields": {
  "owner": {"stringValue": "user1"}, "title": {"stringValue": "A document of four fields"},
  "n": {"integerValue": "42"}, "at": {"timestampValue": "2026-01-01T00:00:00.123456Z"}}}' >/dev/null

# The request bodies: REST's JSON, and the gRPC frame (flag 0, big-endian length, then the
# BatchGetDocumentsRequest: field 1 `database`, field 2 `documents`, both strings).
printf '{"documents": ["%s"]}' "$DOC" >"$WORK/rest.json"
python3 - "$DB" "$DOC" "$WORK/grpc.bin" <<'EOF'
import struct, sys
def field(tag, text):
    data = text.encode()
    assert len(data) < 128
    return bytes([tag << 3 | 2, len(data)]) + data
message = field(1, sys.argv[1]) + field(2, sys.argv[2])
open(sys.argv[3], "wb").write(b"\0" + struct.pack(">I", len(message)) + message)
EOF

rest() {
  h2load "$@" -d "$WORK/rest.json" -H 'authorization: Bearer owner' \
    -H 'content-type: application/json' "$BASE/v1/$DB/documents:batchGet"
}
grpc() {
  h2load "$@" -d "$WORK/grpc.bin" -H 'authorization: Bearer owner' \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "$BASE/google.firestore.v1.Firestore/BatchGetDocuments"
}
# Each answers the document once (h2load counts only HTTP statuses; gRPC's is in a trailer).
rest -n 1 -c 1 | grep -q '1 succeeded' || { echo "REST check failed" >&2; exit 1; }
grpc -n 1 -c 1 | grep -q '1 succeeded' || { echo "gRPC check failed" >&2; exit 1; }

cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
ticks=$(getconf CLK_TCK)
run() { # system round
  local system=$1 round=$2 before after
  $system -c "$CONNS" -m "$STREAMS" -t "$THREADS" -D "$WARMUP" >/dev/null
  before=$(cpu)
  if [ "$system" = grpc ] && [ "${PERF:-0}" = 1 ] && [ "$round" = 1 ]; then
    perf record -F 999 -g -o "$OUT/perf.data" -p "$PID" -- sleep "$DURATION" 2>/dev/null &
  fi
  $system -c "$CONNS" -m "$STREAMS" -t "$THREADS" -D "$DURATION" >"$OUT/$system-$round.txt"
  wait
  after=$(cpu)
  local rps reqs
  rps=$(awk '/^finished in/ {print $4}' "$OUT/$system-$round.txt")
  reqs=$(awk '/^requests:/ {print $8}' "$OUT/$system-$round.txt")
  printf '%s round %s: %s req/s, %s succeeded, %s µs CPU/req\n' "$system" "$round" "$rps" "$reqs" \
    "$(awk -v c=$((after - before)) -v t="$ticks" -v n="$reqs" 'BEGIN {printf "%.1f", c / t * 1e6 / n}')"
}
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="grpc rest"; else order="rest grpc"; fi
  for system in $order; do run "$system" "$round"; done
done | tee "$OUT/summary.txt"
# Every gRPC call was OK (an error would be counted with its code's HTTP status).
metrics=$(curl -sf "$BASE/metrics")
if grep 'route="/google.firestore.v1.Firestore/' <<<"$metrics" | grep -v 'status="200"' | grep -q requests_total; then
  echo "some gRPC calls failed:" >&2
  grep 'Firestore/' <<<"$metrics" >&2
  exit 1
fi
echo "rss: $(awk '/VmRSS/ {print $2, $3}' "/proc/$PID/status")"

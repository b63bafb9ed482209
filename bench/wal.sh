#!/usr/bin/env bash
# The write-ahead log under heavy writes with concurrent queries (issue 19): 4 connections of
# single-document PUTs and 4 of 10-write batches (eight writers) plus 2 connections of queries,
# for DURATION, while the WAL file's size is sampled every 0.2 s. Prints the documents written
# per second, the largest and final WAL, the database size, then stops the server (SIGTERM),
# prints the WAL left behind and the time a restart takes to be ready.
# Usage: bench/wal.sh   (env: DURATION=45s PORT=18797 WAL_MAX_BYTES=<unset: the default>
#                        BIN=<a claimdb binary; default: build target/release/claimdb>)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-45s} PORT=${PORT:-18797}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=target/release/claimdb
fi
WORK=$(mktemp -d)
PID=""
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
printf '%s\n' "rules_version = '2';" 'service cloud.firestore { match /databases/{db}/documents { match /{d=**} { allow read, write: if true; } } }' > "$WORK/open.rules"
serve() {
  env CLAIMDB_RULES="$WORK/open.rules" CLAIMDB_LOG=warn ${WAL_MAX_BYTES:+CLAIMDB_WAL_MAX_BYTES=$WAL_MAX_BYTES} \
    "$BIN" serve --data-dir "$WORK/db" --listen "127.0.0.1:$PORT" >> "$WORK/server.log" 2>&1 &
  PID=$!
  local start; start=$(date +%s%N)
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
    kill -0 $PID 2>/dev/null || { echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.002
  done
  READY_MS=$(( ($(date +%s%N) - start) / 1000000 ))
}
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
serve
URL="http://127.0.0.1:$PORT"
wrk -t1 -c4 -d"$DURATION" -s bench/wrk/write.lua "$URL" > "$WORK/singles.txt" &
W1=$!
wrk -t1 -c4 -d"$DURATION" -s bench/wrk/batch.lua "$URL" > "$WORK/batches.txt" &
W2=$!
wrk -t1 -c2 -d"$DURATION" -s bench/wrk/query.lua "$URL" > "$WORK/queries.txt" &
W3=$!
MAX=0
while kill -0 $W1 2>/dev/null || kill -0 $W2 2>/dev/null; do
  S=$(size "$WORK/db/claimdb.sqlite3-wal"); [ "$S" -gt "$MAX" ] && MAX=$S
  sleep 0.2
done
wait $W1 $W2 $W3
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
SINGLES=$(rps "$WORK/singles.txt") BATCHES=$(rps "$WORK/batches.txt") QUERIES=$(rps "$WORK/queries.txt")
DOCS=$(awk -v s="$SINGLES" -v b="$BATCHES" 'BEGIN {printf "%.0f", s + 10 * b}')
WAL_END=$(size "$WORK/db/claimdb.sqlite3-wal") DB=$(size "$WORK/db/claimdb.sqlite3")
kill -TERM $PID; wait $PID || true
WAL_STOPPED=$(size "$WORK/db/claimdb.sqlite3-wal")
serve
WAL_RESTARTED=$(size "$WORK/db/claimdb.sqlite3-wal")
kill -TERM $PID; wait $PID || true
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
echo "documents written/s: $DOCS (single PUTs $SINGLES/s, 10-write batches $BATCHES/s); queries $QUERIES/s"
echo "WAL: largest $(mb "$MAX"), at the end $(mb "$WAL_END"); database $(mb "$DB")"
echo "after SIGTERM: WAL $(mb "$WAL_STOPPED"); restart ready in $READY_MS ms, WAL then $(mb "$WAL_RESTARTED")"
grep -iE "error|panic" "$WORK/server.log" | head -5 || true

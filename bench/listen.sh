#!/usr/bin/env bash
# Realtime listeners on one node (embedded store): commit-to-event latency and memory per
# listener for 1, 100 and 10,000 server-sent-event listeners on documents, on one query and on
# per-user queries
# (bench/listen.py is the client). Rules allow everything and no token is sent, so this measures
# the realtime path (feed, re-read, diff, framing), not token checks; the audit log is on (each
# re-read is a read decision and is logged). Usage: bench/listen.sh   (env: COUNTS="1 100 10000"
# MODES="doc query owner" WRITES=200 PORT=18830, BIN=path/to/claimdb to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-1 100 10000} MODES=${MODES:-doc query owner} WRITES=${WRITES:-200} PORT=${PORT:-18830}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=$TARGET/release/claimdb
fi
ulimit -n "$(ulimit -Hn)"  # 10,000 listeners need as many descriptors on each side
for mode in $MODES; do
  for count in $COUNTS; do
    WORK=$(mktemp -d)
    printf '%s\n' "rules_version = '2';" 'service cloud.firestore { match /databases/{db}/documents { match /{d=**} { allow read, write: if true; } } }' > "$WORK/open.rules"
    # Every listener holds a connection: leave room above them for the writes' connections.
    CLAIMDB_MAX_CONNECTIONS=$(( count + 1000 )) CLAIMDB_RULES="$WORK/open.rules" CLAIMDB_LOG=warn "$BIN" serve --data-dir "$WORK/db" --listen "127.0.0.1:$PORT" > "$WORK/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 2000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.005; done
    docs=$(( count < 100 ? count : 100 ))
    MODE=$mode LISTENERS=$count WRITES=$WRITES DOCS=$docs python3 bench/listen.py 127.0.0.1 "$PORT" "$PID" || true
    kill "$PID"; wait "$PID" 2>/dev/null || true
    rm -rf "$WORK"
  done
done

#!/usr/bin/env bash
# Realtime listeners on one node (embedded store): commit-to-event latency and memory per
# listener for 1, 100 and 10,000 server-sent-event listeners on documents, on one query and on
# per-user queries
# (bench/listen.py is the client). Rules allow everything and no token is sent, so this measures
# the realtime path (feed, re-read, diff, framing), not token checks; the audit log is on (each
# re-read is a read decision and is logged). Usage: bench/listen.sh   (env: COUNTS="1 100 10000"
# MODES="doc query owner" WRITES=200 PORT=18830, BIN=path/to/claimdb to measure another build;
# STORE=postgres: two nodes on one PostgreSQL database (POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/test, a fresh schema per run), listeners on one, writes
# through the other, so every event crosses LISTEN/NOTIFY)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-1 100 10000} MODES=${MODES:-doc query owner} WRITES=${WRITES:-200} PORT=${PORT:-18830}
STORE=${STORE:-sqlite} POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
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
    if [ "$STORE" = postgres ]; then
      export CLAIMDB_STORAGE=postgres CLAIMDB_POSTGRES_URL="$POSTGRES_URL" CLAIMDB_POSTGRES_SCHEMA="bench_listen_$$_$count"
    fi
    # Every listener holds a connection: leave room above them for the writes' connections.
    CLAIMDB_MAX_CONNECTIONS=$(( count + 1000 )) CLAIMDB_RULES="$WORK/open.rules" CLAIMDB_LOG=warn "$BIN" serve --data-dir "$WORK/db" --listen "127.0.0.1:$PORT" > "$WORK/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 2000); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.005; done
    WRITE_PORT=$PORT WRITER=
    if [ "$STORE" = postgres ]; then
      WRITE_PORT=$(( PORT + 1 ))
      CLAIMDB_RULES="$WORK/open.rules" CLAIMDB_LOG=warn "$BIN" serve --data-dir "$WORK/db2" --listen "127.0.0.1:$WRITE_PORT" > "$WORK/server2.log" 2>&1 &
      WRITER=$!
      for _ in $(seq 2000); do curl -sf "http://127.0.0.1:$WRITE_PORT/readyz" >/dev/null && break; sleep 0.005; done
    fi
    docs=$(( count < 100 ? count : 100 ))
    WRITE_PORT=$WRITE_PORT MODE=$mode LISTENERS=$count WRITES=$WRITES DOCS=$docs python3 bench/listen.py 127.0.0.1 "$PORT" "$PID" || true
    kill "$PID" $WRITER; wait "$PID" $WRITER 2>/dev/null || true
    if [ "$STORE" = postgres ]; then
      psql -q "$POSTGRES_URL" -c "DROP SCHEMA IF EXISTS $CLAIMDB_POSTGRES_SCHEMA CASCADE" || true
    fi
    rm -rf "$WORK"
  done
done

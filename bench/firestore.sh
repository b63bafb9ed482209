#!/usr/bin/env bash
# Firestore REST side by side (issue 16, item 6): the lite SDK's `:runQuery` (a user's query for
# their own documents, 10 results) and `:batchGet` (one of their documents), with per-user signed
# ES256 tokens and real rules, against claimdb (REST), hidane 0.6 (a Rust Firestore emulator: same
# requests, same rules, tokens read but not verified, data in memory) and claimdb's own API
# (`POST /v1/query`, `GET /v1/docs/…`: the same reads). Rounds alternate the systems (each round
# starts with the next one) because this VM drifts run to run; the summary gives each system's
# req/s per round and the median, p50/p99 of each round, the server's CPU time per request and
# its RSS.
#
# Systems (SYSTEMS, space-separated, in the order of the first round):
#   claimdb          claimdb's Firestore REST, default config (verified-token cache on: a token
#                    is verified in full once, later requests with it are cache hits; the warm-up
#                    sends every token, so the measured runs are all hits)
#   claimdb-nocache  the same, a second claimdb with `[key_cache] token_cache_entries = 0`: every
#                    request's token is verified in full (ES256 signature, claims)
#   hidane           hidane's Firestore REST (`hidane --rules`, the same rules file)
#   claimdb-v1       claimdb's own API on the first claimdb (cache on)
#   claimdb-v1-nocache  claimdb's own API on the second claimdb (not in the default set)
# Both claimdb servers run with claimdb's defaults otherwise (audit log on, every acknowledged
# write fsynced; these reads write nothing but audit events).
#
# Usage: bench/firestore.sh   (env: N=10000 USERS=1000 TOKENS_PER_USER=20 DURATION=10s
#   WARMUP=4s CONNS=32 THREADS=2 ROUNDS=3 PORT=18810 (claimdb; PORT+1 claimdb-nocache, PORT+2
#   the IdP's JWKS, PORT+3 hidane), OPS="runquery batchget" (also: grpc-get, grpc-batchget —
#   the same point read over gRPC, GetDocument resp. BatchGetDocuments, sent by the grpc_load
#   example, which checks every answer; on the claimdb-v1 systems they are the v1 GET),
#   SYSTEMS="claimdb claimdb-nocache hidane claimdb-v1",
#   HIDANE=~/.cache/claimdb-ci/hidane/bin/hidane (install: cargo install hidane --version 0.6.0),
#   BIN=path/to/claimdb, TOKENS_BIN=path/to/bench_tokens and GRPC_BIN=path/to/grpc_load to
#   measure other builds,
#   OUT=dir to keep every wrk report and the summary (default: a temp dir, removed))
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000} USERS=${USERS:-1000} TOKENS_PER_USER=${TOKENS_PER_USER:-20}
DURATION=${DURATION:-10s} WARMUP=${WARMUP:-4s} CONNS=${CONNS:-32} THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3} PORT=${PORT:-18810} OPS=${OPS:-runquery batchget}
SYSTEMS=${SYSTEMS:-claimdb claimdb-nocache hidane claimdb-v1}
HIDANE=${HIDANE:-$HOME/.cache/claimdb-ci/hidane/bin/hidane}
PROJECT=claimdb-bench
export N USERS PROJECT
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 2; }
[ -x "$HIDANE" ] || {
  echo "hidane not found at $HIDANE: install it (cargo install hidane --version 0.6.0 --root DIR) and set HIDANE=DIR/bin/hidane" >&2
  exit 2
}
[ $((N % USERS)) = 0 ] && [ $((N / USERS)) -ge 10 ] \
  || { echo "N must be a multiple of USERS with at least 10 documents per user" >&2; exit 2; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p claimdb
  BIN=$TARGET/release/claimdb
fi
if [ -z "${TOKENS_BIN:-}" ]; then
  cargo build --release --quiet -p claimdb --example bench_tokens
  TOKENS_BIN=$TARGET/release/examples/bench_tokens
fi
if [ -z "${GRPC_BIN:-}" ] && [[ " $OPS " == *" grpc-"* ]]; then
  cargo build --release --quiet -p claimdb --example grpc_load
  GRPC_BIN=$TARGET/release/examples/grpc_load
fi
WORK=$(mktemp -d)
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; else OUT=$WORK/out; mkdir -p "$OUT"; fi
PIDS=""
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$WORK"' EXIT
CPORT=$PORT NPORT=$((PORT + 1)) JPORT=$((PORT + 2)) HPORT=$((PORT + 3))

# The IdP: an ES256 key, its JWKS served by a static server, USERS x TOKENS_PER_USER tokens.
ISSUER="https://idp.bench.test/" AUD="claimdb-bench"
"$TOKENS_BIN" "$WORK" "$ISSUER" "$AUD" "$USERS" "$TOKENS_PER_USER"
export TOKENS="$WORK/tokens.txt"
(cd "$WORK" && exec python3 -m http.server "$JPORT" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS="$PIDS $!"

cat > "$WORK/bench.rules" <<'RULES'
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /bench/{id} {
      allow read: if request.auth != null && resource.data.owner == request.auth.uid;
    }
  }
}
RULES
config() {
  cat <<TOML
rules = "$WORK/bench.rules"
admin_key = "bench-admin-key-0123456789"
project_id = "$PROJECT"
explain_denials = false

[[providers]]
name = "bench"
issuer = "$ISSUER"
jwks_uri = "http://127.0.0.1:$JPORT/jwks.json"
audience = ["$AUD"]
algorithms = ["ES256"]
TOML
}
config > "$WORK/claimdb.toml"
{ config; printf '\n[key_cache]\ntoken_cache_entries = 0\n'; } > "$WORK/claimdb-nocache.toml"

# The same N documents for everyone: bench/d<i> owned by user<i % USERS>.
python3 - "$N" "$USERS" > "$WORK/seed.jsonl" <<'PY'
import json, sys
n, users = int(sys.argv[1]), int(sys.argv[2])
for i in range(1, n + 1):
    print(json.dumps({"path": f"bench/d{i}", "data": {"owner": f"user{i % users}", "n": i, "title": "benchmark document", "tags": ["a", "b"]}}))
PY
"$BIN" import --data-dir "$WORK/db" "$WORK/seed.jsonl" >/dev/null
"$BIN" import --data-dir "$WORK/db-nocache" "$WORK/seed.jsonl" >/dev/null
wait_http() {
  for _ in $(seq 5000); do curl -s -o /dev/null "$1" && return 0; sleep 0.002; done
  echo "no answer from $1" >&2; return 1
}
CLAIMDB_LOG=warn "$BIN" serve --config "$WORK/claimdb.toml" --data-dir "$WORK/db" \
  --listen "127.0.0.1:$CPORT" > "$WORK/claimdb.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
CLAIMDB_LOG=warn "$BIN" serve --config "$WORK/claimdb-nocache.toml" --data-dir "$WORK/db-nocache" \
  --listen "127.0.0.1:$NPORT" > "$WORK/claimdb-nocache.log" 2>&1 &
NPID=$!
PIDS="$PIDS $NPID"
"$HIDANE" --host 127.0.0.1 --port "$HPORT" --project_id "$PROJECT" --rules "$WORK/bench.rules" \
  > "$WORK/hidane.log" 2>&1 &
HPID=$!
PIDS="$PIDS $HPID"
wait_http "http://127.0.0.1:$CPORT/readyz"
wait_http "http://127.0.0.1:$NPORT/readyz"
wait_http "http://127.0.0.1:$HPORT/"
for p in "$CPID" "$NPID" "$HPID"; do
  kill -0 "$p" 2>/dev/null || { echo "a server did not start:" >&2; tail -n 20 "$WORK"/*.log >&2; exit 1; }
done
# hidane: the same documents through its REST API, as the owner (`Bearer owner`), 500 a commit.
python3 - "$WORK/seed.jsonl" "http://127.0.0.1:$HPORT" "$PROJECT" <<'PY'
import json, sys, urllib.request
seed, base, project = sys.argv[1:4]
root = f"projects/{project}/databases/(default)/documents"
def value(v):
    if isinstance(v, str): return {"stringValue": v}
    if isinstance(v, bool): return {"booleanValue": v}
    if isinstance(v, int): return {"integerValue": str(v)}
    if isinstance(v, list): return {"arrayValue": {"values": [value(x) for x in v]}}
    raise ValueError(v)
docs = [json.loads(line) for line in open(seed)]
for start in range(0, len(docs), 500):
    writes = [{"update": {"name": f"{root}/{d['path']}", "fields": {k: value(v) for k, v in d["data"].items()}}}
              for d in docs[start:start + 500]]
    req = urllib.request.Request(f"{base}/v1/{root}:commit", json.dumps({"writes": writes}).encode(),
                                 {"Authorization": "Bearer owner", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200, r.status
PY

port_of() { case "$1" in claimdb|claimdb-v1) echo "$CPORT" ;; claimdb-nocache|claimdb-v1-nocache) echo "$NPORT" ;; hidane) echo "$HPORT" ;; *) echo "unknown system $1" >&2; exit 2 ;; esac; }
pid_of() { case "$1" in claimdb|claimdb-v1) echo "$CPID" ;; claimdb-nocache|claimdb-v1-nocache) echo "$NPID" ;; hidane) echo "$HPID" ;; esac; }
api_of() { case "$1" in claimdb-v1*) echo v1 ;; *) echo firestore ;; esac; }
script_of() { case "$1" in runquery) echo bench/wrk/fs_query.lua ;; batchget|grpc-*) echo bench/wrk/fs_get.lua ;; *) echo "unknown op $1" >&2; exit 2 ;; esac; }

# A sample of the exact request the wrk script sends, by curl, with the second token (user1:
# their documents are d1, d(1+USERS), …): the answer must be 200 with 10 results resp. the found
# document, or the run stops.
sample() {
  local sys=$1 op=$2 port api token body out code
  port=$(port_of "$sys") api=$(api_of "$sys")
  token=$(sed -n 2p "$TOKENS" | cut -d' ' -f2)
  local root="projects/$PROJECT/databases/(default)/documents"
  case "$op/$api" in
    runquery/firestore)
      out=$(curl -s -w '\n%{http_code}' -X POST "http://127.0.0.1:$port/v1/$root:runQuery" \
        -H "Authorization: Bearer $token" -H 'Content-Type: text/plain;charset=UTF-8' \
        --data '{"structuredQuery":{"from":[{"collectionId":"bench"}],"where":{"fieldFilter":{"field":{"fieldPath":"owner"},"op":"EQUAL","value":{"stringValue":"user1"}}},"orderBy":[{"field":{"fieldPath":"__name__"},"direction":"ASCENDING"}],"limit":10}}') ;;
    runquery/v1)
      out=$(curl -s -w '\n%{http_code}' -X POST "http://127.0.0.1:$port/v1/query" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data '{"collection":"bench","where":[["owner","==","user1"]],"limit":10}') ;;
    batchget/firestore)
      out=$(curl -s -w '\n%{http_code}' -X POST "http://127.0.0.1:$port/v1/$root:batchGet" \
        -H "Authorization: Bearer $token" -H 'Content-Type: text/plain;charset=UTF-8' \
        --data "{\"documents\":[\"$root/bench/d$((1 + USERS))\"]}") ;;
    batchget/v1)
      out=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$port/v1/docs/bench/d$((1 + USERS))" \
        -H "Authorization: Bearer $token") ;;
  esac
  code=$(tail -n1 <<<"$out") body=$(sed '$d' <<<"$out")
  python3 - "$op" "$code" "$body" "$USERS" <<'PY' || { echo "sample request to $sys ($op) failed: $code $body" >&2; exit 1; }
import json, re, sys
op, code, body, users = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
assert code == "200", code
j = json.loads(body)
owners = re.findall(r'"owner":\s*(?:\{\s*"stringValue":\s*)?"([^"]+)"', body)
docs = set(re.findall(r'bench/d(\d+)"', body))
if op == "runquery":
    assert len(docs) == 10 and owners == ["user1"] * 10, (docs, owners)
else:
    assert docs == {str(1 + users)} and owners == ["user1"], (docs, owners)
    if isinstance(j, list): assert len(j) == 1 and "found" in j[0], j
PY
  echo "   sample ok ($sys $op): HTTP $code, $(printf '%s' "$body" | tr -s ' \n' ' ' | head -c 150)…"
}

run() { # system op duration label
  local sys=$1 op=$2 dur=$3 label=$4 port pid before after out
  port=$(port_of "$sys") pid=$(pid_of "$sys")
  # gRPC: the load generator checks every answer itself (the document asked for, status 0).
  if [[ $op == grpc-* && $(api_of "$sys") == firestore ]]; then
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$("$GRPC_BIN" "127.0.0.1:$port" "$PROJECT" "$TOKENS" "$N" "$USERS" "${op#grpc-}" "$CONNS" "${dur%s}")
  else
  sample "$sys" "${op/grpc-*/batchget}"
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$(API=$(api_of "$sys") wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency -s "$(script_of "$op")" "http://127.0.0.1:$port")
  fi
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "$out" >&2; echo "errors in the run above" >&2; exit 1; fi
  {
    echo "$out"
    echo "$out" | awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" \
      '/requests in/ {printf "server CPU per request: %.1f us\n", t / hz * 1e6 / $1}'
    echo "server RSS: $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") kB"
  } > "$OUT/$label.txt"
  awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /CPU per request/ {c=$5} /server RSS/ {m=$3}
    END {printf "   %-18s %-9s %10s req/s  p50 %8s  p99 %8s  CPU/req %6s us  RSS %s kB\n", sys, op, r, p50, p99, c, m}' \
    sys="$sys" op="$op" "$OUT/$label.txt"
}

echo "== $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')); $(date -u '+%F %T UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $N documents, $USERS users x $TOKENS_PER_USER tokens ($(wc -l < "$TOKENS") distinct), $CONNS connections, $THREADS wrk threads"
echo "== idle RSS: claimdb $(awk '/VmRSS/ {print $2}' /proc/$CPID/status) kB, claimdb-nocache $(awk '/VmRSS/ {print $2}' /proc/$NPID/status) kB, hidane $(awk '/VmRSS/ {print $2}' /proc/$HPID/status) kB (after seeding)"
echo "== warm-up ($WARMUP each, not recorded)"
for op in $OPS; do for sys in $SYSTEMS; do run "$sys" "$op" "$WARMUP" "warmup-$op-$sys"; done; done
cache() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^claimdb_token_cache_entries/ {e=$2} /^claimdb_token_cache_bytes/ {b=$2} END {printf "%s entries (%.1f MB)", e, b / 1e6}'; }
echo "== verified-token cache: claimdb $(cache "$CPORT"), claimdb-nocache $(cache "$NPORT")"
read -r -a order <<<"$SYSTEMS"
for round in $(seq "$ROUNDS"); do
  echo "== round $round ($DURATION each; load: $(cut -d' ' -f1-3 /proc/loadavg))"
  for op in $OPS; do
    for k in $(seq 0 $((${#order[@]} - 1))); do
      sys=${order[$(((k + round - 1) % ${#order[@]}))]}
      run "$sys" "$op" "$DURATION" "r$round-$op-$sys"
    done
  done
done
echo "== RSS after the runs: claimdb $(awk '/VmRSS/ {print $2}' /proc/$CPID/status) kB, claimdb-nocache $(awk '/VmRSS/ {print $2}' /proc/$NPID/status) kB, hidane $(awk '/VmRSS/ {print $2}' /proc/$HPID/status) kB"
echo "== summary (req/s per round, median; p50 / p99 per round; server CPU µs per request)"
python3 - "$OUT" "$ROUNDS" "$OPS" "$SYSTEMS" <<'PY' | tee "$OUT/summary.txt"
import re, statistics, sys
out, rounds, ops, systems = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
def parse(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1)
    cpu = re.search(r"CPU per request: ([\d.]+)", t).group(1)
    return rps, p50, p99, cpu
med = {}
for op in ops:
    print(f"{op}:")
    for s in systems:
        rs = [parse(f"{out}/r{r}-{op}-{s}.txt") for r in range(1, rounds + 1)]
        med[op, s] = statistics.median(x[0] for x in rs)
        print(f"  {s:20s} " + " | ".join(f"{x[0]:9.0f}" for x in rs) + f" | median {med[op, s]:9.0f}"
              + "   p50/p99 " + ", ".join(f"{x[1]}/{x[2]}" for x in rs)
              + "   CPU/req " + ", ".join(f"{x[3]}" for x in rs) + " us")
    for a, b in [("claimdb", "hidane"), ("claimdb-nocache", "hidane"), ("claimdb", "claimdb-v1"),
                 ("claimdb-nocache", "claimdb-v1-nocache")]:
        if (op, a) in med and (op, b) in med:
            print(f"  ratio of medians {a} / {b}: {med[op, a] / med[op, b]:.2f}")
PY

#!/usr/bin/env python3
"""Realtime listener benchmark client (stdlib only): opens LISTENERS server-sent-event streams on
claimdb's /v1/listen, then makes WRITES writes through /v1/docs, one at a time, and measures for
every listener that must see a write the time from sending the write to receiving its event
(p50/p99/max; the write's own round trip is printed beside it), plus the server's resident memory before and after opening the listeners.

MODE=doc: listener i watches bench/d<i % DOCS>; each write updates one document, so DOCS/LISTENERS
of the listeners see it. MODE=query: every listener watches the same ordered, limited query on
the collection (`order_by n desc, limit 10`), and each write puts a new top document, so every
listener sees every write. MODE=owner: listener i watches `where owner == u<i % DOCS>` (a user's
own documents, the common case); each write is one user's, so 1/DOCS of the listeners see it. HTTP/1.0 requests, so the streams are not chunked.
WRITE_PORT: make the writes through another node (two nodes on one PostgreSQL database: the
listeners are on PORT, the writes go to WRITE_PORT, so every event crosses LISTEN/NOTIFY).
Usage: bench/listen.py HOST PORT PID (env MODE, LISTENERS, WRITES, DOCS, WRITE_PORT)
"""
import asyncio, json, os, sys, time, urllib.parse

HOST, PORT, PID = sys.argv[1], int(sys.argv[2]), sys.argv[3]
MODE = os.environ.get("MODE", "doc")
LISTENERS = int(os.environ.get("LISTENERS", "100"))
WRITES = int(os.environ.get("WRITES", "200"))
DOCS = int(os.environ.get("DOCS", "100"))
WRITE_PORT = int(os.environ.get("WRITE_PORT", PORT))
sent = {}          # write number -> send time
round_trips = []   # each write's send-to-answer time
latencies = []     # seconds
expected = 0


def rss():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


async def listen(target, ready):
    reader, writer = await asyncio.open_connection(HOST, PORT, limit=1 << 22)
    writer.write(f"GET /v1/listen?{target} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise SystemExit(f"listener refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    first = True
    while True:
        line = await reader.readline()
        if not line:
            return
        if not line.startswith(b"data: "):
            continue
        now = time.perf_counter()
        if first:
            first = False
            ready.set_result(True)
            continue
        for change in json.loads(line[6:])["changes"]:
            seq = change["document"]["data"].get("seq")
            if change["type"] != "removed" and seq in sent:
                latencies.append(now - sent[seq])


async def put(path, data):
    reader, writer = await asyncio.open_connection(HOST, WRITE_PORT)
    body = json.dumps(data).encode()
    writer.write(
        f"PUT /v1/docs/{path} HTTP/1.0\r\nHost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status = await reader.readline()
    await reader.read()
    writer.close()
    if b" 20" not in status:
        raise SystemExit(f"write refused: {status!r}")


async def main():
    global expected
    for i in range(DOCS):
        await put(f"bench/d{i}", {"n": -1, "seq": -1, "owner": f"u{i}"})
    before = rss()
    tasks, ready = [], []
    query = urllib.parse.quote(json.dumps(
        {"collection": "bench", "order_by": [["n", "desc"]], "limit": 10}))
    for i in range(LISTENERS):
        if MODE == "doc":
            target = f"path=bench/d{i % DOCS}"
        elif MODE == "owner":
            mine = urllib.parse.quote(json.dumps(
                {"collection": "bench", "where": [["owner", "==", f"u{i % DOCS}"]]}))
            target = f"query={mine}"
        else:
            target = f"query={query}"
        fut = asyncio.get_running_loop().create_future()
        ready.append(fut)
        tasks.append(asyncio.create_task(listen(target, fut)))
        if i % 500 == 499:
            await asyncio.gather(*ready)
    await asyncio.gather(*ready)
    await asyncio.sleep(1)
    after = rss()
    for k in range(WRITES):
        sent[k] = time.perf_counter()
        await put(f"bench/d{k % DOCS}", {"n": k, "seq": k, "owner": f"u{k % DOCS}"})
        round_trips.append(time.perf_counter() - sent[k])
        expected += LISTENERS if MODE == "query" else len(range(k % DOCS, LISTENERS, DOCS))
        await asyncio.sleep(0.01)
    deadline = time.time() + 30
    while len(latencies) < expected and time.time() < deadline:
        await asyncio.sleep(0.1)
    lat = sorted(latencies)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    print(f"MODE={MODE} LISTENERS={LISTENERS} WRITES={WRITES} DOCS={DOCS}: "
          f"events {len(lat)}/{expected}, commit->event p50 {pct(0.5):.2f} ms, "
          f"p99 {pct(0.99):.2f} ms, max {pct(1.0):.2f} ms (the write's own round trip: median "
          f"{sorted(round_trips)[len(round_trips) // 2] * 1000:.2f} ms); "
          f"RSS {before/2**20:.1f} -> {after/2**20:.1f} MiB "
          f"({(after - before) / max(LISTENERS, 1) / 1024:.1f} KiB per listener)")
    for t in tasks:
        t.cancel()


asyncio.run(main())

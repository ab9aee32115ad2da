#!/usr/bin/env python3
"""Hostile clients against a `redline serve` on loopback, bounded in count and time.

Starts the server (no workers, a throwaway SQLite store), then measures, in order:

1. /healthz latency (p50/p99 of sequential probes) and the server's RSS, undisturbed;
2. the same with N idle half-open connections held (each sent half a request head), plus the
   latency of signed webhooks, the connections the server holds (its /metrics) and its RSS;
3. M concurrent 20 MiB bodies with a wrong signature: their answers, the time, and the server's
   peak RSS (VmHWM).

Usage: scripts/bench-hostile-clients.py [--bin target/release/redline] [--conns 10000]
       [--probes 200] [--bodies 50] [--body-mib 20] [--nofile N] [--json OUT]

Every loop is bounded (connections, probes, bodies) and every wait has a timeout; only 127.0.0.1
is contacted. `--nofile` runs the server under that open-file limit (via prlimit).
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

SECRET = "bench-secret"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def http(host, port, raw, timeout=5.0):
    """Sends a raw request; returns (status, seconds). Status 0 on timeout or refusal."""
    t = time.perf_counter()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        w.write(raw)
        await w.drain()
        line = await asyncio.wait_for(r.readline(), timeout)
        status = int(line.split()[1]) if line else 0
        w.close()
        return status, time.perf_counter() - t
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        return 0, time.perf_counter() - t


def healthz_request():
    return b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def webhook_request(i):
    with open(os.path.join(ROOT, "fixtures/github/webhooks/ping.json"), "rb") as f:
        body = f.read()
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        "POST /webhook HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-GitHub-Event: ping\r\n"
        f"X-GitHub-Delivery: bench-{os.getpid()}-{i}\r\nX-Hub-Signature-256: sha256={sig}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def probes(host, port, n):
    """n sequential probes (fewer when five in a row get no answer in 5 s)."""
    lat, bad, silent = [], 0, 0
    for _ in range(n):
        status, secs = await http(host, port, healthz_request())
        lat.append(secs * 1000)
        bad += status != 200
        silent = silent + 1 if status == 0 else 0
        if silent >= 5:
            break
    return {"probes": len(lat), "p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2),
            "max_ms": round(max(lat), 2), "not_200": bad}


async def metrics(host, port):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        w.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 5)
        w.close()
    except (OSError, asyncio.TimeoutError):
        return {}
    out = {}
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("redline_connections") or line.startswith("redline_webhook_body"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def hold_half_open(host, port, n, deadline):
    """Opens up to n connections, each sending half a request head; returns the writers."""
    held = []
    for i in range(n):
        if time.monotonic() > deadline:
            break
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            w.write(b"POST /webhook HTTP/1.1\r\nHost: bench\r\nX-GitHub-Event: pull_request\r\n")
            held.append(w)
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.01)
    return held


async def big_body(host, port, size, i, timeout):
    """A body of `size` bytes with a wrong signature; returns (status, seconds)."""
    t = time.perf_counter()
    head = (
        "POST /webhook HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
        "X-GitHub-Event: pull_request\r\n"
        f"X-GitHub-Delivery: big-{i}\r\nX-Hub-Signature-256: sha256={'0' * 64}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    chunk = b"x" * (1 << 20)
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        w.write(head)
        status = 0
        sent = 0
        reader = asyncio.ensure_future(r.readline())
        while sent < size and not reader.done():
            w.write(chunk[: min(len(chunk), size - sent)])
            sent += min(len(chunk), size - sent)
            try:
                await asyncio.wait_for(w.drain(), timeout)
            except (OSError, asyncio.TimeoutError):
                break
        line = await asyncio.wait_for(reader, timeout)
        status = int(line.split()[1]) if line else 0
        w.close()
        return status, time.perf_counter() - t
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        return 0, time.perf_counter() - t


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/redline"))
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--bodies", type=int, default=50)
    ap.add_argument("--body-mib", type=int, default=20)
    ap.add_argument("--nofile", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.conns + a.bodies + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    tmp = tempfile.mkdtemp(prefix="redline-hostile-")
    env = dict(os.environ, REDLINE_DATABASE_URL=f"sqlite://{tmp}/bench.db", REDLINE_WEBHOOK_SECRET=SECRET,
               REDLINE_WORKERS="0", REDLINE_LISTEN="127.0.0.1:0", RUST_LOG="warn",
               REDLINE_RECONCILE_INTERVAL_SECS="0")
    cmd = [a.bin, "serve"]
    if a.nofile:
        cmd = ["prlimit", f"--nofile={a.nofile}:{a.nofile}"] + cmd
    log = open(os.path.join(tmp, "serve.log"), "w")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("redline listening on http://"):
        sys.exit(f"the server did not start: {line!r}")
    host, port = line.rsplit("/", 1)[1].split(":")
    port = int(port)
    pid = proc.pid
    if a.nofile:
        # prlimit execs the binary: same pid.
        pass
    report = {"binary": a.bin, "conns": a.conns, "server_nofile": a.nofile or "inherited"}
    try:
        await asyncio.sleep(0.5)
        report["idle"] = await probes(host, port, a.probes)
        report["idle"]["rss_mib"] = round(rss_kib(pid) / 1024, 1)

        t = time.monotonic()
        held = await hold_half_open(host, port, a.conns, t + 120)
        report["attack"] = {"opened": len(held), "open_secs": round(time.monotonic() - t, 1)}
        report["attack"]["healthz"] = await probes(host, port, a.probes)
        hooks = []
        for i in range(20):
            hooks.append(await http(host, port, webhook_request(i)))
            if len(hooks) >= 3 and all(s == 0 for s, _ in hooks[-3:]):
                break
        report["attack"]["webhooks"] = {
            "statuses": sorted({s for s, _ in hooks}),
            "p50_ms": round(pct([x * 1000 for _, x in hooks], 50), 2),
            "max_ms": round(max(x * 1000 for _, x in hooks), 2),
        }
        report["attack"]["server_metrics"] = await metrics(host, port)
        report["attack"]["rss_mib"] = round(rss_kib(pid) / 1024, 1)
        for w in held:
            w.close()
        await asyncio.sleep(1)

        before = rss_kib(pid, "VmHWM")
        t = time.perf_counter()
        size = a.body_mib << 20
        results = await asyncio.gather(*(big_body(host, port, size, i, 60) for i in range(a.bodies)))
        counts = {}
        for s, _ in results:
            counts[str(s)] = counts.get(str(s), 0) + 1
        report["bodies"] = {
            "count": a.bodies, "mib_each": a.body_mib, "statuses": counts,
            "secs": round(time.perf_counter() - t, 1),
            "peak_rss_mib_before": round(before / 1024, 1),
            "peak_rss_mib_after": round(rss_kib(pid, "VmHWM") / 1024, 1),
            "rss_mib_after": round(rss_kib(pid) / 1024, 1),
        }
        await asyncio.sleep(0.5)
        report["after"] = await probes(host, port, 20)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(report, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    asyncio.run(main())

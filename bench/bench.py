"""``make bench``: direct-to-upstream vs through-the-gateway, in one run, on loopback.

Starts the provider emulator (healthy, non-streaming) and one gateway worker (auth, routing, failover
bookkeeping and metrics all on), then measures with ``wrk`` (Debian package; a Python load generator is the
fallback): requests/s at 1 and 32 connections, p50/p99 latency, the gateway's added p50 latency, and the
gateway process's CPU time per request read from /proc (the steadiest figure on a shared machine).

Also, with ``--streams N``: N concurrent slow streaming clients, and the gateway's peak RSS.

Also the task classifier's cost per request, both engines (bench/classify_cost.py, pinned to one core).

Usage: python bench/bench.py [--duration 10] [--streams 0] [--markdown] [--no-classify]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

KEY = "bench-key"
BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def run_wrk(url: str, conns: int, duration: int, headers: dict[str, str], body: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
        for k, v in {"Content-Type": "application/json", **headers}.items():
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
        script = f.name
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "requests": total, "errors": int(errors.group(1)) if errors else 0}


def run_python(url: str, conns: int, duration: int, headers: dict[str, str], body: dict) -> dict:
    import aiohttp

    async def main() -> dict:
        lat: list[float] = []
        errors = 0
        stop = time.monotonic() + duration
        payload = json.dumps(body).encode()

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal errors
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                async with session.post(url, data=payload, headers={"content-type": "application/json",
                                                                    **headers}) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                lat.append((time.perf_counter() - t0) * 1000)

        async with aiohttp.ClientSession() as s:
            t0 = time.monotonic()
            await asyncio.gather(*(worker(s) for _ in range(conns)))
            elapsed = time.monotonic() - t0
        lat.sort()
        return {"rps": len(lat) / elapsed, "p50": statistics.median(lat), "p99": lat[int(len(lat) * 0.99) - 1],
                "requests": len(lat), "errors": errors}

    return asyncio.run(main())


async def slow_streams(url: str, n: int, pid: int, hold: float) -> dict:
    """n concurrent streaming clients that read slowly; returns peak gateway RSS."""
    import aiohttp

    peak = rss_mb(pid)
    body = {**BODY, "stream": True}
    done = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal done
        async with session.post(url, json=body, headers={"authorization": f"Bearer {KEY}"}) as r:
            while True:
                chunk = await r.content.read(64)
                if not chunk:
                    break
                await asyncio.sleep(0.05)
        done += 1

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as s:
        tasks = [asyncio.create_task(one(s)) for _ in range(n)]
        t_end = time.monotonic() + 120
        while not all(t.done() for t in tasks) and time.monotonic() < t_end:
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"streams": n, "completed": done, "peak_rss_mb": peak}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--streams", type=int, default=0, help="also run N concurrent slow streams and report RSS")
    ap.add_argument("--stream-words", type=int, default=200)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--no-audit", action="store_true", help="turn the audit log off (to measure its cost)")
    ap.add_argument("--redis", action="store_true",
                    help="share live state through a redis-server started for the run (state.backend: redis)")
    ap.add_argument("--non-streaming", choices=("stream", "direct"), default="stream",
                    help="failover.non_streaming: read non-streaming answers as a stream (default) or directly")
    ap.add_argument("--no-classify", action="store_true", help="skip the task classifier cost (classify_cost.py)")
    args = ap.parse_args()
    load = run_wrk if shutil.which("wrk") else run_python
    tool = "wrk" if load is run_wrk else "python/aiohttp"

    emu_port, gw_port = free_port(), free_port()
    emu_url, gw_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}"
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    redis = None
    if args.redis:
        from gateway.testing_services import RedisServer

        redis = RedisServer().start()
    cfg = tmp / "bench.yaml"
    cfg.write_text(f"""
providers:
  emu: {{kind: openai, base_url: {emu_url}/v1, api_key: sk-bench, vendor: Emu, jurisdiction: US}}
  emu2: {{kind: openai, base_url: {emu_url}/v1, api_key: sk-bench2, vendor: Emu2, jurisdiction: US}}
models:
  bench-primary: {{provider: emu, model: bench-primary}}
  bench-fallback: {{provider: emu2, model: bench-fallback}}
routes:
  bench: {{models: [bench-primary, bench-fallback], match: ['(?i)security']}}
default_route: bench
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
audit: {{enabled: {"false" if args.no_audit else "true"}, path: {tmp}/audit.sqlite}}
state_dir: {tmp}/state
failover: {{non_streaming: {args.non_streaming}}}
""" + (f"state: {{backend: redis, url: '{redis.url}'}}\n" if redis else ""))
    py = sys.executable
    emu = subprocess.Popen([py, "-m", "gateway", "emulate", "--port", str(emu_port), "--quiet",
                            "--model", f"*=healthy:words={args.stream_words}"] if args.streams else
                           [py, "-m", "gateway", "emulate", "--port", str(emu_port), "--quiet"],
                           stdout=subprocess.DEVNULL)
    gw = subprocess.Popen([py, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(gw_port),
                           "--log-level", "warning"], stdout=subprocess.DEVNULL)
    try:
        wait(emu_url + "/_emulator/health")
        wait(gw_url + "/readyz")
        auth = {"Authorization": f"Bearer {KEY}"}
        direct = {**BODY, "model": "bench-primary"}
        load(gw_url + "/v1/chat/completions", 8, 2, auth, BODY)  # warm up
        rows = []
        for conns in (1, 32):
            d = load(emu_url + "/v1/chat/completions", conns, args.duration, {"Authorization": "Bearer sk-x"},
                     direct)
            c0 = cpu_seconds(gw.pid)
            g = load(gw_url + "/v1/chat/completions", conns, args.duration, auth, BODY)
            cpu_us = (cpu_seconds(gw.pid) - c0) / max(g["requests"], 1) * 1e6
            rows.append((conns, d, g, cpu_us))
        stream_res = None
        if args.streams:
            stream_res = asyncio.run(slow_streams(gw_url + "/v1/chat/completions", args.streams, gw.pid, 60))
        metrics = urllib.request.urlopen(gw_url + "/metrics").read().decode()
        failovers = sum(float(x.split()[-1]) for x in metrics.splitlines() if x.startswith("gateway_failovers_total"))
    finally:
        for p in (gw, emu):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if redis is not None:
            redis.stop()

    print(f"\nload generator: {tool}; {args.duration}s per run; 1 gateway worker; non-streaming; auth, routing, "
          f"failover bookkeeping and metrics on; live state {'in Redis' if redis else 'in memory'}; "
          f"{os.cpu_count()} cores\n")
    print("| connections | direct req/s | gateway req/s | direct p50 ms | gateway p50 ms | gateway p99 ms "
          "| added p50 ms | gateway CPU us/req | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for conns, d, g, cpu_us in rows:
        print(f"| {conns} | {d['rps']:.0f} | {g['rps']:.0f} | {d['p50']:.3f} | {g['p50']:.3f} | {g['p99']:.3f} "
              f"| {g['p50'] - d['p50']:.3f} | {cpu_us:.0f} | {g['errors'] + d['errors']} |")
    if stream_res:
        print(f"\n{stream_res['streams']} concurrent slow streams ({args.stream_words} words each, client reads "
              f"64 B every 50 ms): {stream_res['completed']} completed, gateway peak RSS "
              f"{stream_res['peak_rss_mb']:.0f} MB")
    print(f"failovers during the run: {failovers:.0f} (expected 0)")
    if not args.no_classify:  # its own process: pinned to one core, its imports kept out of this one
        subprocess.run([py, str(Path(__file__).with_name("classify_cost.py"))], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""N clients that open a long streaming answer and never read it: the gateway's RSS, then what the next requests
see after they all disconnect (the pool-poisoning check at scale). Not part of ``make test``: it takes a minute.

Starts the provider emulator and one gateway worker (``gateway serve``) as subprocesses on free loopback ports.
Each client sends one streaming request with a small receive buffer and never reads; after ``--hold`` seconds every
client resets its connection. Then ``--after`` non-streaming requests go to another model of the same provider.

Usage: python bench/never_reading.py [--clients 1000] [--words 20000] [--hold 10] [--after 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import free_port, rss_mb, stop_processes, wait  # noqa: E402

KEY = "bench-key"


def short_request(gw_url: str) -> str:
    """One non-streaming request to the other model: its status and attempts."""
    r = urllib.request.Request(gw_url + "/v1/chat/completions", method="POST",
                               data=json.dumps({"model": "short", "messages": [
                                   {"role": "user", "content": "hi"}]}).encode(),
                               headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return f"{resp.status} {resp.headers.get('x-gateway-attempts')}"
    except urllib.error.HTTPError as e:
        return f"{e.code} {e.headers.get('x-gateway-attempts')}"
    except OSError as e:
        return f"failed: {e}"


def direct_request(emu_url: str) -> None:
    r = urllib.request.Request(emu_url + "/v1/chat/completions", method="POST",
                               data=json.dumps({"model": "short", "messages": [
                                   {"role": "user", "content": "hi"}]}).encode(),
                               headers={"authorization": "Bearer sk-x", "content-type": "application/json"})
    urllib.request.urlopen(r, timeout=120).read()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--words", type=int, default=20000, help="words in each answer (~7 bytes of text a word)")
    ap.add_argument("--token-delay", type=float, default=0.0,
                    help="emulator seconds between pieces (0: as fast as it can, the worst case for buffering)")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds the clients stay connected")
    ap.add_argument("--after", type=int, default=5, help="requests to the other model once they are gone")
    ap.add_argument("--direct", action="store_true", help="first time one request straight to the emulator")
    args = ap.parse_args()

    emu_port, gw_port = free_port(), free_port()
    emu_url, gw_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}"
    tmp = Path(tempfile.mkdtemp(prefix="gw-never-reading-"))
    cfg = tmp / "gateway.yaml"
    cfg.write_text(f"""
providers:
  emu: {{kind: openai, base_url: {emu_url}/v1, api_key: sk-bench, vendor: Emu, jurisdiction: US}}
models:
  long: {{provider: emu, model: long}}
  short: {{provider: emu, model: short}}
routes:
  long-route: {{models: [long]}}
  short-route: {{models: [short]}}
default_route: short-route
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
limits: {{max_connections: {args.clients + 100}, max_streams: {args.clients + 100}}}
audit: {{enabled: false}}
state_dir: {tmp}/state
""")
    py = sys.executable
    emu = subprocess.Popen([py, "-m", "gateway", "emulate", "--port", str(emu_port), "--quiet",
                            "--model", f"long=healthy:words={args.words},token_delay={args.token_delay}"], stdout=subprocess.DEVNULL)
    gw = subprocess.Popen([py, "-m", "gateway", "serve", "--config", str(cfg), "--port", str(gw_port),
                           "--log-level", "warning"], stdout=subprocess.DEVNULL)
    results: list[str] = []
    try:
        wait(emu_url + "/_emulator/health")
        wait(gw_url + "/readyz")
        base = rss_mb(gw.pid)
        body = json.dumps({"model": "long", "stream": True,
                           "messages": [{"role": "user", "content": "write a long essay"}]}).encode()
        req = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {KEY}\r\n"
               f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
        socks = []
        for _ in range(args.clients):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", gw_port))
            s.sendall(req)
            socks.append(s)
        peak = base
        deadline = time.monotonic() + args.hold
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(gw.pid))
            time.sleep(0.2)
        if args.direct:
            t0 = time.monotonic()
            direct_request(emu_url)
            results.append(f"while they hold their streams: one request straight to the emulator took "
                           f"{time.monotonic() - t0:.2f}s (the upstream's own load)")
        t0 = time.monotonic()
        during = short_request(gw_url)  # while they all hold their streams
        results.append(f"while they hold their streams: a request to another model of the same provider: "
                       f"{during} in {time.monotonic() - t0:.2f}s")
        for s in socks:  # reset, as a killed client does
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        t0 = time.monotonic()
        statuses = []
        if args.direct:  # the emulator alone: is the upstream itself still busy?
            direct_request(emu_url)
            results.append(f"direct to the emulator after the reset: {time.monotonic() - t0:.2f}s")
            t0 = time.monotonic()
        for _ in range(args.after):
            statuses.append(short_request(gw_url))
        results.append(f"{args.clients} never-reading clients, {args.words} words each (emulator token_delay "
                       f"{args.token_delay:g}s): gateway RSS {base:.0f} MB "
                       f"idle, peak {peak:.0f} MB ({(peak - base) * 1024 / max(args.clients, 1):.0f} KB a client)")
        results.append(f"after they reset: {args.after} requests to another model of the same provider in "
                       f"{time.monotonic() - t0:.2f}s: {', '.join(statuses)}")
    finally:
        stop_processes(gw, emu)
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

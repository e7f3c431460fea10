"""Fleet figures for the README: kill-switch propagation across 2 replicas x 2 workers sharing a real
redis-server, and what a Redis outage does to traffic.

    python bench/fleet.py [--changes 100] [--outage 3]

Reports: the admin call's duration for a withdrawal/reinstatement (it returns when every live worker applied the
change): p50/p99/max, and whether every one was acknowledged by all 4 workers; then, under continuous load, Redis
killed for ``--outage`` seconds: failed requests, how long until every worker reported the store down/up again.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.emulator.runner import EmulatorThread  # noqa: E402
from gateway.testing_services import GatewayProcess, RedisServer  # noqa: E402

KEY, ADMIN = "gw-fleet-bench-key", "gwa-fleet-bench-admin"


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--outage", type=float, default=3.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gw-fleet-bench-"))
    with EmulatorThread() as emu, RedisServer() as redis:
        gps = []
        for i in range(2):
            d = tmp / f"r{i}"
            d.mkdir()
            cfg = {
                "providers": {"a": {"kind": "openai", "base_url": emu.url + "/v1", "api_key": "sk-a", "vendor": "A"},
                              "b": {"kind": "openai", "base_url": emu.url + "/v1", "api_key": "sk-b", "vendor": "B"}},
                "models": {"m1": {"provider": "a", "model": "m1"}, "m2": {"provider": "b", "model": "m2"}},
                "routes": {"r": {"models": ["m1", "m2"]}},
                "keys": [{"name": "bench", "sha256": hashlib.sha256(KEY.encode()).hexdigest()}],
                "admin_keys": [{"name": "ops", "sha256": hashlib.sha256(ADMIN.encode()).hexdigest()}],
                "state": {"backend": "redis", "url": redis.url}, "state_dir": str(d / "state"),
                "reload": {"watch": False},
            }
            (d / "gateway.yaml").write_text(yaml.safe_dump(cfg))
            gps.append(GatewayProcess(d / "gateway.yaml", workers=2, env={"GATEWAY_REPLICA": f"r{i}"},
                                      log=d / "log.txt").spawn())
        try:
            for gp in gps:
                gp.start()
            admin = {"authorization": f"Bearer {ADMIN}"}
            deadline = time.monotonic() + 20
            while True:
                fleet = httpx.get(gps[0].url + "/admin/state", headers=admin).json()["fleet"]
                if sum(len(v) for v in fleet.get("replicas", {}).values()) >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            durations, complete = [], 0
            for i in range(args.changes):
                gp = gps[i % 2]
                t0 = time.perf_counter()
                if i % 2 == 0:
                    r = httpx.post(gp.url + "/admin/withdrawals", headers=admin, timeout=10,
                                   json={"target": "model", "name": "m1", "reason": "bench"})
                else:
                    r = httpx.delete(gps[(i - 1) % 2].url + "/admin/withdrawals/model/m1", headers=admin, timeout=10)
                durations.append(time.perf_counter() - t0)
                p = r.json()["propagation"]
                complete += bool(p["complete"] and len(p["applied"]) == 4)
            ms = [d * 1000 for d in durations]
            print(f"kill switch, {args.changes} changes over 2 replicas x 2 workers: admin call (returns once all 4 "
                  f"workers applied it) p50 {statistics.median(ms):.1f} ms, p99 {_pct(ms, 99):.1f} ms, "
                  f"max {max(ms):.1f} ms; acknowledged by all 4: {complete}/{args.changes}")

            stop = threading.Event()
            results: list[int] = []

            def load(gp: GatewayProcess) -> None:
                with httpx.Client(timeout=10) as c:
                    while not stop.is_set():
                        try:
                            results.append(c.post(gp.url + "/v1/chat/completions",
                                                  headers={"authorization": f"Bearer {KEY}"},
                                                  json={"model": "r", "messages": [{"role": "user", "content": "hi"}]}
                                                  ).status_code)
                        except httpx.HTTPError:
                            results.append(-1)

            def store_up(gp: GatewayProcess) -> float:
                for line in httpx.get(gp.url + "/metrics", timeout=5).text.splitlines():
                    if line.startswith("gateway_state_store_up"):
                        return float(line.split()[-1])
                return -1.0

            def until(value: float) -> float:
                t0 = time.perf_counter()
                while not all(store_up(gp) == value for gp in gps for _ in range(4)):
                    time.sleep(0.02)
                return time.perf_counter() - t0

            threads = [threading.Thread(target=load, args=(gp,)) for gp in gps for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(1)
            before = len(results)
            redis.kill()
            down = until(0.0)
            time.sleep(max(0.0, args.outage - down))
            redis.start()
            up = until(1.0)
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join()
            during = results[before:]
            failed = sum(1 for s in during if s != 200)
            print(f"Redis killed for {args.outage:g} s under load: {len(during)} requests, {failed} failed; every "
                  f"worker reported the store down within {down:.2f} s and back within {up:.2f} s of its restart")
        finally:
            for gp in gps:
                gp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

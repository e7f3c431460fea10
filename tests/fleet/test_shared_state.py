"""Live state shared across 2 replicas x 2 workers: cooldowns, breakers (one half-open probe fleet-wide),
upstream-detected withdrawals; and what happens while Redis is away."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import httpx

from tests.fleet.conftest import admin, chat, wait_for_workers


def _spread(gps, n: int, model: str = "security") -> list:
    """n requests over the replicas (each replica's kernel spreads them over its workers)."""
    return [chat(gps[i % len(gps)], model) for i in range(n)]


def _wait_state(gp, model: str, state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while admin(gp, "GET", "/admin/state").json()["models"][model]["state"] != state:
        assert time.monotonic() < deadline, f"{model} never became {state} on {gp.url}"
        time.sleep(0.05)


def test_a_429_or_a_withdrawn_model_seen_by_one_worker_is_skipped_by_every_worker(emu, fleet):
    gps = fleet.gps
    emu.set("fable-5", "rate_limited:retry_after=30")
    assert chat(gps[0]).headers["x-gateway-model"] == "gpt-5"
    time.sleep(0.2)  # the mark travels through Redis (milliseconds)
    answers = _spread(gps, 12)
    assert {a.status_code for a in answers} == {200}
    assert len(emu.attempts("fable-5")) == 1, "another worker contacted a model the fleet knew to be cooling"
    assert all("fable-5=skipped:cooling" in a.headers["x-gateway-attempts"] for a in answers)

    emu.clear()
    emu.set("gpt-5", "withdrawn")  # the vendor withdrew the model (404 model_not_found)
    assert chat(gps[1]).headers["x-gateway-model"] == "qwen-coder"
    time.sleep(0.2)
    _spread(gps, 8)
    assert len(emu.attempts("gpt-5")) == 1
    info = admin(gps[0], "GET", "/admin/state").json()["models"]["gpt-5"]
    assert info["state"] == "withdrawn" and info["seen_by"].startswith("r1/")


def test_a_breaker_opened_by_one_worker_is_open_for_all_with_one_probe_fleet_wide(emu, fleet):
    gps = fleet.gps  # breaker: 2 failures, 1 s cooldown; no retries
    emu.set("gpt-5", "overloaded")
    # Failures are counted per worker; the first worker to reach the threshold opens the breaker for the fleet.
    for _ in range(8):
        if "gpt-5=skipped:breaker_open" in chat(gps[0], "general").headers["x-gateway-attempts"]:
            break
    else:
        raise AssertionError("the breaker never opened")
    opened = emu.attempts("gpt-5")[-1]["time"]  # the failure that opened it
    before = len(emu.attempts("gpt-5"))
    answers = _spread(gps, 8, "general")
    assert {a.status_code for a in answers} == {200}  # qwen-coder serves
    # Past the cooldown (1 s), still failing, under load from every worker.
    time.sleep(max(0.0, opened + 1.1 - time.time()))
    threads = [threading.Thread(target=lambda gp=gp: [chat(gp, "general") for _ in range(6)]) for gp in gps
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # Every contact after the opening is a half-open probe: one per opening, fleet-wide. Each failed probe re-opens
    # the breaker for (at least) the cooldown, so consecutive contacts are a cooldown apart, never closer.
    probes = [a["time"] for a in emu.attempts("gpt-5")[before:]]
    assert probes, "no half-open probe at all"
    gaps = [b - a for a, b in zip([opened, *probes], probes)]
    assert all(g >= 0.9 for g in gaps), f"{len(probes)} contacts, gaps {gaps}: more than one per opening"

    # Healthy again: the next probe closes the breaker everywhere.
    emu.set("gpt-5", "healthy")
    deadline = time.monotonic() + 8
    while chat(gps[1], "general").headers.get("x-gateway-model") != "gpt-5":
        assert time.monotonic() < deadline, "the breaker never closed"
        time.sleep(0.1)
    time.sleep(0.2)
    assert {a.headers.get("x-gateway-model") for a in _spread(gps, 8, "general")} == {"gpt-5"}


def _metric(gp, name: str) -> float | None:
    for line in __import__("httpx").get(gp.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_redis_killed_mid_load_fails_no_request_and_state_resyncs_when_it_is_back(emu, fleet):
    gps, redis_server = fleet.gps, fleet.redis
    stop = threading.Event()
    results: list[int] = []

    def run(gp) -> None:
        while not stop.is_set():
            try:
                results.append(chat(gp).status_code)
            except Exception:  # noqa: BLE001
                results.append(-1)

    threads = [threading.Thread(target=run, args=(gp,), daemon=True) for gp in gps for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        redis_server.kill()
        time.sleep(1.5)
        assert all(_metric(gp, "gateway_state_store_up") == 0.0 for gp in gps for _ in range(3))
        # The kill switch still works on the replica that took the call; it says who was not told.
        r = admin(gps[0], "POST", "/admin/withdrawals", json={"target": "model", "name": "qwen-coder",
                                                              "reason": "outage drill", "contact": "never"})
        assert r.status_code == 201 and r.json()["propagation"]["complete"] is False
        # A 429 seen during the outage stays local for now...
        emu.set("fable-5", "rate_limited:retry_after=30")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert results and set(results) == {200}, f"failed requests during the outage: {sorted(set(results))}"
    redis_server.start()
    deadline = time.monotonic() + 10
    while not all(_metric(gp, "gateway_state_store_up") == 1.0 for gp in gps for _ in range(3)):
        assert time.monotonic() < deadline, "the workers never reconnected"
        time.sleep(0.1)
    wait_for_workers(gps[0], 4)
    # One log line per transition and worker (no line per failed request or per reconnection attempt).
    downs = [line for gp in gps for line in gp.log_path.read_text().splitlines() if '"state_store_down"' in line]
    assert len(downs) == 4 and len({json.loads(line)["worker"] for line in downs}) == 4, downs
    # ...and is shared once Redis is back: every worker re-shares the marks it holds.
    time.sleep(0.3)
    emu.clear()
    _spread(gps, 8)
    assert emu.attempts("fable-5") == [], "the marks seen during the outage were not resynced"
    # The withdrawal made during the outage was announced on resync: the other replica (its own state_dir) has it,
    # on both of its workers (each resyncs on its own reconnect; six reads in a row reach both of them).
    deadline = time.monotonic() + 10
    while not all(admin(gps[1], "GET", "/admin/state").json()["models"]["qwen-coder"]["state"]
                  == "withdrawn_by_operator" for _ in range(6)):
        assert time.monotonic() < deadline, "the withdrawal made during the outage never reached the other replica"
        time.sleep(0.1)
    r = admin(gps[1], "DELETE", "/admin/withdrawals/model/qwen-coder")
    assert r.status_code == 200 and r.json()["propagation"]["complete"] is True, r.text


def test_redis_hanging_not_dead_fails_no_request_and_holds_none_for_long(emu, fleet):
    """Redis frozen (SIGSTOP: connections open, no answer) rather than refused: requests, rate-limited ones and
    the kill switch go on; none waits for Redis longer than its timeouts."""
    import os
    import signal

    from tests.fleet.conftest import LIMITED_KEY

    gps, redis_server = fleet.gps, fleet.redis
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        statuses = [chat(gps[i % 2]).status_code for i in range(8)]
        limited = [chat(gps[i % 2], key=LIMITED_KEY).status_code for i in range(4)]
        r = admin(gps[0], "POST", "/admin/withdrawals", json={"target": "model", "name": "qwen-coder",
                                                              "reason": "frozen redis", "contact": "never"})
        took = time.monotonic() - t0
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    assert statuses == [200] * 8 and set(limited) <= {200, 429}, (statuses, limited)
    assert r.status_code == 201 and r.json()["propagation"]["complete"] is False, r.text
    assert took < 8, took
    deadline = time.monotonic() + 10
    while not all(_metric(gp, "gateway_state_store_up") == 1.0 for gp in gps for _ in range(3)):
        assert time.monotonic() < deadline, "the workers never came back to the store"
        time.sleep(0.1)
    wait_for_workers(gps[0], 4)


def test_redis_restarted_empty_gets_the_fleet_s_withdrawals_back(emu, fleet):
    """A Redis that comes back without its data (no persistence) must not leave the fleet's copy of the
    withdrawals empty: a replica that joins later (its own state_dir) reads it from there."""
    import asyncio

    from gateway.state.store import RedisStore

    gps, redis_server = fleet.gps, fleet.redis
    r = admin(gps[0], "POST", "/admin/withdrawals", json={"target": "model", "name": "fable-5", "reason": "legal",
                                                          "contact": "never"})
    assert r.status_code == 201 and r.json()["propagation"]["complete"], r.text
    redis_server.kill()
    time.sleep(0.5)
    redis_server.start()  # empty: the test server keeps nothing on disk
    deadline = time.monotonic() + 10
    while not all(_metric(gp, "gateway_state_store_up") == 1.0 for gp in gps for _ in range(3)):
        assert time.monotonic() < deadline, "the workers never reconnected"
        time.sleep(0.1)
    wait_for_workers(gps[0], 4)

    async def read() -> dict | None:
        store = RedisStore(redis_server.url, "t:")
        try:
            await store.connect()
            return await store.get_withdrawals()
        finally:
            await store.close()

    snapshot = asyncio.run(read())
    assert snapshot is not None and [e["name"] for e in snapshot["entries"]] == ["fable-5"], snapshot


def test_every_counter_scraped_under_load_from_either_worker_never_decreases(emu, fleet):
    gps = fleet.gps
    emu.set("gpt-5", "failing_n:n=3")  # failovers and attempts with other outcomes too

    def counters(gp) -> dict[str, float]:
        text = httpx.get(gp.url + "/metrics", timeout=5).text
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line and not line.startswith("#") and ("_total{" in line or "_count{" in line)}

    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                chat(gps[0], model="general")
                chat(gps[1])

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    back: list[str] = []
    try:
        last: list[dict[str, float]] = [{}, {}]
        for _ in range(15):
            for i, gp in enumerate(gps):
                now = counters(gp)
                back += [f"r{i} {k}: {v} -> {now.get(k)}" for k, v in last[i].items() if now.get(k, -1) < v]
                last[i] = now
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert back == [], back[:5]

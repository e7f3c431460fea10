"""Fleet fixtures: a real redis-server (and PostgreSQL) on free loopback ports in temp dirs, and a factory for
``gateway serve --workers 2`` replicas sharing it. A missing binary fails the test with what to install."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.testing_services import GatewayProcess, MissingService, PostgresServer, RedisServer
from tests.conftest import GATEWAY_KEY, base_config

ADMIN_KEY = "gwa-fleet-admin-0123456789"
LIMITED_KEY = "gw-limited-key-0123456789"
MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except MissingService as e:
        pytest.fail(str(e))
    with server:
        yield server


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except MissingService as e:
        pytest.fail(str(e))
    with server:
        yield server


def fleet_config(emu_url: str, redis_url: str, state_dir: Path, **over: Any) -> dict[str, Any]:
    cfg = base_config(emu_url)
    cfg["admin_keys"] = [{"name": "ops", "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}]
    cfg["state"] = {"backend": "redis", "url": redis_url, "key_prefix": "t:"}
    cfg["state_dir"] = str(state_dir)
    cfg["reload"] = {"watch": False}
    cfg.update(over)
    return cfg


def start_replicas(cfg: dict[str, Any], base: Path, started: list[GatewayProcess], n: int = 2,
                   workers: int = 2) -> list[GatewayProcess]:
    """n ``gateway serve --workers 2`` processes, each with its own state_dir (so that only the shared store
    connects them), booted in parallel; returns once every worker heartbeats."""
    out = []
    for i in range(n):
        d = base / f"replica-{i}"
        d.mkdir(exist_ok=True)
        c = {**cfg, "state_dir": str(d / "state")}
        path = d / "gateway.yaml"
        path.write_text(yaml.safe_dump(c, sort_keys=False))
        # As the Kubernetes Deployment does: a named replica, a metrics directory that does not exist yet.
        env = {"GATEWAY_REPLICA": f"r{i}", "PROMETHEUS_MULTIPROC_DIR": str(d / "metrics")}
        gp = GatewayProcess(path, workers=workers, env=env, log=d / "log.txt")
        started.append(gp)
        out.append(gp.spawn())
    for gp in out:
        gp.start()
    wait_for_workers(out[0], n * workers)
    return out


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., list[GatewayProcess]]]:
    """``replicas(config_dict, n=2)``: see ``start_replicas``; stopped after the test."""
    started: list[GatewayProcess] = []
    yield lambda cfg, n=2, workers=2: start_replicas(cfg, tmp_path, started, n, workers)
    for gp in started:
        gp.stop()


class Fleet:
    """Two replicas x 2 workers with one config for the whole session (breaker: 2 failures, 1 s cooldown; no
    retries; a rate-limited key). ``reset`` returns every model to a clean state fleet-wide, through the admin API
    (a withdrawal and its reinstatement: reinstating forgets the model's breaker, cooldown and marks everywhere)."""

    def __init__(self, gps: list[GatewayProcess], redis: RedisServer, models: list[str]) -> None:
        self.gps, self.redis, self.models = gps, redis, models

    def reset(self) -> None:
        for m in self.models:
            body = {"target": "model", "name": m, "reason": "test reset"}
            assert admin(self.gps[0], "POST", "/admin/withdrawals", json=body).status_code == 201
            r = admin(self.gps[1], "DELETE", f"/admin/withdrawals/model/{m}")
            assert r.status_code == 200 and r.json()["propagation"]["complete"], r.text


@pytest.fixture(scope="session")
def fleet_session(emulator: Any, tmp_path_factory: Any) -> Iterator[Fleet]:
    try:
        redis = RedisServer()
    except MissingService as e:
        pytest.fail(str(e))
    base = tmp_path_factory.mktemp("fleet")
    cfg = fleet_config(emulator.url, redis.url, base)
    cfg["failover"]["breaker"] = {"failures": 2, "cooldown": "1s"}
    cfg["failover"]["retries"] = 0
    cfg["admin"] = {"session_secret": "fleet-session-secret-0123456789"}  # status sessions valid on every worker
    cfg["keys"].append({"name": "limited", "sha256": hashlib.sha256(LIMITED_KEY.encode()).hexdigest(),
                        "rate_limit": 6})
    started: list[GatewayProcess] = []
    with redis:
        try:
            yield Fleet(start_replicas(cfg, base, started), redis, sorted(cfg["models"]))
        finally:
            for gp in started:
                gp.stop()


@pytest.fixture
def fleet(fleet_session: Fleet, emu: Any) -> Fleet:
    """The session's fleet, every model reset, the emulator healthy with an empty log."""
    fleet_session.reset()
    emu.clear()
    return fleet_session


def admin(gp: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, gp.url + path, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=15, **kw)


def chat(gp: Any, model: str = "security", **kw: Any) -> httpx.Response:
    auth = {"authorization": f"Bearer {kw.pop('key', GATEWAY_KEY)}"}
    return httpx.post(gp.url + "/v1/chat/completions", headers=auth, json={"model": model, "messages": MSG},
                      timeout=15, **kw)


def live_workers(gp: Any) -> list[str]:
    fleet = admin(gp, "GET", "/admin/state").json().get("fleet") or {}
    return [w["worker"] for ws in (fleet.get("replicas") or {}).values() for w in ws if w["live"]]


def wait_for_workers(gp: Any, n: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        ws = live_workers(gp)
        if len(ws) >= n:
            return ws
        assert time.monotonic() < deadline, f"only {ws} of {n} workers heartbeating"
        time.sleep(0.1)

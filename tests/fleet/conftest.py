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


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., list[GatewayProcess]]]:
    """``replicas(config_dict, n=2)``: n ``gateway serve --workers 2`` processes, each with its own state_dir (so
    only the shared store connects them), all workers heartbeating before it returns."""
    started: list[GatewayProcess] = []

    def start(cfg: dict[str, Any], n: int = 2, workers: int = 2) -> list[GatewayProcess]:
        out = []
        for i in range(n):
            d = tmp_path / f"replica-{i}"
            d.mkdir(exist_ok=True)
            c = {**cfg, "state_dir": str(d / "state")}
            path = d / "gateway.yaml"
            path.write_text(yaml.safe_dump(c, sort_keys=False))
            gp = GatewayProcess(path, workers=workers, env={"GATEWAY_REPLICA": f"r{i}"}, log=d / "log.txt")
            started.append(gp)
            out.append(gp.spawn())
        for gp in out:
            gp.start()
        wait_for_workers(out[0], n * workers)
        return out

    yield start
    for gp in started:
        gp.stop()


def admin(gp: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, gp.url + path, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=15, **kw)


def chat(gp: Any, model: str = "security", **kw: Any) -> httpx.Response:
    return httpx.post(gp.url + "/v1/chat/completions", headers={"authorization": f"Bearer {kw.pop('key', GATEWAY_KEY)}"},
                      json={"model": model, "messages": MSG}, timeout=15, **kw)


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

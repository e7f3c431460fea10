"""Status-page sessions signed with ``admin.session_secret`` are valid on every replica (and survive a restart);
without it each process signs with its own random secret."""

from __future__ import annotations

import httpx

from gateway.admin.status import COOKIE
from tests.fleet.conftest import ADMIN_KEY, fleet_config


def _login(gw) -> str:
    r = httpx.post(gw.url + "/status/login", data={"key": ADMIN_KEY}, timeout=10)
    assert r.status_code == 303
    return r.cookies[COOKIE]


def _data(gw, token: str) -> int:
    return httpx.get(gw.url + "/status/data", cookies={COOKIE: token}, timeout=10).status_code


def test_a_session_from_one_replica_is_valid_on_another_with_a_shared_secret(emu, make_gateway, tmp_path):
    cfg = fleet_config(emu.url, "redis://unused:1/0", tmp_path, admin={"session_secret": "s3cret-for-the-whole-fleet"})
    cfg["state"] = {"backend": "memory"}
    a, b = make_gateway(cfg), make_gateway(cfg)
    token = _login(a)
    assert _data(a, token) == 200 and _data(b, token) == 200
    # The secret never shows: not in the state, not in the metrics.
    state = httpx.get(a.url + "/admin/state", headers={"authorization": f"Bearer {ADMIN_KEY}"}).text
    assert "s3cret-for-the-whole-fleet" not in state + httpx.get(a.url + "/metrics").text

    solo = dict(cfg, admin={})
    c, d = make_gateway(solo), make_gateway(solo)
    assert _data(d, _login(c)) == 401  # random per process: not valid elsewhere


async def test_a_logout_revocation_holds_on_every_replica_and_falls_back_to_memory(redis_server):
    import time

    from gateway.state.sessions import FleetRevokedSessions
    from gateway.state.store import RedisStore

    up = [True]
    a_store, b_store = RedisStore(redis_server.url, "t:"), RedisStore(redis_server.url, "t:")
    a, b = FleetRevokedSessions(a_store, lambda: up[0]), FleetRevokedSessions(b_store, lambda: up[0])
    try:
        await a.revoke("sid-1", time.time() + 60)
        assert await b.is_revoked("sid-1") and not await b.is_revoked("sid-2")
        await a.revoke("sid-old", time.time() - 1)  # already expired: nothing to refuse
        assert not await b.is_revoked("sid-old")
        redis_server.kill()
        await a.revoke("sid-3", time.time() + 60)  # during an outage: held where it was made, nothing raises
        assert await a.is_revoked("sid-3") and not await b.is_revoked("sid-3")
    finally:
        await a_store.close()
        await b_store.close()

"""What answers without a key, and how the admin surface holds against guessing, copied cookies and proxies:
failed-auth throttling per source, server-side logout, the Secure cookie behind TLS or a trusted proxy, and the keys
that /metrics, /openapi.json and /readyz ask for."""

from __future__ import annotations

import hashlib

import httpx

from gateway.admin.status import COOKIE
from tests.conftest import GATEWAY_KEY
from tests.integration.test_admin import ADMIN_KEY, admin_config

METRICS_KEY = "gwm-scrape-key-0123456789"


def _cfg(emu_url: str, **over):
    cfg = admin_config(emu_url)
    cfg.update(over)
    return cfg


def _get(gw, path: str, key: str | None = None, **headers) -> httpx.Response:
    h = {k.replace("_", "-"): v for k, v in headers.items()}
    if key:
        h["authorization"] = f"Bearer {key}"
    return httpx.get(gw.url + path, headers=h, timeout=10)


def test_failed_admin_auth_is_throttled_per_source_even_for_the_right_key(emu, make_gateway):
    gw = make_gateway(_cfg(emu.url, limits={"auth_failures_per_minute": 3},
                           server={"trusted_proxies": ["127.0.0.1/32"]}))
    bad = {"x_forwarded_for": "203.0.113.5"}
    for key in ("wrong-1", "wrong-2", GATEWAY_KEY):  # a client key on the admin surface is a failure too
        assert _get(gw, "/admin/state", key, **bad).status_code in (401, 403)
    # Locked out: the right key is refused too, on every admin surface, with Retry-After.
    r = _get(gw, "/admin/state", ADMIN_KEY, **bad)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_auth_failures"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert _get(gw, "/status/data", ADMIN_KEY, **bad).status_code == 429
    r = httpx.post(gw.url + "/status/login", data={"key": ADMIN_KEY}, headers={"x-forwarded-for": "203.0.113.5"},
                   timeout=10)
    assert r.status_code == 429 and COOKIE not in r.headers.get("set-cookie", "") and "retry-after" in r.headers
    # Another source (as forwarded by the trusted proxy) is not affected.
    assert _get(gw, "/admin/state", ADMIN_KEY, x_forwarded_for="203.0.113.9").status_code == 200
    # A forged leftmost X-Forwarded-For entry does not escape the lockout: the proxy's own hop is believed.
    assert _get(gw, "/admin/state", ADMIN_KEY, x_forwarded_for="198.51.100.1, 203.0.113.5").status_code == 429
    # The lockout ends a minute after the failures.
    gw.clock.advance(61)
    assert _get(gw, "/admin/state", ADMIN_KEY, **bad).status_code == 200


def test_logout_revokes_the_session_on_the_server(emu, make_gateway):
    gw = make_gateway(_cfg(emu.url))
    r = httpx.post(gw.url + "/status/login", data={"key": ADMIN_KEY}, timeout=10)
    token = r.cookies[COOKIE]
    jar = {COOKIE: token}
    assert httpx.get(gw.url + "/status/data", cookies=jar, timeout=10).status_code == 200
    assert httpx.post(gw.url + "/status/logout", cookies=jar, timeout=10).status_code == 303
    # A copy of the cookie (the browser deleted its own) is refused from now on.
    r = httpx.get(gw.url + "/status/data", cookies=jar, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_session"
    page = httpx.get(gw.url + "/status", cookies=jar, timeout=10)
    assert 'id="login-form"' in page.text
    # A new sign-in works.
    r = httpx.post(gw.url + "/status/login", data={"key": ADMIN_KEY}, timeout=10)
    assert httpx.get(gw.url + "/status/data", cookies={COOKIE: r.cookies[COOKIE]}, timeout=10).status_code == 200


def _cookie_flags(gw, **headers) -> str:
    r = httpx.post(gw.url + "/status/login", data={"key": ADMIN_KEY}, timeout=10,
                   headers={k.replace("_", "-"): v for k, v in headers.items()})
    assert r.status_code == 303
    return r.headers["set-cookie"].lower()


def test_cookie_is_secure_only_behind_tls_or_a_trusted_proxy(emu, make_gateway):
    trusting = make_gateway(_cfg(emu.url, server={"trusted_proxies": ["127.0.0.0/8"]}))
    assert "secure" not in _cookie_flags(trusting).split("; ")
    assert "secure" in _cookie_flags(trusting, x_forwarded_proto="https").split("; ")
    assert "secure" not in _cookie_flags(trusting, x_forwarded_proto="http").split("; ")


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(emu, make_gateway):
    gw = make_gateway(_cfg(emu.url, server={"trusted_proxies": ["10.0.0.0/8"]}))
    assert "secure" not in _cookie_flags(gw, x_forwarded_proto="https").split("; ")


def test_metrics_need_a_metrics_or_admin_key_unless_public(emu, make_gateway):
    gw = make_gateway(_cfg(emu.url, metrics={"keys": [
        {"name": "prometheus", "sha256": hashlib.sha256(METRICS_KEY.encode()).hexdigest()}]}))
    r = _get(gw, "/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_metrics_key"
    assert _get(gw, "/metrics", GATEWAY_KEY).status_code == 403  # a client key is not a scrape key
    assert _get(gw, "/metrics", "nope").status_code == 401
    for key in (METRICS_KEY, ADMIN_KEY):
        r = _get(gw, "/metrics", key)
        assert r.status_code == 200 and "gateway_requests_total" in r.text
    # A scrape key opens nothing else.
    assert _get(gw, "/admin/state", METRICS_KEY).status_code == 401


def test_public_metrics_and_what_else_answers_without_a_key(emu, make_gateway):
    gw = make_gateway(_cfg(emu.url, metrics={"public": True}))
    assert _get(gw, "/metrics").status_code == 200
    assert _get(gw, "/healthz").json() == {"status": "ok"}
    # /readyz: the verdict to anyone, the per-route detail with an admin key.
    assert _get(gw, "/readyz").json() == {"status": "ready"}
    detail = _get(gw, "/readyz", ADMIN_KEY).json()
    assert detail["status"] == "ready" and detail["routes"]["security-review"]["ready"] is True
    assert _get(gw, "/readyz", GATEWAY_KEY).status_code == 403
    # /openapi.json describes the whole admin API: admin key only.
    assert _get(gw, "/openapi.json").status_code == 401
    assert _get(gw, "/openapi.json", GATEWAY_KEY).status_code == 403
    r = _get(gw, "/openapi.json", ADMIN_KEY)
    assert r.status_code == 200 and "/admin/withdrawals" in r.json()["paths"]

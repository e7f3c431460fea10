"""``GET /status`` over plain HTTP: auth (header, login form, signed cookie), the JSON feed's content, bad input."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from gateway.admin.sessions import Sessions
from gateway.admin.status import COOKIE
from tests.conftest import GATEWAY_KEY
from tests.integration.test_admin import ADMIN_KEY, _admin, _withdraw, admin_config

FORM = {"content-type": "application/x-www-form-urlencoded"}
MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]


def _login(gw, key: str, **kw) -> httpx.Response:
    return httpx.post(gw.url + "/status/login?refresh=2", data={"key": key}, timeout=10, **kw)


def _data(gw, **kw) -> httpx.Response:
    return httpx.get(gw.url + "/status/data", timeout=10, **kw)


def _wait(fetch, until=bool, timeout: float = 5.0):
    """Poll ``fetch()`` until ``until(value)``; the last value (None on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if until(value):
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def test_page_auth_header_login_form_and_cookie(emu, make_gateway, caplog):
    caplog.set_level(logging.DEBUG, logger="gateway")
    gw = make_gateway(admin_config(emu.url))
    # No credentials: the login form (no state in it), and the JSON feed is a 401.
    r = httpx.get(gw.url + "/status", timeout=10)
    assert r.status_code == 200 and 'id="login-form"' in r.text and "status.js" not in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    r = _data(gw)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_admin_key"

    # A client key is refused everywhere, and gets no session.
    for resp in (httpx.get(gw.url + "/status", headers={"authorization": f"Bearer {GATEWAY_KEY}"}),
                 _login(gw, GATEWAY_KEY)):
        assert resp.status_code == 403 and "client key" in resp.text
        assert COOKIE not in resp.headers.get("set-cookie", "")
        assert GATEWAY_KEY not in resp.text
    r = _data(gw, headers={"authorization": f"Bearer {GATEWAY_KEY}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_an_admin_key"
    # A wrong key: 401, not echoed.
    r = _login(gw, "gwa-wrong-key-xyz")
    assert r.status_code == 401 and "gwa-wrong-key-xyz" not in r.text and "set-cookie" not in r.headers
    assert _data(gw, headers={"authorization": "Bearer gwa-wrong"}).json()["error"]["code"] == "invalid_admin_key"
    assert _data(gw, headers={"authorization": "Basic abc"}).status_code == 401

    # Admin key in the header: the page, plus a session cookie for its polls.
    r = httpx.get(gw.url + "/status", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert r.status_code == 200 and 'src="/status/status.js"' in r.text
    assert _data(gw, headers={"authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200

    # Login form: 303 to the page (refresh kept, key not in the URL), HttpOnly SameSite=Strict signed cookie.
    r = _login(gw, ADMIN_KEY)
    assert r.status_code == 303 and r.headers["location"] == "/status?refresh=2"
    cookie = r.headers["set-cookie"]
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "path=/status" in low
    token = r.cookies[COOKIE]
    assert ADMIN_KEY not in cookie and admin_config(emu.url)["admin_keys"][0]["sha256"] not in cookie
    jar = {COOKIE: token}
    page = httpx.get(gw.url + "/status?refresh=2", cookies=jar, timeout=10)
    assert page.status_code == 200 and "status.js" in page.text
    d = _data(gw, cookies=jar)
    assert d.status_code == 200 and d.json()["you"] == "ops-oncall"
    # Tampered, foreign-process and expired sessions are refused.
    bad = token[:-1] + ("0" if token[-1] != "0" else "1")
    r = _data(gw, cookies={COOKIE: bad})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_session"
    assert _data(gw, cookies={COOKIE: "x" * 5000}).status_code == 401
    digest = admin_config(emu.url)["admin_keys"][0]["sha256"]
    assert _data(gw, cookies={COOKIE: Sessions().issue(digest)}).status_code == 401
    now = [time.time()]
    clocked = Sessions(wall=lambda: now[0])
    old = clocked.issue(digest)
    assert clocked.verify(old, {digest: "ops-oncall"}) == "ops-oncall"
    now[0] += 8 * 3600 + 1
    assert clocked.verify(old, {digest: "ops-oncall"}) is None
    r = httpx.get(gw.url + "/status", cookies={COOKIE: bad}, timeout=10)
    assert r.status_code == 200 and "expired" in r.text and 'id="login-form"' in r.text
    # Cross-site form posts are refused; logout clears the cookie.
    r = _login(gw, ADMIN_KEY, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = httpx.post(gw.url + "/status/logout", cookies=jar, timeout=10)
    assert r.status_code == 303 and COOKIE in r.headers["set-cookie"] and "max-age=0" in r.headers["set-cookie"].lower()

    # The key never reaches the logs.
    assert ADMIN_KEY not in caplog.text and GATEWAY_KEY not in caplog.text


def test_session_dies_with_its_admin_key(emu, make_gateway):
    gw = make_gateway(admin_config(emu.url))
    jar = {COOKIE: _login(gw, ADMIN_KEY).cookies[COOKIE]}
    assert _data(gw, cookies=jar).status_code == 200
    cfg = admin_config(emu.url)
    cfg["admin_keys"] = [{"name": "other", "sha256": "0" * 64}]
    import yaml

    gw.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert _admin(gw, "POST", "/admin/reload", key=ADMIN_KEY).status_code in (200, 401)
    assert _wait(lambda: _data(gw, cookies=jar).status_code == 401)


@pytest.mark.parametrize("query,param", [("recent=abc", "recent"), ("recent=0", "recent"), ("recent=201", "recent"),
                                         ("recent=-1", "recent"), ("recnet=5", "recnet"),
                                         ("recent=%C2%B2", "recent"),  # superscript two: isdigit(), but not int()
                                         ("recent=" + "9" * 5000, "recent")])  # past int()'s 4,300-digit limit
def test_data_bad_input_is_a_4xx_with_an_openai_error(emu, make_gateway, query, param):
    gw = make_gateway(admin_config(emu.url))
    r = httpx.get(f"{gw.url}/status/data?{query}", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error" and err["message"]


def test_login_bad_input_is_a_4xx(emu, make_gateway):
    gw = make_gateway(admin_config(emu.url))
    url = gw.url + "/status/login"
    cases = [
        ({"json": {"key": ADMIN_KEY}}, 415),
        ({"content": b"key=" + b"a" * 5000, "headers": FORM}, 413),
        ({"content": b"key=\xff\xfe", "headers": FORM}, 400),
        ({"data": {"other": "x"}}, 400),
        ({"data": {"key": ""}}, 400),
    ]
    for kw, status in cases:
        r = httpx.post(url, timeout=10, **kw)
        assert r.status_code == status, (kw, r.status_code, r.text)
        assert "set-cookie" not in r.headers
    assert httpx.put(url, timeout=10).status_code == 405
    r = httpx.get(gw.url + "/status/nope", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    # A garbage refresh value is dropped, not reflected.
    r = httpx.get(gw.url + '/status?refresh="><script>', timeout=10)
    assert r.status_code == 200 and "<script>" not in r.text and 'action="/status/login"' in r.text


def test_data_shows_routes_states_policies_and_recent_failovers(emu, make_gateway):
    cfg = admin_config(emu.url)
    cfg["policies"] = [{"name": "export-control", "deny": {"models": ["gpt-5"]}, "unless": {"jurisdiction": ["US"]},
                       "reason": "directive <b>2026</b>"}]
    gw = make_gateway(cfg)
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    emu.set("fable-5", "overloaded")
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "security", "messages": MSG}, timeout=10)
    assert r.status_code == 200
    emu.set("fable-5", "healthy")
    assert _withdraw(gw, name="qwen-coder", reason="legal hold <img src=x>").status_code == 201
    assert _admin(gw, "POST", "/admin/drills", json={"target": "model", "name": "fable-5", "duration": "10m",
                                                     "reason": "quarterly drill"}).status_code == 201

    def recent_failover():
        d = _data(gw, headers=auth).json()
        return d if d["recent"]["failovers"] else None

    d = _wait(recent_failover)
    assert d, "the failover never appeared in /status/data"
    assert d["config"]["version"] and d["config"]["loaded_at"]
    routes = {r["name"]: r for r in d["routes"]}
    assert routes["security-review"]["models"] == ["fable-5", "gpt-5", "qwen-coder"]
    assert routes["general"]["healthy_fallback"] is False and routes["general"]["usable"] == ["gpt-5"]
    m = d["models"]
    assert m["qwen-coder"]["state"] == "withdrawn_by_operator"
    assert m["qwen-coder"]["withdrawal"]["reason"] == "legal hold <img src=x>"
    assert m["qwen-coder"]["withdrawal"]["actor"] == "jane@corp"
    assert m["fable-5"]["state"] == "drill" and m["fable-5"]["drill"]["reason"] == "quarterly drill"
    assert m["gpt-5"]["state"] == "ok"
    assert m["gpt-5"]["denied_by_policies"] == [{"policy": "export-control", "reason": "directive <b>2026</b>"}]
    assert m["gpt-5"]["denied_callers"] == [{"key": "tests", "policy": "export-control"}]
    f = d["recent"]["failovers"][0]
    # fable-5 overloaded (transient), gpt-5 denied to this caller by the policy, qwen-coder served (before its
    # withdrawal).
    assert f["route"] == "security-review" and f["served"] == "qwen-coder" and f["key_name"] == "tests"
    assert f["reasons"] == ["transient", "denied"]
    assert [a["outcome"] for a in f["attempts"]][-2:] == ["denied:export-control", "ok"]
    assert d["recent"]["refusals"] == []
    text = str(d)
    assert ADMIN_KEY not in text and GATEWAY_KEY not in text and "sk-provider" not in text


def test_data_shows_refusals(emu, make_gateway):
    cfg = admin_config(emu.url)
    cfg["routes"]["security-review"]["on_refusal"] = "failover"
    gw = make_gateway(cfg)
    emu.set("fable-5", "content_filter")
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "security", "messages": MSG}, timeout=10)
    assert r.headers["x-gateway-attempts"] == "fable-5=policy_blocked,gpt-5=ok"
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    d = _wait(lambda: _data(gw, headers=auth).json(), until=lambda j: j["recent"]["refusals"])
    assert d, "the refusal never appeared"
    assert d["recent"]["refusals"][0]["refusals"] == [{"model": "fable-5", "action": "failover"}]


def test_audit_disabled_still_serves_the_page(emu, make_gateway):
    cfg = admin_config(emu.url)
    cfg["audit"] = {"enabled": False}
    gw = make_gateway(cfg)
    d = _data(gw, headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert d["recent"]["enabled"] is False and d["routes"]


@pytest.mark.parametrize("origin", ["http://[", "http://[::1", "https://[x"])
def test_an_unparseable_origin_is_refused_not_a_500(emu, make_gateway, origin):
    """``Origin`` is attacker-chosen: one that is not a URL (an unclosed IPv6 bracket) is cross-site, a 403."""
    gw = make_gateway(admin_config(emu.url))
    r = _login(gw, ADMIN_KEY, headers={"origin": origin})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = httpx.post(gw.url + "/status/logout", headers={"origin": origin}, timeout=10)
    assert r.status_code == 403

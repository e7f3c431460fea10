"""``GET /status``: a self-refreshing HTML status page for SREs and admins, and its JSON feed ``GET /status/data``.

Plain HTML + a little vanilla JS (served from this module, no build step) that polls ``/status/data`` every few
seconds (``?refresh=<seconds>`` on the page URL, 0.5..3600, default 5) and renders with ``textContent`` only:
model names, reasons and actors come from config and admin input and are never parsed as HTML.

Authentication is the admin API's: admin keys only, a client key is refused. A browser cannot send an
``Authorization`` header on navigation, so the page also has a login form: ``POST /status/login`` with the admin key
in the form body sets an HttpOnly, SameSite=Strict cookie (path ``/status``) holding an HMAC-signed session
(expiry + a keyed id of the admin key's hash, signed with a per-process random secret; never the key). A session
ends when it expires, when the process restarts, or when its admin key is removed from the config. ``GET /status``
with a valid ``Authorization: Bearer <admin key>`` also works (and sets the same cookie, for the page's polls).
The key is never echoed into the page, logs or URLs.

Recent failovers and refusals come from the audit store (SQLite, read-only connection, off the event loop via
``asyncio.to_thread``, cached for a second so several open pages cost one query); nothing is added to the request
path.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import secrets
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.audit.wiring import model_usable
from gateway.errors import GatewayError
from gateway.reports.common import failover_reason

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.runtime import Runtime

log = logging.getLogger("gateway.admin.status")

COOKIE = "gw_status_session"
SESSION_TTL = 8 * 3600  # seconds
MAX_LOGIN_BODY = 4096  # bytes
MAX_TOKEN = 200  # characters; longer cookies are ignored unread
RECENT_DEFAULT, RECENT_MAX = 20, 200  # rows of failovers and of refusals shown
RECENT_WINDOW = 24 * 3600.0  # seconds of audit history looked at
RECENT_SCAN = 2000  # newest audit rows scanned for failovers/refusals
RECENT_CACHE = 1.0  # seconds
REFRESH_MIN, REFRESH_MAX = 0.5, 3600.0

_PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


# -- sessions ------------------------------------------------------------------------------------------------
class Sessions:
    """Signed session tokens ``v1.<expiry>.<kid>.<sig>``. ``kid`` is an HMAC of the admin key's sha256 (so the
    token names no key and no hash, and dies with the key); ``sig`` an HMAC of the rest. The secret is random per
    process: a restart signs everybody out."""

    def __init__(self, wall: Any = time.time, secret: str | None = None) -> None:
        # ``admin.session_secret`` (shared by a fleet) or random per process.
        from gateway.state.sessions import session_secret

        self._secret = session_secret(secret) or secrets.token_bytes(32)
        self.wall = wall

    def _mac(self, data: str) -> str:
        return hmac.new(self._secret, data.encode(), hashlib.sha256).hexdigest()

    def _kid(self, digest: str) -> str:
        return self._mac("kid:" + digest)[:32]

    def issue(self, digest: str) -> str:
        payload = f"v1.{int(self.wall()) + SESSION_TTL}.{self._kid(digest)}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, admin_keys: dict[str, str]) -> str | None:
        """The admin key name of a valid, unexpired session whose key is still configured; else None."""
        if not token or len(token) > MAX_TOKEN:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v1":
            return None
        payload = ".".join(parts[:3])
        if not hmac.compare_digest(self._mac(payload), parts[3]):
            return None
        try:
            expiry = int(parts[1])
        except ValueError:
            return None
        if expiry <= self.wall():
            return None
        for digest, name in admin_keys.items():
            if hmac.compare_digest(self._kid(digest), parts[2]):
                return name
        return None


def check_admin_key(rt: Runtime, key: str) -> tuple[str, str]:
    """(admin key name, sha256) for an admin key, else the admin API's 401/403 (a client key is a 403)."""
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    name = rt.admin_keys.get(digest)
    if name is not None:
        return name, digest
    if rt.keys is not None and digest in rt.keys:
        raise GatewayError(403, "This is a client key; the status page accepts only admin keys (admin_keys:).",
                           type="permission_error", code="not_an_admin_key")
    if not rt.admin_keys:
        raise GatewayError(403, "The status page is disabled: no admin_keys are configured.",
                           type="permission_error", code="admin_api_disabled")
    raise GatewayError(401, "Incorrect admin key provided.", code="invalid_admin_key")


def _bearer(request: Request) -> str | None:
    """The bearer token, None without an Authorization header; a 401 for another scheme or an empty token."""
    auth = request.headers.get("authorization")
    if auth is None:
        return None
    if auth[:7].lower() != "bearer " or not auth[7:].strip():
        raise GatewayError(401, "Malformed Authorization header: send 'Authorization: Bearer <admin key>'.",
                           code="missing_admin_key")
    return auth[7:].strip()


# -- data ------------------------------------------------------------------------------------------------------
def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def live_state(gw: Gateway) -> dict[str, Any]:
    """Routes, chains and every model's live state, from memory (no I/O)."""
    rt = gw.runtime
    now = gw.clock()
    policies_by_model: dict[str, list[dict[str, str]]] = {}
    for p in rt.policies:
        for m in sorted(p.models):
            policies_by_model.setdefault(m, []).append({"policy": p.name, "reason": p.reason})
    callers_by_model: dict[str, list[dict[str, str]]] = {}
    for c in (rt.keys or {}).values():
        for m, d in c.denials.items():
            callers_by_model.setdefault(m, []).append({"key": c.name or "", "policy": d.policy})
    models: dict[str, Any] = {}
    for name, t in rt.targets.items():
        info: dict[str, Any] = {"provider": t.provider, "vendor": t.vendor, "jurisdiction": t.jurisdiction}
        info.update(gw.state.describe(name))
        e = gw.withdrawals.check(name)
        if e is not None:
            info["state"] = "drill" if e.kind == "drill" else "withdrawn_by_operator"
            info[e.kind] = e.public(now)
        info["usable"] = model_usable(gw, name)
        info["denied_by_policies"] = policies_by_model.get(name, [])
        info["denied_callers"] = sorted(callers_by_model.get(name, []), key=lambda d: d["key"])
        models[name] = info
    routes = []
    for name, r in rt.routes.items():
        usable = [m for m in r.models if models.get(m, {}).get("usable")]
        routes.append({"name": name, "aliases": list(r.aliases), "description": r.description,
                       "models": list(r.models), "on_refusal": r.on_refusal,
                       "refusal_fallbacks": list(r.refusal_fallbacks), "usable": usable,
                       "healthy_fallback": len(usable) >= 2})
    rl = gw.reloader
    return {
        "config": {"version": rt.version, "loaded_at": _iso(rt.loaded_at),
                   "last_reload": rl.last.public() if rl.last else None, "reloads": dict(rl.counts)},
        "routes": routes,
        "models": models,
        "withdrawals": [e.public(now) for e in gw.withdrawals.withdrawals.values()],
        "drills": [e.public(now) for e in gw.withdrawals.drills.values() if e.until is None or now < e.until],
        "policies": [{"name": p.name, "reason": p.reason, "denied_models": sorted(p.models)} for p in rt.policies],
    }


def _attempts(row_attempts: Any) -> list[dict[str, Any]]:
    out = []
    for a in row_attempts or []:
        if isinstance(a, dict):
            out.append({"model": str(a.get("model", "")), "outcome": str(a.get("outcome", "")),
                        "status": a.get("status")})
    return out


def classify(row: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(failover, refusal) summaries of one audit row; either may be None."""
    attempts = _attempts(row.get("attempts"))
    reasons: list[str] = []
    refusals: list[dict[str, str]] = []
    for i, a in enumerate(attempts):
        if i and attempts[i - 1]["model"] != a["model"] and attempts[i - 1]["outcome"] != "ok":
            reasons.append(failover_reason(attempts[i - 1]["outcome"]))
        if a["outcome"] == "policy_blocked":
            moved = i + 1 < len(attempts) and attempts[i + 1]["model"] != a["model"]
            refusals.append({"model": a["model"], "action": "failover" if moved else "return"})
    served = row.get("served") or []
    status = row.get("status")
    base = {"time": _iso(row.get("time")), "request_id": row.get("request_id"), "route": row.get("route"),
            "key_name": row.get("key_name"), "status": status,
            "served": served[-1] if served and isinstance(status, int) and status < 400 else None,
            "attempts": attempts}
    failover = {**base, "reasons": reasons} if reasons else None
    refusal = {**base, "refusals": refusals} if refusals else None
    return failover, refusal


def read_recent(path: Path, limit: int, now: float) -> dict[str, Any]:
    """Newest failovers and refusals from the audit DB (blocking: call through ``asyncio.to_thread``)."""
    out: dict[str, Any] = {"enabled": True, "window_s": RECENT_WINDOW, "failovers": [], "refusals": [],
                           "error": None}
    if not path.exists():
        return out
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2, check_same_thread=False)
        try:
            fetched = conn.execute(
                "SELECT request_id, time, key_name, route, status, served, attempts FROM requests "
                "WHERE time >= ? ORDER BY time DESC LIMIT ?", (now - RECENT_WINDOW, RECENT_SCAN)).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        log.warning("status page: cannot read the audit store: %s", e)
        out["error"] = "the audit store could not be read; see the gateway log"
        return out
    for request_id, t, key_name, route, status, served, attempts in fetched:
        if len(out["failovers"]) >= limit and len(out["refusals"]) >= limit:
            break
        try:
            row = {"request_id": request_id, "time": t, "key_name": key_name, "route": route, "status": status,
                   "served": orjson.loads(served) if served else [],
                   "attempts": orjson.loads(attempts) if attempts else []}
        except orjson.JSONDecodeError:
            continue
        failover, refusal = classify(row)
        if failover is not None and len(out["failovers"]) < limit:
            out["failovers"].append(failover)
        if refusal is not None and len(out["refusals"]) < limit:
            out["refusals"].append(refusal)
    return out


# -- pages -----------------------------------------------------------------------------------------------------
def _refresh_param(request: Request) -> str | None:
    raw = request.query_params.get("refresh")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if not REFRESH_MIN <= value <= REFRESH_MAX:  # also rejects nan
        return None
    return f"{value:g}"


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**_PAGE_HEADERS, **(headers or {})})


def login_page(message: str | None = None, refresh: str | None = None, status: int = 200) -> Response:
    action = "/status/login" + (f"?refresh={refresh}" if refresh else "")
    note = f'<p class="error" id="login-error" role="alert">{html.escape(message)}</p>' if message else ""
    return _html(LOGIN_HTML.replace("{action}", html.escape(action)).replace("{note}", note), status)


def _set_session(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, max_age=SESSION_TTL, path="/status", httponly=True, samesite="strict",
                        secure=secure)


def _same_origin(request: Request) -> bool:
    """A form POST from another site is refused (a browser always sends Origin on a cross-site POST)."""
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and request.headers.get("sec-fetch-site") == "same-origin"):
        return True
    return urlsplit(origin).netloc.lower() == (request.headers.get("host") or "").lower()


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit``."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def build_status_router(gw: Gateway) -> APIRouter:
    router = APIRouter()
    sessions = Sessions(secret=gw.runtime.config.admin.session_secret)
    cache: dict[str, Any] = {"at": -1e18, "limit": None, "data": None}

    def session_name(request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        return sessions.verify(token, gw.runtime.admin_keys) if token else None

    def authenticate(request: Request) -> str:
        """For the JSON endpoint: the admin key's name, or an OpenAI-shaped 401/403."""
        key = _bearer(request)
        if key is not None:
            return check_admin_key(gw.runtime, key)[0]
        name = session_name(request)
        if name is not None:
            return name
        if COOKIE in request.cookies:
            raise GatewayError(401, "The status page session has expired or is invalid; sign in again at /status.",
                               code="invalid_session")
        raise GatewayError(401, "Missing admin key: send 'Authorization: Bearer <admin key>' or sign in at "
                                "/status.", code="missing_admin_key")

    async def recent(limit: int) -> dict[str, Any]:
        path = gw.continuity.path
        if path is None:
            return {"enabled": False, "window_s": RECENT_WINDOW, "failovers": [], "refusals": [], "error": None}
        wall = time.time()
        if cache["limit"] == limit and wall - cache["at"] < RECENT_CACHE:
            return cache["data"]
        data = await asyncio.to_thread(read_recent, Path(path), limit, wall)
        cache.update(at=wall, limit=limit, data=data)
        return data

    @router.get("/status", include_in_schema=False)
    async def status_page(request: Request) -> Response:
        refresh = _refresh_param(request)
        try:
            key = _bearer(request)
        except GatewayError as e:
            return login_page(e.message, refresh, e.status)
        if key is not None:
            try:
                name, digest = check_admin_key(gw.runtime, key)
            except GatewayError as e:
                return login_page(e.message, refresh, e.status)
            response = _html(STATUS_HTML)
            _set_session(response, sessions.issue(digest), request.url.scheme == "https")
            log.info("status page opened with admin key %s", name)
            return response
        if session_name(request) is not None:
            return _html(STATUS_HTML)
        message = "Your session has expired; sign in again." if COOKIE in request.cookies else None
        response = login_page(message, refresh)
        if message:
            response.delete_cookie(COOKIE, path="/status")
        return response

    @router.post("/status/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        refresh = _refresh_param(request)
        if not _same_origin(request):
            return login_page("Cross-site sign-in refused.", refresh, 403)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return login_page("Send the sign-in form (application/x-www-form-urlencoded).", refresh, 415)
        body = await _read_limited(request, MAX_LOGIN_BODY)
        if body is None:
            return login_page(f"The sign-in form is larger than {MAX_LOGIN_BODY} bytes.", refresh, 413)
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            return login_page("The sign-in form could not be read.", refresh, 400)
        key = (fields.get("key") or [""])[0].strip()
        if not key:
            return login_page("Enter an admin key.", refresh, 400)
        try:
            name, digest = check_admin_key(gw.runtime, key)
        except GatewayError as e:
            log.warning("status page: sign-in refused (%s) from %s", e.code,
                        request.client.host if request.client else "?")
            return login_page(e.message, refresh, e.status)
        log.info("status page: signed in with admin key %s", name)
        response = RedirectResponse("/status" + (f"?refresh={refresh}" if refresh else ""), status_code=303,
                                    headers={"cache-control": "no-store"})
        _set_session(response, sessions.issue(digest), request.url.scheme == "https")
        return response

    @router.post("/status/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return login_page("Cross-site sign-out refused.", None, 403)
        response = RedirectResponse("/status", status_code=303, headers={"cache-control": "no-store"})
        response.delete_cookie(COOKIE, path="/status")
        return response

    @router.get("/status/data", include_in_schema=False)
    async def status_data(request: Request) -> JSONResponse:
        name = authenticate(request)
        unknown = sorted(set(request.query_params) - {"recent"})
        if unknown:
            raise GatewayError(400, f"Unknown query parameter {unknown[0]!r}; the only one is 'recent'.",
                               param=unknown[0], code="unknown_parameter")
        raw = request.query_params.get("recent", str(RECENT_DEFAULT))
        if not raw.isdigit() or not 1 <= int(raw) <= RECENT_MAX:
            raise GatewayError(400, f"recent must be an integer from 1 to {RECENT_MAX}.", param="recent",
                               code="invalid_parameter")
        data = live_state(gw)
        if getattr(gw, "fleet", None) is not None:
            data["fleet"] = await gw.fleet.describe()  # replicas and workers, the shared store's health
        data["recent"] = await recent(int(raw))
        data["you"] = name
        data["generated_at"] = _iso(time.time())
        return JSONResponse(data, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})

    @router.get("/status/status.js", include_in_schema=False)
    async def script() -> Response:
        return Response(STATUS_JS, media_type="text/javascript; charset=utf-8",
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

    @router.get("/status/status.css", include_in_schema=False)
    async def style() -> Response:
        return Response(STATUS_CSS, media_type="text/css; charset=utf-8",
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

    return router


# -- assets ----------------------------------------------------------------------------------------------------
_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/status/status.css">
"""

LOGIN_HTML = _HEAD + """<title>Gateway status: sign in</title>
</head>
<body class="login">
<main>
<h1>Gateway status</h1>
<p>Sign in with an admin key (client keys are not accepted).</p>
{note}
<form method="post" action="{action}" id="login-form" autocomplete="off">
<label for="key">Admin key</label>
<input type="password" id="key" name="key" required autofocus autocomplete="off" spellcheck="false">
<button type="submit" id="login-submit">Sign in</button>
</form>
</main>
</body>
</html>
"""

STATUS_HTML = _HEAD + """<title>Gateway status</title>
<script src="/status/status.js" defer></script>
</head>
<body>
<header>
<h1>Gateway status</h1>
<dl id="config"></dl>
<div class="right">
<span id="updated" data-ticks="0">loading...</span>
<form method="post" action="/status/logout" id="logout-form"><button type="submit">Sign out</button></form>
</div>
</header>
<div id="banner" role="alert" hidden></div>
<main>
<section><h2>Routes</h2><div id="routes"></div></section>
<section><h2>Models</h2><div id="models"></div></section>
<section><h2>Recent failovers</h2><div id="failovers"></div></section>
<section><h2>Recent refusals</h2><div id="refusals"></div></section>
</main>
</body>
</html>
"""

STATUS_CSS = """
:root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --drill: #0969da; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: center; padding: .8rem 1.5rem;
         background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; }
header .right { margin-left: auto; display: flex; gap: 1rem; align-items: center; color: var(--muted); }
dl#config { display: flex; flex-wrap: wrap; gap: .2rem 1.2rem; margin: 0; }
dl#config div { display: flex; gap: .35rem; } dl#config dt { color: var(--muted); } dl#config dd { margin: 0; }
main { padding: 1rem 1.5rem; max-width: 1400px; }
section { margin-bottom: 1.5rem; } h2 { font-size: 1.05rem; margin: .5rem 0; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
.chain { display: flex; flex-wrap: wrap; gap: .4rem; align-items: stretch; }
.hop { border: 1px solid var(--line); border-radius: 6px; padding: .25rem .5rem; background: #fff; min-width: 9rem;
       max-width: 24rem; }
td:first-child { white-space: nowrap; }
.hop .name { font-weight: 600; } .hop .meta, .muted { color: var(--muted); font-size: .85em; }
.arrow { align-self: center; color: var(--muted); }
.badge { display: inline-block; border-radius: 1rem; padding: 0 .55rem; font-size: .8em; font-weight: 600;
         color: #fff; background: var(--muted); white-space: nowrap; }
.badge.ok { background: var(--ok); } .badge.cooling { background: var(--warn); }
.badge.breaker_open, .badge.withdrawn, .badge.withdrawn_by_operator, .badge.access_denied { background: var(--bad); }
.badge.drill { background: var(--drill); } .badge.policy { background: #8250df; }
.flag { color: var(--bad); font-weight: 600; }
.detail { font-size: .85em; margin-top: .15rem; overflow-wrap: anywhere; }
#banner { margin: 1rem 1.5rem 0; padding: .6rem 1rem; border: 1px solid var(--bad); color: var(--bad);
          background: #ffebe9; border-radius: 6px; }
button { font: inherit; padding: .25rem .8rem; cursor: pointer; }
body.login main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 1.5rem 2rem;
                  border: 1px solid var(--line); border-radius: 8px; }
body.login label { display: block; font-weight: 600; margin-bottom: .3rem; }
body.login input { width: 100%; padding: .4rem; margin-bottom: .8rem; font: inherit; }
.error { color: var(--bad); }
"""

STATUS_JS = r"""
"use strict";
(function () {
  var params = new URLSearchParams(window.location.search);
  var refresh = parseFloat(params.get("refresh"));
  if (!(refresh >= 0.5 && refresh <= 3600)) { refresh = 5; }
  var ticks = 0;
  var stopped = false;

  // Build elements with textContent only: every string from the server is untrusted.
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) { continue; }
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }
  function secs(s) {
    if (s === null || s === undefined) { return ""; }
    s = Number(s);
    if (s >= 3600) { return (s / 3600).toFixed(1) + " h"; }
    if (s >= 60) { return Math.round(s / 60) + " min"; }
    return s.toFixed(s < 10 ? 1 : 0) + " s";
  }
  function stateLabel(m) {
    switch (m.state) {
      case "ok": return "ok";
      case "cooling": return "cooling";
      case "breaker_open": return "breaker open";
      case "withdrawn": return "withdrawn (vendor)";
      case "access_denied": return "access denied";
      case "withdrawn_by_operator": return "withdrawn";
      case "drill": return "drill";
      default: return String(m.state);
    }
  }
  function details(m) {
    var out = [];
    if (m.state === "withdrawn_by_operator" && m.withdrawal) {
      var w = m.withdrawal;
      out.push("withdrawn by " + w.actor + " (admin key " + w.admin_key + ") at " + w.created_at + ": " + w.reason +
               (w.reference ? " [" + w.reference + "]" : ""));
    } else if (m.state === "drill" && m.drill) {
      var d = m.drill;
      out.push("drill by " + d.actor + " until " + d.until + " (" + secs(d.remaining_s) + " left): " + d.reason);
    } else if (m.state === "cooling") {
      out.push("cooling for " + secs(m.until_in_s));
    } else if (m.state === "breaker_open") {
      out.push("breaker open for " + secs(m.until_in_s));
    } else if (m.state === "withdrawn" || m.state === "access_denied") {
      out.push("upstream says " + stateLabel(m) + " (recheck in " + secs(m.until_in_s) + ")" +
               (m.reason ? ": " + m.reason : ""));
    }
    if (m.breaker && m.breaker !== "closed" && m.state !== "breaker_open") { out.push("breaker " + m.breaker); }
    (m.denied_by_policies || []).forEach(function (p) {
      out.push("denied for some callers by policy " + p.policy + ": " + p.reason);
    });
    var keys = (m.denied_callers || []).map(function (c) { return c.key + " (" + c.policy + ")"; });
    if (keys.length) { out.push("denied for keys: " + keys.join(", ")); }
    return out;
  }
  function badge(m) {
    var b = el("span", "badge " + m.state, stateLabel(m));
    b.setAttribute("data-testid", "state");
    return b;
  }
  function policyBadge(m) {
    if (!(m.denied_by_policies || []).length && !(m.denied_callers || []).length) { return null; }
    return el("span", "badge policy", "policy");
  }
  function table(headers, rows) {
    var t = el("table"), thead = el("thead"), tr = el("tr"), tbody = el("tbody");
    headers.forEach(function (h) { tr.appendChild(el("th", null, h)); });
    add(t, add(thead, tr), tbody);
    rows.forEach(function (r) { tbody.appendChild(r); });
    return t;
  }
  function cell(content, cls) {
    var td = el("td", cls);
    if (content instanceof Node) { td.appendChild(content); return td; }
    td.textContent = content === null || content === undefined ? "" : String(content);
    return td;
  }
  function detailBlock(lines) {
    var div = el("div");
    lines.forEach(function (l) { div.appendChild(el("div", "detail", l)); });
    return div;
  }

  function renderConfig(d) {
    var dl = document.getElementById("config");
    var c = d.config || {};
    var r = c.last_reload;
    var items = [["config version", c.version], ["loaded", c.loaded_at],
                 ["last reload", r ? r.result + " at " + r.at + " (" + r.trigger + ")" +
                  (r.errors && r.errors.length ? ": " + r.errors.join(" | ") : "") : "none since start"],
                 ["signed in as", d.you]];
    var nodes = items.map(function (it) {
      var div = el("div");
      div.setAttribute("data-testid", "config-" + it[0].replace(/ /g, "-"));
      return add(div, el("dt", null, it[0]), el("dd", null, it[1]));
    });
    dl.replaceChildren.apply(dl, nodes);
  }
  function renderRoutes(d) {
    var rows = (d.routes || []).map(function (r) {
      var tr = el("tr");
      tr.setAttribute("data-testid", "route");
      tr.setAttribute("data-route", r.name);
      var name = add(el("div"), el("div", "name", r.name));
      if (r.aliases && r.aliases.length) { name.appendChild(el("div", "muted", "aliases: " + r.aliases.join(", "))); }
      if (!r.healthy_fallback) {
        name.appendChild(el("div", "flag", r.usable.length ? "no healthy fallback" : "NO USABLE MODEL"));
      }
      var chain = el("div", "chain");
      r.models.forEach(function (mname, i) {
        var m = (d.models || {})[mname] || {state: "unknown"};
        if (i) { chain.appendChild(el("span", "arrow", "\u2192")); }
        var hop = el("div", "hop");
        hop.setAttribute("data-testid", "hop");
        hop.setAttribute("data-model", mname);
        add(hop, add(el("div"), el("span", "name", mname), " ", badge(m), " ", policyBadge(m)),
            el("div", "meta", (m.vendor || "") + " \u00b7 " + (m.provider || "")), detailBlock(details(m)));
        chain.appendChild(hop);
      });
      var refusal = r.on_refusal + (r.refusal_fallbacks.length ? " \u2192 " + r.refusal_fallbacks.join(", ") : "");
      return add(tr, cell(name), cell(chain), cell(refusal));
    });
    var box = document.getElementById("routes");
    box.replaceChildren(table(["route", "chain (in order)", "on refusal"], rows));
  }
  function renderModels(d) {
    var rows = Object.keys(d.models || {}).map(function (name) {
      var m = d.models[name];
      var tr = el("tr");
      tr.setAttribute("data-testid", "model");
      tr.setAttribute("data-model", name);
      return add(tr, cell(name), cell(m.vendor), cell(m.provider), cell(m.jurisdiction),
                 cell(add(el("span"), badge(m), " ", policyBadge(m))), cell(detailBlock(details(m))));
    });
    document.getElementById("models").replaceChildren(
      table(["model", "vendor", "provider", "jurisdiction", "state", "details"], rows));
  }
  function attemptsText(attempts) {
    return (attempts || []).map(function (a) {
      return a.model + " (" + a.outcome + (a.status ? " " + a.status : "") + ")";
    }).join(" \u2192 ");
  }
  function renderRecent(d) {
    var rec = d.recent || {};
    var note = !rec.enabled ? "The audit log is disabled: no recent history." : rec.error;
    function box(id, items, kind) {
      var target = document.getElementById(id);
      if (note) { target.replaceChildren(el("p", "muted", note)); return; }
      if (!items.length) {
        target.replaceChildren(el("p", "muted", "None in the last " + secs(rec.window_s) + "."));
        return;
      }
      var rows = items.map(function (x) {
        var tr = el("tr");
        tr.setAttribute("data-testid", kind);
        var what = kind === "failover" ? x.reasons.join(", ")
          : x.refusals.map(function (r) { return r.model + ": " + r.action; }).join(", ");
        return add(tr, cell(x.time), cell(x.route), cell(x.key_name), cell(what), cell(attemptsText(x.attempts)),
                   cell(x.served || "\u2014"), cell(x.status));
      });
      target.replaceChildren(table(["time (UTC)", "route", "caller key", kind === "failover" ? "why" : "refused",
                                    "attempts", "served by", "status"], rows));
    }
    box("failovers", rec.failovers || [], "failover");
    box("refusals", rec.refusals || [], "refusal");
  }
  function banner(text) {
    var b = document.getElementById("banner");
    if (!text) { b.hidden = true; b.replaceChildren(); return; }
    b.hidden = false;
    b.replaceChildren(document.createTextNode(text));
  }
  function signedOut() {
    stopped = true;
    var b = document.getElementById("banner");
    b.hidden = false;
    var a = el("a", null, "Sign in again");
    a.href = "/status" + window.location.search;
    b.replaceChildren(document.createTextNode("Session expired or revoked. "), a);
  }

  function tick() {
    fetch("/status/data", {credentials: "same-origin", cache: "no-store", headers: {accept: "application/json"}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { signedOut(); return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (d) {
        if (!d) { return; }
        renderConfig(d); renderRoutes(d); renderModels(d); renderRecent(d);
        banner(null);
        ticks += 1;
        var u = document.getElementById("updated");
        u.setAttribute("data-ticks", String(ticks));
        u.textContent = "updated " + new Date().toLocaleTimeString() + " \u00b7 every " + refresh + " s";
      })
      .catch(function (e) { banner("Cannot load the gateway state: " + e.message + " (retrying)"); })
      .finally(function () { if (!stopped) { window.setTimeout(tick, refresh * 1000); } });
  }
  document.addEventListener("DOMContentLoaded", tick);
})();
"""

"""``GET /status``: a self-refreshing HTML status page for SREs and admins, and its JSON feed ``GET /status/data``.

Plain HTML + a little vanilla JS (static files in ``gateway/admin/static/``, no build step) that polls
``/status/data`` every few seconds (``?refresh=<seconds>`` on the page URL, 0.5..3600, default 5) and renders with
``textContent`` only: model names, reasons and actors come from config and admin input and are never parsed as HTML.

Authentication is the admin API's (``gateway.admin.auth``): admin keys only, a client key is refused. A browser
cannot send an ``Authorization`` header on navigation, so the page also has a login form: ``POST /status/login`` with
the admin key in the form body sets an HttpOnly, SameSite=Strict cookie (path ``/status``) holding a signed session
(``gateway.admin.sessions``; never the key). A session ends when it expires, when the process restarts, when its
admin key is removed from the config, or on sign-out (revoked on the server: a copied cookie is refused too). The
cookie is ``Secure`` when the request came over TLS or through a trusted proxy that says so
(``server.trusted_proxies``). Sign-in attempts are throttled per source like every admin authentication.
``GET /status`` with a valid ``Authorization: Bearer <admin key>`` also works (and sets the same cookie, for the
page's polls). The key is never echoed into the page, logs or URLs.

The live state is the admin API's view (``gateway.admin.view``); recent failovers and refusals come from the audit
store (``gateway.admin.recent``).
"""

from __future__ import annotations

import html
import logging
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.admin.auth import (
    AdminAuth,
    admin_from_request,
    check_admin_key,
    request_is_tls,
    request_source,
    throttled,
)
from gateway.admin.recent import RECENT_DEFAULT, RECENT_MAX, RecentActivity
from gateway.admin.sessions import SESSION_TTL, Sessions
from gateway.admin.view import StateView, iso
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.admin.sessions import RevokedSessions
    from gateway.state.fleet import Fleet

log = logging.getLogger("gateway.admin.status")

COOKIE = "gw_status_session"
MAX_LOGIN_BODY = 4096  # bytes
REFRESH_MIN, REFRESH_MAX = 0.5, 3600.0
SURFACE = "the status page"

_PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class Assets:
    """The page's files, read once from the package (``gateway/admin/static``) when the router is built."""

    def __init__(self) -> None:
        root = resources.files("gateway.admin").joinpath("static")
        head = root.joinpath("head.html").read_text(encoding="utf-8")  # the <head> both pages start with
        self.login_html = head + root.joinpath("login.html").read_text(encoding="utf-8")
        self.status_html = head + root.joinpath("status.html").read_text(encoding="utf-8")
        self.css = root.joinpath("status.css").read_text(encoding="utf-8")
        self.js = root.joinpath("status.js").read_text(encoding="utf-8")


def live_state(view: StateView) -> dict[str, Any]:
    """Routes, chains and every model's live state, from memory (no I/O)."""
    rt = view.live.runtime
    now = view.clock()
    policies_by_model: dict[str, list[dict[str, str]]] = {}
    for p in rt.policies:
        for m in sorted(p.models):
            policies_by_model.setdefault(m, []).append({"policy": p.name, "reason": p.reason})
    callers_by_model: dict[str, list[dict[str, str]]] = {}
    for c in (rt.keys or {}).values():
        for m, d in c.denials.items():
            callers_by_model.setdefault(m, []).append({"key": c.name or "", "policy": d.policy})
    models = view.model_states()
    for name, info in models.items():
        info["usable"] = view.usable(name)
        info["denied_by_policies"] = policies_by_model.get(name, [])
        info["denied_callers"] = sorted(callers_by_model.get(name, []), key=lambda d: d["key"])
    routes = []
    for name, r in rt.routes.items():
        usable = [m for m in r.models if models.get(m, {}).get("usable")]
        routes.append({"name": name, "aliases": list(r.aliases), "description": r.description,
                       "models": list(r.models), "on_refusal": r.on_refusal,
                       "refusal_fallbacks": list(r.refusal_fallbacks), "usable": usable,
                       "healthy_fallback": len(usable) >= 2})
    return {
        "config": view.config_state(),
        "routes": routes,
        "models": models,
        "withdrawals": [e.public(now) for e in view.withdrawals.withdrawals.values()],
        "drills": [e.public(now) for e in view.withdrawals.drills.values() if e.until is None or now < e.until],
        "policies": [{"name": p.name, "reason": p.reason, "denied_models": sorted(p.models)} for p in rt.policies],
    }


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


def login_page(assets: Assets, message: str | None = None, refresh: str | None = None,
               status: int = 200, headers: dict[str, str] | None = None) -> Response:
    action = "/status/login" + (f"?refresh={refresh}" if refresh else "")
    note = f'<p class="error" id="login-error" role="alert">{html.escape(message)}</p>' if message else ""
    return _html(assets.login_html.replace("{action}", html.escape(action)).replace("{note}", note), status,
                 headers)


def _set_session(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, max_age=SESSION_TTL, path="/status", httponly=True, samesite="strict",
                        secure=secure)


def _same_origin(request: Request) -> bool:
    """A form POST from another site is refused (a browser always sends Origin on a cross-site POST)."""
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and request.headers.get("sec-fetch-site") == "same-origin"):
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # not a URL (e.g. an unclosed IPv6 bracket): not this site
        return False
    return netloc.lower() == (request.headers.get("host") or "").lower()


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


def build_status_router(auth: AdminAuth, view: StateView, revoked: RevokedSessions, audit_path: Path | None,
                        fleet: Fleet | None) -> APIRouter:
    """``audit_path``: the local audit store the recent activity is read from (None: none, or PostgreSQL);
    ``fleet``: the fleet's view (replicas, workers, the shared store), None for one process."""
    router = APIRouter()
    live = auth.live
    sessions = Sessions(secret=live.runtime.config.admin.session_secret)  # shared by a fleet, else per process
    assets = Assets()
    recent = RecentActivity(audit_path)

    async def session_name(request: Request) -> str | None:
        """The admin key name of the request's session cookie: valid, unexpired, its key still configured, and
        not revoked by a logout."""
        token = request.cookies.get(COOKIE)
        name = sessions.verify(token, live.runtime.admin_keys) if token else None
        if name is None or await revoked.is_revoked(Sessions.session_id(token or "")):
            return None
        return name

    async def authenticate(request: Request) -> str:
        """For the JSON endpoint: the admin key's name, or an OpenAI-shaped 401/403 (429 while locked out)."""
        found = admin_from_request(auth, request, SURFACE)
        if found is not None:
            return found[0]
        name = await session_name(request)
        if name is not None:
            return name
        if COOKIE in request.cookies:
            raise GatewayError(401, "The status page session has expired or is invalid; sign in again at /status.",
                               code="invalid_session")
        raise GatewayError(401, "Missing admin key: send 'Authorization: Bearer <admin key>' or sign in at "
                                "/status.", code="missing_admin_key")

    @router.get("/status", include_in_schema=False)
    async def status_page(request: Request) -> Response:
        refresh = _refresh_param(request)
        try:
            found = admin_from_request(auth, request, SURFACE)
        except GatewayError as e:
            return login_page(assets, e.message, refresh, e.status, e.headers)
        if found is not None:
            name, digest = found
            response = _html(assets.status_html)
            _set_session(response, sessions.issue(digest), request_is_tls(auth, request))
            log.info("status page opened with admin key %s", name)
            return response
        if await session_name(request) is not None:
            return _html(assets.status_html)
        message = "Your session has expired; sign in again." if COOKIE in request.cookies else None
        response = login_page(assets, message, refresh)
        if message:
            response.delete_cookie(COOKIE, path="/status")
        return response

    @router.post("/status/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        refresh = _refresh_param(request)
        if not _same_origin(request):
            return login_page(assets, "Cross-site sign-in refused.", refresh, 403)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return login_page(assets, "Send the sign-in form (application/x-www-form-urlencoded).", refresh, 415)
        body = await _read_limited(request, MAX_LOGIN_BODY)
        if body is None:
            return login_page(assets, f"The sign-in form is larger than {MAX_LOGIN_BODY} bytes.", refresh, 413)
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            return login_page(assets, "The sign-in form could not be read.", refresh, 400)
        key = (fields.get("key") or [""])[0].strip()
        if not key:
            return login_page(assets, "Enter an admin key.", refresh, 400)
        try:  # during a lockout the key is not even looked at
            name, digest = throttled(auth, request, lambda: check_admin_key(live.runtime, key, SURFACE))
        except GatewayError as e:
            log.warning("status page: sign-in refused (%s) from %s", e.code, request_source(auth, request))
            return login_page(assets, e.message, refresh, e.status, e.headers)
        log.info("status page: signed in with admin key %s", name)
        response = RedirectResponse("/status" + (f"?refresh={refresh}" if refresh else ""), status_code=303,
                                    headers={"cache-control": "no-store"})
        _set_session(response, sessions.issue(digest), request_is_tls(auth, request))
        return response

    @router.post("/status/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return login_page(assets, "Cross-site sign-out refused.", None, 403)
        token = request.cookies.get(COOKIE)
        if token and sessions.verify(token, live.runtime.admin_keys) is not None:
            # Server-side: a copy of the cookie is refused from now on, not only this browser's.
            await revoked.revoke(Sessions.session_id(token), Sessions.expiry(token))
        response = RedirectResponse("/status", status_code=303, headers={"cache-control": "no-store"})
        response.delete_cookie(COOKIE, path="/status")
        return response

    @router.get("/status/data", include_in_schema=False)
    async def status_data(request: Request) -> JSONResponse:
        name = await authenticate(request)
        unknown = sorted(set(request.query_params) - {"recent"})
        if unknown:
            raise GatewayError(400, f"Unknown query parameter {unknown[0]!r}; the only one is 'recent'.",
                               param=unknown[0], code="unknown_parameter")
        raw = request.query_params.get("recent", str(RECENT_DEFAULT))
        # ASCII digits, few of them: str.isdigit() also accepts '²', and int() refuses over 4,300 digits
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= RECENT_MAX:
            raise GatewayError(400, f"recent must be an integer from 1 to {RECENT_MAX}.", param="recent",
                               code="invalid_parameter")
        data = live_state(view)
        if fleet is not None:
            data["fleet"] = await fleet.describe()  # replicas and workers, the shared store's health
        data["recent"] = await recent(int(raw))
        data["you"] = name
        data["generated_at"] = iso(time.time())
        return JSONResponse(data, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})

    @router.get("/status/status.js", include_in_schema=False)
    async def script() -> Response:
        return Response(assets.js, media_type="text/javascript; charset=utf-8",
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

    @router.get("/status/status.css", include_in_schema=False)
    async def style() -> Response:
        return Response(assets.css, media_type="text/css; charset=utf-8",
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

    return router



"""Admin-key authentication, shared by the admin API (``/admin/``), the status page (``/status``), ``/metrics``
and ``/openapi.json``.

Admin keys are configured as sha256 digests (``admin_keys:``); the key itself is hashed on arrival and compared by
its digest, never stored or echoed. A client key is refused here with a 403, as an admin key is refused on ``/v1/``.
Failed attempts are throttled per source address (``AuthThrottle``); the source and whether the client came over
TLS are believed from ``X-Forwarded-For`` / ``X-Forwarded-Proto`` only when the peer is in
``server.trusted_proxies``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from fastapi import Request

    from gateway.runtime import Runtime
    from gateway.services import LiveRuntime

T = TypeVar("T")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def bearer(headers: Mapping[str, str]) -> str | None:
    """The bearer token, None without an Authorization header; a 401 for another scheme or an empty token."""
    auth = headers.get("authorization")
    if auth is None:
        return None
    if auth[:7].lower() != "bearer " or not auth[7:].strip():
        raise GatewayError(401, "Malformed Authorization header: send 'Authorization: Bearer <admin key>'.",
                           code="missing_admin_key")
    return auth[7:].strip()


def check_admin_key(rt: Runtime, key: str, surface: str = "the admin API") -> tuple[str, str]:
    """(admin key name, sha256) for an admin key, else a 401/403 (a client key is a 403). ``surface`` names the
    endpoint family in the error messages."""
    digest = key_digest(key)
    name = rt.admin_keys.get(digest)
    if name is not None:
        return name, digest
    if rt.keys is not None and digest in rt.keys:
        raise GatewayError(403, f"This is a client key; {surface} accepts only admin keys (admin_keys:).",
                           type="permission_error", code="not_an_admin_key")
    if not rt.admin_keys:
        raise GatewayError(403, f"{surface[0].upper()}{surface[1:]} is disabled: no admin_keys are configured.",
                           type="permission_error", code="admin_api_disabled")
    raise GatewayError(401, "Incorrect admin key provided.", code="invalid_admin_key")


# -- the client's address, as far as it can be believed ----------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _trusted(host: str | None, trusted: tuple[str, ...]) -> bool:
    if not host or not trusted:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in net for net in _networks(trusted))


def source_address(peer: str | None, headers: Mapping[str, str], trusted: tuple[str, ...]) -> str:
    """Who is asking: the peer address, or, when the peer is a trusted proxy, the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (the leftmost entries are the client's to forge)."""
    if not _trusted(peer, trusted):
        return peer or "unknown"
    hops = [h.strip() for h in (headers.get("x-forwarded-for") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return peer or "unknown"


def came_over_tls(scheme: str, peer: str | None, headers: Mapping[str, str], trusted: tuple[str, ...]) -> bool:
    """True when this connection is TLS, or a trusted proxy says (``X-Forwarded-Proto``) that the client's was."""
    if scheme == "https":
        return True
    if not _trusted(peer, trusted):
        return False
    proto = (headers.get("x-forwarded-proto") or "").split(",")[-1].strip().lower()
    return proto == "https"


# -- throttling failed authentication ------------------------------------------------------------------------
WINDOW = 60.0  # seconds
MAX_SOURCES = 10_000  # sources tracked at once; the oldest are forgotten past it


class AuthThrottle:
    """Failed admin authentications per source address in a sliding minute. A source with ``limit`` failures in the
    last minute is refused (429 with ``Retry-After``) until the oldest of them is a minute old: even with the right
    key, which is not looked at during a lockout. In memory, per process; a shared backend (e.g. Redis) can
    implement the same two methods."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_sources: int = MAX_SOURCES) -> None:
        self.clock = clock
        self.max_sources = max_sources
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, source: str, now: float) -> collections.deque[float] | None:
        q = self._failures.get(source)
        if q is None:
            return None
        while q and q[0] <= now - WINDOW:
            q.popleft()
        if not q:
            del self._failures[source]
            return None
        return q

    def check(self, source: str, limit: int) -> None:
        """A 429 while ``source`` is locked out (``limit`` 0: never)."""
        if limit <= 0:
            return
        now = self.clock()
        q = self._recent(source, now)
        if q is not None and len(q) >= limit:
            wait = max(1, math.ceil(q[-limit] + WINDOW - now))
            raise GatewayError(429, f"Too many failed authentication attempts from your address; retry in {wait}s.",
                               type="rate_limit_error", code="too_many_auth_failures",
                               headers={"retry-after": str(wait)})

    def failed(self, source: str, limit: int) -> None:
        if limit <= 0:
            return
        now = self.clock()
        q = self._recent(source, now)
        if q is None:
            while len(self._failures) >= self.max_sources:
                del self._failures[next(iter(self._failures))]
            q = self._failures[source] = collections.deque(maxlen=limit)
        q.append(now)


class AdminAuth:
    """What admin authentication needs: the runtime in force (admin and metrics keys, trusted proxies, the limit)
    and the failed-attempt throttle. Built once at start-up, shared by every admin surface."""

    __slots__ = ("live", "throttle")

    def __init__(self, live: LiveRuntime, throttle: AuthThrottle) -> None:
        self.live = live
        self.throttle = throttle


def throttled(auth: AdminAuth, request: Request, authenticate: Callable[[], T]) -> T:
    """Run ``authenticate`` (which raises a ``GatewayError`` on a bad key) under the failed-auth throttle of the
    request's source address (``limits.auth_failures_per_minute``): a 429 while the source is locked out, without
    calling it; every ``GatewayError`` it raises counts as a failure."""
    limit = auth.live.runtime.config.limits.auth_failures_per_minute
    source = request_source(auth, request)
    auth.throttle.check(source, limit)
    try:
        return authenticate()
    except GatewayError:
        auth.throttle.failed(source, limit)
        raise


def admin_from_request(auth: AdminAuth, request: Request, surface: str = "the admin API") -> tuple[str, str] | None:
    """(name, sha256) of the admin key in the request's ``Authorization`` header; None when there is no header.
    Throttled (``throttled``)."""

    def authenticate() -> tuple[str, str] | None:
        key = bearer(request.headers)
        return None if key is None else check_admin_key(auth.live.runtime, key, surface)

    return throttled(auth, request, authenticate)


def request_source(auth: AdminAuth, request: Request) -> str:
    peer = request.client.host if request.client else None
    return source_address(peer, request.headers, tuple(auth.live.runtime.config.server.trusted_proxies))


def request_is_tls(auth: AdminAuth, request: Request) -> bool:
    peer = request.client.host if request.client else None
    return came_over_tls(request.url.scheme, peer, request.headers,
                         tuple(auth.live.runtime.config.server.trusted_proxies))


def metrics_caller(auth: AdminAuth, request: Request) -> str:
    """For ``GET /metrics``: the name of a metrics key (``metrics.keys``) or admin key in the Bearer header, else a
    401/403 (throttled like every admin authentication)."""

    def authenticate() -> str:
        rt = auth.live.runtime
        key = bearer(request.headers)
        if key is None:
            raise GatewayError(401, "Missing key: /metrics needs 'Authorization: Bearer <metrics or admin key>' "
                                    "(or metrics.public: true in the config).", code="missing_metrics_key")
        digest = key_digest(key)
        for k in rt.config.metrics.keys:
            if k.sha256 == digest:
                return k.name
        if not rt.admin_keys and not rt.config.metrics.keys:
            raise GatewayError(403, "/metrics is closed: configure metrics.keys (or admin_keys), or set "
                                    "metrics.public: true.", type="permission_error", code="metrics_disabled")
        return check_admin_key(rt, key, "/metrics")[0]

    return throttled(auth, request, authenticate)

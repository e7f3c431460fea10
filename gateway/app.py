"""Assembly: the ``Gateway`` (services one process owns) and the ASGI app in front of it.

``Gateway.__init__`` builds every service once; the endpoint and admin components (``gateway.api``,
``gateway.admin``) are each given only the services they use (``gateway.services``: the live runtime holder, the
request path's services, the withdrawal ledger; ``AdminAuth``, ``StateView``, the reloader, the lifecycle log),
never the ``Gateway`` itself, and never import this module. Nothing here runs at import time. ``create_app`` builds everything from explicit parts; the upstream client is
created in the lifespan (it needs the running loop) and closed on shutdown after in-flight requests finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.admin.api import build_admin_router
from gateway.admin.auth import AdminAuth, AuthThrottle, admin_from_request, metrics_caller
from gateway.admin.reload import ConfigReloader
from gateway.admin.sessions import MemoryRevokedSessions, RevokedSessions
from gateway.admin.status import build_status_router
from gateway.admin.view import StateView
from gateway.api import embeddings as embeddings_api
from gateway.api import models as models_api
from gateway.api import openapi
from gateway.api.asgi import header, send_error
from gateway.api.chat import ChatEndpoint, authenticate
from gateway.api.dialects.endpoint import dialect_routes
from gateway.api.dialects.openapi import with_dialect_paths
from gateway.api.ratelimit import RateLimiter
from gateway.audit.wiring import Continuity
from gateway.config.loader import load_config
from gateway.config.paths import state_dir
from gateway.errors import GatewayError
from gateway.failover.engine import FailoverEngine
from gateway.failover.withdrawals import WithdrawalDB, Withdrawals
from gateway.observability.metrics import Metrics
from gateway.runtime import Runtime, build_runtime, changed_upstreams
from gateway.services import LiveRuntime, RequestServices, UpstreamSlot, WithdrawalLedger
from gateway.state.live import FleetState
from gateway.state.ratelimit import FleetRateLimiter
from gateway.state.sessions import FleetRevokedSessions
from gateway.state.wiring import make_fleet, make_state, probe_ttl
from gateway.upstream import UpstreamClient

log = logging.getLogger("gateway")


class Gateway:
    """The services of one gateway process, built once, and their start/stop. ``runtime`` (held by ``live``) is
    swapped whole on reload (``swap``)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        config_path: str | None = None,
        sync_interval: float = 2.0,
    ) -> None:
        self.clock = clock
        self.sync_interval = sync_interval  # how often operator withdrawals are re-read from the shared DB
        self.config_path = config_path
        self.state = make_state(runtime.config, clock)  # memory, or the local cache of the fleet's shared state
        self.engine = FailoverEngine(self.state, clock, sleep)
        self.metrics = Metrics()
        self.upstream_slot = UpstreamSlot()  # the client is opened in the lifespan
        self.limiter = RateLimiter(clock)
        # Admin surface state behind small interfaces (a shared backend can replace either): failed-auth throttle
        # per source address, and status-page sessions revoked by logout.
        self.auth_throttle = AuthThrottle(clock)
        self.revoked_sessions: RevokedSessions = MemoryRevokedSessions()
        self.withdrawals = Withdrawals(clock)
        self.ledger = WithdrawalLedger(self.withdrawals, None)  # the withdrawals in force and their durable record
        state_dir = self._state_dir(runtime)
        if runtime.config.store.backend == "postgres" and runtime.config.store.url:
            from gateway.audit.postgres import PostgresWithdrawalDB

            self.withdrawals_db = PostgresWithdrawalDB(runtime.config.store.url)  # shared by every replica
        elif state_dir is not None:
            self.withdrawals_db = WithdrawalDB(state_dir / "withdrawals.sqlite")
        else:
            log.warning("no config file and no state_dir: operator withdrawals will not survive a restart")
        self.live = LiveRuntime(runtime)
        self.admin_auth = AdminAuth(self.live, self.auth_throttle)
        self.reloader = ConfigReloader(self.live, config_path, self.swap, self.metrics.reloads, self.lifecycle)
        self.view = StateView(self.live, clock, self.state, self.withdrawals, self.reloader)
        self._sync_task: asyncio.Task[None] | None = None
        # Awaited on shutdown before the audit writer closes: lets requests ended at the drain deadline record
        # their outcome (set by GatewayApp to the chat endpoint's wait).
        self.quiesce: Callable[[float], Awaitable[None]] | None = None
        self._apply_state_config(runtime)
        self.metrics.watch_state(
            lambda: [(t.name, t.provider) for t in self.runtime.targets.values()],
            self.state.available,
            lambda m: int(self.state.breaker_state(m)),
        )
        self.metrics.watch_withdrawn(self._withdrawn)
        # audit writer, JSON request log, route-health gauges
        self.continuity = Continuity(self.live, self.metrics, self.state, self.withdrawals, config_path)
        self.fleet = make_fleet(runtime.config, self.state, self.withdrawals, self._reread_withdrawals,
                                self.lifecycle, self._last_withdrawal_change,
                                None if runtime.config.store.backend == "postgres" else self._mirror_withdrawals)
        if self.fleet is not None:
            fleet = self.fleet
            self.metrics.state_store_up.set_function(lambda: 1.0 if fleet.up else 0.0)
            self.limiter = FleetRateLimiter(clock, fleet.store, lambda: fleet.up)  # per-key limits hold fleet-wide
            self.revoked_sessions = FleetRevokedSessions(fleet.store, lambda: fleet.up)  # a logout holds fleet-wide
        self.state.on_transition = self.lifecycle
        # What the request path (chat completions, embeddings, the inbound dialects) is given: built once, after
        # the limiter is final.
        self.request_path = RequestServices(live=self.live, clock=clock, engine=self.engine, state=self.state,
                                            withdrawals=self.withdrawals, limiter=self.limiter, metrics=self.metrics,
                                            continuity=self.continuity, upstream=self.upstream_slot)

    @property
    def runtime(self) -> Runtime:
        return self.live.runtime

    @property
    def upstream(self) -> UpstreamClient | None:
        return self.upstream_slot.client

    @property
    def withdrawals_db(self) -> WithdrawalDB | None:
        return self.ledger.db

    @withdrawals_db.setter
    def withdrawals_db(self, db: WithdrawalDB | None) -> None:
        self.ledger.db = db

    def _state_dir(self, runtime: Runtime) -> Path | None:
        return state_dir(runtime.config, self.config_path)  # read once, at startup

    def _apply_state_config(self, runtime: Runtime) -> None:
        f = runtime.config.failover
        self.state.configure(runtime.targets, f.breaker.failures, f.breaker.cooldown, f.withdrawn_recheck,
                             max_cooldown=f.breaker.max_cooldown)
        self.withdrawals.configure(runtime.targets, f.withdrawn_recheck)
        if isinstance(self.state, FleetState):
            self.state.probe_ttl = probe_ttl(runtime.config)

    async def _mirror_withdrawals(self, entries: list[Any]) -> None:
        db = self.withdrawals_db
        if db is not None:
            await asyncio.to_thread(db.mirror, entries)

    async def _last_withdrawal_change(self) -> float:
        db = self.withdrawals_db
        return 0.0 if db is None else await asyncio.to_thread(db.last_change)

    async def _reread_withdrawals(self) -> list[Any] | None:
        db = self.withdrawals_db
        return None if db is None else await asyncio.to_thread(db.current)

    def lifecycle(self, event: str, **fields: Any) -> None:
        """One JSON line on the ``gateway.lifecycle`` logger (reload, withdrawal, drill, breaker transitions)."""
        self.continuity.log.lifecycle(event, **fields)

    def swap(self, runtime: Runtime) -> None:
        for model in changed_upstreams(self.runtime, runtime):  # e.g. a rotated key: a fresh verdict is due
            if self.state.describe(model)["state"] != "ok":
                log.warning("config reload: %s has a new upstream (key, URL or model id); its state is cleared", model)
            self.state.reinstate(model)
        self._apply_state_config(runtime)
        self.live.runtime = runtime
        if self.upstream is not None:
            self.upstream.max_response_bytes = runtime.config.limits.max_response_bytes
        self.continuity.on_reload(runtime)

    async def start(self) -> None:
        if self.upstream is None:
            self.upstream_slot.client = UpstreamClient(max_response_bytes=self.runtime.config.limits.max_response_bytes)
            if self.withdrawals_db is not None:
                # Fail loudly: a gateway that forgot a legal withdrawal must not serve.
                self.withdrawals.load(await asyncio.to_thread(self.withdrawals_db.init))
                for e in self.withdrawals.withdrawals.values():
                    log.warning("withdrawal in force: %s %s by %s: %s", e.target, e.name, e.actor, e.reason)
            await self.continuity.start()
            if self.fleet is not None:
                await self.fleet.start()  # never fails: an unreachable store means local state until it is back
            self.reloader.start()
            # Everything loaded so far lives as long as the process: keep it out of the garbage collector's scans
            # (fewer, shorter pauses on the request path).
            gc.freeze()
            if self.withdrawals_db is not None:
                self._sync_task = asyncio.get_running_loop().create_task(self._sync_withdrawals())

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.reloader.stop()
            if self._sync_task is not None:
                self._sync_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sync_task
                self._sync_task = None
            if self.quiesce is not None:
                await self.quiesce(2.0)
            if self.fleet is not None:
                await self.fleet.stop()
            await self.continuity.aclose()  # uvicorn let in-flight requests finish first: nothing answered is lost
            await self.upstream.aclose()
            self.upstream_slot.client = None

    async def _sync_withdrawals(self) -> None:
        """Several workers (``--workers N``) or replicas share ``state_dir``: a withdrawal or reinstatement made
        through any of them reaches the others within ``sync_interval``. Owned by the lifespan; bounded work."""
        db = self.withdrawals_db
        assert db is not None
        seen = await asyncio.to_thread(db.version)
        failing = False  # log a database outage once, not every interval (the withdrawals in memory hold)
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                version = await asyncio.to_thread(db.version)
                if failing:
                    failing = False
                    log.warning("operator withdrawals readable again from %s", db.path)
                if version != seen:
                    w = self.withdrawals
                    generation = w.generation
                    version, entries = await asyncio.to_thread(db.snapshot)
                    if w.generation != generation or w.pending:
                        continue  # a local change raced the read: the read may predate it; re-read next time
                    seen = version
                    w.replace(entries)
            except Exception as e:  # a locked or briefly unavailable DB must not end the loop
                if not failing:
                    failing = True
                    log.error("could not re-read operator withdrawals (the ones in force stay in force): %s", e)

    def _withdrawn(self) -> list[tuple[str, str, str]]:
        out = []
        for name, t in self.runtime.targets.items():
            e = self.withdrawals.check(name)
            if e is not None:
                out.append((name, t.provider, "drill" if e.kind == "drill" else "operator"))
                continue
            info = self.state.describe(name)
            if info["state"] in ("withdrawn", "access_denied"):
                out.append((name, t.provider, info["state"]))
        return out

    def describe(self, admin_key: str | None = None) -> dict[str, Any]:
        """``GET /admin/state``: config version and load time, every model's state, withdrawals, drills,
        policies and keys (names and attributes only; never a secret or a hash)."""
        rt = self.runtime
        now = self.clock()
        models = self.view.model_states()
        keys = None
        if rt.keys is not None:
            keys = [{"name": c.name, "attributes": dict(c.attributes),
                     "routes": None if c.routes is None else sorted(c.routes), "rate_limit_per_minute": c.rate_limit,
                     "denied_models": {m: d.policy for m, d in sorted(c.denials.items())}}
                    for c in rt.keys.values()]
        return {
            "config": {**self.view.config_state(), "path": self.config_path},
            "models": models,
            "withdrawals": [e.public(now) for e in self.withdrawals.withdrawals.values()],
            "drills": [e.public(now) for e in self.withdrawals.drills.values()],
            "policies": [p.describe() for p in rt.policies],
            "routes": {n: {"models": list(rt_.models), "on_refusal": rt_.on_refusal,
                           "refusal_fallbacks": list(rt_.refusal_fallbacks)} for n, rt_ in rt.routes.items()},
            "keys": keys,
            "state_db": str(self.withdrawals_db.path) if self.withdrawals_db else None,
            "you": admin_key,
        }

    def ready(self) -> tuple[bool, dict[str, Any]]:
        rt = self.runtime
        routes = {}
        ok = True
        for name, route in rt.routes.items():
            usable = [m for m in route.models if self.state.available(m) and self.withdrawals.check(m) is None]
            routes[name] = {"usable": usable, "ready": bool(usable)}
            ok = ok and bool(usable)
        return ok, {"config_version": rt.version, "routes": routes}


def _error_response(err: GatewayError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def build_api(gw: Gateway, services: RequestServices) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    # /openapi.json is served below, behind an admin key (the schema describes the whole admin API).
    app = FastAPI(title="LLM failover gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.openapi = with_dialect_paths(app.openapi)  # type: ignore[method-assign]  # the pure-ASGI dialect endpoints

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            msg = f"Unknown request URL: {request.method} {request.url.path}."
            return _error_response(GatewayError(404, msg, code="unknown_url"))
        if exc.status_code == 405:
            msg = f"Method {request.method} is not allowed on {request.url.path}."
            return _error_response(GatewayError(405, msg, type="invalid_request_error", code="method_not_allowed"))
        if exc.status_code == 413:  # GatewayApp's body cap
            return _error_response(GatewayError(413, str(exc.detail), code="request_too_large"))
        return _error_response(GatewayError(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first["loc"][1:]) or None
        return _error_response(GatewayError(400, f"Invalid request: {first['msg']}", param=param))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(GatewayError(500, "Internal gateway error; see the gateway log.", code="internal"))

    app.include_router(build_admin_router(gw.admin_auth, clock=gw.clock, upstream_state=gw.state, ledger=gw.ledger,
                                          fleet=gw.fleet, lifecycle=gw.lifecycle, reloader=gw.reloader,
                                          describe=gw.describe))
    # GET /status: HTML status page (admin keys)
    app.include_router(build_status_router(gw.admin_auth, gw.view, gw.revoked_sessions, gw.continuity.path, gw.fleet))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """For load balancers and orchestrators: 200 or 503 and the status, to anyone. The detail (routes and
        their usable models) only with an admin key."""
        ok, detail = gw.ready()
        body: dict[str, Any] = {"status": "ready" if ok else "not_ready"}
        if request.headers.get("authorization") is not None and admin_from_request(gw.admin_auth, request) is not None:
            body.update(detail)
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus exposition. Needs ``Authorization: Bearer <admin key or metrics key>`` unless
        ``metrics.public: true``."""
        if not gw.runtime.config.metrics.public:
            metrics_caller(gw.admin_auth, request)
        return Response(gw.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(request: Request) -> JSONResponse:
        if admin_from_request(gw.admin_auth, request) is None:
            raise GatewayError(401, "Missing admin key: send 'Authorization: Bearer <admin key>'.",
                               code="missing_admin_key")
        return JSONResponse(app.openapi())

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        """The routes (with aliases) and models this caller may use: routes its key allows, models no policy
        denies it. A route whose every model is denied to the caller is left out."""
        return {"object": "list", "data": models_api.visible(gw.runtime, authenticate(request.scope, gw.runtime))}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> dict[str, Any]:
        """One route, alias or model this caller may use (as listed by ``GET /v1/models``); 404 otherwise."""
        return models_api.find(gw.runtime, authenticate(request.scope, gw.runtime), model_id)

    app.include_router(embeddings_api.build_router(services))  # POST /v1/embeddings

    openapi.install(app)  # the pure-ASGI endpoints (chat completions) appear in /openapi.json too
    return app


class GatewayApp:
    """The ASGI entry point: ``POST /v1/chat/completions`` goes straight to the pure-ASGI endpoint (the hot
    path); everything else, lifespan included, goes to the FastAPI app."""

    def __init__(self, gw: Gateway) -> None:
        self.gateway = gw
        services = gw.request_path
        self.api = build_api(gw, services)
        self.chat = ChatEndpoint(services)
        gw.quiesce = self.chat.wait_idle
        self.dialects = dialect_routes(services, self.chat, authenticate)  # /v1/messages, /v1/responses (pure ASGI)

    def drain(self, graceful_timeout: float) -> None:
        """Shutdown began (``gateway.server`` calls this): requests get ``graceful_timeout`` seconds."""
        self.chat.drain(graceful_timeout)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in self.dialects:
            if scope["method"] == "POST":
                await self.dialects[scope["path"]](scope, receive, send)
            else:
                err = GatewayError(405, f"Method {scope['method']} is not allowed on {scope['path']}; use POST.",
                                   type="invalid_request_error", code="method_not_allowed", headers={"allow": "POST"})
                await send_error(send, err)
            return
        if scope["type"] == "http" and scope["path"] == "/v1/chat/completions":
            if scope["method"] == "POST":
                await self.chat(scope, receive, send)
            else:
                err = GatewayError(405, f"Method {scope['method']} is not allowed on /v1/chat/completions; use POST.",
                                   type="invalid_request_error", code="method_not_allowed", headers={"allow": "POST"})
                await send_error(send, err)
            return
        if scope["type"] == "http":
            # FastAPI reads a route's whole body before its dependencies (the admin key) run: cap it here, so
            # that no client, authenticated or not, makes the gateway buffer more than limits.max_body_bytes.
            limit = self.gateway.runtime.config.limits.max_body_bytes
            declared = header(scope, b"content-length")
            try:
                too_large = declared is not None and int(declared) > limit
            except ValueError:
                too_large = False  # uvicorn's parser rejects a malformed Content-Length before we get here
            if too_large:
                await send_error(send, GatewayError(413, _too_large(limit), code="request_too_large"))
                return
            receive = _capped(receive, limit)
        await self.api(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"Request body is larger than the gateway's limit of {limit} bytes."


def _capped(receive: Any, limit: int) -> Any:
    """``receive`` that raises a 413 once the body passes ``limit`` bytes (a chunked body has no length)."""
    size = 0

    async def capped() -> dict[str, Any]:
        nonlocal size
        msg = await receive()
        size += len(msg.get("body", b""))
        if size > limit:
            raise StarletteHTTPException(413, _too_large(limit))
        return msg

    return capped


def create_app(config_path: str | Path, **kwargs: Any) -> GatewayApp:
    """Load, validate and build a gateway app from a YAML file (raises ``ConfigError``)."""
    path = Path(config_path)
    config = load_config(path)
    runtime = build_runtime(config, path.read_bytes())
    return GatewayApp(Gateway(runtime, config_path=str(path), **kwargs))

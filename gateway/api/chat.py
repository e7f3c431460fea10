"""``POST /v1/chat/completions`` as a pure-ASGI endpoint: the hot path.

Flow: authenticate -> read and validate the body -> select the route (and check that some model of it has the
capabilities the request needs) -> run the failover engine with a ``call`` for one attempt (streaming: open
and peek until the first content event; non-streaming: the same, then read the stream to its end and assemble
one answer, or with ``failover.non_streaming: direct`` send and parse) -> answer with ``x-gateway-*`` headers
-> record metrics from the attempt list.

Streaming rule: the stream is committed to the client only when an upstream produced its first content event
within the first-token limit; before that every failure fails over. After it, a cut is continued on the next
model (``gateway.api.streaming``) or ends the stream with an OpenAI-style ``data: {"error": ...}`` event and no
``[DONE]``, so a cut-off answer never looks complete.
A client that disconnects cancels the request, which closes the upstream connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any

import orjson

from gateway.api.asgi import JSON_CT, Headers, header, parse_json, read_body, send_bytes, send_error
from gateway.api.reading import assemble, open_stream, refusal, refused, stream_body
from gateway.api.streaming import Outcome, StreamRelay
from gateway.api.validate import validate_chat
from gateway.errors import GatewayError
from gateway.failover.attempts import header_value
from gateway.failover.candidates import check_capabilities, request_precheck, required_capabilities
from gateway.failover.engine import RunContext
from gateway.observability.record import RequestRecord
from gateway.routing.policy import KEY_ROUTES_POLICY, Caller, check_route
from gateway.routing.select import RouteChoice, select_route_async
from gateway.runtime import Runtime
from gateway.upstream import Timeouts

if TYPE_CHECKING:
    from gateway.services import RequestServices

log = logging.getLogger("gateway")
_RID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
DIALECT = "chat_completions"  # the ``dialect`` label of this endpoint's own requests


class _Disconnect:
    """Watches ``receive`` after the body was read; cancels the handler task if the client goes away."""

    def __init__(self, receive: Any) -> None:
        self.receive = receive
        self.disconnected = False
        self.done = False
        self._task = asyncio.current_task()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                if not self.done and self._task is not None:
                    self.disconnected = True
                    self._task.cancel()
                return

    def close(self) -> None:
        self.done = True
        self._watcher.cancel()


class _RequestIds:
    """Unique, cheap request ids: a random per-process prefix and a counter (os.urandom per request cost ~14 us)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._next = itertools.count(1).__next__

    def __call__(self) -> str:
        return f"{self._prefix}{self._next():010x}"


class ChatEndpoint:
    def __init__(self, svc: RequestServices) -> None:
        self.svc = svc
        self._ids = _RequestIds()
        self.streams = 0  # streaming responses in flight (limits.max_streams)
        # Requests past authentication, validation and routing: their tasks, for the drain deadline. ``draining``
        # is set just before those still running at the deadline are cancelled.
        self._inflight: set[asyncio.Task[Any]] = set()
        self.draining = False
        self._drain_timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None

    # -- entry -------------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Last line of defence: a bug anywhere below still answers in OpenAI's shape (500, logged with its
        traceback server-side only), or ends a started stream with an error event; never a bare 500 page."""
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._handle(scope, receive, tracked_send)
        except Exception:
            log.exception("unexpected error in the chat endpoint")
            err = GatewayError(500, "Internal gateway error; see the gateway log.", type="server_error",
                               code="internal_error")
            with contextlib.suppress(Exception):
                if not started:
                    await send_error(send, err)
                else:
                    await send({"type": "http.response.body", "body": b"data: " + err.body_bytes() + b"\n\n",
                                "more_body": False})

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        svc = self.svc
        runtime = svc.live.runtime
        start = svc.clock()
        rid = header(scope, b"x-request-id")
        if rid is None or not _RID.match(rid):
            rid = self._ids()
        base: Headers = [(b"x-request-id", rid.encode())]
        wall = time.time()
        dialect = scope.get("gateway.dialect", DIALECT)
        choice = None
        caller = None
        try:
            caller = authenticate(scope, runtime)
            if caller.rate_limit is not None:
                await svc.limiter.acheck(caller.name or "", caller.rate_limit)
            raw = await read_body(receive, runtime.config.limits.max_body_bytes, header(scope, b"content-length"))
            body = parse_json(raw)
            validate_chat(body, raw)
            wrap = scope.get("gateway.wrap_body")  # an inbound dialect's native original (gateway/api/dialects)
            if wrap is not None:
                body = wrap(body)
            choice = await select_route_async(runtime, body.get("model"), header(scope, b"x-gateway-route"),
                                              body["messages"])
            if choice.verdict is not None:
                svc.metrics.record_classification(choice.verdict)
            check_route(caller, choice.route.name)
            needs = required_capabilities(body)
            if needs:
                check_capabilities(choice.route.name, choice.chain, runtime.targets, needs)
            if body.get("stream") and self.streams >= runtime.config.limits.max_streams:
                raise GatewayError(503, "The gateway is serving its maximum number of streams; retry shortly.",
                                   code="too_many_streams", headers={"retry-after": "1"})
        except GatewayError as e:
            route_label = choice.route.name if choice is not None else "none"
            if e.code == "route_not_allowed":
                svc.metrics.policy_denials.labels(KEY_ROUTES_POLICY, route_label).inc()
            svc.metrics.requests.labels(route_label, str(e.status), dialect).inc()
            await send_error(send, e, base)
            svc.continuity.on_request(RequestRecord(
                rid, wall, caller.name if caller is not None else None, route_label,
                choice.reason if choice is not None else "none", False, e.status, svc.clock() - start,
                error=e.code or e.type, dialect=dialect))
            return
        except ConnectionAbortedError:
            return
        watch = _Disconnect(receive)
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        route = choice.route
        timeouts = route.timeouts or runtime.config.failover.timeouts
        ctx = RunContext(route=route.name, deadline=start + timeouts.total,
                         precheck=request_precheck(caller, svc.withdrawals, needs, runtime.targets),
                         on_refusal=route.on_refusal,
                         refusal_fallbacks=route.refusal_fallbacks, secrets=runtime.secrets)
        stream = bool(body.get("stream"))
        outcome = Outcome(500)
        try:
            if stream:
                outcome = await self._stream(runtime, body, choice, ctx, base, send, start, rid, watch)
            else:
                outcome = await self._complete(runtime, body, choice, ctx, base, send, rid, watch, timeouts)
        except asyncio.CancelledError:
            if not watch.disconnected and not self.draining:
                raise
            if task is not None:
                task.uncancel()
            if watch.disconnected:
                outcome = Outcome(499, error="client_disconnected")  # nginx's "client closed request"
            else:  # the drain deadline, before any answer was sent (a started stream ends in StreamRelay)
                err = GatewayError(503, "The gateway is shutting down; retry the request.", code="shutting_down",
                                   headers={"retry-after": "1"})
                with contextlib.suppress(Exception):
                    await send_error(send, err, _routed_headers(base, choice, ctx))
                outcome = Outcome(503, error="shutting_down")
        finally:
            if task is not None:
                self._inflight.discard(task)
                if not self._inflight and self._idle is not None:
                    self._idle.set()
            watch.close()
            served = outcome.served or ([ctx.served] if ctx.served else [])
            svc.metrics.record_request(route.name, outcome.status, ctx.attempts, choice.chain, ctx.served, dialect)
            svc.continuity.on_request(RequestRecord(
                rid, wall, caller.name, route.name, choice.reason, stream, outcome.status, svc.clock() - start,
                ctx.attempts, served, outcome.usage, choice.chain, dict(caller.attributes), outcome.error,
                svc.continuity.prompt_hash(body), dialect))

    # -- shutdown ----------------------------------------------------------------------------------------
    def drain(self, graceful_timeout: float) -> None:
        """The server stopped accepting and gives in-flight requests ``graceful_timeout`` seconds. Shortly before
        that deadline (uvicorn then cancels tasks bare) the requests still running are ended by the gateway: a
        started stream with the ``stream_interrupted`` event, anything else with a 503; each is recorded as what
        the client saw. Idempotent; called by ``gateway.server`` on every connection's shutdown."""
        if self._drain_timer is not None:
            return
        margin = min(1.0, graceful_timeout * 0.2)  # time left to send the events and write the records
        self._drain_timer = asyncio.get_running_loop().call_later(max(graceful_timeout - margin, 0), self._interrupt)

    def _interrupt(self) -> None:
        self.draining = True
        for task in list(self._inflight):
            task.cancel()

    async def wait_idle(self, timeout: float) -> None:
        """Until every request task has recorded its outcome (bounded): the lifespan shutdown calls this before
        closing the audit writer, so a request ended at the drain deadline is still written."""
        if not self._inflight:
            return
        self._idle = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()

    # -- non-streaming -----------------------------------------------------------------------------------
    async def _complete(self, runtime: Runtime, body: dict[str, Any], choice: RouteChoice, ctx: RunContext,
                        base: Headers, send: Any, rid: str, watch: _Disconnect, timeouts: Any) -> Outcome:
        sbody = stream_body(body)
        first_token = timeouts.first_token
        upstream = self.svc.upstream.client
        assert upstream is not None, "the upstream client is opened in the lifespan"

        async def direct(adapter: Any, t: Timeouts) -> dict[str, Any]:
            raw = await upstream.send(adapter.build_request(body, False), t)
            if raw.status >= 300:
                raise adapter.classify_error(raw.status, raw.headers, raw.body)
            result = adapter.parse_response(raw.body)
            if refused(result.get("choices")):
                raise refusal(result)
            return result

        async def call(adapter: Any, t: Timeouts) -> dict[str, Any]:
            # Read as a stream and assembled: the same first_token/idle protection as streaming requests, and a
            # cut mid-answer restarts cleanly on the next model because the client has received nothing yet.
            result = await assemble(await open_stream(upstream, adapter, t, sbody, first_token, refusals=False,
                                                      whole=True))
            if refused(result["choices"]):
                raise refusal(result)
            return result

        try:
            fo = runtime.config.failover
            result = await self.svc.engine.run(ctx, choice.chain, runtime.adapters, fo,
                                               call if fo.non_streaming == "stream" else direct, timeouts)
        except GatewayError as e:
            watch.close()
            await send_error(send, e, _routed_headers(base, choice, ctx))
            return Outcome(e.status, error=e.code or e.type)
        result["id"] = "chatcmpl-" + rid
        result["model"] = ctx.served
        watch.close()
        await send_bytes(send, 200, orjson.dumps(result), [JSON_CT, *_routed_headers(base, choice, ctx)])
        return Outcome(200, usage=result.get("usage"))

    # -- streaming ---------------------------------------------------------------------------------------
    async def _stream(self, runtime: Runtime, body: dict[str, Any], choice: RouteChoice, ctx: RunContext,
                      base: Headers, send: Any, start: float, rid: str, watch: _Disconnect) -> Outcome:
        relay = StreamRelay(self.svc, runtime, body, choice, ctx, send, "chatcmpl-" + rid, start)
        relay.interruptible = lambda: self.draining and not watch.disconnected
        self.streams += 1
        try:
            return await relay.run(lambda: _routed_headers(base, choice, ctx), watch)
        finally:
            self.streams -= 1


def _precheck(caller: Caller, withdrawals: Any) -> Any:
    """The candidate filter without capabilities (caller policy, operator withdrawals), for other call types."""
    return request_precheck(caller, withdrawals, (), {})


def authenticate(scope: dict[str, Any], runtime: Runtime) -> Caller:
    """Return the caller (key name, attributes, precomputed policy denials); ``runtime.anonymous`` when
    authentication is disabled. Keys are compared by sha256."""
    keys = runtime.keys
    if keys is None:
        return runtime.anonymous
    auth = header(scope, b"authorization")
    if not auth or not auth[:7].lower() == "bearer ":
        raise GatewayError(401, "Missing API key: send 'Authorization: Bearer <gateway key>'.",
                           code="missing_api_key")
    caller = keys.get(hashlib.sha256(auth[7:].strip().encode()).hexdigest())
    if caller is None:
        raise GatewayError(401, "Incorrect API key provided.", code="invalid_api_key")
    return caller


def _routed_headers(base: Headers, choice: RouteChoice, ctx: RunContext) -> Headers:
    h = [*base, (b"x-gateway-route", choice.route.name.encode()),
         (b"x-gateway-attempts", header_value(ctx.attempts).encode())]
    if ctx.served:
        h.append((b"x-gateway-model", ctx.served.encode()))
    return h

"""The inbound-dialect endpoints: a thin ASGI wrapper around the ONE chat pipeline.

``DialectEndpoint`` authenticates (``x-api-key`` or ``Authorization: Bearer``, both gateway keys), reads and
translates the dialect's body into the internal chat request, and calls ``ChatEndpoint`` with a ``receive`` that
replays the translated body and a ``send`` that translates the answer back: JSON bodies whole, SSE ``data:``
events incrementally as the relay sends them. So route selection (``model``, ``x-gateway-route``, ``auto``),
caller policy, the failover engine and the streaming rules (commit on first content, continuation without
splicing, tool calls whole, never a truncated success) are the chat endpoint's own, in every dialect.

The ASGI scope tells the chat endpoint which dialect it serves (``gateway.dialect``: the ``dialect`` label on
request metrics and the audit record field) and, for the Anthropic dialect, how to wrap the parsed body so an
Anthropic-kind adapter can send the client's original body natively (``gateway.wrap_body``).

Gateway options never come from the body: they are ``x-gateway-*`` headers, so no vendor field can be taken
as gateway config.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from gateway.api.asgi import JSON_CT, Headers, header, parse_json, read_body, send_bytes
from gateway.api.dialects import anthropic_messages, responses
from gateway.api.dialects.common import forwardable
from gateway.api.dialects.response_store import ResponseStore
from gateway.errors import GatewayError
from gateway.observability.record import RequestRecord
from gateway.providers.base import NativeBody

if TYPE_CHECKING:
    from gateway.api.chat import ChatEndpoint
    from gateway.services import LiveRuntime, RequestServices

log = logging.getLogger("gateway")
_HOP = frozenset({b"content-length", b"content-type"})


class _Dialect:
    """What differs between dialects; the endpoint does the rest the same way."""

    name: str
    native_kind: str | None = None
    id_header: bytes | None = None  # the vendor's own request-id header, set to the gateway's request id

    def translate(self, body: Any, owner: str | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The internal request, and the parts only ``native_kind`` models can take (param, what). ``owner``:
        the caller's key name (what a stateful dialect keeps per caller)."""
        raise NotImplementedError

    def error(self, status: int, err: dict[str, Any] | None, rid: str | None) -> bytes:
        raise NotImplementedError

    def answer(self, result: dict[str, Any], rid: str, request: Any, internal: dict[str, Any],
               owner: str | None = None) -> bytes:
        raise NotImplementedError

    def stream(self, rid: str, request: Any, internal: dict[str, Any], owner: str | None = None) -> Any:
        raise NotImplementedError


class AnthropicDialect(_Dialect):
    name = anthropic_messages.DIALECT
    native_kind = "anthropic"
    id_header = b"request-id"  # what the anthropic SDK reads as ``_request_id``

    def translate(self, body: Any, owner: str | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        notes: list[anthropic_messages.Untranslatable] = []
        return anthropic_messages.to_internal(body, notes=notes), list(notes)

    def error(self, status: int, err: dict[str, Any] | None, rid: str | None) -> bytes:
        if err is not None and err.get("code") == "missing_api_key":
            err = {**err, "message": "Missing API key: send the gateway key as 'x-api-key' or "
                   "'Authorization: Bearer <gateway key>'."}
        return orjson.dumps(anthropic_messages.error_body(status, err, rid))

    def answer(self, result: dict[str, Any], rid: str, request: Any, internal: dict[str, Any],
               owner: str | None = None) -> bytes:
        return orjson.dumps(anthropic_messages.from_completion(result, "msg_" + rid))

    def stream(self, rid: str, request: Any, internal: dict[str, Any], owner: str | None = None) -> Any:
        return anthropic_messages.StreamTranslator("msg_" + rid)


class ResponsesDialect(_Dialect):
    name = responses.DIALECT

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    def translate(self, body: Any, owner: str | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return responses.to_internal(body, self.store.view(owner)), []

    def _keep(self, resp_id: str, request: Any, internal: dict[str, Any], items: list[dict[str, Any]],
              owner: str | None) -> None:
        if request["store"]:
            self.store.put(resp_id, [*responses.history(request, internal), *responses.output_messages(items)],
                           items, owner)

    def _request(self, request: Any) -> dict[str, Any]:
        """The request as the answer echoes it: ``store`` says whether the answer will be kept."""
        return {**request, "store": request.get("store") is not False and self.store.enabled}

    def error(self, status: int, err: dict[str, Any] | None, rid: str | None) -> bytes:
        return orjson.dumps({"error": err or {"message": f"HTTP {status}", "type": "server_error", "param": None,
                                              "code": None}})

    def answer(self, result: dict[str, Any], rid: str, request: Any, internal: dict[str, Any],
               owner: str | None = None) -> bytes:
        request = self._request(request)
        out = responses.from_completion(result, "resp_" + rid, request)
        self._keep(out["id"], request, internal, out["output"], owner)
        return orjson.dumps(out)

    def stream(self, rid: str, request: Any, internal: dict[str, Any], owner: str | None = None) -> Any:
        resp_id = "resp_" + rid
        request = self._request(request)
        return responses.StreamTranslator(resp_id, request,
                                          lambda items: self._keep(resp_id, request, internal, items, owner))


def _request_id(headers: Headers) -> str:
    for k, v in headers:
        if k == b"x-request-id":
            return v.decode("latin-1")
    return ""


def _error_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


class _Translating:
    """The ``send`` given to the chat endpoint: translates its answer into the dialect on the way out."""

    def __init__(self, dialect: _Dialect, request: Any, internal: dict[str, Any], send: Any,
                 owner: str | None = None, object_id: str | None = None) -> None:
        self.dialect = dialect
        self.owner = owner
        self.object_id = object_id  # the answer object's id when it must not be the request id (see below)
        self.request = request
        self.internal = internal
        self.send = send
        self.status = 200
        self.headers: Headers = []
        self.sse = False
        self.rid = ""
        self.json: list[bytes] = []
        self.buffer = b""
        self.stream: Any = None
        self.ended = False  # the dialect's stream has its end (done or error event)
        self.closed = False  # the last body message was sent

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = list(message.get("headers") or ())
            self.rid = _request_id(headers)
            if self.dialect.id_header is not None and self.rid:
                headers.append((self.dialect.id_header, self.rid.encode()))
            self.sse = any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers)
            if self.sse:
                self.stream = self.dialect.stream(self.object_id or self.rid, self.request, self.internal, self.owner)
                await self.send({**message, "headers": [(k, v) for k, v in headers if k != b"content-length"]})
            else:
                self.headers = [(k, v) for k, v in headers if k not in _HOP]
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.closed:  # the translated response already ended (see below): nothing more may be sent
            return
        if not self.sse:
            self.json.append(body)
            if not more:
                await self._finish_json(b"".join(self.json))
            return
        try:
            out = self._events(body)
            if not more:
                out += self._end()
        except Exception:  # a translator bug must still end the stream with the dialect's error event
            log.exception("could not translate a stream into the %s dialect", self.dialect.name)
            self.ended = True
            out = self.stream.error(500, {"message": "Internal gateway error; see the gateway log."})
            more = False
        if out or not more:
            self.closed = not more
            await self.send({"type": "http.response.body", "body": out, "more_body": more})

    async def _finish_json(self, raw: bytes) -> None:
        if self.status >= 300:
            out = self.dialect.error(self.status, _error_object(raw), self.rid or None)
        else:
            try:
                result = orjson.loads(raw)
                out = self.dialect.answer(result, self.object_id or self.rid, self.request, self.internal,
                                          self.owner)
            except Exception:
                log.exception("could not translate an answer into the %s dialect", self.dialect.name)
                self.status = 500
                out = self.dialect.error(500, {"message": "Internal gateway error; see the gateway log."}, self.rid)
        await send_bytes(self.send, self.status, out, [JSON_CT, *self.headers])

    def _events(self, data: bytes) -> bytes:
        """Translate every complete SSE event in ``data`` (plus what an earlier call left over)."""
        self.buffer += data
        out: list[bytes] = []
        while True:
            end = self.buffer.find(b"\n\n")
            if end < 0:
                break
            frame, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    out.append(self._data(line[6:]))
        return b"".join(out)

    def _data(self, payload: bytes) -> bytes:
        if payload == b"[DONE]":
            self.ended = True
            return self.stream.done()
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(chunk, dict):
            return b""
        if isinstance(chunk.get("error"), dict):
            self.ended = True
            err = chunk["error"]
            status = 502 if err.get("type") == "upstream_error" else 500
            return self.stream.error(status, err)
        return self.stream.chunk(chunk)

    def _end(self) -> bytes:
        return b"" if self.ended else self.stream.end()


class DialectEndpoint:
    """``POST /v1/messages`` or ``POST /v1/responses``: translate in, run the chat pipeline, translate out."""

    def __init__(self, svc: RequestServices, chat: ChatEndpoint, dialect: _Dialect,
                 authenticate: Callable[[dict[str, Any], Any], Any]) -> None:
        self.svc = svc
        self.chat = chat
        self.dialect = dialect
        self._authenticate = authenticate
        self._ids = chat._ids

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        d = self.dialect
        start = self.svc.clock()
        scope = auth_scope(scope)
        runtime = self.svc.live.runtime
        caller = None
        try:
            caller = self._authenticate(scope, runtime)
            raw = await read_body(receive, runtime.config.limits.max_body_bytes, header(scope, b"content-length"))
            original = parse_json(raw)
            internal, notes = d.translate(original, caller.name)
            payload = forwardable(internal, original, d.native_kind is not None)
        except GatewayError as e:
            svc = self.svc
            svc.metrics.requests.labels("none", str(e.status), d.name).inc()
            rid = self._ids()
            extra = [(b"x-request-id", rid.encode()), *((k.encode(), v.encode()) for k, v in e.headers.items())]
            if d.id_header is not None:
                extra.append((d.id_header, rid.encode()))
            await send_bytes(send, e.status, d.error(e.status, e.body()["error"], rid), [JSON_CT, *extra])
            svc.continuity.on_request(RequestRecord(
                rid, time.time(), caller.name if caller is not None else None, "none", "none", False, e.status, svc.clock() - start,
                error=e.code or e.type, dialect=d.name))
            return
        except ConnectionAbortedError:
            return
        scope = {**scope, "gateway.dialect": d.name}
        if d.native_kind is not None:
            kind = d.native_kind
            beta = header(scope, b"anthropic-beta")
            extra = {"anthropic-beta": beta} if beta else None
            scope["gateway.wrap_body"] = lambda body: NativeBody(body, kind, original, extra, notes)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": payload, "more_body": False}
            return await receive()

        # The answer's id (``msg_``/``resp_`` + id) is the request id, unless the client chose that with its own
        # x-request-id: then a fresh one, so a client cannot reuse (or overwrite in the Responses store) an id.
        object_id = self._ids() if header(scope, b"x-request-id") is not None else None
        out = _Translating(d, original, internal, send, caller.name, object_id)
        await self.chat(scope, replay, out)
        if out.sse and not out.closed:  # the chat endpoint ended a stream without a last body message
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": out._end(), "more_body": False})


def auth_scope(scope: dict[str, Any]) -> dict[str, Any]:
    """Anthropic clients send the key as ``x-api-key``; the chat endpoint reads ``Authorization: Bearer``.
    ``x-api-key`` wins when both are present (the anthropic SDK's ``api_key``)."""
    key = None
    for k, v in scope["headers"]:
        if k == b"x-api-key":
            key = v
            break
    if key is None:
        return scope
    headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
    headers.append((b"authorization", b"Bearer " + key))
    return {**scope, "headers": headers}


def dialect_routes(svc: RequestServices, chat: ChatEndpoint,
                   authenticate: Callable[[dict[str, Any], Any], Any]) -> dict[str, Any]:
    """Path -> ASGI endpoint for every inbound dialect (all ``POST``)."""
    return {
        "/v1/messages": DialectEndpoint(svc, chat, AnthropicDialect(), authenticate),
        "/v1/messages/count_tokens": count_tokens_endpoint(svc.live, authenticate),
        "/v1/responses": DialectEndpoint(svc, chat, ResponsesDialect(ResponseStore(
            svc.clock, limits=lambda: svc.live.runtime.config.responses_store)), authenticate),
    }


def count_tokens_endpoint(live: LiveRuntime, authenticate: Callable[[dict[str, Any], Any], Any]) -> Any:
    """``POST /v1/messages/count_tokens``: the estimate of ``anthropic_messages.count_tokens``."""
    dialect = AnthropicDialect()

    async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope = auth_scope(scope)
        runtime = live.runtime
        try:
            authenticate(scope, runtime)
            raw = await read_body(receive, runtime.config.limits.max_body_bytes, header(scope, b"content-length"))
            body = parse_json(raw)
            internal = anthropic_messages.to_internal(body, count_only=True)
            forwardable(internal, body, False)  # the estimate writes parts of it as JSON
            result = anthropic_messages.count_tokens(internal)
        except GatewayError as e:
            await send_bytes(send, e.status, dialect.error(e.status, e.body()["error"], None), [JSON_CT])
            return
        except ConnectionAbortedError:
            return
        await send_bytes(send, 200, orjson.dumps(result), [JSON_CT])

    return endpoint

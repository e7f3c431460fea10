"""Wire-neutral core of the provider emulator: scripting, pacing and faults for every wire.

The core owns everything a scripted behaviour means (auth check, behaviour lookup,
attempt log, failing_once/failing_n counters, reset / no_response / slow_first_token,
the context_window check, :func:`make_reply`, stream pacing and stream faults,
client-disconnect detection). A *wire* only translates bytes: request -> neutral
:class:`ParsedRequest`, and neutral outcomes -> its literal bodies and framing.

Wire contract (subclass :class:`Wire`; one instance serves all requests)::

    name: str                                   # attempt log "wire" field, e.g. "anthropic"
    framer: type[StreamFramer]                  # per-request stream framing class
    parse(request, raw: bytes, path_params) -> ParsedRequest
        # model, stream, OpenAI-shaped ``chat`` dict (messages/tools/tool_choice/
        # response_format), ``token`` (credential or None), ``auth`` (credential
        # header present), ``body`` (logged JSON), ``include_usage``, ``error``
        # ("bad_json" | "missing_model" | "missing_messages" | None), ``extra``
    requires_auth(params) -> bool               # default True; False = anonymous ok
                                                #   unless the emulator has an api_key
    error(kind, model, params, **extra) -> (status, body_bytes, headers, content_type)
        # every kind in ERROR_KINDS; extra: key= (unauthorized: presented credential),
        # window=, used= (context_exceeded). Map kinds without an equivalent to the
        # nearest literal body. Do not put Content-Type in headers.
    completion(reply, model, prompt_tokens, filtered, params) -> (body_bytes, headers)
        # non-streamed success (application/json unless headers has "Content-Type")
    open_stream(req, model, reply, prompt_tokens, params) -> StreamFramer
        # default: self.framer(req, model, reply, prompt_tokens, params)

    StreamFramer (per request; state such as ids / block indexes lives here):
    headers() -> dict                           # incl. Content-Type (SSE, eventstream)
    pieces() -> list[Piece]                     # default: words of text, or tool-call
                                                #   arguments in two halves
    start() -> bytes                            # preamble (OpenAI role delta, Anthropic
                                                #   message_start+content_block_start,
                                                #   tool-call id/name); sent before
                                                #   slow_first_token's delay
    piece(piece: Piece, index: int) -> bytes    # one content piece (text or args fragment)
    finish(finish_reason, usage: Usage) -> bytes  # finish (+ usage if asked/always);
                                                #   reasons: stop | tool_calls | content_filter
    terminator() -> bytes                       # default b""; omitted for missing_done
    error_event() -> bytes                      # in-band error incl. anything after it
    malformed() -> bytes                        # one undecodable event (garbage = x20)

For content_filter the core streams ``Reply(text="")`` with finish "content_filter"
(non-stream: ``completion(..., filtered=True)``). Stream-only behaviours answer
non-streaming requests normally. Hooks may return b"" (nothing is written). Behaviour
params reach every hook; ``flavor`` is validated in behaviours.VALID_FLAVORS.

Registering a new wire: in ``gateway/emulator/<name>_wire.py``::

    class AnthropicWire(Wire):
        name = "anthropic"
        framer = AnthropicFramer
        def parse(self, request, raw, path_params): ...
        def error(self, kind, model, params, **extra): ...
        def completion(self, reply, model, prompt_tokens, filtered, params): ...

    def register(app, state):
        register_wire(app, state, AnthropicWire(), [("POST", "/v1/messages")])

then append ``anthropic_wire.register`` to ``WIRES`` in ``gateway/emulator/app.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import orjson
from aiohttp import web

from gateway.emulator.behaviours import Behaviour
from gateway.emulator.content import (
    Reply,
    completion_tokens,
    ends_with_prefill,
    estimate_prompt_tokens,
    make_reply,
    misbehaving_continuation,
    split_pieces,
)
from gateway.emulator.state import EmulatorState

MAX_HOLD_SECONDS = 600.0  # upper bound for no_response / stream_stall delays
GARBAGE_LINES = 20
DEFAULT_AFTER = 3
DEFAULT_CONTEXT_WINDOW = 8192
JSON = "application/json"

ERROR_BEHAVIOURS = frozenset(
    {
        "withdrawn",
        "access_revoked",
        "no_model_access",
        "region_blocked",
        "rate_limited",
        "quota",
        "overloaded",
        "server_error",
        "context_exceeded",
        "invalid_prompt",
    }
)
REQUEST_ERRORS = frozenset({"unauthorized", "bad_json", "missing_model", "missing_messages", "prefill_rejected"})
ERROR_KINDS = ERROR_BEHAVIOURS | REQUEST_ERRORS
STREAM_FAULTS = frozenset({"stream_cut", "stream_error", "stream_stall", "malformed_chunk", "garbage"})
CONTINUATION_FAULTS = frozenset({"restart_on_continue", "restart_different", "repeat_tail"})
TOOL_CUT_PIECE = 4  # characters of tool-call arguments per stream piece under tool_cut


def seconds(value: Any, default: float) -> float:
    """A behaviour duration: a number of seconds or ``"6s"`` / ``"500ms"``."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000.0
    return float(text.rstrip("s"))

ErrorResponse = tuple[int, bytes, Mapping[str, str], str]
_ECHO_KINDS = {401: "access_revoked", 403: "no_model_access", 404: "withdrawn"}


def echo_key(body: bytes, token: str | None) -> bytes:
    """``body`` (a wire's JSON error) with the received credential appended to every ``message``/``Message``."""
    suffix = f" (the key received was {token})"

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: v + suffix if k in ("message", "Message") and isinstance(v, str) else walk(v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    try:
        return orjson.dumps(walk(orjson.loads(body)))
    except orjson.JSONDecodeError:
        return body + suffix.encode()


# --------------------------------------------------------------------------- data
@dataclass(slots=True)
class ParsedRequest:
    """A wire's request translated to neutral terms (see module docstring)."""

    model: str | None = None
    stream: bool = False
    chat: dict[str, Any] | None = None  # OpenAI-shaped: messages, tools, tool_choice, response_format
    token: str | None = None  # presented credential (never logged)
    auth: bool = False  # an auth header/param was present (logged)
    body: Any = None  # parsed request body, stored in the attempt log
    include_usage: bool = False  # stream: client asked for usage (wires may always send it)
    error: str | None = None  # bad_json | missing_model | missing_messages
    extra: dict[str, Any] = field(default_factory=dict)  # wire-private (e.g. Azure api-version)


@dataclass(frozen=True, slots=True)
class Piece:
    """One streamed content piece: a text fragment or a tool-call arguments fragment."""

    text: str | None = None
    arguments: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def default_pieces(reply: Reply) -> list[Piece]:
    """Text -> one piece per word; tool call -> its arguments JSON in two halves."""
    if reply.tool_call is not None:
        args = reply.tool_call.arguments_json
        half = len(args) // 2
        return [Piece(arguments=args[:half]), Piece(arguments=args[half:])]
    return [Piece(text=p) for p in split_pieces(reply.text or "")]


def finish_reason_of(reply: Reply, filtered: bool = False) -> str:
    """Neutral (OpenAI-vocabulary) finish reason; wires map it to their own."""
    if filtered:
        return "content_filter"
    return "tool_calls" if reply.tool_call is not None else "stop"


def bearer_token(header: str | None) -> str | None:
    """Token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# --------------------------------------------------------------------------- wire API
class StreamFramer:
    """Per-request stream framing. Subclass and implement piece/finish/error_event/malformed."""

    def __init__(
        self, req: ParsedRequest, model: str, reply: Reply, prompt_tokens: int, params: dict[str, Any]
    ) -> None:
        self.req = req
        self.model = model
        self.reply = reply
        self.prompt_tokens = prompt_tokens
        self.params = params

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}

    def pieces(self) -> list[Piece]:
        return default_pieces(self.reply)

    def start(self) -> bytes:
        return b""

    def piece(self, piece: Piece, index: int) -> bytes:
        raise NotImplementedError

    def finish(self, finish_reason: str, usage: Usage) -> bytes:
        raise NotImplementedError

    def terminator(self) -> bytes:
        return b""

    def error_event(self) -> bytes:
        raise NotImplementedError

    def malformed(self) -> bytes:
        raise NotImplementedError


class Wire:
    """A wire format. Subclass; see the module docstring for the contract."""

    name: str = "wire"
    framer: type[StreamFramer] = StreamFramer

    def parse(self, request: web.Request, raw: bytes, path_params: Mapping[str, str]) -> ParsedRequest:
        raise NotImplementedError

    def requires_auth(self, params: dict[str, Any]) -> bool:
        return True

    def error(self, kind: str, model: str | None, params: dict[str, Any], **extra: Any) -> ErrorResponse:
        raise NotImplementedError

    def completion(
        self, reply: Reply, model: str, prompt_tokens: int, filtered: bool, params: dict[str, Any]
    ) -> tuple[bytes, Mapping[str, str]]:
        raise NotImplementedError

    def open_stream(
        self, req: ParsedRequest, model: str, reply: Reply, prompt_tokens: int, params: dict[str, Any]
    ) -> StreamFramer:
        return self.framer(req, model, reply, prompt_tokens, params)


# --------------------------------------------------------------------------- socket helpers
def _closing(request: web.Request) -> bool:
    t = request.transport
    return t is None or t.is_closing()


async def sleep_watch(request: web.Request, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True early if the client disconnected."""
    deadline = time.monotonic() + min(max(float(seconds), 0.0), MAX_HOLD_SECONDS)
    while True:
        if _closing(request):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, 0.05))


async def abort_after_flush(request: web.Request) -> None:
    t = request.transport
    if t is None:
        return
    for _ in range(100):  # give buffered bytes up to ~1 s to reach the socket
        if t.is_closing() or t.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.01)
    t.abort()


class _Disconnected(Exception):
    pass


# --------------------------------------------------------------------------- handler
class ScriptedHandler:
    """aiohttp handler running ``state``'s scripted behaviours over ``wire``."""

    def __init__(self, state: EmulatorState, wire: Wire) -> None:
        self.state = state
        self.wire = wire

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler (register ``handler.handle``)."""
        state = self.state
        raw = await request.read()
        req = self.wire.parse(request, raw, request.match_info)
        behaviour = state.behaviour_for(req.model)
        entry = state.begin_attempt(
            wire=self.wire.name,
            path=request.path,
            model=req.model,
            stream=req.stream,
            behaviour=behaviour.name,
            request=req.body,
            auth=req.auth,
        )
        try:
            return await self._handle(request, entry, req, behaviour)
        finally:
            if not entry["done"]:
                state.finish_attempt(entry)

    async def _handle(
        self, request: web.Request, entry: dict[str, Any], req: ParsedRequest, behaviour: Behaviour
    ) -> web.StreamResponse:
        state = self.state
        params = behaviour.params
        model = req.model
        if state.api_key is not None or self.wire.requires_auth(params):
            token = req.token
            if token is None or (state.api_key is not None and token != state.api_key):
                return self._error(entry, "unauthorized", model, params, key=token)
        if req.error is not None:
            return self._error(entry, req.error, model, params)
        if req.chat is None:  # a wire that forgot to set error
            return self._error(entry, "bad_json", model, params)
        if not model:
            return self._error(entry, "missing_model", model, params)

        name = behaviour.name
        if name == "rate_limited" and "n" in params and state.next_count(model) >= int(params["n"]):
            name = "healthy"  # the limit has passed
        if name in ERROR_BEHAVIOURS:
            return self._error(entry, name, model, params)
        if name == "echo_key":
            kind = _ECHO_KINDS.get(int(params.get("status", 401)), "access_revoked")
            status, body, headers, content_type = self.wire.error(kind, model, params)
            self.state.finish_attempt(entry, status=status)
            return web.Response(status=status, body=echo_key(body, req.token), content_type=content_type,
                                headers=headers)
        if name in ("failing_once", "failing_n"):
            limit = 1 if name == "failing_once" else int(params.get("n", 1))
            if state.next_count(model) < limit:
                return self._error(entry, "server_error", model, params)
        elif name == "reset":
            t = request.transport
            if t is not None:
                t.abort()
            state.finish_attempt(entry, status=0)
            return web.Response(status=500)  # never reaches the (aborted) socket
        elif name == "flap":
            if state.set_for(model) < seconds(params.get("down"), 5.0):
                return self._error(entry, "overloaded", model, params)
        elif name == "reject_prefill" and ends_with_prefill(req.chat):
            return self._error(entry, "prefill_rejected", model, params)
        elif name in ("no_response", "hang"):
            gone = await sleep_watch(request, params.get("delay", 30 if name == "no_response" else MAX_HOLD_SECONDS))
            await abort_after_flush(request)
            state.finish_attempt(entry, status=0, disconnected=gone)
            return web.Response(status=500)  # never reaches the (aborted) socket

        prompt_tokens = estimate_prompt_tokens(req.chat)
        window = params.get("context_window")
        if window is not None and prompt_tokens > window:
            return self._error(entry, "context_exceeded", model, params, window=window, used=prompt_tokens)
        reply = make_reply(req.chat, model, params)
        if name in CONTINUATION_FAULTS:
            reply = misbehaving_continuation(name, req.chat, model, params) or reply
        if req.stream:
            return await self._stream(request, entry, req, behaviour, model, reply, prompt_tokens)
        if name == "slow_first_token":
            if await sleep_watch(request, params.get("delay", 1)):
                state.finish_attempt(entry, status=0, disconnected=True)
                return web.Response(status=499)
        filtered = name == "content_filter"
        body, headers = self.wire.completion(reply, model, prompt_tokens, filtered, params)
        if name == "trickle":
            ctype = headers.get("Content-Type", JSON)
            return await self._trickle(request, entry, body, {**headers, "Content-Type": ctype}, params)
        state.finish_attempt(entry, status=200, tokens_sent=0 if filtered else completion_tokens(reply))
        if "Content-Type" in headers:
            return web.Response(body=body, headers=headers)
        return web.Response(body=body, content_type=JSON, headers=headers)

    async def _trickle(self, request: web.Request, entry: dict[str, Any], body: bytes, headers: Mapping[str, str],
                       params: dict[str, Any]) -> web.StreamResponse:
        """Headers at once, then ``body`` one byte every ``delay`` seconds (a server that is alive but useless)."""
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_length = len(body)
        await resp.prepare(request)
        delay = seconds(params.get("delay"), 1.0)
        try:
            for i in range(len(body)):
                if await sleep_watch(request, delay):
                    raise _Disconnected()
                await resp.write(body[i:i + 1])
            await resp.write_eof()
            self.state.finish_attempt(entry, status=200)
        except (_Disconnected, ConnectionError):
            self.state.finish_attempt(entry, status=200, disconnected=True)
        return resp

    def _error(
        self, entry: dict[str, Any], kind: str, model: str | None, params: dict[str, Any], **extra: Any
    ) -> web.Response:
        status, body, headers, content_type = self.wire.error(kind, model, params, **extra)
        self.state.finish_attempt(entry, status=status)
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        entry: dict[str, Any],
        req: ParsedRequest,
        behaviour: Behaviour,
        model: str,
        reply: Reply,
        prompt_tokens: int,
    ) -> web.StreamResponse:
        state = self.state
        name = behaviour.name
        params = behaviour.params
        filtered = name == "content_filter"
        if filtered:
            reply = Reply(text="")
        framer = self.wire.open_stream(req, model, reply, prompt_tokens, params)
        if name == "trickle":
            whole = framer.start() + b"".join(framer.piece(p, i) for i, p in enumerate(framer.pieces()))
            whole += framer.finish(finish_reason_of(reply), Usage(prompt_tokens, completion_tokens(reply)))
            return await self._trickle(request, entry, whole + framer.terminator(), framer.headers(), params)
        pieces = framer.pieces()
        if name == "tool_cut" and reply.tool_call is not None:
            args = reply.tool_call.arguments_json
            pieces = [Piece(arguments=args[i:i + TOOL_CUT_PIECE]) for i in range(0, len(args), TOOL_CUT_PIECE)]
        token_delay = float(params.get("token_delay", 0) or 0)
        after = int(params.get("after", DEFAULT_AFTER)) if name in STREAM_FAULTS else -1
        if name == "tool_cut" and reply.tool_call is not None:
            after = int(params.get("after", 0))
        resp = web.StreamResponse(status=200, headers=framer.headers())
        sent = 0
        status = 0

        async def write(data: bytes) -> None:
            if _closing(request):
                raise _Disconnected()
            if data:
                await resp.write(data)

        async def end() -> web.StreamResponse:
            await resp.write_eof()
            state.finish_attempt(entry, status=200, tokens_sent=sent)
            return resp

        try:
            await resp.prepare(request)
            status = 200
            entry["status"] = 200
            await write(framer.start())
            if name == "slow_first_token":
                if await sleep_watch(request, params.get("delay", 1)):
                    raise _Disconnected()
            fault_at = min(after, len(pieces)) if after >= 0 else -1
            for i in range(len(pieces) + 1):
                if i == fault_at:
                    if name in ("stream_cut", "tool_cut"):
                        await abort_after_flush(request)
                        state.finish_attempt(entry, status=200, tokens_sent=sent)
                        return resp
                    if name == "stream_error":
                        await write(framer.error_event())
                        return await end()
                    if name == "garbage":
                        await write(framer.malformed() * GARBAGE_LINES)
                        return await end()
                    if name == "malformed_chunk":
                        await write(framer.malformed())
                    elif name == "stream_stall":
                        if await sleep_watch(request, params.get("delay", 30)):
                            raise _Disconnected()
                if i == len(pieces):
                    break
                if token_delay and i > 0:
                    if await sleep_watch(request, token_delay):
                        raise _Disconnected()
                await write(framer.piece(pieces[i], i))
                sent += 1
                entry["tokens_sent"] = sent
            usage = Usage(prompt_tokens, completion_tokens(reply))
            if token_delay and getattr(framer, "n", 1) > 1:  # the other choices' last words come a token later
                if await sleep_watch(request, token_delay):
                    raise _Disconnected()
            await write(framer.finish(finish_reason_of(reply, filtered), usage))
            if name != "missing_done":
                await write(framer.terminator())
            return await end()
        except (_Disconnected, ConnectionError):
            state.finish_attempt(entry, status=status, tokens_sent=sent, disconnected=True)
        return resp


def register_wire(
    app: web.Application,
    state: EmulatorState,
    wire: Wire,
    routes: Iterable[tuple[str, str]],
) -> ScriptedHandler:
    """Serve ``wire`` on each ``(method, path)`` route (aiohttp path syntax, e.g.
    ``"/v1beta/models/{model}:generateContent"``; match_info reaches ``parse``)."""
    handler = ScriptedHandler(state, wire)
    for method, path in routes:
        app.router.add_route(method, path, handler.handle)
    return handler

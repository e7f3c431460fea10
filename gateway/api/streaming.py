"""Streaming that never lies.

Rules, in the order a stream meets them:

1. **Commit on first content.** An upstream is committed to the client only when it produced its first content
   event (text, tool call, refusal, finish) within the route's ``first_token`` limit. Before that, every failure
   fails over transparently through the one failover engine (the same loop as non-streaming requests).
2. **Stalls are cuts.** After the commit, ``idle`` seconds without a content event (keep-alive pings do not
   count) cut the stream.
3. **Continue, don't truncate.** A committed stream that is cut (connection drop, in-band error event, stall,
   repeated undecodable bytes, end without an end marker) is continued on the next model of the chain when the
   route says ``on_stream_cut: continue`` (default): the same conversation plus the text streamed so far, as an
   assistant prefill for models that accept one, else followed by an instruction to continue. Only the
   continuation is streamed, so the client receives one answer with one ``[DONE]``. A cut inside a tool call is
   not continued. A model that rejects the continuation request is skipped; when no model can continue, the
   stream ends with the *original* failure.
4. **Never a truncated success.** A stream that did not complete ends with ``data: {"error": ...}`` and no
   ``[DONE]``: the openai SDK raises ``APIError``.
5. **Finish promptly.** Once the finish reason (and the usage, when asked for) has arrived, the answer is
   complete: a missing ``[DONE]``/``message_stop`` or a later failure does not hold or spoil it.
6. **Honest usage.** With ``stream_options.include_usage`` the final usage chunk is the sum over the models that
   produced the answer; a model cut before it reported usage is counted by an estimate of what it streamed
   (4 characters a token). Attempts that produced nothing the client received are not billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gateway.api.asgi import SSE_HEADERS, Headers, send_error
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failover.attempts import Attempt
from gateway.failover.engine import RunContext
from gateway.observability.redact import redact
from gateway.upstream import Timeouts

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.routing.select import RouteChoice
    from gateway.runtime import Runtime

# Sent, after the partial answer, to models that take no assistant prefill. The emulator recognises its first
# sentence (gateway/emulator/content.py CONTINUE_MARKER).
CONTINUE_INSTRUCTION = (
    "Continue exactly where your previous message stops. Do not repeat any of it, do not comment on the "
    "interruption, and do not add a preamble: output only the continuation."
)
CHARS_PER_TOKEN = 4


@dataclass(slots=True)
class Committed:
    """An upstream stream that has produced its first content; owned by the relay from here on."""

    stack: contextlib.AsyncExitStack
    decoder: Any
    rest: AsyncIterator[bytes]
    first: list[dict[str, Any]]

    async def aclose(self) -> None:
        await self.stack.aclose()


def has_content(chunk: Mapping[str, Any]) -> bool:
    """True for a chunk that commits a stream: text, a tool call, a refusal, a finish reason, or usage."""
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return bool(chunk.get("usage")) and not chunk.get("choices")


def refused(choices: Any) -> bool:
    """A provider refusal that arrived as an answer: finish_reason ``content_filter`` (from any provider)."""
    return bool(choices) and any(c.get("finish_reason") == "content_filter" for c in choices)


def refusal(answer: Any) -> UpstreamError:
    return UpstreamError(ErrorKind.POLICY_BLOCKED, "the provider refused: finish_reason content_filter", status=200,
                         code="content_filter", answer=answer)


def continuation_body(body: Mapping[str, Any], text: str, prefill: bool) -> dict[str, Any]:
    """The original request plus the answer so far: as the last assistant turn (prefill), or followed by the
    continue instruction for models that take no prefill."""
    messages = [*body["messages"], {"role": "assistant", "content": text}]
    if not prefill:
        messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    return {**body, "messages": messages}


async def open_stream(gw: Gateway, adapter: Any, t: Timeouts, body: Mapping[str, Any],
                      first_token: float) -> Committed:
    """Open an upstream stream and read until its first content event (the engine's ``call`` for streams)."""
    stack = contextlib.AsyncExitStack()
    try:
        first: list[dict[str, Any]] = []
        limit = min(first_token, t.total)
        try:
            # The limit covers connecting and the response headers too: an upstream that accepts the request and
            # says nothing is as slow as one that sends headers and then nothing.
            async with asyncio.timeout(limit):
                rs = await stack.enter_async_context(gw.upstream.open_stream(adapter.build_request(body, True), t))
                if rs.status >= 300:
                    raise adapter.classify_error(rs.status, rs.headers, await rs.read())
                decoder = adapter.stream_decoder(body)
                rest = rs.chunks()
                while True:
                    data = await anext(rest, None)
                    if data is None:
                        first.extend(decoder.close())
                        break
                    got = decoder.feed(data)
                    first.extend(got)
                    if any(has_content(c) for c in got):
                        break
        except TimeoutError:
            raise UpstreamError(ErrorKind.TRANSIENT, f"no first token within {limit:g}s",
                                code="first_token_timeout") from None
        committed = Committed(stack, decoder, rest, first)
        if any(refused(c.get("choices")) for c in first):
            raise refusal(committed)  # still open: returned as is (on_refusal: return) or closed by the engine
        return committed
    except BaseException:
        await stack.aclose()
        raise


@dataclass(slots=True)
class Outcome:
    """How a routed request ended, for the request record."""

    status: int
    served: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: str | None = None


class StreamRelay:
    """One streaming request: commit, forward, continue, finish. Not shared between requests."""

    def __init__(self, gw: Gateway, runtime: Runtime, body: dict[str, Any], choice: RouteChoice, ctx: RunContext,
                 send: Any, resp_id: str, start: float) -> None:
        self.gw = gw
        self.runtime = runtime
        self.body = body
        self.choice = choice
        self.ctx = ctx
        self.send = send
        self.resp_id = resp_id
        self.start = start
        self.timeouts = choice.route.timeouts or runtime.config.failover.timeouts
        so = body.get("stream_options")
        self.include_usage = bool(isinstance(so, dict) and so.get("include_usage"))
        self.served: list[str] = []
        self.text: list[str] = []  # content streamed to the client so far (choice 0)
        self.model_chars = 0  # characters streamed by the current model
        self.in_tool_call = False
        self.finished = False
        self.usage_seen = False
        self.usages: list[dict[str, Any]] = []
        self.first_sent = False

    # -- the engine's calls ------------------------------------------------------------------------------
    async def _call(self, adapter: Any, t: Timeouts) -> Committed:
        return await open_stream(self.gw, adapter, t, self.body, t.first_token or self.timeouts.first_token)

    async def _call_continue(self, adapter: Any, t: Timeouts) -> Committed:
        body = continuation_body(self.body, "".join(self.text), adapter.target.prefill)
        return await open_stream(self.gw, adapter, t, body, t.first_token or self.timeouts.first_token)

    # -- the whole stream --------------------------------------------------------------------------------
    async def run(self, headers: Callable[[], Headers], watch: Any) -> Outcome:
        """``headers`` is called once the attempts that lead to the answer (or the error) are known."""
        gw, ctx, rt = self.gw, self.ctx, self.runtime
        try:
            committed = await gw.engine.run(ctx, self.choice.chain, rt.adapters, rt.config.failover, self._call,
                                            self.timeouts)
        except GatewayError as e:
            watch.close()
            await send_error(self.send, e, headers())
            return Outcome(e.status, error=e.code or e.type)
        await self.send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers()]})
        while True:
            model = ctx.served or ""
            self.served.append(model)
            self.model_chars = 0
            reported = len(self.usages)
            cut = await self._relay(committed, model)
            if cut is None:
                if len(self.usages) == reported:  # this model reported no usage: count what it streamed
                    self._estimate_usage()
                watch.close()
                await self.send({"type": "http.response.body", "body": self._closing(), "more_body": False})
                return Outcome(200, self.served, self._total_usage())
            committed = await self._continue(cut, model)
            if committed is None:
                message = f"upstream stream from {model} failed after it started: {redact(cut.message, rt.secrets)}"
                err = GatewayError(502, message, type="upstream_error", code="stream_interrupted")
                watch.close()
                await self.send({"type": "http.response.body", "body": b"data: " + err.body_bytes() + b"\n\n",
                                 "more_body": False})
                return Outcome(502, self.served, self._total_usage(), "stream_interrupted")

    async def _relay(self, committed: Committed, model: str) -> UpstreamError | None:
        """Forward one model's stream. Returns None when the answer is complete, else the cut."""
        gw = self.gw
        decoder = committed.decoder
        try:
            await self._emit(committed.first, model)
            if self._complete():
                return None
            rest = committed.rest
            loop = asyncio.get_running_loop()
            target = self.runtime.targets.get(model)
            idle = target.timeouts.get("idle", self.timeouts.idle) if target is not None else self.timeouts.idle
            last = loop.time()
            while True:
                try:
                    async with asyncio.timeout(max(last + idle - loop.time(), 0.001)):
                        data = await anext(rest, None)
                except TimeoutError:
                    raise UpstreamError(ErrorKind.TRANSIENT, f"upstream stalled: no content for {idle:g}s",
                                        code="stream_stall") from None
                chunks = decoder.feed(data) if data is not None else decoder.close()
                if await self._emit(chunks, model):
                    last = loop.time()
                if data is None or self._complete():
                    return None
        except UpstreamError as e:
            if self.finished:  # the answer was complete; a failure after it changes nothing
                return None
            target = self.runtime.targets.get(model)
            e.message = redact(e.message, self.runtime.secrets)  # upstream text entering gateway state (see engine)
            if target is not None:
                self.ctx.attempts.append(Attempt(target.name, target.provider, target.vendor, e.kind.value, e.status,
                                                 message=e.message))
                gw.state.record_failure(target.name, e.kind, e.retry_after, e.message)
            self._estimate_usage()
            return e
        finally:
            if model and decoder.malformed:
                gw.metrics.malformed.labels(model).inc(decoder.malformed)
            await committed.aclose()

    async def _continue(self, cut: UpstreamError, model: str) -> Committed | None:
        """Find a model to continue the answer; None when the stream must end with the cut."""
        if self.choice.route.on_stream_cut != "continue" or self.in_tool_call or not self.text:
            return None
        chain = self.choice.chain
        rest = chain[chain.index(model) + 1:] if model in chain else ()
        rest = tuple(m for m in rest if m not in self.served)
        if not rest:
            return None
        self.ctx.continuation = True
        if self.ctx.precheck is None:
            # The request started with no denial or withdrawal that could apply, so it got no precheck (the cheap
            # path). A continuation may come minutes later: an operator withdrawal made since must still hold.
            check = self.gw.withdrawals.check

            def precheck(m: str) -> tuple[str, str] | None:
                e = check(m)
                return None if e is None else (e.outcome, e.reason)

            self.ctx.precheck = precheck
        rt = self.runtime
        try:
            return await self.gw.engine.run(self.ctx, rest, rt.adapters, rt.config.failover, self._call_continue,
                                            self.timeouts)
        except GatewayError:
            return None

    # -- framing -----------------------------------------------------------------------------------------
    async def _emit(self, chunks: list[dict[str, Any]], model: str) -> bool:
        """Send what the client should see of these chunks; True if any carried content."""
        if not chunks:
            return False
        parts: list[bytes] = []
        progress = False
        continued = len(self.served) > 1
        for c in chunks:
            choices = c.get("choices")
            usage = c.get("usage")
            if not choices:
                if usage:  # the upstream's usage chunk: summed and sent by the gateway at the end
                    self.usages.append(usage)
                    self.usage_seen = True
                    progress = True
                continue
            if usage is not None:
                if usage:  # some servers put the usage on the last content chunk
                    self.usages.append(usage)
                    self.usage_seen = True
                c.pop("usage", None)
            keep = True
            for ch in choices:
                delta = ch.get("delta") or {}
                content = delta.get("content")
                if content:
                    if ch.get("index", 0) == 0:
                        self.text.append(content)
                        self.model_chars += len(content)
                    progress = True
                if delta.get("tool_calls"):
                    self.in_tool_call = True
                    progress = True
                if ch.get("finish_reason"):
                    self.finished = True
                    self.in_tool_call = False
                    progress = True
                if continued and not content and not delta.get("tool_calls") and not ch.get("finish_reason"):
                    keep = False  # the continuing model's role preamble: the client already has one
            if not keep:
                continue
            c["id"] = self.resp_id
            c["model"] = model
            parts.append(b"data: " + orjson.dumps(c) + b"\n\n")
        if parts:
            await self.send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
            if not self.first_sent and progress:
                self.first_sent = True
                if model:
                    self.gw.metrics.ttft.labels(model).observe(self.gw.clock() - self.start)
        return progress

    def _complete(self) -> bool:
        return self.finished and (self.usage_seen or not self.include_usage)

    def _estimate_usage(self) -> None:
        if self.model_chars:
            tokens = max(1, (self.model_chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)
            self.usages.append({"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens,
                                "estimated": True})

    def _total_usage(self) -> dict[str, Any] | None:
        if not self.usages:
            return None
        if len(self.usages) == 1:
            return dict(self.usages[0])
        prompt = sum(int(u.get("prompt_tokens") or 0) for u in self.usages)
        completion = sum(int(u.get("completion_tokens") or 0) for u in self.usages)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _closing(self) -> bytes:
        out = b""
        if self.include_usage:
            usage = self._total_usage()
            if usage is None:  # the upstream reported none: estimate from what was streamed
                tokens = max(1, (len("".join(self.text)) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)
                usage = {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}
            usage.pop("estimated", None)
            chunk: dict[str, Any] = {"id": self.resp_id, "object": "chat.completion.chunk",
                                     "created": int(time.time()), "model": self.served[-1], "choices": [],
                                     "usage": usage}
            if len(self.served) > 1:
                chunk["x_gateway"] = {"served": self.served}
            out = b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out + b"data: [DONE]\n\n"

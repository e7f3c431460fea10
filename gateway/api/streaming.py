"""Streaming that never lies.

Rules, in the order a stream meets them:

1. **Commit on first content.** An upstream is committed to the client only when it produced its first content
   event (text, a *complete* tool call, refusal, finish) within the route's ``first_token`` limit (reading up to
   that point: ``gateway.api.reading``). Before that, every failure fails over transparently through the one
   failover engine (the same loop as non-streaming requests, which read the upstream as a stream too).
2. **Tool calls are committed whole.** Tool-call deltas are held until that call's arguments are complete (the
   choice finishes, or the next call begins): a cut inside a call's arguments before any of it was sent fails
   over like any cut before the commit.
3. **Stalls are cuts.** After the first content, ``idle`` seconds without a content event (keep-alive pings do
   not count) cut the stream.
4. **Continue, don't truncate, never splice.** A committed stream that is cut (connection drop, in-band error
   event, stall, repeated undecodable bytes, end without an end marker) is continued on the next candidate when
   the route says ``on_stream_cut: continue`` (default): the same conversation plus the text streamed so far,
   as an assistant prefill for models that accept one (a model that answers a prefill with a 400 is remembered
   as unable and asked again with the instruction form), else followed by an instruction to continue. What the
   continuing model says passes the ``SpliceGuard`` first: a repetition of the text already sent (whole, or its
   tail) is dropped; a continuation that restarts the answer in other words is not forwarded and the stream
   ends with ``stream_interrupted``. A cut after a tool call was sent is not continued. When no model can
   continue, the stream ends with the *original* failure.
5. **Never a truncated success.** A stream that did not complete ends with ``data: {"error": ...}`` and no
   ``[DONE]``: the openai SDK raises ``APIError``.
6. **Finish promptly.** Once the finish reason (and the usage, when asked for) has arrived, the answer is
   complete: a missing ``[DONE]``/``message_stop`` or a later failure does not hold or spoil it.
7. **Honest usage.** With ``stream_options.include_usage`` the final usage chunk is the sum over the models that
   produced the answer; a model cut before it reported usage is counted by an estimate of what it streamed
   (4 characters a token). Attempts that produced nothing the client received are not billed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gateway.api.asgi import SSE_HEADERS, Headers, send_error
from gateway.api.reading import (  # noqa: F401 (has_content, refused, refusal, assemble: re-exported)
    CHARS_PER_TOKEN,
    Committed,
    assemble,
    has_content,
    open_stream,
    refusal,
    refused,
)
from gateway.api.splice import Restarted, SpliceGuard
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failover.attempts import Attempt
from gateway.failover.attempts import Outcome as AttemptOutcome  # this module's Outcome is the request's
from gateway.failover.candidates import continuation_chain, withdrawals_only
from gateway.failover.engine import RunContext
from gateway.failover.table import PREFILL_REJECTED
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


def continuation_body(body: Mapping[str, Any], text: str, prefill: bool) -> dict[str, Any]:
    """The original request plus the answer so far: as the last assistant turn (prefill), or followed by the
    continue instruction for models that take no prefill."""
    messages = [*body["messages"], {"role": "assistant", "content": text}]
    if not prefill:
        messages.append({"role": "user", "content": CONTINUE_INSTRUCTION})
    return {**body, "messages": messages}


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
        self.tool_call_sent = False  # a (complete) tool call reached the client: not continuable
        n = body.get("n")
        self.choices = n if isinstance(n, int) and n > 1 else 1  # the answer is complete when all have finished
        self.finished_choices: set[int] = set()
        self.finished = False
        self.usage_seen = False
        self.usages: list[dict[str, Any]] = []
        self.first_sent = False
        self.guard: SpliceGuard | None = None  # the current continuation's splice check

    # -- the engine's calls ------------------------------------------------------------------------------
    async def _call(self, adapter: Any, t: Timeouts) -> Committed:
        return await open_stream(self.gw, adapter, t, self.body, t.first_token or self.timeouts.first_token)

    async def _call_continue(self, adapter: Any, t: Timeouts) -> Committed:
        return await continue_stream(self.gw, adapter, t, self.body, "".join(self.text),
                                     t.first_token or self.timeouts.first_token)

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
            committed = None if isinstance(cut, _Spliced) else await self._continue(cut, model)
            if committed is None:
                what = "restarted the answer instead of continuing it" if isinstance(cut, _Spliced) else \
                    f"failed after it started: {redact(cut.message, rt.secrets)}"
                err = GatewayError(502, f"upstream stream from {model} {what}", type="upstream_error",
                                   code="stream_interrupted")
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
            async for batch in committed.batches():
                await self._emit(batch, model)
                if self._complete():
                    return None
            return None
        except Restarted:
            # On the attempt list (the client sees stream_interrupted), but no mark on the model's health: it
            # answered, it just did not continue.
            target = self.runtime.targets.get(model)
            if target is not None:
                self.ctx.attempts.append(Attempt(target.name, target.provider, target.vendor,
                                                 AttemptOutcome.TRANSIENT,
                                                 message="restarted the answer instead of continuing it"))
            return _Spliced(ErrorKind.TRANSIENT, "continuation restarted the answer", code="restarted")
        except UpstreamError as e:
            if self.finished:  # the answer was complete; a failure after it changes nothing
                return None
            target = self.runtime.targets.get(model)
            if target is not None:
                gw.engine.record_failure(self.ctx, target, e)
            self._estimate_usage()
            return e
        finally:
            if model and decoder.malformed:
                gw.metrics.malformed.labels(model).inc(decoder.malformed)
            await committed.aclose()

    async def _continue(self, cut: UpstreamError, model: str) -> Committed | None:
        """Find a model to continue the answer; None when the stream must end with the cut."""
        if self.choice.route.on_stream_cut != "continue" or self.tool_call_sent or not self.text:
            return None
        if self.choices > 1:  # a continuation carries one choice's text: the others would be spliced
            return None
        rest = continuation_chain(self.choice.chain, model, self.served)
        if not rest:
            return None
        ctx = self.ctx
        ctx.continuation = True
        if ctx.precheck is None:  # a request built without the candidate filter (tests): withdrawals still hold
            ctx.precheck = withdrawals_only(self.gw.withdrawals)
        # A continuation gets a fresh deadline: the original one bounded the wait for the first commit, and a
        # long answer may well outlast it; each attempt is still bounded by first_token.
        ctx.deadline = self.gw.clock() + self.timeouts.total
        rt = self.runtime
        try:
            committed = await self.gw.engine.run(ctx, rest, rt.adapters, rt.config.failover, self._call_continue,
                                                 self.timeouts)
        except GatewayError:
            return None
        self.guard = SpliceGuard("".join(self.text)) if committed is not None else None
        return committed

    # -- framing -----------------------------------------------------------------------------------------
    async def _emit(self, chunks: list[dict[str, Any]], model: str) -> bool:
        """Send what the client should see of these chunks; True if any carried content."""
        if not chunks:
            return False
        parts: list[bytes] = []
        progress = False
        continued = len(self.served) > 1
        guard = self.guard if continued else None
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
                first = ch.get("index", 0) == 0
                if guard is not None and first and (content or ch.get("finish_reason") or delta.get("tool_calls")):
                    # The continuation's text passes the splice check; a finish or a tool call ends the opening.
                    fed = guard.feed(content) if content else ""
                    if ch.get("finish_reason") or delta.get("tool_calls"):
                        fed += guard.finish()
                    if fed != (content or ""):
                        delta = ch["delta"] = {**delta, "content": fed or None}
                        if not fed and not delta.get("tool_calls") and not ch.get("finish_reason"):
                            progress = True
                            keep = False
                            continue
                    content = fed
                if content:
                    if first:
                        self.text.append(content)
                        self.model_chars += len(content)
                    progress = True
                if delta.get("tool_calls"):
                    self.tool_call_sent = True
                    progress = True
                if ch.get("finish_reason"):
                    self.finished_choices.add(ch.get("index", 0))
                    self.finished = len(self.finished_choices) >= self.choices
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


class _Spliced(UpstreamError):
    """The continuation did not continue (it restarted the answer): nothing of it was forwarded."""


async def continue_stream(gw: Gateway, adapter: Any, t: Timeouts, body: Mapping[str, Any], text: str,
                          first_token: float) -> Committed:
    """The continuation call: prefill where the model takes one (and has not rejected one before), else the
    instruction form. A 400 on a prefill marks the model as unable and says so (``PREFILL_REJECTED``): the
    decision table then asks the same model again at once, with the instruction form."""
    name = adapter.target.name
    prefill = adapter.target.prefill and not gw.state.prefill_rejected(name)
    try:
        return await open_stream(gw, adapter, t, continuation_body(body, text, prefill), first_token)
    except UpstreamError as e:
        if prefill and e.kind is ErrorKind.BAD_REQUEST and e.status == 400:
            gw.state.reject_prefill(name)
            raise UpstreamError(ErrorKind.BAD_REQUEST, f"prefill rejected: {e.message}", status=400,
                                code=PREFILL_REJECTED) from e
        raise

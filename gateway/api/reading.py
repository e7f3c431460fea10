"""Reading one upstream stream: up to its commit point (``open_stream``), then batch by batch (``Committed``), or
to its end as one non-streaming answer (``assemble``).

The commit point is the first *releasable* content: text, a refusal, a finish, or a complete tool call.
``ToolCallGate`` holds tool-call deltas until the call's arguments are complete (the choice finishes, or the next
call begins), so a cut inside a call before that is a cut before the commit and fails over transparently.
``first_token`` bounds the wait for the first content event; ``idle`` each later gap between content events.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import NativeBody
from gateway.upstream import Timeouts

if TYPE_CHECKING:
    from gateway.app import Gateway

CHARS_PER_TOKEN = 4
DRAIN_SECONDS = 0.05  # after a complete answer, how long the rest of the upstream body may take to arrive


def has_content(chunk: Mapping[str, Any]) -> bool:
    """True for a chunk that carries content: text, a tool call, a refusal, a finish reason, or usage."""
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


class ToolCallGate:
    """Holds tool-call chunks until the call they belong to is complete: its choice finishes, or the next call
    (another index) begins. Everything else passes in order (held chunks keep their place before it)."""

    __slots__ = ("held", "_open")

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []
        self._open: tuple[int, int] | None = None

    def feed(self, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.held and not any(_calls(c) for c in chunks):
            return chunks  # the common case: no tool call in sight
        out: list[dict[str, Any]] = []
        for c in chunks:
            keys = _calls(c)
            finished = any(ch.get("finish_reason") for ch in c.get("choices") or ())
            if keys:
                if self._open is not None and any(k != self._open for k in keys):
                    out.extend(self.held)  # the next call begins: the held one is complete
                    self.held = []
                self._open = keys[-1]
                self.held.append(c)
                if finished:
                    self.release(out)
                continue
            if self.held and (finished or _has_text(c)):
                self.release(out)
                out.append(c)
            elif self.held:
                self.held.append(c)
            else:
                out.append(c)
        return out

    def release(self, out: list[dict[str, Any]]) -> None:
        out.extend(self.held)
        self.held = []
        self._open = None


def _calls(chunk: Mapping[str, Any]) -> list[tuple[int, int]]:
    keys = []
    for ch in chunk.get("choices") or ():
        for tc in (ch.get("delta") or {}).get("tool_calls") or ():
            keys.append((ch.get("index", 0), tc.get("index", 0) if isinstance(tc, dict) else 0))
    return keys


def _has_text(chunk: Mapping[str, Any]) -> bool:
    return any((ch.get("delta") or {}).get("content") for ch in chunk.get("choices") or ())


@dataclass(slots=True)
class Committed:
    """An upstream stream that has produced its first releasable content; owned by its reader from here on."""

    stack: contextlib.AsyncExitStack
    decoder: Any
    rest: AsyncIterator[bytes]
    first: list[dict[str, Any]]
    gate: ToolCallGate
    idle: float
    ended: bool = False  # the upstream's bytes are all read (``first`` holds the last of them)
    until: float = math.inf  # loop time by which the whole stream must be read (non-streaming: the deadline)

    async def aclose(self) -> None:
        await self.stack.aclose()

    async def drain(self) -> None:
        """The answer is complete: read what little the upstream still sends (``[DONE]``, the end of the chunked
        body) so the connection goes back to the pool instead of being closed; a few ms at most, never a wait."""
        if self.ended:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_SECONDS):
                async for _ in self.rest:
                    pass
                self.ended = True

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The chunks after ``first``, as they may be released; ``UpstreamError`` on a cut, on ``idle`` seconds
        without a content event, at ``until``, or when the stream ends inside a held tool call."""
        if self.ended:
            return
        loop = asyncio.get_running_loop()
        idle, until = self.idle, self.until
        last = loop.time()
        rest, decoder, gate = self.rest, self.decoder, self.gate
        while True:
            stall_at = last + idle
            try:
                async with asyncio.timeout(max(min(stall_at, until) - loop.time(), 0.001)):
                    data = await anext(rest, None)
            except TimeoutError:
                if stall_at > until:
                    raise UpstreamError(ErrorKind.TRANSIENT, "the answer was not complete by the request's deadline",
                                        code="deadline") from None
                raise UpstreamError(ErrorKind.TRANSIENT, f"upstream stalled: no content for {idle:g}s",
                                    code="stream_stall") from None
            chunks = decoder.feed(data) if data is not None else decoder.close()
            if any(has_content(c) for c in chunks):
                last = loop.time()
            out = gate.feed(chunks)
            if data is None:
                if gate.held:
                    raise UpstreamError(ErrorKind.TRANSIENT, "upstream stream ended inside a tool call")
                self.ended = True
                yield out
                return
            if out:
                yield out


async def open_stream(gw: Gateway, adapter: Any, t: Timeouts, body: Mapping[str, Any],
                      first_token: float, refusals: bool = True, whole: bool = False) -> Committed:
    """Open an upstream stream and read until its first releasable content (the engine's ``call`` for streams).

    ``first_token`` bounds the time to the first content event (connecting and the response headers included:
    an upstream that accepts the request and says nothing is as slow as one that sends headers and then
    nothing); after it, ``t.idle`` bounds each gap between content events until a held tool call is complete.
    ``refusals``: raise ``refusal(committed)`` when the first content is a refusal (the non-streaming path checks
    the assembled answer instead). ``whole``: ``t.total`` also bounds reading the rest of the stream (a
    non-streaming answer is only of use complete, so the request's deadline bounds all of it).
    """
    stack = contextlib.AsyncExitStack()
    try:
        first: list[dict[str, Any]] = []
        gate = ToolCallGate()
        limit = min(first_token, t.total)
        loop = asyncio.get_running_loop()
        until = loop.time() + t.total if whole else math.inf
        ended = False
        seen = False
        try:
            async with asyncio.timeout(limit) as tm:
                rs = await stack.enter_async_context(gw.upstream.open_stream(adapter.build_request(body, True), t))
                if rs.status >= 300:
                    raise adapter.classify_error(rs.status, rs.headers, await rs.read())
                decoder = adapter.stream_decoder(body)
                rest = rs.chunks()
                while True:
                    data = await anext(rest, None)
                    got = decoder.feed(data) if data is not None else decoder.close()
                    content = any(has_content(c) for c in got)
                    if content:
                        seen = True
                        tm.reschedule(min(loop.time() + t.idle, until))
                    out = gate.feed(got)
                    first.extend(out)
                    if data is None:
                        if gate.held:
                            raise UpstreamError(ErrorKind.TRANSIENT, "upstream stream ended inside a tool call")
                        ended = True
                        break
                    if content and (out is got or any(has_content(c) for c in out)):
                        break
        except TimeoutError:
            if seen and loop.time() >= until:
                raise UpstreamError(ErrorKind.TRANSIENT, "the answer was not complete by the request's deadline",
                                    code="deadline") from None
            if seen:
                raise UpstreamError(ErrorKind.TRANSIENT, f"upstream stalled: no content for {t.idle:g}s",
                                    code="stream_stall") from None
            raise UpstreamError(ErrorKind.TRANSIENT, f"no first token within {limit:g}s",
                                code="first_token_timeout") from None
        committed = Committed(stack, decoder, rest, first, gate, t.idle, ended, until)
        if refusals and any(refused(c.get("choices")) for c in first):
            raise refusal(committed)  # still open: returned as is (on_refusal: return) or closed by the engine
        return committed
    except BaseException:
        await stack.aclose()
        raise


# -- non-streaming: one answer assembled from the upstream's stream ---------------------------------------------
def stream_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A non-streaming request as the stream it is sent upstream as (with usage asked for). A vendor-native
    original (``NativeBody``) is kept, so the native passthrough holds for non-streaming clients too."""
    out = {**body, "stream": True, "stream_options": {"include_usage": True}}
    # ``thinking`` blocks only reach a streaming client: a non-streaming one could not send them back.
    return body.rebased(out, drop_native=("thinking",)) if isinstance(body, NativeBody) else out


async def assemble(committed: Committed) -> dict[str, Any]:
    """Read a committed stream to its end and return the ``chat.completion`` a non-streaming call would have."""
    acc = _Assembler()
    try:
        acc.add(committed.first)
        if not acc.complete():
            async for batch in committed.batches():
                acc.add(batch)
                if acc.complete():
                    break
        await committed.drain()
    finally:
        await committed.aclose()
    return acc.result()


class _Assembler:
    __slots__ = ("choices", "usage", "meta", "finished")

    def __init__(self) -> None:
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.meta: dict[str, Any] = {}
        self.finished: set[int] = set()

    def add(self, chunks: list[dict[str, Any]]) -> None:
        for c in chunks:
            if not self.meta:
                self.meta = {k: c[k] for k in ("id", "created", "model", "system_fingerprint") if k in c}
            usage = c.get("usage")
            if usage:
                self.usage = usage
            for ch in c.get("choices") or ():
                i = ch.get("index", 0)
                st = self.choices.get(i)
                if st is None:
                    st = self.choices[i] = {"text": [], "refusal": [], "calls": {}, "logprobs": None,
                                            "finish_reason": None}
                delta = ch.get("delta") or {}
                if delta.get("content"):
                    st["text"].append(delta["content"])
                if delta.get("refusal"):
                    st["refusal"].append(delta["refusal"])
                for tc in delta.get("tool_calls") or ():
                    _add_call(st["calls"], tc)
                lp = ch.get("logprobs")
                if isinstance(lp, dict):
                    agg = st["logprobs"] = st["logprobs"] or {}
                    for key, val in lp.items():
                        if isinstance(val, list):
                            agg.setdefault(key, []).extend(val)
                if ch.get("finish_reason"):
                    st["finish_reason"] = ch["finish_reason"]
                    self.finished.add(i)

    def complete(self) -> bool:
        return bool(self.choices) and len(self.finished) == len(self.choices) and self.usage is not None

    def result(self) -> dict[str, Any]:
        choices = []
        completion_chars = 0
        for i in sorted(self.choices):
            st = self.choices[i]
            text = "".join(st["text"])
            completion_chars += len(text)
            message: dict[str, Any] = {"role": "assistant", "content": text if text or not st["calls"] else None,
                                       "refusal": "".join(st["refusal"]) or None}
            if st["calls"]:
                message["tool_calls"] = [st["calls"][k] for k in sorted(st["calls"])]
                completion_chars += sum(len(c["function"]["arguments"]) for c in message["tool_calls"])
            choices.append({"index": i, "message": message, "logprobs": st["logprobs"],
                            "finish_reason": st["finish_reason"] or "stop"})
        usage = self.usage
        if usage is None:  # an upstream that ignores include_usage: estimate, as for streams
            tokens = max(1, (completion_chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)
            usage = {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}
        out: dict[str, Any] = {"id": self.meta.get("id", ""), "object": "chat.completion",
                               "created": self.meta.get("created") or int(time.time()),
                               "model": self.meta.get("model", ""), "choices": choices, "usage": usage}
        if self.meta.get("system_fingerprint") is not None:
            out["system_fingerprint"] = self.meta["system_fingerprint"]
        return out


def _add_call(calls: dict[int, dict[str, Any]], tc: Any) -> None:
    if not isinstance(tc, dict):
        return
    k = tc.get("index", len(calls))
    fn = tc.get("function") or {}
    call = calls.get(k)
    if call is None:
        call = calls[k] = {"id": tc.get("id") or "", "type": "function",
                           "function": {"name": fn.get("name") or "", "arguments": ""}}
    elif tc.get("id") and not call["id"]:
        call["id"] = tc["id"]
    if fn.get("name") and not call["function"]["name"]:
        call["function"]["name"] = fn["name"]
    if fn.get("arguments"):
        call["function"]["arguments"] += fn["arguments"]

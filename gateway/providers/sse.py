"""A sans-IO parser for ``text/event-stream`` (the WHATWG rules we need: LF, CRLF or CR line ends,
``event``/``data`` fields, multi-line data, comments, dispatch on a blank line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import ErrorKind, UpstreamError


@dataclass(slots=True)
class SSEEvent:
    event: str
    data: str


class SSEParser:
    """Feed bytes, get complete events. Incomplete trailing input is kept for the next feed."""

    __slots__ = ("_buf", "_event", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk
        if b"\r" in buf:
            # A CR at the very end may be the first half of a CRLF split across chunks: keep it back.
            hold = buf.endswith(b"\r")
            if hold:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold:
                buf += b"\r"
        lines = buf.split(b"\n")
        self._buf = lines.pop()  # the last, unterminated piece
        out: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data or self._event:
                    out.append(SSEEvent(self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if raw.startswith(b":"):
                continue
            name, sep, value = raw.partition(b":")
            if sep and value.startswith(b" "):
                value = value[1:]
            text = value.decode("utf-8", "replace")
            if name == b"data":
                self._data.append(text)
            elif name == b"event":
                self._event = text
        return out

    def close(self) -> list[SSEEvent]:
        """End of input: a final event without its blank line is still dispatched (servers do that)."""
        out = self.feed(b"\n\n") if (self._buf.strip() or self._data) else []
        self._buf = b""
        return out


class SSEStreamDecoder:
    """The skeleton every SSE-framed stream decoder shares: bytes -> ``SSEEvent`` s -> the provider's ``_events``
    (OpenAI chunk dicts); at end of input ``close`` flushes, raises ``UpstreamError(transient)`` unless
    ``_complete()`` says the provider's end condition was met, and appends ``_tail()`` (e.g. a usage chunk).
    ``malformed`` / ``_bad_run`` are maintained through ``gateway.providers.common.skip_malformed``."""

    __slots__ = ("_sse", "malformed", "_bad_run")
    INCOMPLETE = "upstream stream ended before it was complete"

    def __init__(self) -> None:
        self._sse = SSEParser()
        self.malformed = 0
        self._bad_run = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._events(self._sse.feed(data))

    def close(self) -> list[dict[str, Any]]:
        out = self._events(self._sse.close())
        if not self._complete():
            raise UpstreamError(ErrorKind.TRANSIENT, self.INCOMPLETE)
        return out + self._tail()

    def _events(self, events: list[SSEEvent]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError

    def _tail(self) -> list[dict[str, Any]]:
        return []

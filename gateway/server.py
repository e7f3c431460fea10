"""The HTTP/1.1 protocol the gateway serves with: uvicorn's httptools protocol plus the connection bounds it lacks
(``limits.*``, read live from the running config, so a reload applies to new connections):

* ``max_connections``: a connection past it gets ``503`` with ``Retry-After`` and is closed at once, before a byte
  of its request is read.
* ``keepalive_timeout``: a connection with no request in progress that receives nothing for this long is closed
  (uvicorn arms this only after a response; here also when the connection opens).
* ``header_timeout``: from a request's first byte to the end of its headers. A client trickling one header byte at a
  time is answered ``408`` and closed (uvicorn resets its keep-alive timer on every byte received).
* ``body_timeout``: from the end of the headers to the end of the body; past it the connection is closed (the
  handler sees a disconnect).
* ``client_stall_timeout``: a client whose socket accepts no byte for this long while a response is being written
  (a never-reading stream client) is dropped; the handler sees a disconnect and closes its upstream stream.

On graceful shutdown it hands the gateway its drain deadline (``GatewayApp.drain``).

Timers are armed per connection state change (never per byte or per chunk): nothing is added to the request path.
Used by ``gateway serve`` and ``gateway.testing.GatewayThread`` as ``http="gateway.server:GatewayHttpProtocol"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "gateway.server:GatewayHttpProtocol"
RETRY_AFTER = 1  # seconds, on the connection-limit 503


def _canned(status: bytes, code: str, message: str, extra: bytes = b"") -> bytes:
    body = orjson.dumps({"error": {"message": message, "type": "server_error" if status.startswith(b"5")
                                   else "invalid_request_error", "param": None, "code": code}})
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\nconnection: close\r\n" + extra + b"\r\n" + body)


TOO_MANY_CONNECTIONS = _canned(b"503 Service Unavailable", "too_many_connections",
                               "The gateway is holding its maximum number of connections; retry shortly.",
                               b"retry-after: %d\r\n" % RETRY_AFTER)
HEADER_TIMEOUT = _canned(b"408 Request Timeout", "header_timeout", "The request headers took too long to arrive.")


def _gateway_app(app: Any) -> Any:
    """The ``GatewayApp`` behind uvicorn's middleware wrappers (an object with ``.gateway``), or None."""
    for _ in range(8):
        if hasattr(app, "gateway"):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class GatewayHttpProtocol(HttpToolsProtocol):
    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._gateway_app = _gateway_app(self.app)
        self._limits = self._gateway_app.gateway.runtime.config.limits if self._gateway_app is not None else None
        if self._limits is not None:
            self.timeout_keep_alive = self._limits.keepalive_timeout
        self._deadline: asyncio.TimerHandle | None = None  # header or body timer
        self._stall: asyncio.TimerHandle | None = None

    # -- connection ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        lim = self._limits
        if lim is None:
            return
        if len(self.connections) > lim.max_connections:
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        # uvicorn arms the keep-alive timer only after a response: an idle new connection would be held forever.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._cancel_stall()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """Graceful shutdown began: tell the gateway its drain deadline (it ends streams still running just before
        it with ``stream_interrupted``, instead of uvicorn's bare cancellation at it)."""
        timeout = self.config.timeout_graceful_shutdown
        if timeout is not None and self._gateway_app is not None and hasattr(self._gateway_app, "drain"):
            self._gateway_app.drain(timeout)  # no timeout: uvicorn waits for every request, and so does the gateway
        super().shutdown()

    # -- request phases -----------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._limits is not None:
            self._arm(self._limits.header_timeout, self._header_timed_out)

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()
        if self._limits is not None and self.cycle is not None and self.cycle.more_body:
            self._arm(self._limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    # -- write side ---------------------------------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._limits is not None and self._stall is None:
            self._stall = self.loop.call_later(self._limits.client_stall_timeout, self._stalled)

    def resume_writing(self) -> None:
        self._cancel_stall()
        super().resume_writing()

    # -- timers -------------------------------------------------------------------------------------------
    def _arm(self, seconds: float, handler: Any) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, handler)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _header_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:  # nothing of ours is being written
                self.transport.write(HEADER_TIMEOUT)
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.abort()  # the handler is still reading: it sees a disconnect

    def _stalled(self) -> None:
        self._stall = None
        if not self.transport.is_closing():
            self.transport.abort()  # close() would wait for the unread buffer to drain

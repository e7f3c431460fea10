"""The only code that does network I/O to providers.

Why aiohttp and not httpx: measured on this 2-core machine with a minimal proxy in front of a fast canned
upstream at 32 connections, httpx.AsyncClient gave ~500 req/s and aiohttp's ClientSession ~5,300 req/s
(see README, "Why aiohttp"). The choice stays behind this module: nothing else imports aiohttp on the
request path.

Foreign exceptions are mapped to ``UpstreamError(transient)`` in one table (``_EXC_MAP``) and chained.

Memory is bounded per upstream response, whatever the client downstream does:

* a response body larger than ``max_response_bytes`` (a whole non-streaming answer, an error body, or the bytes of
  one stream) is a transient failure of that attempt (``response_too_large``), so the request fails over;
* streams are read in pieces of at most ``STREAM_CHUNK`` bytes (each is decoded as it comes);
* an upstream socket's kernel receive buffer is ``UPSTREAM_RCVBUF`` and aiohttp buffers at most about twice
  ``READ_BUFSIZE`` before it stops reading: when a client stops reading its stream, the gateway stops reading the
  upstream within those bounds and the provider sees backpressure. Without them loopback autotuning let each
  abandoned stream queue megabytes, so the upstream went on generating whole answers nobody would read, and
  requests to its other models timed out behind them (the "pool poisoning" of issue 12).

Abandoned streams are released by closing their connection (``open_stream``'s exit), never returned to the pool
half-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import UpstreamRequest

STREAM_CHUNK = 16 * 1024  # bytes handed to a stream decoder at a time
READ_BUFSIZE = 64 * 1024  # aiohttp's per-response read buffer (it pauses the socket at about twice this)
UPSTREAM_RCVBUF = 256 * 1024  # SO_RCVBUF of upstream sockets (fixed: no autotuning to megabytes)
DEFAULT_MAX_RESPONSE = 32 * 1024 * 1024

# Most specific first: the first isinstance() hit wins.
_EXC_MAP: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorError, "cannot connect to upstream"),
    (aiohttp.ServerDisconnectedError, "upstream closed the connection"),
    (aiohttp.ClientPayloadError, "upstream response was cut off"),
    (aiohttp.ServerTimeoutError, "upstream timed out"),
    (asyncio.TimeoutError, "upstream timed out"),
    (aiohttp.ClientConnectionError, "connection to upstream failed"),
    (aiohttp.ClientError, "upstream HTTP error"),
    (ConnectionError, "connection to upstream failed"),
)


def map_exception(exc: BaseException) -> UpstreamError:
    for exc_type, message in _EXC_MAP:
        if isinstance(exc, exc_type):
            return UpstreamError(ErrorKind.TRANSIENT, message, code=type(exc).__name__)
    return UpstreamError(ErrorKind.TRANSIENT, "upstream request failed", code=type(exc).__name__)


@dataclass(slots=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``total`` is what is left of the request's deadline when the attempt starts."""

    connect: float
    idle: float
    total: float
    first_token: float | None = None  # streams: the limit for the first content event (None: the route's)


def too_large(limit: int) -> UpstreamError:
    return UpstreamError(ErrorKind.TRANSIENT, f"upstream response is larger than limits.max_response_bytes "
                                              f"({limit} bytes)", code="response_too_large")


async def read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or ``too_large`` as soon as it passes ``limit`` bytes (nothing more is buffered)."""
    parts: list[bytes] = []
    size = 0
    while True:
        data = await content.read(READ_BUFSIZE)
        if not data:
            return b"".join(parts)
        size += len(data)
        if size > limit:
            raise too_large(limit)
        parts.append(data)


class RawStream:
    """An open upstream response. ``chunks()`` yields body bytes as they arrive, at most ``STREAM_CHUNK`` at a
    time; past ``max_bytes`` in all it raises ``response_too_large``."""

    def __init__(self, resp: aiohttp.ClientResponse, max_bytes: int = DEFAULT_MAX_RESPONSE) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.max_bytes = max_bytes

    async def read(self) -> bytes:
        try:
            return await read_capped(self._resp.content, self.max_bytes)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
            raise map_exception(e) from e

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        size = 0
        limit = self.max_bytes
        while True:
            try:
                data = await content.read(STREAM_CHUNK)
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
                raise map_exception(e) from e
            if not data:
                return
            size += len(data)
            if size > limit:
                raise too_large(limit)
            yield data


def _reset(resp: aiohttp.ClientResponse) -> None:
    """Make the coming close of an abandoned response's connection a TCP reset: a graceful close leaves the
    upstream writing into its send buffer (megabytes on loopback) until the stream ends or a reset comes back; a
    reset tells it at once that nobody reads, so it stops generating and frees the connection."""
    conn = resp.connection
    transport = conn.transport if conn is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _upstream_socket(addr_info: tuple) -> socket.socket:  # type: ignore[type-arg]
    """aiohttp's ``socket_factory``: a non-blocking socket with a fixed receive buffer (see the module docstring)."""
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RCVBUF)
        if family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        sock.close()
        raise
    return sock


class UpstreamClient:
    """One pooled HTTP client for all providers. Create inside a running loop; ``aclose()`` on shutdown.

    The pool has no connection limit of its own (``limit=0``): with one, streams held open by clients that do not
    read filled it, and requests to every other model queued for a free connection until their deadline and
    failed as ``transient``, opening healthy models' breakers. Concurrency is bounded where a request is admitted
    instead (``limits.max_connections``, ``limits.max_streams``), with a 503 the client can retry."""

    def __init__(self, *, limit: int = 0, limit_per_host: int = 0,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE) -> None:
        self.max_response_bytes = max_response_bytes  # set again on reload (limits.max_response_bytes)
        self._connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit_per_host, keepalive_timeout=30, ttl_dns_cache=300,
            socket_factory=_upstream_socket,
        )
        self._session = aiohttp.ClientSession(
            connector=self._connector, auto_decompress=True, skip_auto_headers=("User-Agent",),
            read_bufsize=READ_BUFSIZE,
        )

    async def aclose(self) -> None:
        await self._session.close()

    def _timeout(self, t: Timeouts, stream: bool) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None if stream else max(t.total, 0.001),
            sock_connect=t.connect,
            sock_read=t.idle if stream else None,
        )

    async def send(self, req: UpstreamRequest, timeouts: Timeouts) -> RawResponse:
        try:
            async with self._session.request(
                req.method, req.url, data=req.body, headers=req.headers, timeout=self._timeout(timeouts, False)
            ) as resp:
                body = await read_capped(resp.content, self.max_response_bytes)
                return RawResponse(resp.status, resp.headers, body)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
            raise map_exception(e) from e

    @contextlib.asynccontextmanager
    async def open_stream(self, req: UpstreamRequest, timeouts: Timeouts) -> AsyncIterator[RawStream]:
        """Open a streaming request. Leaving the context (including by cancellation) closes the upstream
        connection, so an abandoned stream stops costing tokens at once."""
        try:
            resp = await self._session.request(
                req.method, req.url, data=req.body, headers=req.headers, timeout=self._timeout(timeouts, True)
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
            raise map_exception(e) from e
        try:
            yield RawStream(resp, self.max_response_bytes)
        finally:
            if not resp.content.at_eof():
                _reset(resp)
            resp.close()

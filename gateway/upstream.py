"""The only code that does network I/O to providers.

Why aiohttp and not httpx: measured on this 2-core machine with a minimal proxy in front of a fast canned
upstream at 32 connections, httpx.AsyncClient gave ~500 req/s and aiohttp's ClientSession ~5,300 req/s
(see README, "Why aiohttp"). The choice stays behind this module: nothing else imports aiohttp on the
request path.

Foreign exceptions are mapped to ``UpstreamError(transient)`` in one table (``_EXC_MAP``) and chained.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import UpstreamRequest

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


class RawStream:
    """An open upstream response. ``chunks()`` yields body bytes as they arrive."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
            raise map_exception(e) from e

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        while True:
            try:
                data = await content.readany()
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
                raise map_exception(e) from e
            if not data:
                return
            yield data


class UpstreamClient:
    """One pooled HTTP client for all providers. Create inside a running loop; ``aclose()`` on shutdown."""

    def __init__(self, *, limit: int = 1000, limit_per_host: int = 0) -> None:
        self._connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit_per_host, keepalive_timeout=30, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=self._connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
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
                body = await resp.read()
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
            yield RawStream(resp)
        finally:
            resp.close()

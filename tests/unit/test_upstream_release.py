"""gateway/upstream.py against a raw loopback server: an abandoned stream's connection is reset (the upstream learns
at once that nobody reads) and never returned to the pool; reads are bounded pieces; bodies past
``max_response_bytes`` are a transient ``response_too_large``."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.base import UpstreamRequest
from gateway.upstream import STREAM_CHUNK, Timeouts, UpstreamClient

T = Timeouts(connect=2, idle=2, total=5)


async def _server(body_size: int, outcome: dict) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"content-length: %d\r\n\r\n" % body_size)
        sent = 0
        try:
            while sent < body_size:
                n = min(65536, body_size - sent)
                writer.write(b"x" * n)
                sent += n
                await writer.drain()
            outcome["end"] = "complete"
        except ConnectionResetError:
            outcome["end"] = "reset"
        except (BrokenPipeError, ConnectionError) as e:
            outcome["end"] = type(e).__name__
        outcome["sent"] = sent
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def _req(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"content-type": "application/json"}, b"{}", True)


async def test_an_abandoned_stream_is_reset_and_reads_are_bounded():
    outcome: dict = {}
    server, url = await _server(200 * 1024 * 1024, outcome)
    client = UpstreamClient()
    try:
        async with client.open_stream(_req(url), T) as rs:
            pieces = rs.chunks()
            first = await anext(pieces)
            assert 0 < len(first) <= STREAM_CHUNK
        for _ in range(100):
            if "end" in outcome:
                break
            await asyncio.sleep(0.02)
        assert outcome.get("end") == "reset", outcome
        assert outcome["sent"] < 20 * 1024 * 1024  # backpressure: the upstream never got far
    finally:
        await client.aclose()
        server.close()


async def test_a_response_over_max_response_bytes_is_transient():
    outcome: dict = {}
    server, url = await _server(300 * 1024, outcome)
    client = UpstreamClient(max_response_bytes=100 * 1024)
    try:
        with pytest.raises(UpstreamError) as e:
            await client.send(_req(url), T)
        assert e.value.kind is ErrorKind.TRANSIENT and e.value.code == "response_too_large"
        with pytest.raises(UpstreamError) as e:
            async with client.open_stream(_req(url), T) as rs:
                async for _ in rs.chunks():
                    pass
        assert e.value.code == "response_too_large"
        client.max_response_bytes = 1024 * 1024  # as a reload sets it
        assert len((await client.send(_req(url), T)).body) == 300 * 1024
    finally:
        await client.aclose()
        server.close()


async def test_held_streams_do_not_starve_the_pool_for_other_requests():
    """1,000+ streams held open (as by clients that do not read) and one more request to the same upstream host:
    it is answered at once, not queued behind them for a free pool connection (aiohttp's pool cap was 1,000)."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/hold" in head.split(b"\r\n", 1)[0]:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {}\n\n")
            held.append(writer)
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = UpstreamClient()
    try:
        async with asyncio.timeout(15), contextlib.AsyncExitStack() as stack:  # a capped pool waits forever here
            for _ in range(1010):
                await stack.enter_async_context(client.open_stream(_req(base + "/hold"), T))
            async with asyncio.timeout(3):
                r = await client.send(UpstreamRequest("POST", base + "/other", {}, b"{}"), T)
            assert r.status == 200 and r.body == b"ok"
    finally:
        for w in held:
            w.close()
        await client.aclose()
        server.close()

"""Bounded connections over real sockets on loopback: idle, trickling and never-reading clients are dropped within
the configured limits (``limits.*``, short here), and past ``max_connections`` / ``max_streams`` a client gets a
clean 503 with ``Retry-After``."""

from __future__ import annotations

import json
import socket
import time

import httpx

from tests.conftest import GATEWAY_KEY, base_config

FAST = {"header_timeout": "300ms", "body_timeout": "300ms", "keepalive_timeout": "300ms",
        "client_stall_timeout": "500ms"}


def _config(emu_url: str, **limits):
    return base_config(emu_url, limits={**FAST, **limits})


def _connect(gw, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", gw.port))
    return s


def _read_until_closed(s: socket.socket, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    t0 = time.monotonic()
    data = b""
    s.settimeout(limit)
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - t0


def _chat_request(body: dict, content_length: int | None = None) -> tuple[bytes, bytes]:
    raw = json.dumps(body).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {GATEWAY_KEY}\r\n"
            f"content-type: application/json\r\ncontent-length: {content_length or len(raw)}\r\n\r\n").encode()
    return head, raw


def test_idle_and_trickling_connections_are_closed_within_the_limits(emu, make_gateway):
    gw = make_gateway(_config(emu.url))
    # A connection that sends nothing: closed after keepalive_timeout.
    idle = _connect(gw)
    data, took = _read_until_closed(idle)
    assert data == b"" and took < 2.0
    # Headers trickled one byte at a time (each byte would reset uvicorn's keep-alive timer): 408, closed.
    slow = _connect(gw)
    t0 = time.monotonic()
    for b in b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-a: " + b"a" * 100:
        try:
            slow.send(bytes([b]))
        except OSError:
            break
        time.sleep(0.05)
        if time.monotonic() - t0 > 3:
            break
    data, _ = _read_until_closed(slow)
    assert time.monotonic() - t0 < 3.0
    assert data.startswith(b"HTTP/1.1 408") and b"header_timeout" in data
    # A body trickled after complete headers: the connection is dropped after body_timeout.
    head, raw = _chat_request({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]})
    body_client = _connect(gw)
    body_client.sendall(head)
    t0 = time.monotonic()
    closed = False
    for b in raw:
        try:
            body_client.send(bytes([b]))
        except OSError:
            closed = True
            break
        time.sleep(0.05)
        if time.monotonic() - t0 > 3:
            break
    if not closed:
        _read_until_closed(body_client)
    assert time.monotonic() - t0 < 3.0
    # After a complete exchange, an idle keep-alive connection is closed too.
    ka = _connect(gw)
    ka.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
    data, took = _read_until_closed(ka)
    assert data.startswith(b"HTTP/1.1 200") and took < 2.0
    # A well-behaved client is unaffected.
    assert httpx.get(gw.url + "/healthz", timeout=5).status_code == 200


def test_past_max_connections_a_new_connection_gets_503_with_retry_after(emu, make_gateway):
    gw = make_gateway(_config(emu.url, max_connections=3, keepalive_timeout="5s"))
    held = [_connect(gw) for _ in range(3)]
    time.sleep(0.1)
    extra = _connect(gw)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
    data, _ = _read_until_closed(extra)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in head.lower()
    assert json.loads(body)["error"]["code"] == "too_many_connections"
    for s in held:
        s.close()
    time.sleep(0.2)
    assert httpx.get(gw.url + "/healthz", timeout=5).status_code == 200


def test_past_max_streams_a_stream_gets_503_with_retry_after(emu, make_gateway, client_for):
    gw = make_gateway(_config(emu.url, max_streams=2, client_stall_timeout="30s"))
    emu.set("gpt-5", "healthy:words=20,token_delay=0.03")
    msg = [{"role": "user", "content": "hi"}]
    client = client_for(gw)
    open_streams = [client.chat.completions.create(model="gpt-5", messages=msg, stream=True) for _ in range(2)]
    for st in open_streams:
        next(iter(st))  # committed and running
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "gpt-5", "messages": msg, "stream": True}, timeout=10)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "too_many_streams"
    # Non-streaming requests are not counted against max_streams.
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "gpt-5", "messages": msg}, timeout=10)
    assert r.status_code == 200
    for st in open_streams:
        assert "".join(c.choices[0].delta.content or "" for c in st if c.choices).strip()
    # Slots come back when streams end.
    st = client.chat.completions.create(model="gpt-5", messages=msg, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in st if c.choices).strip()


def test_a_never_reading_stream_client_is_dropped_and_its_upstream_closed(emu, make_gateway):
    gw = make_gateway(_config(emu.url))
    emu.set("gpt-5", "healthy:words=50000")
    head, raw = _chat_request({"model": "gpt-5", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    s = _connect(gw, rcvbuf=4096)
    s.sendall(head + raw)
    t0 = time.monotonic()

    def upstream_done():
        a = emu.attempts("gpt-5")
        return a and a[-1].get("disconnected")

    while not upstream_done() and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert upstream_done(), emu.attempts("gpt-5")
    assert time.monotonic() - t0 < 3.0
    s.close()

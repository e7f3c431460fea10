"""Clients that abandon their streams (connect, never read, reset) must not poison the upstream connection pool:
the next requests to another model of the same provider succeed at the first attempt and its breaker stays closed,
and every abandoned upstream stream is released (the provider sees it end)."""

from __future__ import annotations

import json
import socket
import struct
import time

import httpx

from tests.conftest import GATEWAY_KEY, base_config

CLIENTS = 100


def test_abandoned_streams_do_not_poison_the_pool_for_other_models(emu, make_gateway):
    cfg = base_config(emu.url)
    cfg["models"]["gpt-5-mini"] = {"provider": "vendor-b", "model": "gpt-5-mini", "context_window": 400}
    cfg["routes"]["mini"] = {"models": ["gpt-5-mini"]}
    cfg["limits"] = {"client_stall_timeout": "30s"}  # the clients leave on their own here
    gw = make_gateway(cfg)
    emu.set("gpt-5", "healthy:words=4000,token_delay=0.001")
    body = json.dumps({"model": "gpt-5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {GATEWAY_KEY}\r\n"
           f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
    socks = []
    for _ in range(CLIENTS):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", gw.port))
        s.sendall(req)
        socks.append(s)
    deadline = time.monotonic() + 10
    while len(emu.attempts("gpt-5")) < CLIENTS and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for s in socks:  # as a killed client: a reset, never a read
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    for _ in range(3):
        r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                       json={"model": "mini", "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
        assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "gpt-5-mini=ok", r.headers
    assert gw.gateway.state.describe("gpt-5-mini")["breaker"] == "closed"

    def released() -> bool:
        return all(a.get("disconnected") or a.get("status") for a in emu.attempts("gpt-5")) and not any(
            a.get("status") == 200 and not a.get("disconnected") and a.get("tokens_sent", 0) < 4000
            for a in emu.attempts("gpt-5"))

    deadline = time.monotonic() + 5
    while not released() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert released(), [a for a in emu.attempts("gpt-5") if not a.get("disconnected")][:3]

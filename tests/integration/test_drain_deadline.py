"""Graceful shutdown with a stream still running at the drain deadline: the client gets the ``stream_interrupted``
event (never a bare cut, never ``[DONE]``), and the audit log records what the client saw (200, interrupted)."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx

from tests.conftest import GATEWAY_KEY, base_config


def test_stream_running_at_the_drain_deadline_ends_with_stream_interrupted(emu, make_gateway, tmp_path):
    emu.set("gpt-5", "healthy:words=400,token_delay=0.02")  # ~8 s: far past the 1 s graceful timeout
    gw = make_gateway(base_config(emu.url), graceful_timeout=1.0)
    body = {"model": "general", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    received = []
    t0 = time.monotonic()
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=15,
                      headers={"authorization": f"Bearer {GATEWAY_KEY}"}) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        for line in lines:
            received.append(line)
            if len(received) > 5:
                break
        stopper = threading.Thread(target=gw.stop)
        stopper.start()
        received.extend(lines)
    stopper.join(10)
    text = "\n".join(received)
    assert time.monotonic() - t0 < 5
    assert '"code":"stream_interrupted"' in text.replace(" ", "") and "[DONE]" not in text
    assert '"content"' in text  # part of the answer did arrive before the event
    rows = sqlite3.connect(tmp_path / "state" / "audit.sqlite").execute(
        "SELECT status, error, stream FROM requests").fetchall()
    assert rows == [(200, "stream_interrupted", 1)]

"""SIGTERM on a real `gateway serve` process: in-flight requests finish, and every answered request is in the
audit log (the writer is flushed after uvicorn drained the connections)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import httpx

from tests.conftest import GATEWAY_KEY, base_config
from tests.integration.serve import serve


def test_sigterm_finishes_in_flight_requests_and_loses_no_audit_record(emu, tmp_path):
    cfg = base_config(emu.url)
    cfg["audit"] = {"path": str(tmp_path / "audit.sqlite")}
    cfg["state_dir"] = str(tmp_path / "state")
    with serve(cfg, tmp_path) as (proc, url):
        headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
        body = {"model": "general", "messages": [{"role": "user", "content": "hi"}]}
        answered = 0
        for _ in range(20):
            assert httpx.post(url + "/v1/chat/completions", json=body, headers=headers).status_code == 200
            answered += 1
        # One slow request is in flight when SIGTERM arrives: it must still be answered.
        emu.set("gpt-5", "slow_first_token:delay=1")
        result: dict = {}

        def slow() -> None:
            r = httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=10)
            result["status"] = r.status_code

        seen = len(emu.attempts("gpt-5"))
        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 5  # SIGTERM once the request is in flight upstream, not still connecting
        while len(emu.attempts("gpt-5")) == seen and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        t.join(10)
        assert result.get("status") == 200
        answered += 1
        # uvicorn re-raises the signal after its graceful shutdown, so the exit status is -SIGTERM.
        assert proc.wait(15) in (0, -signal.SIGTERM)
        assert b"Traceback" not in proc.stderr.read()
    rows = sqlite3.connect(tmp_path / "audit.sqlite").execute("SELECT count(*), sum(status = 200) FROM requests")
    count, ok = rows.fetchone()
    assert count == answered and ok == answered
    assert os.path.exists(tmp_path / "state" / "withdrawals.sqlite")

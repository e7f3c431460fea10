"""`make demo` runs `python -m gateway.demo`; this runs the same script to its end (DEMO_EXIT=1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_shows_a_failover_and_metrics():
    env = {**os.environ, "DEMO_EXIT": "1", "DEMO_PORT": str(_port()), "DEMO_EMULATOR_PORT": str(_port())}
    out = subprocess.run([sys.executable, "-m", "gateway.demo"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "fable-5=withdrawn,gpt-5=ok" in text
    assert "fable-5=skipped:withdrawn" in text
    # One Anthropic-SDK request before the withdrawal (fable-5 serves) and one after (gpt-5, Anthropic format).
    sdk = [line for line in text.splitlines() if "anthropic-sdk" in line]
    assert len(sdk) == 2 and "served by fable-5" in sdk[0] and "attempts: fable-5=ok" in sdk[0]
    assert "served by gpt-5" in sdk[1] and "stop_reason=end_turn" in sdk[1]
    assert 'gateway_failovers_total{from_model="fable-5",reason="withdrawn"' in text
    # Step 1b: "fix this code" and "review this code for security issues" on an injectable handler, model auto.
    step = text.split("== 1b.")[1].split("== 2.")[0]
    assert step.count("route=security-review") == 2, step
    assert "Traceback" not in out.stderr

"""Fill an audit log with a few hundred demo requests (emulated vendors, the demo config), so that ``gateway
audit`` / ``gateway whatif`` have real traffic to report on::

    python -m gateway.audit.demo_traffic --db var/demo-audit.sqlite --requests 300

Scenario: healthy traffic, then the security route's primary (fable-5) is withdrawn by its vendor, gpt-5 is
briefly rate limited, and a few prompts are refused by a content filter. Not imported by the gateway.
Standard library HTTP only: this module ships in the image, where the test extras (httpx) are not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEY = "demo-key-not-secret"
PROMPTS = [("security", "Please do a security review of this login handler."),
           ("auto", "Is this query vulnerable to SQL injection? SELECT * FROM t WHERE id = '$id'"),
           ("auto", "Summarise this meeting transcript in three bullet points."),
           ("general", "Write a haiku about failover."),
           ("auto", "Triage CVE-2024-12345 for our Java services.")]


def run(db: Path, n: int, config: Path) -> int:
    from gateway.emulator.runner import EmulatorThread
    from gateway.testing import GatewayThread

    with EmulatorThread() as emu, tempfile.TemporaryDirectory() as tmp:
        os.environ["DEMO_EMULATOR_URL"] = emu.url
        cfg = yaml.safe_load(config.read_text())
        cfg["audit"] = {"path": str(db.resolve())}
        cfg["state_dir"] = tmp
        path = Path(tmp) / "demo.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        gw = GatewayThread(path).start()
        logging.getLogger("gateway.requests").setLevel(logging.WARNING)  # quiet: the report is the point
        cont = gw.gateway.continuity
        try:
            for i in range(n):
                if i == int(n * 0.4):
                    emu.state.set_behaviour("fable-5", "withdrawn")
                if i == int(n * 0.7):
                    emu.state.set_behaviour("gpt-5", "rate_limited:retry_after=1")
                if i == int(n * 0.72):
                    emu.state.set_behaviour("gpt-5", "healthy")
                model, text = PROMPTS[i % len(PROMPTS)]
                if i % 50 == 49:
                    emu.state.set_behaviour("gpt-5", "content_filter")
                _post(gw.url + "/v1/chat/completions", {"model": model, "messages": [{"role": "user",
                                                                                    "content": text}]})
                if i % 50 == 49:
                    emu.state.set_behaviour("gpt-5", "healthy")
        finally:
            gw.stop()
            asyncio.run(cont.aclose())
    print(f"{n} requests recorded in {db}")
    return 0


def _post(url: str, body: dict) -> int:
    """POST one chat request; any answer (an error status included) is fine: the audit log is the point."""
    req = urllib.request.Request(url, data=orjson.dumps(body), method="POST",
                                 headers={"authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="var/demo-audit.sqlite")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--config", default=str(ROOT / "config/demo.yaml"))
    a = p.parse_args()
    return run(Path(a.db), a.requests, Path(a.config))


if __name__ == "__main__":
    raise SystemExit(main())

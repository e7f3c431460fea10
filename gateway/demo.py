"""``make demo``: the emulated providers and the gateway on loopback, a short scripted stream of requests, a
withdrawal of the security route's primary in the middle, and what a person should see: which model served
each request, why it failed over, and the relevant ``/metrics`` lines. The gateway is left running.

Environment: ``DEMO_PORT`` (gateway, default 8080), ``DEMO_EMULATOR_PORT`` (default 9100), ``DEMO_EXIT=1`` to stop
after the show instead of leaving the gateway running (used by the test of this demo).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_KEY = "demo-key-not-secret"
DEMO_ADMIN_KEY = "demo-admin-key-not-secret"


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json",
                                                                         **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the {what} exited early (is its port in use? see var/demo-gateway.log)")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"demo: the {what} did not come up at {url}")


def _c(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


_HANDLER = """
def find_user(request):
    name = request.args.get("name")
    rows = db.execute("SELECT * FROM users WHERE name = '" + name + "'")
    return jsonify(rows.fetchall())"""
_INJECTABLE_FIX = "fix this code" + _HANDLER
_INJECTABLE_REVIEW = "review this code for security issues" + _HANDLER


def main() -> int:
    gw_port = int(os.environ.get("DEMO_PORT", "8080"))
    emu_port = int(os.environ.get("DEMO_EMULATOR_PORT", "9100"))
    emu_url = f"http://127.0.0.1:{emu_port}"
    gw_url = f"http://127.0.0.1:{gw_port}"
    env = {**os.environ, "DEMO_EMULATOR_URL": emu_url}
    py = sys.executable
    procs: list[subprocess.Popen] = []

    def stop(*_: Any) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        print(_c("== starting the provider emulator and the gateway on loopback", "1"))
        procs.append(subprocess.Popen([py, "-m", "gateway", "emulate", "--port", str(emu_port), "--quiet"], env=env,
                                      stdout=subprocess.DEVNULL))
        _wait(emu_url + "/_emulator/health", procs[0], "emulator")
        log_path = ROOT / "var" / "demo-gateway.log"
        log_path.parent.mkdir(exist_ok=True)
        log_file = open(log_path, "ab")  # noqa: SIM115 - lives as long as the gateway process
        procs.append(subprocess.Popen([py, "-m", "gateway", "serve", "--config", str(ROOT / "config/demo.yaml"),
                                       "--port", str(gw_port), "--log-level", "warning"], env=env,
                                      stdout=log_file, stderr=subprocess.STDOUT))
        _wait(gw_url + "/readyz", procs[1], "gateway")
        admin = {"authorization": f"Bearer {DEMO_ADMIN_KEY}"}
        # Operator withdrawals persist (config/state/): start from a clean slate if an earlier run was interrupted.
        _http("DELETE", gw_url + "/admin/withdrawals/vendor/Google?actor=demo", headers=admin)
        print(f"   emulator {emu_url}   gateway {gw_url}   config config/demo.yaml")
        print(f"   gateway log (one JSON line per request): {log_path.relative_to(ROOT)}\n")

        import yaml

        demo_cfg = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
        providers = demo_cfg["providers"]
        vendor_of = {m: f"{providers[c['provider']]['vendor']}/{providers[c['provider']]['kind']}"
                     for m, c in demo_cfg["models"].items()}
        auth = {"authorization": f"Bearer {DEMO_KEY}"}
        prompts = [
            ("auto", "Do a security review of this login handler: if user == 'admin' and pw == input: ok()"),
            ("auto", "Summarise our sprint notes in three bullets."),
            ("security", "Is this query vulnerable to SQL injection? SELECT * FROM t WHERE id = '" + "' + id"),
        ]

        def ask(i: int, model: str, text: str, stream: bool = False) -> None:
            body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
            status, headers, raw = _http("POST", gw_url + "/v1/chat/completions", body, auth)
            h = {k.lower(): v for k, v in headers.items()}
            served = h.get("x-gateway-model", "-")
            served = f"{served} ({vendor_of.get(served, '?')})"
            attempts = h.get("x-gateway-attempts", "")
            failed = [a for a in attempts.split(",") if a and not a.endswith("=ok")]
            mark = _c("FAILOVER", "33;1") if failed else _c("ok", "32")
            kind = "stream" if stream else "      "
            print(f"  #{i:<2} {kind} route={h.get('x-gateway-route', '-'):<16} served by {served:<30} "
                  f"[{mark}] attempts: {attempts}   (HTTP {status})")

        def ask_anthropic(i: int, text: str) -> None:
            """The Anthropic SDK (as Claude Code with ANTHROPIC_BASE_URL) against the gateway's /v1/messages."""
            import anthropic

            client = anthropic.Anthropic(base_url=gw_url, api_key=DEMO_KEY, max_retries=0)
            with client.messages.stream(model="security", max_tokens=512,
                                        messages=[{"role": "user", "content": text}]) as stream:
                reply = "".join(stream.text_stream)
                final = stream.get_final_message()
                h = stream.response.headers
            attempts = h.get("x-gateway-attempts", "")
            failed = [a for a in attempts.split(",") if a and not a.endswith("=ok")]
            mark = _c("FAILOVER", "33;1") if failed else _c("ok", "32")
            served = f"{final.model} ({vendor_of.get(final.model, '?')})"
            print(f"  #{i:<2} anthropic-sdk stream /v1/messages served by {served:<30} [{mark}] attempts: {attempts}"
                  f"   stop_reason={final.stop_reason}")
            print(f"      {reply[:100]}")

        print(_c("== 1. normal traffic: the security route's primary (fable-5) answers", "1"))
        n = 0
        for model, text in prompts:
            n += 1
            ask(n, model, text)
        n += 1
        ask_anthropic(n, "Review this diff for injection bugs.")

        print(_c("\n== 1b. routed by task, not wording: plain requests on injectable code reach the security route",
                 "1"))
        for text in (_INJECTABLE_FIX, _INJECTABLE_REVIEW):
            n += 1
            print(f"   prompt: {text.splitlines()[0]!r} + an injectable handler (no security keyword the match rule knows)")
            ask(n, "auto", text)
        print("   -> the builtin classifier (`classify: {builtin: security-review}`) placed them; the reason and score")
        print("      are in the audit log (route_reason classify:<score>); `gateway explain` shows the nearest examples.")

        print(_c("\n== 2. the vendor withdraws fable-5 overnight (the emulator now answers 404 model_not_found)",
                 "1"))
        _http("PUT", emu_url + "/_emulator/models/fable-5", {"spec": "withdrawn"})
        for model, text in prompts + prompts[:1]:
            n += 1
            ask(n, model, text)
        n += 1
        ask(n, "security", "Threat model this upload endpoint.", stream=True)
        print("   -> the first request found fable-5 withdrawn and failed over to gpt-5; later ones skip fable-5")
        print("      without calling it until failover.withdrawn_recheck (15m) has passed.")
        n += 1
        ask_anthropic(n, "Review this diff for injection bugs.")
        print("   -> an Anthropic-SDK client (Claude Code with ANTHROPIC_BASE_URL) keeps working: OpenAI's gpt-5")
        print("      answers, in Anthropic's format, with no change to the client.")

        print(_c("\n== 3. OpenAI's gpt-5 is rate limited too: the route falls through to Google, then self-hosted", "1"))
        _http("PUT", emu_url + "/_emulator/models/gpt-5", {"spec": "rate_limited:retry_after=20"})
        n += 1
        ask(n, "security", prompts[0][1])
        n += 1
        ask(n, "security", "Find the XSS in this template.", stream=True)
        _http("PUT", emu_url + "/_emulator/models/gemini-3-pro", {"spec": "overloaded"})
        n += 1
        ask(n, "security", prompts[2][1])
        for m in ("gpt-5", "gemini-3-pro"):
            _http("PUT", emu_url + f"/_emulator/models/{m}", {"spec": "healthy"})

        print(_c("\n== 4. an operator pulls Google fleet-wide with the kill switch (one API call)", "1"))
        status, _, _ = _http("POST", gw_url + "/admin/withdrawals", {
            "target": "vendor", "name": "Google", "reason": "demo: directive of 2026-06-12", "reference": "DEMO-1",
            "actor": "you@demo", "contact": "never"}, admin)
        print(f"   POST /admin/withdrawals {{target: vendor, name: Google, contact: never}} -> HTTP {status}")
        n += 1
        ask(n, "security", prompts[0][1])
        print("   -> Google's model is skipped without a call, by the operator's withdrawal (persisted, audited).")
        _http("DELETE", gw_url + "/admin/withdrawals/vendor/Google?actor=demo", headers=admin)

        print(_c("\n== 5. what an SRE sees on /metrics", "1"))
        _, _, metrics = _http("GET", gw_url + "/metrics")
        for line in metrics.decode().splitlines():
            if line.startswith(("gateway_failovers_total", "gateway_model_available", "gateway_requests_total",
                                "gateway_model_withdrawn")) or (
                line.startswith("gateway_upstream_attempts_total") and 'outcome="ok"' not in line
            ):
                print("  ", line)

        print(_c("\n== try it yourself (the gateway stays up; Ctrl-C stops it)", "1"))
        print(f"""  curl -s {gw_url}/v1/chat/completions -H 'authorization: Bearer {DEMO_KEY}' \\
       -H 'content-type: application/json' \\
       -d '{{"model": "security", "messages": [{{"role": "user", "content": "review this diff"}}]}}' -D - 

  python - <<'PY'
  from openai import OpenAI
  client = OpenAI(base_url="{gw_url}/v1", api_key="{DEMO_KEY}")
  r = client.chat.completions.with_raw_response.create(
      model="security", messages=[{{"role": "user", "content": "find the vulnerability"}}])
  print(r.headers["x-gateway-attempts"], r.parse().choices[0].message.content)
  PY

  Claude Code / the Anthropic SDK: ANTHROPIC_BASE_URL={gw_url} ANTHROPIC_API_KEY={DEMO_KEY} \
      ANTHROPIC_MODEL=security claude
  The Responses API: OpenAI(base_url="{gw_url}/v1", api_key="{DEMO_KEY}").responses.create(
      model="security", input="find the vulnerability")

  Status page (admin key {DEMO_ADMIN_KEY}): {gw_url}/status
  Kill switch: gateway admin --url {gw_url} --admin-key {DEMO_ADMIN_KEY} withdraw vendor Anthropic --reason "..."
  Script the emulated vendors: curl -X PUT {emu_url}/_emulator/models/gpt-5 -d '{{"spec": "overloaded"}}'
  Reinstate fable-5:          curl -X PUT {emu_url}/_emulator/models/fable-5 -d '{{"spec": "healthy"}}'
""")
        if os.environ.get("DEMO_EXIT") == "1":
            return 0
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    raise SystemExit(main())

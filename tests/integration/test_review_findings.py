"""Review findings (through the real HTTP server): each test failed before its fix."""

from __future__ import annotations

import time

from tests.conftest import base_config

MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]


def test_stream_upstream_that_never_sends_headers_is_abandoned_at_first_token(emu, make_gateway, client_for):
    """The first-token limit (and the request deadline) must bound the wait for the upstream's response headers
    too, not only the wait for the first event after them: an upstream that accepts the connection and says
    nothing used to hold the request for `idle` (per retry), past `first_token` and even past `total`."""
    emu.set("fable-5", "no_response:delay=10")
    cfg = base_config(emu.url)
    cfg["failover"]["timeouts"].update(first_token="300ms", idle="5s", total="8s")
    gw = make_gateway(cfg)
    t0 = time.monotonic()
    raw = client_for(gw).chat.completions.with_raw_response.create(model="security", messages=MSG, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    elapsed = time.monotonic() - t0
    assert text.startswith("Hello from gpt-5")
    assert raw.headers["x-gateway-attempts"] == "fable-5=transient,gpt-5=ok"  # abandoned, not retried
    assert elapsed < 2.0, elapsed


ADMIN_KEY = "gw-admin-key-0123456789"


def test_upstream_error_text_in_model_state_is_redacted(emu, make_gateway, client_for):
    """The reason a model is marked unavailable is the provider's error text, shown by /admin/state and the
    status page: a provider that echoes (part of) our key must not have it shown there."""
    import hashlib

    import httpx

    emu.set("fable-5", "access_revoked")
    cfg = base_config(emu.url)
    cfg["admin_keys"] = [{"name": "ops", "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}]
    gw = make_gateway(cfg)
    client_for(gw).chat.completions.create(model="security", messages=MSG)
    auth = {"authorization": f"Bearer {ADMIN_KEY}"}
    for path in ("/admin/state", "/status/data"):
        r = httpx.get(gw.url + path, headers=auth, timeout=10)
        assert r.status_code == 200
        reason = r.json()["models"]["fable-5"]["reason"]
        # OpenAI (and the emulator) echo a masked key, "sk-emula***-key": key-shaped text is masked everywhere else
        assert "Incorrect API key" in reason and "sk-" not in reason, reason


def test_prompt_too_long_for_every_model_is_a_400_not_a_502(emu, make_gateway, client_for):
    """Every model said the prompt is too long (or is smaller than one that did): the caller's fault, as OpenAI
    reports it (400 context_length_exceeded), not a 502 that the openai SDK retries."""
    import openai
    import pytest

    for m in ("fable-5", "gpt-5", "qwen-coder"):
        emu.set(m, "context_exceeded")
    gw = make_gateway(base_config(emu.url))
    with pytest.raises(openai.BadRequestError) as ei:
        client_for(gw).chat.completions.create(model="security", messages=MSG)
    assert ei.value.code == "context_length_exceeded"
    assert [len(emu.attempts(m)) for m in ("fable-5", "gpt-5", "qwen-coder")] == [1, 1, 0]

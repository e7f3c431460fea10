"""The bounded fuzz campaign (part of ``make test``; ``make fuzz`` runs it 100 times longer): no input makes the
gateway itself answer 5xx.

1. schemathesis over the gateway's own ``/openapi.json``: EVERY operation in the schema (chat, models, admin,
   status, and whatever endpoints are added later: they join the campaign by being in the schema), positive and
   negative cases, through the real HTTP server with valid client/admin keys so the cases reach deep code.
2. hypothesis-generated chat bodies (the translation-totality generator, streaming or not) posted as raw bytes,
   plus byte-level mutations of a valid body (duplicate keys, deep nesting, truncation).

Upstreams are the emulator. A 5xx that the gateway relays as the *upstream's* verdict (502/503/504 with the
attempts header) is not a gateway failure; a 500 (an unhandled exception) always is.
"""

from __future__ import annotations

import hashlib
import time

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.conftest import GATEWAY_KEY, base_config, fuzz_examples
from tests.providers.test_translation_total import BODY

ADMIN_KEY = "gwa-fuzz-admin-0123456789"
CAMPAIGN_SECONDS = 20.0  # a hard cap for the schemathesis part in make test (the whole file stays well under 60 s)
# Through HTTP a shrink costs requests without bound: a failure is reported as found (still reproducible:
# derandomize), which keeps a failing campaign as short as a passing one.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
RELAYED = {502, 503, 504}  # upstream outcomes the gateway reports; only with x-gateway-attempts


class _TimeUp(Exception):
    """The campaign's time share for one operation is spent."""


@pytest.fixture(scope="module")
def fuzz_gateway(emulator, tmp_path_factory):
    from gateway.testing import GatewayThread

    cfg = base_config(emulator.url)
    cfg["admin_keys"] = [{"name": "fuzz-ops", "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}]
    gw = GatewayThread(cfg, tmp_path_factory.mktemp("fuzz")).start()
    try:
        yield gw
    finally:
        gw.stop()


def _key_for(path: str) -> str:
    return ADMIN_KEY if path.startswith(("/admin", "/status", "/openapi")) else GATEWAY_KEY


def _check(status: int, headers: httpx.Headers | dict, what: str) -> None:
    if status in RELAYED and "x-gateway-attempts" in headers:
        return
    assert status < 500, f"{status} from the gateway for {what}"


def test_schemathesis_campaign_over_every_operation_finds_no_5xx(fuzz_gateway, emulator):
    gw = fuzz_gateway
    schema = schemathesis.openapi.from_url(gw.url + "/openapi.json",
                                           headers={"authorization": f"Bearer {ADMIN_KEY}"})
    operations = [r.ok() for r in schema.get_all_operations()]
    paths = {op.path for op in operations}
    # the schema must describe the pure-ASGI hot path too, or the campaign would silently skip it
    assert {"/v1/chat/completions", "/v1/models", "/admin/state"} <= paths, paths
    budget = CAMPAIGN_SECONDS * (1 if fuzz_examples(1) == 1 else 100)
    # The chat endpoint takes the richest input: a third of the budget; the other operations share the rest.
    chat_share = 1 / 3 if len(operations) > 1 else 1.0
    calls = 0
    for op in operations:
        key = _key_for(op.path)
        share = chat_share if op.path == "/v1/chat/completions" else (1 - chat_share) / max(1, len(operations) - 1)
        examples = fuzz_examples(max(10, int(1200 * share)))
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            stop_at = time.monotonic() + budget * share / 2

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True, phases=NO_SHRINK,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                nonlocal calls
                if time.monotonic() > stop_at:
                    raise _TimeUp  # ends this operation's generation at once (caught below)
                emulator.state.reset()
                response = case.call(base_url=gw.url, headers={"authorization": f"Bearer {key}"}, timeout=10)
                calls += 1
                _check(response.status_code, response.headers, f"{op.method.upper()} {op.path}: {case!r}")

            try:
                run()
            except _TimeUp:
                continue
            except Unsatisfiable:
                if mode is schemathesis.GenerationMode.POSITIVE:
                    raise  # an operation without inputs has no negative cases; every one has positive ones
    print(f"schemathesis: {calls} calls over {len(operations)} operations")
    assert calls >= len(operations), calls


def _post(gw, raw: bytes) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", content=raw, timeout=15,
                      headers={"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"})


@settings(max_examples=fuzz_examples(60), deadline=None, database=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=list(HealthCheck))
@given(body=BODY, stream=st.booleans(), model=st.sampled_from(["security", "general", "auto", "fable-5", "nope"]))
def test_generated_chat_bodies_find_no_5xx(fuzz_gateway, body, stream, model):
    r = _post(fuzz_gateway, orjson.dumps({**body, "model": model, "stream": stream}))
    _check(r.status_code, r.headers, repr(body))


GOOD = b'{"model": "general", "messages": [{"role": "user", "content": "hi"}]}'
# Any latin-1 octet a client may put in a header; h11 (the client) refuses surrounding whitespace, so strip it.
_HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                        max_size=40).map(lambda v: v.strip(" \t"))


@settings(max_examples=fuzz_examples(25), deadline=None, database=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=list(HealthCheck))
@given(headers=st.dictionaries(st.sampled_from(["authorization", "x-gateway-route", "x-request-id", "content-type",
                                                "accept", "x-api-key", "accept-encoding"]), _HEADER_VALUE,
                               max_size=4),
       keep_auth=st.booleans())
def test_generated_headers_find_no_5xx(fuzz_gateway, headers, keep_auth):
    if keep_auth:
        headers = {**headers, "authorization": f"Bearer {GATEWAY_KEY}"}
    headers = {k: v.encode("latin-1") for k, v in headers.items()}  # raw bytes: any octet a client may send
    r = httpx.post(fuzz_gateway.url + "/v1/chat/completions", content=GOOD, headers=headers, timeout=15)
    _check(r.status_code, r.headers, repr(headers))
    r = httpx.get(fuzz_gateway.url + "/v1/models", headers=headers, timeout=15)
    _check(r.status_code, r.headers, repr(headers))




@pytest.mark.parametrize("raw", [
    b'{"messages": [{"role": "user", "role": {}, "content": "x"}]}',  # duplicate key, the last one wins
    b'{"messages": [{"role": "user", "content": "x"}], "response_format": {"type": []}}',
    b'{"messages": [{"role": {}, "content": "x"}]}',
    b'{"messages": [{"role": "user", "content": "x"}], "metadata": ' + b'{"a": ' * 300 + b'1' + b'}' * 301,
    b'{"messages": [{"role": "user", "content": "x"}], "x": ' + b'[' * 1000 + b']' * 1000 + b'}',
    b'{"messages": [{"role": "user", "content": "x"}], "x": ' + b'[' * 2000 + b']' * 2000 + b'}',
    GOOD[:-7], GOOD.replace(b"hi", b"\\ud800"), b"\xff\xfe", b"[]", b"null", b"", b"{" * 10,
])
def test_hostile_bytes_are_4xx(fuzz_gateway, raw):
    r = _post(fuzz_gateway, raw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    assert r.json()["error"]["message"]

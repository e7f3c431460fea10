"""``POST /v1/embeddings`` end to end: the openai SDK -> the gateway -> the emulator's embedding wires, with
failover only between models of the same dimensions."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import struct
import time

import httpx
import openai
import pytest

from gateway.emulator.embeddings_wire import vector
from gateway.testing import GatewayThread
from tests.conftest import GATEWAY_KEY, base_config

AUTH = {"authorization": f"Bearer {GATEWAY_KEY}"}


def embed_config(emu_url: str) -> dict:
    cfg = base_config(emu_url)
    cfg["providers"].update({
        "google": {"kind": "gemini", "base_url": emu_url, "api_key": "AIza-gemini-secret-key", "vendor": "Google",
                   "jurisdiction": "US"},
        "aws": {"kind": "bedrock", "base_url": emu_url, "api_key": "bedrock-api-key-secret", "vendor": "AWS",
                "jurisdiction": "US"},
        "azure": {"kind": "azure-openai", "base_url": emu_url, "api_key": "azure-secret-key-123", "vendor": "Microsoft",
                  "jurisdiction": "EU"},
    })
    cfg["models"].update({
        "emb-a": {"provider": "vendor-a", "model": "te3-a", "kind": "embeddings", "dimensions": 1536},
        "emb-small": {"provider": "vendor-a", "model": "te3-small", "kind": "embeddings", "dimensions": 256,
                      "send_dimensions": True},
        "emb-b": {"provider": "vendor-b", "model": "te3-b", "kind": "embeddings", "dimensions": 1536},
        "gem-emb": {"provider": "google", "model": "gemini-embedding-001", "kind": "embeddings", "dimensions": 1536,
                    "send_dimensions": True},
        "titan": {"provider": "aws", "model": "amazon.titan-embed-text-v2:0", "kind": "embeddings",
                  "dimensions": 1024},
        "cohere": {"provider": "aws", "model": "cohere.embed-english-v3", "kind": "embeddings", "dimensions": 1024},
        "az-emb": {"provider": "azure", "model": "my-embedding-deployment", "kind": "embeddings", "dimensions": 1536},
    })
    cfg["routes"].update({
        "embed": {"kind": "embeddings", "models": ["emb-a", "emb-small", "emb-b", "gem-emb"], "aliases": ["vectors"],
                  "timeouts": {"first_token": "300ms"}},
        "embed-aws": {"kind": "embeddings", "models": ["titan", "cohere"]},
        "embed-azure": {"kind": "embeddings", "models": ["az-emb"]},
    })
    return cfg


@pytest.fixture
def gw(emu, make_gateway):
    return make_gateway(embed_config(emu.url))


@pytest.fixture
def client(gw, client_for):
    return client_for(gw)


@pytest.fixture(scope="module")
def shared_gw(emulator, tmp_path_factory):
    """One gateway for tests that leave no state behind in it (bad input never reaches an upstream)."""
    with GatewayThread(embed_config(emulator.url), tmp_path_factory.mktemp("embeddings")) as g:
        yield g


def test_failover_between_same_dimension_models_skips_other_dimensions(emu, gw, client):
    emu.set("te3-a", "withdrawn")
    raw = client.embeddings.with_raw_response.create(model="embed", input="hello world")
    resp = raw.parse()
    assert raw.headers["x-gateway-attempts"] == "emb-a=withdrawn,emb-small=skipped:dimensions,emb-b=ok"
    assert raw.headers["x-gateway-model"] == "emb-b" and raw.headers["x-gateway-route"] == "embed"
    assert resp.model == "emb-b" and resp.object == "list"
    assert len(resp.data) == 1 and resp.data[0].index == 0
    assert resp.data[0].embedding == pytest.approx(vector("te3-b", "hello world", 1536), abs=1e-6)
    assert resp.usage.prompt_tokens == 2 and resp.usage.total_tokens == 2
    assert emu.attempts("te3-small") == []  # a different-dimension model is never contacted
    sent = emu.attempts("te3-b")[-1]["request"]
    assert sent == {"model": "te3-b", "input": ["hello world"], "encoding_format": "float"}
    metrics = httpx.get(gw.url + "/metrics").text
    # A model of another length was never a candidate: the failover is emb-a -> emb-b, not via emb-small.
    assert 'gateway_failovers_total{from_model="emb-a",reason="withdrawn",route="embed",to_model="emb-b"} 1.0' \
        in metrics
    assert 'reason="dimensions"' not in metrics and 'to_model="emb-small"' not in metrics
    assert 'gateway_requests_total{dialect="embeddings",route="embed",status="200"} 1.0' in metrics


def test_a_healthy_request_for_other_dimensions_is_no_failover(emu, gw, client, caplog):
    """Asking for 256-dimension vectors skips the 1536-dimension primary on every request: that is the request's
    shape, not an incident, so no failover is counted and the model that served is the first candidate."""
    for _ in range(2):
        raw = client.embeddings.with_raw_response.create(model="embed", input="x", dimensions=256)
        assert raw.headers["x-gateway-attempts"] == "emb-a=skipped:dimensions,emb-small=ok"
    metrics = httpx.get(gw.url + "/metrics").text
    assert "gateway_failovers_total{" not in metrics
    assert 'gateway_route_fallback_depth_bucket{le="0.0",route="embed"} 2.0' in metrics
    logged = [r.getMessage() for r in caplog.records if r.name == "gateway.requests"]
    assert len(logged) == 2 and all('"failovers":0' in m for m in logged)
    gw.stop()  # flushes the audit writer: the reports and the status page read failovers from these rows
    rows = sqlite3.connect(gw.gateway.continuity.path).execute("SELECT attempts, chain FROM requests").fetchall()
    assert len(rows) == 2 and all("dimensions" not in a and "emb-small" in a for a, _ in rows)
    # The candidate chain: the dependency report counts an answer by any other than its first as a fallback.
    assert all("emb-small" in c and "emb-a" not in c for _, c in rows)


def test_list_input_float_and_base64(emu, client):
    texts = ["first text", "second one here", "third"]
    floats = client.embeddings.create(model="vectors", input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert floats.model == "emb-a" and floats.usage.prompt_tokens == 6
    for d, text in zip(floats.data, texts):
        assert d.embedding == pytest.approx(vector("te3-a", text, 1536), abs=1e-6)
    b64 = client.embeddings.create(model="embed", input=texts, encoding_format="base64")
    for d, f in zip(b64.data, floats.data):
        raw = base64.b64decode(d.embedding)
        assert len(raw) == 4 * 1536
        assert list(struct.unpack("<1536f", raw)) == pytest.approx(f.embedding, abs=1e-6)


def test_requested_dimensions_select_the_models_of_that_length(emu, client):
    raw = client.embeddings.with_raw_response.create(model="embed", input=["a b"], dimensions=256)
    assert raw.headers["x-gateway-attempts"] == ("emb-a=skipped:dimensions,emb-small=ok")
    assert len(raw.parse().data[0].embedding) == 256
    assert emu.attempts("te3-small")[-1]["request"]["dimensions"] == 256  # send_dimensions: true
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="embed", input="x", dimensions=999)
    assert e.value.code == "unsupported_dimensions" and "emb-a: 1536" in e.value.message


def test_vectors_of_the_wrong_length_fail_over(emu, client):
    """A model that ignores its configured size (or was swapped behind the same name) is a failure, not data."""
    emu.set("te3-a", "healthy:dimensions=768")
    raw = client.embeddings.with_raw_response.create(model="embed", input="hello")
    assert raw.headers["x-gateway-attempts"] == "emb-a=transient,emb-a=transient,emb-small=skipped:dimensions,emb-b=ok"
    assert len(raw.parse().data[0].embedding) == 1536


def test_rate_limited_primary_fails_over_then_cools(emu, client):
    emu.set("te3-a", "rate_limited:retry_after=30")
    raw = client.embeddings.with_raw_response.create(model="embed", input="x")
    assert raw.headers["x-gateway-attempts"] == "emb-a=rate_limited,emb-small=skipped:dimensions,emb-b=ok"
    raw = client.embeddings.with_raw_response.create(model="embed", input="x")
    assert raw.headers["x-gateway-attempts"] == "emb-a=skipped:cooling,emb-small=skipped:dimensions,emb-b=ok"


def test_hanging_primary_is_abandoned_at_first_token(emu, client):
    emu.set("te3-a", "no_response:delay=5")
    t0 = time.monotonic()
    raw = client.embeddings.with_raw_response.create(model="embed", input="x")
    assert raw.headers["x-gateway-attempts"] == "emb-a=transient,emb-small=skipped:dimensions,emb-b=ok"
    assert time.monotonic() - t0 < 2.0  # abandoned at the route's first_token limit (300 ms), not retried


def test_gemini_batch_embed_contents(emu, client):
    emu.set("te3-a", "server_error")
    emu.set("te3-b", "withdrawn")
    raw = client.embeddings.with_raw_response.create(model="embed", input=["alpha", "beta"])
    assert raw.headers["x-gateway-attempts"].endswith("emb-b=withdrawn,gem-emb=ok")
    resp = raw.parse()
    assert resp.model == "gem-emb" and resp.usage.prompt_tokens == 0  # Gemini reports no token counts
    assert resp.data[1].embedding == pytest.approx(vector("gemini-embedding-001", "beta", 1536), abs=1e-6)
    att = emu.attempts("gemini-embedding-001")[-1]
    assert att["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents" and att["auth"] is True
    assert att["request"] == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "alpha"}]},
         "outputDimensionality": 1536},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "beta"}]},
         "outputDimensionality": 1536}]}


def test_bedrock_titan_one_text_per_call_then_cohere(emu, client):
    texts = ["one", "two words", "three more words"]
    resp = client.embeddings.create(model="embed-aws", input=texts)
    assert resp.model == "titan" and resp.usage.prompt_tokens == 6
    calls = emu.attempts("amazon.titan-embed-text-v2:0")
    assert sorted(a["request"]["inputText"] for a in calls) == sorted(texts)  # Titan embeds one text per call
    for d, text in zip(resp.data, texts):
        assert d.embedding == pytest.approx(vector("amazon.titan-embed-text-v2:0", text, 1024), abs=1e-6)
    emu.clear()
    emu.set("amazon.titan-embed-text-v2:0", "rate_limited:retry_after=30")
    raw = client.embeddings.with_raw_response.create(model="embed-aws", input=texts)
    assert raw.headers["x-gateway-attempts"] == "titan=rate_limited,cohere=ok"
    assert raw.parse().data[2].embedding == pytest.approx(vector("cohere.embed-english-v3", texts[2], 1024), abs=1e-6)
    (att,) = emu.attempts("cohere.embed-english-v3")
    assert att["request"] == {"texts": texts, "input_type": "search_document"}


def test_azure_deployment(emu, client):
    resp = client.embeddings.create(model="embed-azure", input="azure text")
    assert resp.model == "az-emb"
    att = emu.attempts("my-embedding-deployment")[-1]
    assert att["path"] == "/openai/deployments/my-embedding-deployment/embeddings" and att["auth"] is True


BAD = [
    (b"{not json", "invalid_json", None),
    (b"[1, 2]", "invalid_request", None),
    (b'{"input": "x"}', "missing_required_parameter", "model"),
    (b'{"model": "embed"}', "missing_required_parameter", "input"),
    (b'{"model": 5, "input": "x"}', "invalid_request", "model"),
    (b'{"model": "embed", "input": ""}', "invalid_request", "input"),
    (b'{"model": "embed", "input": []}', "invalid_request", "input"),
    (b'{"model": "embed", "input": {"text": "x"}}', "invalid_request", "input"),
    (b'{"model": "embed", "input": ["ok", ""]}', "invalid_request", "input[1]"),
    (b'{"model": "embed", "input": ["ok", null]}', "invalid_request", "input[1]"),
    (b'{"model": "embed", "input": [1, 2, 3]}', "unsupported_input", "input"),
    (b'{"model": "embed", "input": [[1, 2]]}', "unsupported_input", "input"),
    (b'{"model": "embed", "input": "x", "encoding_format": "hex"}', "invalid_request", "encoding_format"),
    (b'{"model": "embed", "input": "x", "dimensions": "8"}', "invalid_request", "dimensions"),
    (b'{"model": "embed", "input": "x", "dimensions": 0}', "invalid_request", "dimensions"),
    (b'{"model": "embed", "input": "x", "dimensions": true}', "invalid_request", "dimensions"),
    (b'{"model": "embed", "input": "x", "user": 7}', "invalid_request", "user"),
    (b'{"model": ["embed"], "input": "x"}', "invalid_request", "model"),
    (b'{"model": "embed", "input": [["a"]]}', "invalid_request", "input[0]"),
    (b'{"model": "embed", "input": "x", "encoding_format": ["float"]}', "invalid_request", "encoding_format"),
    (b'{"model": "embed", "input": "x", "dimensions": 1e3}', "invalid_request", "dimensions"),
    (b'{"model": "embed", "input": "x", "dimensions": 1099511627776}', "unsupported_dimensions", "dimensions"),
    (b'{"model": "embed", "input": "x", "dimensions": 100000000000000000000000}', "invalid_request", "dimensions"),
    (b'{"model": "embed", "input": "' + b"x" * 10 + b'", "input": 3}', "invalid_request", "input"),
    (b'{"model": "auto", "input": "security review"}', "invalid_request", "model"),
    (b'{"model": "security", "input": "x"}', "wrong_endpoint", "model"),
    (b'{"model": "gpt-5", "input": "x"}', "wrong_endpoint", "model"),
]


@pytest.mark.parametrize("body,code,param", BAD)
def test_bad_input_is_a_400_naming_the_field(emu, shared_gw, body, code, param):
    r = httpx.post(shared_gw.url + "/v1/embeddings", content=body, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["param"] == param and err["type"] == "invalid_request_error"
    assert emu.attempts() == []


def test_routing_errors(emu, gw, client, client_for):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-route", input="x")
    with pytest.raises(openai.AuthenticationError):
        client_for(gw, api_key="wrong").embeddings.create(model="embed", input="x")
    r = httpx.post(gw.url + "/v1/embeddings", json={"model": "x", "input": "y"},
                   headers={**AUTH, "x-gateway-route": "general"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "wrong_endpoint"
    with pytest.raises(openai.BadRequestError) as e:  # and the other way round
        client.chat.completions.create(model="embed", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "wrong_endpoint" and "/v1/embeddings" in e.value.message
    assert httpx.get(gw.url + "/v1/embeddings", headers=AUTH).status_code == 405
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'gateway_requests_total{dialect="embeddings",route="none",status="404"} 1.0' in metrics  # rejected before routing
    assert 'gateway_requests_total{dialect="embeddings",route="none",status="401"} 1.0' in metrics


def test_all_models_unavailable_is_503_with_the_attempt_list(emu, client):
    for m in ("te3-a", "te3-b", "gemini-embedding-001"):
        emu.set(m, "withdrawn")
    with pytest.raises(openai.APIStatusError) as e:
        client.embeddings.create(model="embed", input="x")
    assert e.value.status_code == 503
    assert "emb-small: skipped:dimensions" in e.value.message


def test_all_candidates_rate_limited_is_429_despite_dimension_skips(emu, client):
    for m in ("te3-a", "te3-b", "gemini-embedding-001"):
        emu.set(m, "rate_limited:retry_after=7")
    with pytest.raises(openai.RateLimitError) as e:
        client.embeddings.create(model="embed", input="x")
    assert e.value.response.headers["retry-after"] == "7"
    assert "emb-small: skipped:dimensions" in e.value.message


def test_audit_and_prompt_hash(emu, make_gateway, client_for):
    cfg = embed_config(emu.url)
    cfg["audit"] = {"store_prompt_hash": True}
    gw = make_gateway(cfg)
    client_for(gw).embeddings.create(model="embed", input=["x y"])
    writer = gw.gateway.continuity.writer
    deadline = time.monotonic() + 5
    rows: list = []
    while time.monotonic() < deadline and not rows:
        rows = list(writer.store.rows(0, route="embed"))
        time.sleep(0.02)
    assert rows, "the embeddings request was not audited"
    assert rows[0]["status"] == 200
    assert rows[0]["prompt_hash"] == hashlib.sha256(b'["x y"]').hexdigest()


def test_openapi_lists_the_endpoints(gw):
    spec = httpx.get(gw.url + "/openapi.json").json()
    body = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["model", "input"]
    assert "/v1/models/{model_id}" in spec["paths"]


def test_caller_policy_and_operator_withdrawal_apply(emu, make_gateway, client_for):
    cfg = embed_config(emu.url)
    cfg["keys"].append({"name": "eu", "sha256": hashlib.sha256(b"gw-eu-key-0123456").hexdigest(),
                        "attributes": {"jurisdiction": "DE"}})
    cfg["policies"] = [{"name": "no-vendor-a", "deny": {"vendors": ["VendorA"]}, "unless": {"jurisdiction": ["US"]},
                        "reason": "contract"}]
    cfg["admin_keys"] = [{"name": "ops", "sha256": hashlib.sha256(b"gw-admin-key-0123").hexdigest()}]
    gw = make_gateway(cfg)
    raw = client_for(gw, api_key="gw-eu-key-0123456").embeddings.with_raw_response.create(model="embed", input="x")
    assert raw.headers["x-gateway-attempts"] == "emb-a=denied:no-vendor-a,emb-small=skipped:dimensions,emb-b=ok"
    assert emu.attempts("te3-a") == []
    r = httpx.post(gw.url + "/admin/withdrawals", headers={"authorization": "Bearer gw-admin-key-0123"},
                   json={"target": "model", "name": "emb-b", "reason": "vendor pulled it", "actor": "ops@corp"})
    assert r.status_code == 201, r.text
    raw = client_for(gw, api_key="gw-eu-key-0123456").embeddings.with_raw_response.create(model="embed", input="x")
    assert raw.headers["x-gateway-attempts"] == ("emb-a=denied:no-vendor-a,emb-small=skipped:dimensions,"
                                                 "emb-b=skipped:withdrawn_by_operator,gem-emb=ok")


def test_input_too_long_for_every_model_is_a_400_naming_input(emu, client):
    """The caller's to fix, as for chat, but on this endpoint the field is `input` (there are no `messages`)."""
    emu.set("te3-a", "context_exceeded")
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="embed", input="a long text")
    assert e.value.code == "context_length_exceeded" and e.value.body["param"] == "input"
    assert "emb-a: context_too_long" in e.value.message

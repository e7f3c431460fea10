"""Fidelity of the emulator's embedding wires, judged by the vendors' own SDKs: openai (OpenAI and Azure),
google-genai (``embed_content`` -> ``batchEmbedContents``) and boto3 (``invoke_model`` with Titan and Cohere
bodies). Each parses answers into its own types and raises its own error classes for the scripted failures."""

from __future__ import annotations

import base64
import json
import struct
import time

import boto3
import botocore.config
import httpx
import openai
import pytest
from botocore.exceptions import ClientError
from google import genai
from google.genai import errors, types
from openai.types import CreateEmbeddingResponse

from gateway.emulator.embeddings_wire import vector

KEY = "sk-emulator-embeddings-key"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"


@pytest.fixture
def oa(emu):
    return openai.OpenAI(base_url=emu.url + "/v1", api_key=KEY, max_retries=0, timeout=3)


@pytest.fixture(scope="module")
def gc(emulator):
    c = genai.Client(api_key="AIza-emulator-key", http_options=types.HttpOptions(
        base_url=emulator.url, api_version="v1beta", timeout=3000, retry_options=types.HttpRetryOptions(attempts=1)))
    yield c
    c.close()


@pytest.fixture
def br(emu):
    return boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=emu.url,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=3, connect_timeout=2))


# -- OpenAI / Azure ------------------------------------------------------------------------------------------
def test_openai_embeddings_parse_into_sdk_types(emu, oa):
    resp = oa.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert isinstance(resp, CreateEmbeddingResponse)
    assert [d.index for d in resp.data] == [0, 1] and resp.model == "text-embedding-3-small"
    assert len(resp.data[0].embedding) == 1536  # the family's native length
    # The SDK asks for base64 unless told otherwise and decodes the float32 bytes itself.
    assert emu.attempts("text-embedding-3-small")[-1]["request"]["encoding_format"] == "base64"
    assert resp.data[0].embedding == pytest.approx(vector("text-embedding-3-small", "hello world", 1536), abs=1e-6)
    assert abs(sum(x * x for x in resp.data[1].embedding) - 1) < 1e-4  # unit length
    assert resp.usage.prompt_tokens == resp.usage.total_tokens == 3
    att = emu.attempts("text-embedding-3-small")[-1]
    assert att["wire"] == "openai-embeddings" and att["path"] == "/v1/embeddings" and att["auth"] is True


def test_openai_dimensions_base64_and_tokens(emu, oa):
    short = oa.embeddings.create(model="m", input="abc", dimensions=64)
    assert len(short.data[0].embedding) == 64
    b64 = oa.embeddings.create(model="m", input="abc", dimensions=64, encoding_format="base64")
    assert list(struct.unpack("<64f", base64.b64decode(b64.data[0].embedding))) == pytest.approx(
        short.data[0].embedding, abs=1e-6)
    assert len(oa.embeddings.create(model="m", input=[[1, 2, 3], [4]]).data) == 2  # token arrays
    emu.set("m", "healthy:dimensions=8")  # a model that ignores the requested size
    assert len(oa.embeddings.create(model="m", input="abc", dimensions=64).data[0].embedding) == 8


@pytest.mark.parametrize("spec,exc,status", [
    ("withdrawn", openai.NotFoundError, 404),
    ("rate_limited:retry_after=2", openai.RateLimitError, 429),
    ("server_error", openai.InternalServerError, 500),
    ("access_revoked", openai.AuthenticationError, 401),
])
def test_openai_embedding_errors(emu, oa, spec, exc, status):
    emu.set("m", spec)
    with pytest.raises(exc) as e:
        oa.embeddings.create(model="m", input="x")
    assert e.value.status_code == status


def test_openai_missing_input_and_hang(emu, oa):
    r = httpx.post(emu.url + "/v1/embeddings", json={"model": "m"}, headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    emu.set("m", "no_response:delay=0.3")
    t0 = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        oa.embeddings.create(model="m", input="x")
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("style", ["deployments", "v1"])
def test_azure_embeddings(emu, style):
    if style == "deployments":
        client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=KEY, api_version="2024-10-21", max_retries=0,
                                    timeout=3)
    else:
        client = openai.OpenAI(base_url=emu.url + "/openai/v1", api_key=KEY, default_headers={"api-key": KEY},
                               max_retries=0, timeout=3)
    resp = client.embeddings.create(model="emb-dep", input="azure")
    assert resp.data[0].embedding == pytest.approx(vector("emb-dep", "azure", 1536), abs=1e-6)
    att = emu.attempts("emb-dep")[-1]
    assert att["wire"] == "azure-embeddings" and att["auth"] is True
    emu.set("emb-dep", "rate_limited")
    with pytest.raises(openai.RateLimitError):
        client.embeddings.create(model="emb-dep", input="azure")


# -- Gemini ----------------------------------------------------------------------------------------------------
def test_gemini_embed_content_via_sdk(emu, gc):
    resp = gc.models.embed_content(model="gemini-embedding-001", contents=["alpha", "beta gamma"],
                                   config=types.EmbedContentConfig(output_dimensionality=32))
    assert isinstance(resp, types.EmbedContentResponse)
    assert [len(e.values) for e in resp.embeddings] == [32, 32]
    assert resp.embeddings[1].values == vector("gemini-embedding-001", "beta gamma", 32)
    att = emu.attempts("gemini-embedding-001")[-1]
    assert att["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert att["request"]["requests"][0] == {"content": {"parts": [{"text": "alpha"}], "role": "user"},
                                             "model": "models/gemini-embedding-001", "outputDimensionality": 32}
    native = gc.models.embed_content(model="gemini-embedding-001", contents="x")
    assert len(native.embeddings[0].values) == 3072


@pytest.mark.parametrize("spec,code", [("withdrawn", 404), ("rate_limited", 429), ("server_error", 500),
                                       ("no_model_access", 403)])
def test_gemini_embedding_errors(emu, gc, spec, code):
    emu.set("gemini-embedding-001", spec)
    with pytest.raises(errors.APIError) as e:
        gc.models.embed_content(model="gemini-embedding-001", contents="x")
    assert e.value.code == code


def test_gemini_single_embed_content_rest(emu):
    r = httpx.post(emu.url + "/v1beta/models/text-embedding-004:embedContent",
                   json={"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 16},
                   headers={"x-goog-api-key": "AIza-emulator-key"})
    assert r.status_code == 200 and r.json() == {"embedding": {"values": vector("text-embedding-004", "hi", 16)}}
    r = httpx.post(emu.url + "/v1beta/models/text-embedding-004:embedContent", json={"content": {}},
                   headers={"x-goog-api-key": "AIza-emulator-key"})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    # The chat methods are still served by the Gemini chat wire.
    r = httpx.post(emu.url + "/v1beta/models/gemini-2.5-flash:generateContent",
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                   headers={"x-goog-api-key": "AIza-emulator-key"})
    assert r.status_code == 200 and "candidates" in r.json()


# -- Bedrock ---------------------------------------------------------------------------------------------------
def _invoke(br, model: str, body: dict) -> dict:
    r = br.invoke_model(modelId=model, body=json.dumps(body), contentType="application/json",
                        accept="application/json")
    return json.loads(r["body"].read())


def test_bedrock_titan_and_cohere_via_boto3(emu, br):
    titan = _invoke(br, TITAN, {"inputText": "hello there", "dimensions": 256})
    assert titan["embedding"] == vector(TITAN, "hello there", 256) and titan["inputTextTokenCount"] == 2
    cohere = _invoke(br, COHERE, {"texts": ["a", "b c"], "input_type": "search_document"})
    assert [len(v) for v in cohere["embeddings"]] == [1024, 1024] and cohere["response_type"] == "embeddings_floats"
    typed = _invoke(br, COHERE, {"texts": ["a"], "input_type": "search_query", "embedding_types": ["float"]})
    assert typed["embeddings"]["float"][0] == vector(COHERE, "a", 1024)
    att = emu.attempts(TITAN)[-1]
    assert att["wire"] == "bedrock-embeddings" and att["path"] == f"/model/{TITAN}/invoke" and att["auth"] is True


@pytest.mark.parametrize("spec,error_code", [("withdrawn", "ResourceNotFoundException"),
                                             ("rate_limited", "ThrottlingException"),
                                             ("access_revoked", "UnrecognizedClientException")])
def test_bedrock_embedding_errors(emu, br, spec, error_code):
    emu.set(TITAN, spec)
    with pytest.raises(ClientError) as e:
        _invoke(br, TITAN, {"inputText": "x"})
    assert e.value.response["Error"]["Code"] == error_code


def test_bedrock_bad_bodies(br):
    for model, body in ((TITAN, {"texts": ["x"]}), (COHERE, {"inputText": "x"}), ("meta.llama3", {"inputText": "x"})):
        with pytest.raises(ClientError) as e:
            _invoke(br, model, body)
        assert e.value.response["Error"]["Code"] == "ValidationException"

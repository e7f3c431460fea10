"""Fidelity of the Bedrock wire: boto3's bedrock-runtime client pointed at the emulator."""

from __future__ import annotations

import boto3
import botocore.config
import httpx
import pytest
from botocore.exceptions import ClientError, EventStreamError

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
MSG = [{"role": "user", "content": [{"text": "Hello there"}]}]
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                                 "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}}]}


@pytest.fixture
def client(emu):
    return boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=emu.url,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=5,
                                                      connect_timeout=2))


def test_converse_parses(client, emu):
    r = client.converse(modelId=MODEL, messages=MSG, system=[{"text": "Be terse."}],
                        inferenceConfig={"maxTokens": 50})
    assert r["stopReason"] == "end_turn"
    assert r["output"]["message"]["role"] == "assistant"
    assert "Hello from " + MODEL in r["output"]["message"]["content"][0]["text"]
    assert r["usage"]["totalTokens"] == r["usage"]["inputTokens"] + r["usage"]["outputTokens"] > 0
    assert r["metrics"]["latencyMs"] >= 0
    att = emu.attempts(MODEL)[-1]
    assert att["wire"] == "bedrock" and att["auth"] is True and att["stream"] is False
    assert att["request"]["inferenceConfig"] == {"maxTokens": 50}


def test_converse_tool_use(client):
    r = client.converse(modelId=MODEL, messages=MSG, toolConfig={**TOOLS, "toolChoice": {"any": {}}})
    assert r["stopReason"] == "tool_use"
    tu = r["output"]["message"]["content"][0]["toolUse"]
    assert tu["name"] == "get_weather" and tu["input"] == {"city": "example"} and tu["toolUseId"].startswith("tooluse_")


def test_converse_tool_result_turn(client):
    msgs = MSG + [
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather",
                                                       "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"temp": 18}}],
                                                     "status": "success"}}]}]
    r = client.converse(modelId=MODEL, messages=msgs, toolConfig=TOOLS)
    assert r["stopReason"] == "end_turn"
    assert "Tool result received" in r["output"]["message"]["content"][0]["text"]


def test_converse_stream_parses(client):
    r = client.converse_stream(modelId=MODEL, messages=MSG)
    events = list(r["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text.startswith("Hello from " + MODEL)
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] > 0


def test_converse_stream_tool_use(client):
    events = list(client.converse_stream(modelId=MODEL, messages=MSG, toolConfig=TOOLS)["stream"])
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    args = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert args == '{"city":"example"}'
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


def test_arn_model_id_round_trips(client, emu):
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-v1:0"
    client.converse(modelId=arn, messages=MSG)
    assert emu.attempts(arn)[-1]["status"] == 200


def test_content_filter_is_guardrail_intervened(client, emu):
    emu.set(MODEL, "content_filter")
    assert client.converse(modelId=MODEL, messages=MSG)["stopReason"] == "guardrail_intervened"
    events = list(client.converse_stream(modelId=MODEL, messages=MSG)["stream"])
    assert events[-2]["messageStop"]["stopReason"] == "guardrail_intervened"


@pytest.mark.parametrize("behaviour,exc,status", [
    ("withdrawn", "ResourceNotFoundException", 404),
    ("no_model_access", "AccessDeniedException", 403),
    ("rate_limited", "ThrottlingException", 429),
    ("rate_limited:kind=tokens", "ThrottlingException", 429),
    ("context_exceeded", "ValidationException", 400),
    ("region_blocked", "ValidationException", 400),
    ("overloaded", "ServiceUnavailableException", 503),
    ("server_error", "InternalServerException", 500),
])
def test_errors_raise_sdk_exception_classes(client, emu, behaviour, exc, status):
    emu.set(MODEL, behaviour)
    for call in (client.converse, client.converse_stream):
        with pytest.raises(getattr(client.exceptions, exc)) as ei:
            call(modelId=MODEL, messages=MSG)
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert ei.value.response["Error"]["Message"]


@pytest.mark.parametrize("behaviour,code,status", [
    ("access_revoked", "UnrecognizedClientException", 403),
    ("quota", "ServiceQuotaExceededException", 400),
])
def test_unmodelled_errors_raise_client_error_with_code(client, emu, behaviour, code, status):
    emu.set(MODEL, behaviour)
    with pytest.raises(ClientError) as ei:
        client.converse(modelId=MODEL, messages=MSG)
    assert ei.value.response["Error"]["Code"] == code
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_missing_auth_is_403(emu):
    r = httpx.post(f"{emu.url}/model/{MODEL}/converse", json={"messages": MSG})
    assert r.status_code == 403
    assert r.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException:")
    assert r.json() == {"message": "Missing Authentication Token"}
    ok = httpx.post(f"{emu.url}/model/{MODEL}/converse", json={"messages": MSG},
                    headers={"Authorization": "Bearer bedrock-api-key"})
    assert ok.status_code == 200


def test_stream_error_is_exception_frame(client, emu):
    emu.set(MODEL, "stream_error:after=2")
    events = []
    with pytest.raises(EventStreamError) as ei:
        for e in client.converse_stream(modelId=MODEL, messages=MSG)["stream"]:
            events.append(e)
    assert ei.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert sum("contentBlockDelta" in e for e in events) == 2


def test_missing_done_has_no_message_stop(client, emu):
    emu.set(MODEL, "missing_done")
    events = list(client.converse_stream(modelId=MODEL, messages=MSG)["stream"])
    assert not any("messageStop" in e for e in events) and "contentBlockStop" in events[-1]

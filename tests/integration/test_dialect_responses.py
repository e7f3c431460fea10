"""``POST /v1/responses`` end to end, judged by openai-python: stream and not, the SDK's stream accumulator,
a function-call round trip, ``text.format`` json_schema, failover, cut streams, statelessness, bad input."""

from __future__ import annotations

import hashlib
import json

import httpx
import openai
import pytest

from gateway.testing import GatewayThread
from tests.conftest import GATEWAY_KEY
from tests.integration.dialect_config import KINDS, aws_credentials, dialect_config

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather by city",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"]}}
SCHEMA = {"type": "json_schema", "name": "verdict", "strict": True,
          "schema": {"type": "object", "properties": {"model": {"type": "string"}, "answer": {"type": "string"}},
                     "required": ["model", "answer"], "additionalProperties": False}}


@pytest.fixture(scope="module", autouse=True)
def aws_env():
    with aws_credentials():
        yield


@pytest.fixture
def gw(emu, shared_gw):
    """The shared gateway, for tests that make models fail: every model is reinstated afterwards (the gateway
    remembers withdrawn, cooling and breaker-open models)."""
    yield shared_gw
    for model in shared_gw.gateway.runtime.targets:
        shared_gw.gateway.state.reinstate(model)


@pytest.fixture(scope="module")
def shared_gw(emulator, tmp_path_factory):
    with GatewayThread(dialect_config(emulator.url), tmp_path_factory.mktemp("dialect-responses")) as g:
        yield g


@pytest.fixture
def healthy(emu, shared_gw):
    return shared_gw


def client(gw, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=kw.pop("api_key", GATEWAY_KEY), max_retries=0, timeout=15)


@pytest.mark.parametrize("route", list(KINDS))
def test_every_provider_kind_answers(healthy, route):
    model, upstream = KINDS[route]
    raw = client(healthy).responses.with_raw_response.create(model=route, input="Hello there",
                                                              instructions="Be terse.", max_output_tokens=100)
    resp = raw.parse()
    assert raw.headers["x-gateway-model"] == model
    assert resp.object == "response" and resp.status == "completed" and resp.model == model
    assert resp.id.startswith("resp_") and resp.output_text == f"Hello from {upstream}. You said: Hello there"
    assert resp.usage.output_tokens == 7 and resp.usage.total_tokens == resp.usage.input_tokens + 7
    assert resp.store is True and resp.instructions == "Be terse." and resp.max_output_tokens == 100


def test_stream_events_and_the_sdk_accumulator(healthy):
    with client(healthy).responses.stream(model="anthropic-first", input="Hello there") as stream:
        types = [e.type for e in stream]
        final = stream.get_final_response()
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert final.output_text == "Hello from claude-sonnet-emu. You said: Hello there" and final.model == "claude"
    raw = list(client(healthy).responses.create(model="openai-first", input="Hi", stream=True))
    assert [e.sequence_number for e in raw] == list(range(len(raw)))
    assert raw[-1].type == "response.completed" and raw[-1].response.usage.output_tokens == 6


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip_across_a_failover(emu, gw, stream):
    emu.set("claude-sonnet-emu", "withdrawn")
    c = client(gw)
    if stream:
        with c.responses.stream(model="anthropic-first", input="Weather in Paris?", tools=[WEATHER],
                                tool_choice="required") as s:
            deltas = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
            first = s.get_final_response()
        assert json.loads("".join(deltas)) == {"location": "example"}
    else:
        first = c.responses.create(model="anthropic-first", input="Weather in Paris?", tools=[WEATHER],
                                   tool_choice={"type": "function", "name": "get_weather"})
    assert first.model == "gpt-5"
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {
        "location": "example"}
    second = c.responses.create(model="anthropic-first", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather",
         "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C, sunny"}])
    assert second.output_text == "Tool result received: 18C, sunny"
    sent = emu.attempts("gpt-5")[-1]["request"]["messages"]
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": calls[0].call_id, "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": calls[0].arguments}}]}
    assert sent[2] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "18C, sunny"}


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_format_across_a_failover(emu, gw, stream):
    emu.set("claude-sonnet-emu", "overloaded")
    c = client(gw)
    if stream:
        with c.responses.stream(model="anthropic-first", input="verdict?", text={"format": SCHEMA}) as s:
            resp = s.get_final_response()
    else:
        resp = c.responses.create(model="anthropic-first", input="verdict?", text={"format": SCHEMA})
    assert resp.model == "gpt-5" and json.loads(resp.output_text) == {"model": "example", "answer": "example"}
    assert resp.text.format.type == "json_schema"
    sent = emu.attempts("gpt-5")[-1]["request"]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "verdict", "schema": SCHEMA["schema"], "strict": True}}


def test_cut_stream_is_continued_or_fails_with_response_failed(emu, gw):
    emu.set("claude-sonnet-emu", "stream_cut:after=3,words=12")
    emu.set("gpt-5", "healthy:words=12")
    with client(gw).responses.stream(model="anthropic-first", input="count") as s:
        final = s.get_final_response()
    assert final.output_text == " ".join(f"w{i}" for i in range(1, 13))
    emu.set("gpt-5", "stream_cut:after=2")
    r = httpx.post(gw.url + "/v1/responses", json={"model": "openai-first", "input": "count", "stream": True},
                   headers={"authorization": f"Bearer {GATEWAY_KEY}"})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    types = [e["type"] for e in events]
    assert "response.completed" not in types and types[-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "server_error" and events[-2]["error"]["code"] == "server_error"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert "failed after it started" in failed["error"]["message"]
    assert failed["output"][0]["status"] == "incomplete"
    # The SDK raises on the error event, iterating raw events or through the stream helper: never a clean end,
    # never a RuntimeError that no `except openai.APIError` sees.
    seen = []
    with pytest.raises(openai.APIError) as raw:
        for event in client(gw).responses.create(model="openai-first", input="count", stream=True):
            seen.append(event.type)
    assert raw.value.code == "server_error" and "failed after it started" in raw.value.message
    assert "response.output_text.delta" in seen and "response.completed" not in seen
    with pytest.raises(openai.APIError) as helper, client(gw).responses.stream(model="openai-first",
                                                                              input="count") as s:
        s.get_final_response()
    assert helper.value.code == "server_error"


def test_stored_responses_continue_by_previous_response_id_and_item_reference(emu, gw):
    c = client(gw)
    first = c.responses.create(model="openai-first", input="first question", instructions="Be terse.")
    assert first.store is True
    second = c.responses.create(model="openai-first", input="second question", previous_response_id=first.id)
    sent = emu.attempts("gpt-5")[-1]["request"]["messages"]
    assert sent == [{"role": "user", "content": "first question"},
                    {"role": "assistant", "content": first.output_text},
                    {"role": "user", "content": "second question"}]
    with c.responses.stream(model="openai-first", input="third", previous_response_id=second.id) as s:
        third = s.get_final_response()
    assert len(emu.attempts("gpt-5")[-1]["request"]["messages"]) == 5
    ref = c.responses.create(model="openai-first", input=[
        {"role": "user", "content": "q"}, {"type": "item_reference", "id": third.output[0].id},
        {"role": "user", "content": "again"}])
    assert ref.output_text.endswith("You said: again")
    assert emu.attempts("gpt-5")[-1]["request"]["messages"][1] == {"role": "assistant",
                                                                    "content": third.output_text}
    unstored = c.responses.create(model="openai-first", input="secret", store=False)
    assert unstored.store is False
    with pytest.raises(openai.BadRequestError) as gone:
        c.responses.create(model="openai-first", input="hi", previous_response_id=unstored.id)
    assert gone.value.body["param"] == "previous_response_id" and "not found" in gone.value.body["message"]
    with pytest.raises(openai.BadRequestError) as bg:
        c.responses.create(model="openai-first", input="hi", background=True)
    assert bg.value.body["param"] == "background"


def test_errors_keep_openai_classes(emu, gw):
    with pytest.raises(openai.AuthenticationError):
        client(gw, api_key="nope").responses.create(model="openai-first", input="hi")
    with pytest.raises(openai.NotFoundError):
        client(gw).responses.create(model="nope", input="hi")
    with pytest.raises(openai.BadRequestError) as tool:
        client(gw).responses.create(model="openai-first", input="hi", tools=[{"type": "web_search"}])
    assert tool.value.body["param"] == "tools[0].type"
    emu.set("gpt-5", "rate_limited:retry_after=1")
    with pytest.raises(openai.RateLimitError):
        client(gw).responses.create(model="openai-first", input="hi")


def test_any_json_shape_is_a_400_naming_the_field(healthy):
    cases = {b"[]": None, b"{": None, b'{"input": 5}': "input", b'{"input": [5]}': "input[0]",
             b'{"input": [{"role": "robot", "content": "x"}]}': "input[0].role",
             b'{"input": "x", "tools": {}}': "tools", b'{"input": "x", "temperature": "hot"}': "temperature",
             b'{"input": "x", "text": {"format": {"type": "json_schema"}}}': "text.format.name",
             b'{"input": [{"type": "function_call_output", "call_id": 1, "output": "x"}]}': "input[0].call_id",
             b'{"input": "x", "max_output_tokens": 0}': "max_output_tokens",
             b'{"model": "anthropic-first", "input": [{"role": "user", "content": [{"type": "input_image", '
             b'"image_url": "ftp://x/y.png"}]}]}': "input[0].content[0].image_url"}
    for body, param in cases.items():
        r = httpx.post(healthy.url + "/v1/responses", content=body,
                       headers={"authorization": f"Bearer {GATEWAY_KEY}"})
        assert r.status_code == 400, body
        assert r.json()["error"]["param"] == param, body


def test_the_store_can_be_turned_off(emu, make_gateway):
    gw = make_gateway(dialect_config(emu.url, responses_store={"max_responses": 0}))
    c = client(gw)
    first = c.responses.create(model="openai-first", input="hi")
    assert first.store is False
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model="openai-first", input="more", previous_response_id=first.id)
    assert e.value.body["param"] == "previous_response_id"


def test_stored_responses_belong_to_the_key_that_made_them(emu, make_gateway):
    """Response ids are the gateway's request ids (a counter anyone can see in their own ids): another key must
    not continue, or read through ``item_reference``, a conversation it did not have."""
    other_key = "gw-other-team-key-0123456789"
    cfg = dialect_config(emu.url)
    cfg["keys"] = [*cfg["keys"], {"name": "other-team", "sha256": hashlib.sha256(other_key.encode()).hexdigest()}]
    gw = make_gateway(cfg)
    mine = client(gw).responses.create(model="openai-first", input="our incident notes: host db-7 is compromised")
    theirs = client(gw, api_key=other_key)
    with pytest.raises(openai.BadRequestError) as prev:
        theirs.responses.create(model="openai-first", input="what did they say?", previous_response_id=mine.id)
    assert prev.value.body["param"] == "previous_response_id" and "not found" in prev.value.body["message"]
    with pytest.raises(openai.BadRequestError) as ref:
        theirs.responses.create(model="openai-first", input=[{"type": "item_reference", "id": mine.output[0].id}])
    assert ref.value.body["param"] == "input[0].id"
    assert not any("db-7" in json.dumps(a["request"]) for a in emu.attempts()[1:])  # nothing of it went upstream
    again = client(gw).responses.create(model="openai-first", input="and then?", previous_response_id=mine.id)
    assert again.output_text.endswith("You said: and then?")  # the owner still continues it


def test_a_client_chosen_request_id_never_becomes_a_stored_response_id(emu, gw):
    """The chat endpoint adopts a client's x-request-id; the Responses answer id must stay the gateway's own,
    unique, or one request could replace another's stored answer by sending the same x-request-id."""
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=15,
                      default_headers={"x-request-id": "fixed-id-0001"})
    first = c.responses.create(model="openai-first", input="first question")
    second = c.responses.create(model="openai-first", input="second question")
    assert first._request_id == "fixed-id-0001"  # still the request's id, for the client's own correlation
    assert first.id != second.id and first.id != "resp_fixed-id-0001"
    again = client(gw).responses.create(model="openai-first", input="and?", previous_response_id=first.id)
    assert emu.attempts("gpt-5")[-1]["request"]["messages"][0] == {"role": "user", "content": "first question"}
    assert again.output_text.endswith("You said: and?")

"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` end to end, judged by the anthropic SDK: every provider
kind as upstream, failover, streaming (helper and raw events), tools, errors, and a Claude-Code-shaped request."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time

import anthropic
import httpx
import pytest

from gateway.audit.store import SQLiteAuditStore
from gateway.testing import GatewayThread
from tests.conftest import GATEWAY_KEY
from tests.integration.dialect_config import KINDS, aws_credentials, dialect_config

MSG = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"name": "get_weather", "description": "Weather by city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                            "required": ["location"]}}


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
    """One gateway for the tests where every model is healthy (saves a start-up per test)."""
    with GatewayThread(dialect_config(emulator.url), tmp_path_factory.mktemp("dialect-anthropic")) as g:
        yield g


@pytest.fixture
def healthy(emu, shared_gw):
    return shared_gw


def client(gw, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=kw.pop("api_key", GATEWAY_KEY), max_retries=0, timeout=15,
                               **kw)


@pytest.mark.parametrize("route", list(KINDS))
def test_every_provider_kind_answers_in_anthropic_format(healthy, route):
    model, upstream = KINDS[route]
    raw = client(healthy).messages.with_raw_response.create(model=route, max_tokens=200, messages=MSG,
                                                         system="Be brief.")
    msg = raw.parse()
    assert raw.headers["x-gateway-model"] == model and raw.headers["x-gateway-attempts"] == f"{model}=ok"
    assert msg.type == "message" and msg.role == "assistant" and msg.model == model
    assert msg.id.startswith("msg_") and msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == f"Hello from {upstream}. You said: What is the weather in Paris?"
    assert msg.usage.output_tokens == 11 and msg.usage.input_tokens == 8
    assert msg._request_id == raw.headers["x-request-id"]


@pytest.mark.parametrize("route", list(KINDS))
def test_every_provider_kind_streams_with_the_sdk_helper(healthy, route):
    model, upstream = KINDS[route]
    with client(healthy).messages.stream(model=route, max_tokens=200, messages=MSG) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"Hello from {upstream}. You said: What is the weather in Paris?"
    assert final.model == model and final.stop_reason == "end_turn" and final.content[0].text == text
    assert final.usage.output_tokens == 11


@pytest.mark.parametrize("route", list(KINDS))
def test_every_provider_kind_tool_round_trip(healthy, route):
    model = KINDS[route][0]
    c = client(healthy)
    first = c.messages.create(model=route, max_tokens=200, messages=MSG, tools=[WEATHER],
                              tool_choice={"type": "tool", "name": "get_weather"})
    assert first.stop_reason == "tool_use" and first.model == model
    use = [b for b in first.content if b.type == "tool_use"]
    assert len(use) == 1 and use[0].name == "get_weather" and use[0].input == {"location": "example"}
    second = c.messages.create(model=route, max_tokens=200, tools=[WEATHER], messages=[
        *MSG, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use[0].id, "content": "18C, sunny"}]}])
    assert second.stop_reason == "end_turn"
    # (Gemini's functionResponse wraps a text result as {"content": ...}; the emulator echoes what it got.)
    assert second.content[0].text.startswith("Tool result received: ") and "18C, sunny" in second.content[0].text


@pytest.mark.parametrize("route", ["anthropic-first", "openai-first", "gemini-first"])
def test_streamed_tool_call_arrives_as_input_json_deltas(healthy, route):
    with client(healthy).messages.stream(model=route, max_tokens=200, messages=MSG, tools=[WEATHER],
                                    tool_choice={"type": "any"}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta.partial_json for e in events if e.type == "content_block_delta"
              and e.delta.type == "input_json_delta"]
    assert deltas and json.loads("".join(deltas)) == {"location": "example"}
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use" and final.content[-1].input == {"location": "example"}


def test_raw_stream_events_in_anthropic_order(healthy):
    stream = client(healthy).messages.create(model="openai-first", max_tokens=50, messages=MSG, stream=True)
    types = [e.type for e in stream]
    assert types[0] == "message_start" and types[1] == "content_block_start"
    assert set(types[2:-3]) == {"content_block_delta"}
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    # On the wire: every event is named (the SDK drops unnamed ones) and a ping follows message_start.
    with httpx.stream("POST", healthy.url + "/v1/messages", headers={"x-api-key": GATEWAY_KEY},
                      json={"model": "openai-first", "max_tokens": 50, "messages": MSG, "stream": True}) as r:
        body = r.read().decode()
    frames = [f for f in body.split("\n\n") if f]
    assert all(f.startswith("event: ") for f in frames)
    assert [f.split("\n")[0][7:] for f in frames[:2]] == ["message_start", "ping"]


def test_async_client_create_and_stream(healthy):
    async def run():
        c = anthropic.AsyncAnthropic(base_url=healthy.url, api_key=GATEWAY_KEY, max_retries=0, timeout=15)
        msg = await c.messages.create(model="anthropic-first", max_tokens=100, messages=MSG)
        async with c.messages.stream(model="openai-first", max_tokens=100, messages=MSG) as stream:
            text = "".join([t async for t in stream.text_stream])
        await c.close()
        return msg, text

    msg, text = asyncio.run(run())
    assert msg.model == "claude" and msg.content[0].text.startswith("Hello from claude-sonnet-emu.")
    assert text.startswith("Hello from gpt-5.")


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_primary_withdrawn_an_openai_model_answers_in_anthropic_format(emu, gw, stream):
    emu.set("claude-sonnet-emu", "withdrawn")
    c = client(gw)
    if stream:
        with c.messages.stream(model="anthropic-first", max_tokens=100, messages=MSG) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
            headers = s.response.headers
    else:
        raw = c.messages.with_raw_response.create(model="anthropic-first", max_tokens=100, messages=MSG)
        final, headers = raw.parse(), raw.headers
        text = final.content[0].text
    assert text == "Hello from gpt-5. You said: What is the weather in Paris?"
    assert final.model == "gpt-5" and headers["x-gateway-model"] == "gpt-5"
    assert headers["x-gateway-attempts"] == "claude=withdrawn,gpt-5=ok"


def test_cut_stream_is_continued_by_the_fallback_into_one_answer(emu, gw):
    emu.set("claude-sonnet-emu", "stream_cut:after=3,words=12")
    emu.set("gpt-5", "healthy:words=12")
    with client(gw).messages.stream(model="anthropic-first", max_tokens=100, messages=MSG) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == " ".join(f"w{i}" for i in range(1, 13))
    assert final.stop_reason == "end_turn"


def test_stream_that_cannot_complete_ends_with_an_error_event(emu, gw):
    emu.set("claude-sonnet-emu", "stream_cut:after=3")
    emu.set("gpt-5", "server_error")
    seen = []
    with pytest.raises(anthropic.APIStatusError) as exc:
        for event in client(gw).messages.create(model="anthropic-first", max_tokens=100, messages=MSG,
                                                stream=True):
            seen.append(event.type)
    assert "message_stop" not in seen and "content_block_delta" in seen
    assert exc.value.body["type"] == "error" and exc.value.body["error"]["type"] == "api_error"
    assert "failed after it started" in exc.value.body["error"]["message"]


def test_error_classes(emu, gw):
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(gw, api_key="wrong-key").messages.create(model="openai-first", max_tokens=10, messages=MSG)
    assert auth.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                          "message": "Incorrect API key provided."},
                               "request_id": auth.value.response.headers["x-request-id"]}
    with pytest.raises(anthropic.BadRequestError) as bad:
        client(gw).messages.create(model="openai-first", max_tokens=10, messages=[{"role": "user", "content": 5}])
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    assert "messages[0].content" in bad.value.body["error"]["message"]
    missing = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": GATEWAY_KEY},
                         json={"model": "openai-first", "messages": MSG})
    assert missing.status_code == 400 and missing.json()["error"] == {
        "type": "invalid_request_error", "message": "Missing required parameter: 'max_tokens'."}
    with pytest.raises(anthropic.NotFoundError) as nf:
        client(gw).messages.create(model="no-such-model", max_tokens=10, messages=MSG)
    assert nf.value.body["error"]["type"] == "not_found_error"
    emu.set("gpt-5", "rate_limited:retry_after=1")
    with pytest.raises(anthropic.RateLimitError) as rl:
        client(gw).messages.create(model="openai-first", max_tokens=10, messages=MSG)
    assert rl.value.body["error"]["type"] == "rate_limit_error"
    emu.set("claude-sonnet-emu", "overloaded")
    emu.set("gpt-5", "server_error")
    with pytest.raises(anthropic.InternalServerError) as down:
        client(gw).messages.create(model="anthropic-first", max_tokens=10, messages=MSG)
    assert down.value.body["type"] == "error" and down.value.status_code >= 500


def test_bearer_auth_and_anthropic_headers_accepted(healthy):
    c = anthropic.Anthropic(base_url=healthy.url, auth_token=GATEWAY_KEY, max_retries=0,
                            default_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    assert c.messages.create(model="openai-first", max_tokens=10, messages=MSG).model == "gpt-5"
    r = httpx.post(healthy.url + "/v1/messages", json={"model": "openai-first", "max_tokens": 5, "messages": MSG})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert "x-api-key" in r.json()["error"]["message"]


def test_count_tokens(healthy):
    count = client(healthy).messages.count_tokens(model="anthropic-first", system="You are terse.",
                                             messages=[{"role": "user", "content": "x" * 400}])
    assert 100 <= count.input_tokens <= 110
    with pytest.raises(anthropic.BadRequestError):
        client(healthy).messages.count_tokens(model="x", messages=[])
    with pytest.raises(anthropic.AuthenticationError):
        client(healthy, api_key="nope").messages.count_tokens(model="x", messages=MSG)


def test_non_object_bodies_are_400_in_anthropic_shape(healthy):
    for body in (b"[]", b"null", b'"x"', b"{", b'{"messages": {}}', b'{"messages": [1]}',
                 b'{"max_tokens": "5", "messages": [{"role": "user", "content": "hi"}]}',
                 b'{"max_tokens": 5, "tools": [7], "messages": [{"role": "user", "content": "hi"}]}',
                 b'{"max_tokens": 5, "system": [{"type": "image"}], "messages": [{"role": "user", "content": "hi"}]}'):
        r = httpx.post(healthy.url + "/v1/messages", content=body, headers={"x-api-key": GATEWAY_KEY})
        assert r.status_code == 400, body
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.get(healthy.url + "/v1/messages", headers={"x-api-key": GATEWAY_KEY})
    assert r.status_code == 405


def test_dialect_endpoints_are_in_the_openapi_document(healthy):
    paths = httpx.get(healthy.url + "/openapi.json").json()["paths"]
    assert paths["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "messages", "max_tokens"]
    assert "/v1/messages/count_tokens" in paths and "/v1/responses" in paths
    assert "/healthz" in paths  # the generated part is still there


# A request in the shape Claude Code sends (system blocks with cache_control, many tools, metadata.user_id,
# stream, anthropic-beta, the model id Claude Code asks for), trimmed from a captured request.
CLAUDE_CODE_TOOLS = [
    {"name": name, "description": f"{name} tool", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["path"], "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}}
    for name in ("Task", "Bash", "Glob", "Grep", "LS", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit",
                 "WebFetch", "TodoWrite", "WebSearch", "BashOutput", "KillBash")]
CLAUDE_CODE = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "stream": True,
    "temperature": 1,
    "system": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks.",
         "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>As you answer the user's questions, you can use the following "
                                 "context.</system-reminder>"},
        {"type": "text", "text": "review this diff for injection bugs", "cache_control": {"type": "ephemeral"}},
    ]}],
    "tools": CLAUDE_CODE_TOOLS,
    "metadata": {"user_id": "user_0f3c_account__session_8d1e"},
}
CLAUDE_CODE_HEADERS = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01",
                       "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                                         "fine-grained-tool-streaming-2025-05-14",
                       "x-app": "cli", "user-agent": "claude-cli/2.0.0 (external, cli)"}


def _sse_events(body: str) -> list[tuple[str, dict]]:
    out = []
    for frame in body.split("\n\n"):
        if frame:
            name, data = frame.split("\n", 1)
            out.append((name[7:], json.loads(data[6:])))
    return out


def _replay(gw) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    with httpx.stream("POST", gw.url + "/v1/messages", json=CLAUDE_CODE, headers=CLAUDE_CODE_HEADERS,
                      timeout=15) as r:
        return r, _sse_events(r.read().decode())


def test_claude_code_request_passes_through_natively_to_an_anthropic_model(emu, healthy):
    r, events = _replay(healthy)
    assert r.status_code == 200 and r.headers["x-gateway-model"] == "claude"
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    assert events[0][1]["message"]["model"] == "claude"
    sent = emu.attempts("claude-sonnet-emu")[-1]["request"]
    expected = {k: v for k, v in CLAUDE_CODE.items() if k not in ("model",)}
    assert sent == {**expected, "model": "claude-sonnet-emu"}  # byte for byte, cache_control and metadata kept


def test_claude_code_request_is_translated_when_the_anthropic_model_is_withdrawn(emu, gw):
    emu.set("claude-sonnet-emu", "withdrawn")
    r, events = _replay(gw)
    assert r.status_code == 200 and r.headers["x-gateway-model"] == "gpt-5"
    assert r.headers["x-gateway-attempts"] == "claude=withdrawn,gpt-5=ok"
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["model"] == "gpt-5"
    blocks = [d for n, d in events if n == "content_block_start"]
    # The emulator calls the first tool when tools are offered and the last turn is the user's.
    assert blocks[-1]["content_block"]["type"] == "tool_use" and blocks[-1]["content_block"]["name"] == "Task"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    sent = emu.attempts("gpt-5")[-1]["request"]
    assert sent["messages"][0] == {"role": "system", "content": (
        "You are Claude Code, Anthropic's official CLI for Claude.\n\n"
        "You are an interactive CLI tool that helps users with software engineering tasks.")}
    assert sent["user"] == "user_0f3c_account__session_8d1e" and sent["max_tokens"] == 32000
    assert len(sent["tools"]) == 15 and sent["tools"][1]["function"]["name"] == "Bash"
    assert sent["stream_options"] == {"include_usage": True}


def test_dialect_is_on_the_request_metric_and_in_the_audit_record(gw):
    client(gw).messages.create(model="openai-first", max_tokens=10, messages=MSG)
    metrics = httpx.get(gw.url + "/metrics").text
    assert re.search(r'^gateway_requests_total\{dialect="anthropic_messages",route="openai-first",status="200"\} '
                     r'[1-9]', metrics, re.MULTILINE)
    path = gw.gateway.continuity.path
    deadline = time.monotonic() + 5
    rows: list = []
    while time.monotonic() < deadline:
        if path is not None and path.exists():
            store = SQLiteAuditStore(path, readonly=True)
            rows = [r for r in store.rows(0) if r["route"] == "openai-first"]
            store.close()
            if rows:
                break
        time.sleep(0.05)
    assert rows and rows[-1]["dialect"] == "anthropic_messages"


def test_thinking_blocks_stream_through_and_come_back_with_the_tool_result(emu, healthy):
    """With thinking on, Anthropic wants the last assistant turn's thinking block (signature intact) back with
    the tool result; the emulator answers 400 otherwise. So the stream relays thinking blocks to this dialect."""
    c = client(healthy)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with c.messages.stream(model="anthropic-first", max_tokens=2000, messages=MSG, tools=[WEATHER],
                           thinking=thinking) as s:
        first = s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].thinking == "Considering the request." and first.content[0].signature == "sig-emu"
    use = first.content[1]
    turn = [*MSG, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C"}]}]
    with c.messages.stream(model="anthropic-first", max_tokens=2000, messages=turn, tools=[WEATHER],
                           thinking=thinking) as s:
        second = s.get_final_message()
    assert second.content[-1].text == "Tool result received: 18C"
    # Without its thinking block the upstream refuses the turn, and the gateway says so in Anthropic's shape.
    bare = [*MSG, {"role": "assistant", "content": [use.model_dump(exclude_none=True)]}, turn[2]]
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model="anthropic-first", max_tokens=2000, messages=bare, tools=[WEATHER],
                          thinking=thinking, stream=True)
    assert "thinking" in e.value.body["error"]["message"]
    # A non-streaming answer has no place for thinking blocks: thinking is not requested for it.
    c.messages.create(model="anthropic-first", max_tokens=2000, messages=MSG, thinking=thinking)
    assert "thinking" not in emu.attempts("claude-sonnet-emu")[-1]["request"]


def test_caller_policy_holds_in_the_dialects(emu, make_gateway):
    """A jurisdiction policy skips the Anthropic model for a DE caller on every hop; a key limited to one route
    gets Anthropic's permission_error elsewhere; the Responses dialect is held to the same rules."""
    cfg = dialect_config(emu.url)
    cfg["keys"] = [{"name": "berlin", "sha256": hashlib.sha256(b"de-key-0123456789").hexdigest(),
                    "attributes": {"jurisdiction": "DE"}},
                   {"name": "limited", "sha256": hashlib.sha256(b"limited-key-0123456789").hexdigest(),
                    "routes": ["openai-first"]}]
    cfg["policies"] = [{"name": "us-only-claude", "deny": {"models": ["claude"]}, "unless": {"jurisdiction": ["US"]},
                        "reason": "directive"}]
    gw = make_gateway(cfg)
    raw = client(gw, api_key="de-key-0123456789").messages.with_raw_response.create(
        model="anthropic-first", max_tokens=10, messages=MSG)
    assert raw.parse().model == "gpt-5" and raw.headers["x-gateway-attempts"] == "claude=denied:us-only-claude,gpt-5=ok"
    assert emu.attempts("claude-sonnet-emu") == []
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        client(gw, api_key="limited-key-0123456789").messages.create(model="anthropic-first", max_tokens=10,
                                                                      messages=MSG)
    assert denied.value.body["error"]["type"] == "permission_error"
    import openai

    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=gw.url + "/v1", api_key="limited-key-0123456789", max_retries=0).responses.create(
            model="anthropic-first", input="hi")


def test_gateway_options_are_headers_never_body_fields(emu, healthy):
    c = client(healthy)
    raw = c.messages.with_raw_response.create(model="anthropic-first", max_tokens=10, messages=MSG,
                                               extra_headers={"x-gateway-route": "openai-first"})
    assert raw.headers["x-gateway-route"] == "openai-first" and raw.parse().model == "gpt-5"
    # Body fields that look like gateway options are the vendor's: passed on, never read as config.
    raw = c.messages.with_raw_response.create(model="anthropic-first", max_tokens=10, messages=MSG,
                                               extra_body={"route": "openai-first", "x-gateway-route": "openai-first"})
    assert raw.headers["x-gateway-route"] == "anthropic-first" and raw.parse().model == "claude"
    sent = emu.attempts("claude-sonnet-emu")[-1]["request"]
    assert sent["route"] == "openai-first" and sent["x-gateway-route"] == "openai-first"


def test_anthropic_only_features_are_served_natively_and_never_silently_dropped(emu, gw):
    """A server tool (Claude Code's WebSearch) goes natively to the Anthropic model; when only another vendor is
    left, the answer is a 400 naming the tool, not an answer that ignored it."""
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    c = client(gw)
    msg = c.messages.create(model="anthropic-first", max_tokens=100, messages=MSG, tools=[search])
    assert msg.model == "claude"
    assert emu.attempts("claude-sonnet-emu")[-1]["request"]["tools"] == [search]
    emu.set("claude-sonnet-emu", "withdrawn")
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model="anthropic-first", max_tokens=100, messages=MSG, tools=[search])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "tools[0].type: Anthropic server tool 'web_search_20250305' can only be served by anthropic-kind" in \
        e.value.body["error"]["message"]
    assert e.value.response.headers["x-gateway-attempts"] == "claude=withdrawn,gpt-5=bad_request"
    assert emu.attempts("gpt-5") == []  # refused before any call


@pytest.mark.parametrize("route", [r for r in KINDS if r != "anthropic-first"])
def test_claude_code_request_is_served_by_every_other_provider_kind(healthy, route):
    with httpx.stream("POST", healthy.url + "/v1/messages", json={**CLAUDE_CODE, "model": route},
                      headers=CLAUDE_CODE_HEADERS, timeout=15) as r:
        events = _sse_events(r.read().decode())
    assert r.status_code == 200 and r.headers["x-gateway-attempts"] == f"{KINDS[route][0]}=ok"
    assert events[0][1]["message"]["model"] == KINDS[route][0] and events[-1][0] == "message_stop"
    tool = next(d["content_block"] for n, d in events if n == "content_block_start")
    assert tool["type"] == "tool_use" and tool["name"] == "Task"
    partial = "".join(d["delta"]["partial_json"] for n, d in events
                      if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta")
    assert json.loads(partial) == {"path": "example"}


def test_auto_routing_classifies_the_dialects_prompt(healthy):
    text = [{"type": "text", "text": "context"}, {"type": "text", "text": "is this SQL injection?"}]
    raw = client(healthy).messages.with_raw_response.create(model="auto", max_tokens=10,
                                                             messages=[{"role": "user", "content": text}])
    assert raw.headers["x-gateway-route"] == "security-review"
    import openai

    raw = openai.OpenAI(base_url=healthy.url + "/v1", api_key=GATEWAY_KEY, max_retries=0).responses \
        .with_raw_response.create(model="auto", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "find the XSS here"}]}])
    assert raw.headers["x-gateway-route"] == "security-review"

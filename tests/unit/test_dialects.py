"""The inbound-dialect translators as tables of literal bodies (no sockets): Anthropic Messages and OpenAI
Responses requests -> the internal chat request, internal answers/chunks -> the dialect, and the native
passthrough of an Anthropic body to an Anthropic-kind adapter."""

from __future__ import annotations

import json

import orjson
import pytest

from gateway.api.dialects import anthropic_messages as am
from gateway.api.dialects import responses as rs
from gateway.api.dialects.response_store import ResponseStore
from gateway.errors import GatewayError
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.base import NativeBody, Target
from gateway.providers.openai import OpenAIAdapter

USER = {"role": "user", "content": "hi"}

# -- Anthropic Messages -> internal ------------------------------------------------------------------------
ANTHROPIC_REQUESTS = [
    ({"model": "security", "max_tokens": 10, "messages": [USER]},
     {"model": "security", "messages": [USER], "max_tokens": 10}),
    ({"max_tokens": 5, "stream": True, "system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                                                  {"type": "text", "text": "B"}],
      "messages": [USER], "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["a", "b", "c", "d", "e"],
      "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 2048}},
     {"messages": [{"role": "system", "content": "A\n\nB"}, USER], "max_tokens": 5, "stream": True,
      "stream_options": {"include_usage": True}, "temperature": 0.5, "top_p": 0.9, "stop": ["a", "b", "c", "d"],
      "user": "u1"}),
    ({"max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "iVBO"}},
                                     {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                          {"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "out"}], "is_error": True},
                                     {"type": "text", "text": "and?"}]}],
      "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}, {"name": "g"}],
      "tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
     {"messages": [
         {"role": "user", "content": [{"type": "text", "text": "look"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                                      {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
         {"role": "assistant", "content": "calling", "tool_calls": [
             {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]},
         {"role": "tool", "tool_call_id": "toolu_1", "content": "[error] out"},
         {"role": "user", "content": [{"type": "text", "text": "and?"}]}],
      "max_tokens": 5,
      "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}},
                {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}}],
      "tool_choice": "required", "parallel_tool_calls": False}),
    ({"max_tokens": 1, "messages": [USER], "tool_choice": {"type": "tool", "name": "f"}},
     {"messages": [USER], "max_tokens": 1, "tool_choice": {"type": "function", "function": {"name": "f"}}}),
]


@pytest.mark.parametrize("body,expected", ANTHROPIC_REQUESTS)
def test_anthropic_request_to_internal(body, expected):
    assert am.to_internal(body) == expected


ANTHROPIC_BAD = [
    ([], None, "must be a JSON object"),
    ({"max_tokens": 1}, "messages", "Missing required parameter: 'messages'"),
    ({"messages": [USER]}, "max_tokens", "Missing required parameter: 'max_tokens'"),
    ({"max_tokens": True, "messages": [USER]}, "max_tokens", "got boolean"),
    ({"max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role", "'user' or"),
    ({"max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": "x"}]}]},
     "messages[0].content[0].source", "image source"),
    ({"max_tokens": 1, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
     "messages[0].content[0].type", "a string"),
    ({"max_tokens": 1, "messages": [USER], "temperature": 1.5}, "temperature", "between 0 and 1"),
    ({"max_tokens": 1, "messages": [USER], "stop_sequences": [1]}, "stop_sequences[0]", "a string"),
    ({"max_tokens": 1, "messages": [USER], "metadata": {"user_id": 5}}, "metadata.user_id", "a string"),
    ({"max_tokens": 1, "messages": [USER], "tool_choice": {"type": "maybe"}}, "tool_choice.type", "auto, any"),
    ({"max_tokens": 1, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                                       "input": []}]}]},
     "messages[0].content[0].input", "an object"),
]


@pytest.mark.parametrize("body,param,text", ANTHROPIC_BAD)
def test_anthropic_bad_requests_name_the_field(body, param, text):
    with pytest.raises(GatewayError) as e:
        am.to_internal(body)
    assert e.value.status == 400 and e.value.param == param and text in e.value.message


def test_anthropic_only_parts_are_left_out_and_noted():
    notes: list = []
    body = {"max_tokens": 1, "mcp_servers": [{"type": "url", "url": "https://mcp"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}, {"name": "f"}],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "read"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVB"}},
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                {"type": "search_result", "source": "s", "title": "t", "content": []}]},
                         {"role": "assistant", "content": [
                             {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {}},
                             {"type": "web_search_tool_result", "tool_use_id": "s1", "content": []},
                             {"type": "text", "text": "found it"}]}]}
    internal = am.to_internal(body, notes=notes)
    assert internal["messages"] == [{"role": "user", "content": [{"type": "text", "text": "read"}]},
                                    {"role": "assistant", "content": "found it"}]
    assert [t["function"]["name"] for t in internal["tools"]] == ["f"]
    assert notes == [("messages[0].content[1].source", "a document other than plain text"),
                     ("messages[0].content[2].source.type", "image source type 'file'"),
                     ("messages[0].content[3].type", "content block type 'search_result'"),
                     ("tools[0].type", "Anthropic server tool 'web_search_20250305'"),
                     ("mcp_servers", "MCP servers are connected by Anthropic's API")]
    native = NativeBody(internal, "anthropic", body, None, notes)
    sent = orjson.loads(AnthropicAdapter(_target("anthropic")).build_request(native, False).body)
    assert sent["tools"] == body["tools"] and sent["mcp_servers"] == body["mcp_servers"]
    from gateway.errors import UpstreamError

    with pytest.raises(UpstreamError) as e:
        OpenAIAdapter(_target("openai")).build_request(native, False)
    assert e.value.kind.value == "bad_request" and e.value.param == "messages[0].content[1].source"
    assert "can only be served by anthropic-kind models" in e.value.message


def test_count_tokens_is_an_estimate_without_max_tokens():
    internal = am.to_internal({"messages": [{"role": "user", "content": "x" * 40}]}, count_only=True)
    assert am.count_tokens(internal) == {"input_tokens": 10}


# -- internal -> Anthropic -----------------------------------------------------------------------------------
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-5", "choices": [
    {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Let me look.",
                                                           "tool_calls": [{"id": "call_1", "type": "function",
                                                                           "function": {"name": "f",
                                                                                        "arguments": '{"a": 1}'}},
                                                                          {"id": "call_2", "type": "function",
                                                                           "function": {"name": "g",
                                                                                        "arguments": "not json"}}]}}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35,
              "prompt_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 4}}}


def test_completion_to_anthropic_message():
    assert am.from_completion(COMPLETION, "msg_r1") == {
        "id": "msg_r1", "type": "message", "role": "assistant", "model": "gpt-5",
        "content": [{"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw_arguments": "not json"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 6, "output_tokens": 5, "cache_creation_input_tokens": 4,
                  "cache_read_input_tokens": 20}}


@pytest.mark.parametrize("status,etype", [(400, "invalid_request_error"), (401, "authentication_error"),
                                          (403, "permission_error"), (404, "not_found_error"),
                                          (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
                                          (502, "api_error"), (503, "overloaded_error"), (504, "timeout_error"),
                                          (418, "invalid_request_error"), (599, "api_error")])
def test_error_types_by_status(status, etype):
    assert am.error_body(status, {"message": "m", "type": "x", "code": "c"}, "r1") == {
        "type": "error", "error": {"type": etype, "message": "m"}, "request_id": "r1"}


def _chunk(delta=None, finish=None, usage=None, model="gpt-5"):
    c = {"id": "x", "object": "chat.completion.chunk", "model": model,
         "choices": [] if delta is None and finish is None else [{"index": 0, "delta": delta or {},
                                                                   "finish_reason": finish}]}
    if usage:
        c["usage"] = usage
    return c


def _events(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            out.append((name[7:], json.loads(data[6:])))
    return out


def test_anthropic_stream_translation_text_then_tool():
    t = am.StreamTranslator("msg_1")
    raw = b"".join([
        t.chunk(_chunk({"role": "assistant", "content": ""})),
        t.chunk(_chunk({"content": "Hi"})),
        t.chunk(_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                        "function": {"name": "f", "arguments": ""}}]})),
        t.chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})),
        t.chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})),
        t.chunk(_chunk(finish="tool_calls")),
        t.chunk(_chunk(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})),
        t.done(),
        t.end(),  # after [DONE]: nothing more
    ])
    assert _events(raw) == [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "gpt-5", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "call_1", "name": "f", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"a":'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"input_tokens": 3, "output_tokens": 4, "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_anthropic_stream_cut_is_an_error_event_never_message_stop():
    t = am.StreamTranslator("msg_1")
    raw = t.chunk(_chunk({"content": "par"})) + t.end()
    names = [n for n, _ in _events(raw)]
    assert names[-1] == "error" and "message_stop" not in names
    assert _events(raw)[-1][1] == {"type": "error", "error": {
        "type": "api_error", "message": "upstream stream ended before the answer was complete"}}
    t2 = am.StreamTranslator("msg_2")
    err = t2.error(502, {"message": "upstream stream from a failed after it started: boom"})
    assert _events(err) == [("error", {"type": "error", "error": {
        "type": "api_error", "message": "upstream stream from a failed after it started: boom"}})]
    assert t2.done() == b"" and t2.end() == b""


# -- native passthrough --------------------------------------------------------------------------------------
def _target(kind: str) -> Target:
    return Target(name="m", provider="p", kind=kind, upstream_model="up-model", base_url="http://127.0.0.1:9",
                  vendor="V", jurisdiction="US", context_window=1000, api_key="sk-secret")


def test_anthropic_body_passes_through_natively_to_an_anthropic_adapter():
    original = {"model": "security", "max_tokens": 9, "stream": True, "top_k": 5, "future_field": {"x": 1},
                "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                                           "cache_control": {"type": "ephemeral"}}]}],
                "thinking": {"type": "enabled", "budget_tokens": 1024}}
    body = NativeBody(am.to_internal(original), "anthropic", original, {"anthropic-beta": "b1"})
    req = AnthropicAdapter(_target("anthropic")).build_request(body, True)
    sent = orjson.loads(req.body)
    assert sent == {**{k: v for k, v in original.items()}, "model": "up-model", "stream": True}
    assert req.headers["anthropic-beta"] == "b1" and req.headers["x-api-key"] == "sk-secret"
    # Another vendor's adapter sees only the translated internal request (the original is an attribute).
    other = orjson.loads(OpenAIAdapter(_target("openai")).build_request(body, False).body)
    assert other == {**am.to_internal(original), "model": "up-model"}
    # A plain dict (a chat-completions request, or a continuation) is translated as before.
    plain = orjson.loads(AnthropicAdapter(_target("anthropic")).build_request(dict(body), False).body)
    assert plain["system"] == "S" and "top_k" not in plain and "future_field" not in plain


# -- Responses -> internal -------------------------------------------------------------------------------------
RESPONSES_REQUESTS = [
    ({"model": "security", "input": "hi"}, {"model": "security", "messages": [USER]}),
    ({"input": [{"role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "see"},
                    {"type": "input_image", "image_url": "https://x/i.png", "detail": "low"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "r1"},
                {"type": "function_call_output", "call_id": "c2",
                 "output": [{"type": "input_text", "text": "r2"}]}],
      "instructions": "Be terse.", "max_output_tokens": 50, "stream": True, "temperature": 0.2, "top_p": 0.5,
      "parallel_tool_calls": False, "safety_identifier": "u9", "store": True, "metadata": {"a": "b"},
      "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"},
                 "strict": True}],
      "tool_choice": {"type": "function", "name": "f"},
      "text": {"format": {"type": "json_schema", "name": "v", "schema": {"type": "object"}, "strict": True}}},
     {"messages": [{"role": "system", "content": "Be terse."}, {"role": "developer", "content": "rules"},
                   {"role": "user", "content": [{"type": "text", "text": "see"},
                                                {"type": "image_url",
                                                 "image_url": {"url": "https://x/i.png", "detail": "low"}}]},
                   {"role": "assistant", "content": "ok", "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                       {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "r1"},
                   {"role": "tool", "tool_call_id": "c2", "content": "r2"}],
      "max_tokens": 50, "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.2,
      "top_p": 0.5, "parallel_tool_calls": False, "user": "u9",
      "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"},
                                                  "strict": True}}],
      "tool_choice": {"type": "function", "function": {"name": "f"}},
      "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": {"type": "object"},
                                                                 "strict": True}}}),
    ({"input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}],
      "text": {"format": {"type": "text"}}, "tool_choice": "auto"},
     {"messages": [{"role": "assistant", "content": None, "tool_calls": [
         {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}], "tool_choice": "auto"}),
]


@pytest.mark.parametrize("body,expected", RESPONSES_REQUESTS)
def test_responses_request_to_internal(body, expected):
    assert rs.to_internal(body) == expected


RESPONSES_BAD = [
    ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id", "not found"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].id", "Item with id 'msg_1' not found"),
    ({"input": "x", "background": True}, "background", "does not support"),
    ({"input": "x", "conversation": "conv_1"}, "conversation", "does not support"),
    ({"input": "x", "store": "yes"}, "store", "a boolean"),
    ({}, "input", "Missing required parameter: 'input'"),
    ({"input": [{"type": "web_search_call"}]}, "input[0].type", "not supported"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type", "not supported"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url", "file_id is not supported"),
    ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type", "only function tools"),
    ({"input": "x", "tool_choice": "sometimes"}, "tool_choice", "expected auto"),
    ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type", "json_schema"),
    ({"input": "x", "temperature": 3}, "temperature", "between 0 and 2"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]}, "input[0].arguments",
     "JSON-encoded string"),
]


@pytest.mark.parametrize("body,param,text", RESPONSES_BAD)
def test_responses_bad_requests_name_the_field(body, param, text):
    with pytest.raises(GatewayError) as e:
        rs.to_internal(body)
    assert e.value.status == 400 and e.value.param == param and text in e.value.message


def test_completion_to_response_object():
    request = {"input": "x", "instructions": "I", "max_output_tokens": 9}
    out = rs.from_completion({**COMPLETION, "created": 7}, "resp_r1", request)
    assert out["id"] == "resp_r1" and out["created_at"] == 7 and out["status"] == "completed"
    assert out["instructions"] == "I" and out["max_output_tokens"] == 9 and out["store"] is True
    assert out["output"] == [
        {"type": "message", "id": "msg_r1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Let me look.", "annotations": [], "logprobs": []}]},
        {"type": "function_call", "id": "fc_r1_0", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}',
         "status": "completed"},
        {"type": "function_call", "id": "fc_r1_1", "call_id": "call_2", "name": "g", "arguments": "not json",
         "status": "completed"}]
    assert out["usage"] == {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 5,
                            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 35}
    truncated = {**COMPLETION, "choices": [{"index": 0, "finish_reason": "length",
                                            "message": {"role": "assistant", "content": "cut"}}]}
    out = rs.from_completion(truncated, "resp_r2", request)
    assert out["status"] == "incomplete" and out["incomplete_details"] == {"reason": "max_output_tokens"}


def _sse(raw: bytes) -> list[dict]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            event = json.loads(data[6:])
            assert name == "event: " + event["type"]
            out.append(event)
    return out


def test_responses_stream_translation():
    t = rs.StreamTranslator("resp_1", {"input": "x"})
    raw = b"".join([
        t.chunk(_chunk({"role": "assistant", "content": ""})),
        t.chunk(_chunk({"content": "Hi"})),
        t.chunk(_chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}]})),
        t.chunk(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})),
        t.chunk(_chunk(finish="tool_calls")),
        t.chunk(_chunk(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})),
        t.done(),
    ])
    events = _sse(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [(e["type"], e.get("output_index"), e.get("delta")) for e in events] == [
        ("response.created", None, None), ("response.in_progress", None, None),
        ("response.output_item.added", 0, None), ("response.content_part.added", 0, None),
        ("response.output_text.delta", 0, "Hi"), ("response.output_text.done", 0, None),
        ("response.content_part.done", 0, None), ("response.output_item.done", 0, None),
        ("response.output_item.added", 1, None), ("response.function_call_arguments.delta", 1, '{"a"'),
        ("response.function_call_arguments.delta", 1, ":1}"), ("response.function_call_arguments.done", 1, None),
        ("response.output_item.done", 1, None), ("response.completed", None, None)]
    assert events[8]["item"] == {"type": "function_call", "id": "fc_1_1", "call_id": "call_1", "name": "f",
                                 "arguments": "", "status": "in_progress"}
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["usage"]["total_tokens"] == 7
    assert [o["type"] for o in done["output"]] == ["message", "function_call"]
    assert done["output"][1]["arguments"] == '{"a":1}' and done["output"][1]["status"] == "completed"


def test_responses_stream_failure_is_error_then_response_failed():
    t = rs.StreamTranslator("resp_1", {"input": "x"})
    raw = t.chunk(_chunk({"content": "par"})) + t.error(502, {"message": "cut", "code": "stream_interrupted"})
    events = _sse(raw)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "server_error" and events[-2]["message"] == "cut"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "server_error", "message": "cut"}
    assert failed["output"][0]["status"] == "incomplete" and failed["output"][0]["content"][0]["text"] == "par"
    assert t.done() == b"" and t.end() == b""


# -- the bounded response store ------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_previous_response_and_item_reference_resolve_from_the_store():
    store = ResponseStore(Clock())
    first = {"input": "hi", "instructions": "Be terse."}
    internal = rs.to_internal(first, store)
    answer = rs.from_completion({"model": "m", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "hello"}}]}, "resp_a", first)
    store.put("resp_a", [*rs.history(first, internal), *rs.output_messages(answer["output"])], answer["output"])
    follow = rs.to_internal({"input": "more", "previous_response_id": "resp_a", "instructions": "New rules."}, store)
    assert follow["messages"] == [{"role": "system", "content": "New rules."}, USER,
                                  {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]
    ref = rs.to_internal({"input": [USER, {"type": "item_reference", "id": "msg_a"}, {"role": "user",
                                                                                      "content": "and?"}]}, store)
    assert ref["messages"] == [USER, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"}]


def test_many_consecutive_function_calls_translate_in_linear_time():
    """One turn of 60,000 calls fits in the default 4 MB body; merging them one copy per call took ~20 s of the
    event loop. Linear, it is well under a second even on a loaded machine."""
    import time

    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    start = time.perf_counter()
    out = rs.to_internal({"input": [USER, *[call] * 60000]})
    assert time.perf_counter() - start < 3
    assert len(out["messages"]) == 2 and len(out["messages"][1]["tool_calls"]) == 60000


def test_a_continued_turn_does_not_change_the_stored_one():
    store = ResponseStore(Clock())
    turn = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                  "function": {"name": "f", "arguments": "{}"}}]}
    store.put("r1", [USER, turn], [])
    more = rs.to_internal({"previous_response_id": "r1", "input": [
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "x"}]}, store.view(None))
    assert [c["id"] for c in more["messages"][1]["tool_calls"]] == ["c1", "c2"]
    assert [c["id"] for c in store.conversation("r1")[1]["tool_calls"]] == ["c1"]


def test_stored_answers_are_seen_only_by_the_caller_that_stored_them():
    store = ResponseStore(Clock())
    store.put("r1", [USER], [{"type": "message", "id": "i1"}], "team-a")
    assert store.conversation("r1", "team-a") == (USER,) and store.item("i1", "team-a") is not None
    assert store.conversation("r1", "team-b") is None and store.item("i1", "team-b") is None
    assert store.conversation("r1") is None  # not even without authentication
    with pytest.raises(GatewayError) as e:
        rs.to_internal({"input": "x", "previous_response_id": "r1"}, store.view("team-b"))
    assert e.value.param == "previous_response_id"
    assert rs.to_internal({"input": "x", "previous_response_id": "r1"}, store.view("team-a"))["messages"][0] == USER


def test_store_is_bounded_by_count_size_and_time():
    clock = Clock()
    store = ResponseStore(clock, max_responses=2, max_chars=200, ttl=10)
    for name in ("r1", "r2", "r3"):
        store.put(name, [USER], [{"type": "message", "id": "i" + name}])
    assert store.conversation("r1") is None and store.item("ir1") is None and len(store) == 2
    store.put("big", [{"role": "user", "content": "x" * 300}], [])
    assert store.conversation("big") is None  # larger than the whole budget: not kept
    store.put("r4", [{"role": "user", "content": "y" * 150}], [])
    assert store.conversation("r4") is not None and store.conversation("r2") is None  # made room by size
    clock.now = 11
    assert store.conversation("r4") is None and store.item("ir3") is None


def test_thinking_blocks_are_relayed_only_to_the_anthropic_dialect():
    sse = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c","usage":{}}}\n\n'
           b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
           b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"signature_delta","signature":"sig"}}\n\n'
           b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
           b'"content_block":{"type":"text","text":""}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
           b'"delta":{"type":"text_delta","text":"Hi"}}\n\n')
    adapter = AnthropicAdapter(_target("anthropic"))
    native = NativeBody({"messages": [USER]}, "anthropic", {"messages": [USER], "max_tokens": 5})
    relayed = adapter.stream_decoder(native).feed(sse)
    plain = adapter.stream_decoder({"messages": [USER]}).feed(sse)
    deltas = [c["choices"][0]["delta"] for c in relayed]
    assert deltas[1:] == [{"x_anthropic": {"content_block": {"type": "thinking", "thinking": "", "signature": ""}}},
                          {"x_anthropic": {"delta": {"type": "thinking_delta", "thinking": "hmm"}}},
                          {"x_anthropic": {"delta": {"type": "signature_delta", "signature": "sig"}}},
                          {"content": "Hi"}]
    assert [c["choices"][0]["delta"] for c in plain][1:] == [{"content": "Hi"}]
    t = am.StreamTranslator("msg_1")
    names = [(n, d.get("index"), d.get("delta") or d.get("content_block")) for n, d in _events(b"".join(
        t.chunk(c) for c in relayed))]
    assert names[2:] == [
        ("content_block_start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("content_block_delta", 0, {"type": "thinking_delta", "thinking": "hmm"}),
        ("content_block_delta", 0, {"type": "signature_delta", "signature": "sig"}),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, {"type": "text", "text": ""}),
        ("content_block_delta", 1, {"type": "text_delta", "text": "Hi"})]


def test_any_json_shape_is_translated_or_a_400_and_translations_pass_chat_validation():
    """A bounded, seeded fuzz of both translators: every body is either a GatewayError(400) naming a field or a
    request the chat pipeline accepts (never an exception that would be a 500)."""
    import random

    from gateway.api.validate import validate_chat

    rnd = random.Random(11)
    keys = ["model", "messages", "system", "max_tokens", "stream", "temperature", "top_k", "stop_sequences",
            "metadata", "tools", "tool_choice", "thinking", "input", "instructions", "max_output_tokens", "store",
            "previous_response_id", "text", "format", "role", "content", "type", "source", "data", "url",
            "tool_use_id", "id", "name", "input_schema", "call_id", "arguments", "output", "image_url", "schema"]
    types = ["text", "image", "tool_use", "tool_result", "thinking", "document", "base64", "url", "auto", "any",
             "tool", "message", "function_call", "function_call_output", "input_text", "output_text", "input_image",
             "function", "json_schema", "item_reference", "reasoning", "user", "assistant"]

    def val(d: int = 0):
        c = rnd.random()
        if d > 3 or c < 0.3:
            return rnd.choice([None, True, 0, 1, -1, 2.5, "", "x", rnd.choice(types), [], {}])
        if c < 0.6:
            return [val(d + 1) for _ in range(rnd.randint(0, 3))]
        return {rnd.choice(keys): rnd.choice(types) if rnd.random() < 0.3 else val(d + 1)
                for _ in range(rnd.randint(0, 4))}

    store = ResponseStore(Clock())
    for _ in range(2000):
        body = {rnd.choice(keys): val(1) for _ in range(rnd.randint(1, 5))}
        if rnd.random() < 0.5:
            body.update(max_tokens=5, messages=[{"role": rnd.choice(["user", "assistant"]), "content": val(2)}],
                        input=[val(2)])
        for translate in (am.to_internal, lambda b: rs.to_internal(b, store)):
            try:
                internal = translate(body)
            except GatewayError as e:
                assert e.status == 400
                continue
            validate_chat(internal)


def test_a_translator_failure_mid_stream_still_ends_with_the_dialects_error_event():
    import asyncio

    from gateway.api.dialects.endpoint import AnthropicDialect, _Translating

    class Broken(am.StreamTranslator):
        def chunk(self, chunk):
            raise RuntimeError("bug")

    class Dialect(AnthropicDialect):
        def stream(self, rid, request, internal, owner=None):
            return Broken("msg_" + rid)

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def run():
        t = _Translating(Dialect(), {}, {}, send)
        await t({"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"x-request-id", b"r1")]})
        await t({"type": "http.response.body", "body": b'data: {"choices": []}\n\n', "more_body": True})
        await t({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    asyncio.run(run())
    assert [m.get("more_body") for m in sent[1:]] == [False]  # nothing after the end
    assert _events(sent[1]["body"]) == [("error", {"type": "error", "error": {
        "type": "api_error", "message": "Internal gateway error; see the gateway log."}})]


def test_an_anthropic_upstreams_own_stop_reason_and_sequence_reach_the_anthropic_dialect():
    sse = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c","usage":{}}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"text_delta","text":"a b"}}\n\n'
           b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"stop_sequence",'
           b'"stop_sequence":"END"},"usage":{"output_tokens":2}}\n\n'
           b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    adapter = AnthropicAdapter(_target("anthropic"))
    native = NativeBody({"messages": [USER], "stream_options": {"include_usage": True}}, "anthropic",
                        {"messages": [USER], "max_tokens": 5})
    t = am.StreamTranslator("msg_1")
    events = _events(b"".join(t.chunk(c) for c in adapter.stream_decoder(native).feed(sse)) + t.done())
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    plain = adapter.stream_decoder({"messages": [USER]}).feed(sse)
    assert all("x_anthropic" not in c["choices"][0]["delta"] for c in plain if c["choices"])


def test_server_tool_blocks_are_relayed_whole_to_the_anthropic_dialect():
    sse = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"c","usage":{}}}\n\n'
           b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":'
           b'{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"input_json_delta","partial_json":"{\\"query\\": \\"cve\\"}"}}\n\n'
           b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":'
           b'{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}}\n\n')
    native = NativeBody({"messages": [USER]}, "anthropic", {"messages": [USER], "max_tokens": 5})
    t = am.StreamTranslator("msg_1")
    chunks = AnthropicAdapter(_target("anthropic")).stream_decoder(native).feed(sse)
    events = _events(b"".join(t.chunk(c) for c in chunks))[2:]
    assert events == [
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": '{"query": "cve"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}})]


def test_store_limits_follow_the_config_and_zero_turns_it_off():
    from gateway.config.model import ResponsesStoreConfig

    cfg = [ResponsesStoreConfig(max_responses=2)]
    store = ResponseStore(Clock(), limits=lambda: cfg[0])
    assert store.put("r1", [USER], []) and store.enabled
    cfg[0] = ResponsesStoreConfig(max_responses=0)
    assert not store.enabled and not store.put("r2", [USER], [])
    assert store.conversation("r1") is None and len(store) == 0

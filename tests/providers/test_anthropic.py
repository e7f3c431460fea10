"""The Anthropic adapter as tables of literal bodies (no network).

Literals come from ../shared/reference/provider-wire-formats.md section 2 (SDK fixtures and observed bodies).
"""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.base import Target

TARGET = Target(
    name="claude", provider="anthropic", kind="anthropic", upstream_model="claude-sonnet-4-5",
    base_url="https://api.anthropic.com", vendor="Anthropic", jurisdiction="US", context_window=200000,
    prefill=True, api_key="sk-ant-secret-0123456789", options={"anthropic_version": "2023-06-01",
                                                               "default_max_tokens": 1024},
)
A = AnthropicAdapter(TARGET)
USER = {"role": "user", "content": "Hi"}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                                                  "parameters": {"type": "object",
                                                                 "properties": {"location": {"type": "string"}},
                                                                 "required": ["location"]}}}


def sent(body: dict, stream: bool = False) -> dict:
    frozen = copy.deepcopy(body)
    req = A.build_request(body, stream)
    assert body == frozen, "build_request mutated the incoming body"
    return orjson.loads(req.body)


# ---------------------------------------------------------------------------------------------- request
def test_url_headers_and_required_fields():
    req = A.build_request({"model": "x", "messages": [USER]}, False)
    assert req.method == "POST" and req.url == "https://api.anthropic.com/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-secret-0123456789"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in {k.lower() for k in req.headers}
    body = orjson.loads(req.body)
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    sreq = A.build_request({"model": "x", "messages": [USER]}, True)
    assert sreq.stream and orjson.loads(sreq.body)["stream"] is True
    assert sreq.headers["accept"] == "text/event-stream"


@pytest.mark.parametrize(
    "extra,expected",
    [
        ({}, 1024),
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70, "max_tokens": 50}, 70),
    ],
)
def test_max_tokens(extra, expected):
    assert sent({"messages": [USER], **extra})["max_tokens"] == expected


def test_default_max_tokens_without_option():
    t = Target(**{**{f: getattr(TARGET, f) for f in TARGET.__slots__}, "options": {}})
    assert orjson.loads(AnthropicAdapter(t).build_request({"messages": [USER]}, False).body)["max_tokens"] == 4096
    assert AnthropicAdapter(t).build_request({"messages": [USER]}, False).headers["anthropic-version"] == "2023-06-01"


def test_system_and_developer_go_to_top_level_system():
    body = sent({"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        USER,
    ]})
    assert body["system"] == "Be terse.\n\nAnswer in English."
    assert [m["role"] for m in body["messages"]] == ["user"]


@pytest.mark.parametrize(
    "temperature,expected", [(0, 0.0), (0.7, 0.7), (1, 1.0), (1.8, 1.0), (2, 1.0)]
)
def test_temperature_is_clamped(temperature, expected):
    assert sent({"messages": [USER], "temperature": temperature})["temperature"] == expected


@pytest.mark.parametrize("stop,expected", [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_sequences(stop, expected):
    assert sent({"messages": [USER], "stop": stop})["stop_sequences"] == expected


def test_multi_turn_and_same_role_merging():
    body = sent({"messages": [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
        {"role": "user", "content": [{"type": "text", "text": "four"}]},
    ]})
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}]},
    ]


def test_tools_and_default_tool_choice():
    body = sent({"messages": [USER], "tools": [WEATHER_TOOL]})
    assert body["tools"] == [{"name": "get_weather", "description": "Weather by city",
                              "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    "choice,parallel,expected",
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(choice, parallel, expected):
    req = {"messages": [USER], "tools": [WEATHER_TOOL]}
    if choice is not None:
        req["tool_choice"] = choice
    if parallel is not None:
        req["parallel_tool_calls"] = parallel
    assert sent(req)["tool_choice"] == expected


def test_assistant_tool_calls_and_tool_results_keep_ids():
    body = sent({"messages": [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather",
                                                                 "arguments": "{\"location\":\"Paris\"}"}},
            {"id": "call_xyz", "type": "function", "function": {"name": "get_weather",
                                                                "arguments": "{\"location\":\"Rome\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_xyz", "content": [{"type": "text", "text": "22C"}]},
        {"role": "user", "content": "Thanks, compare them."},
    ], "tools": [WEATHER_TOOL]})
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "Paris"}},
        {"type": "tool_use", "id": "call_xyz", "name": "get_weather", "input": {"location": "Rome"}},
    ]}
    # consecutive tool results (and the user text after them) form ONE user turn, tool results first
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "call_xyz", "content": [{"type": "text", "text": "22C"}]},
        {"type": "text", "text": "Thanks, compare them."},
    ]}
    assert len(body["messages"]) == 3


def test_assistant_text_with_tool_call():
    body = sent({"messages": [USER, {"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "ok"}]})
    assert body["messages"][1]["content"] == [{"type": "text", "text": "Let me check."},
                                              {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]


def test_bad_tool_arguments_are_a_bad_request():
    with pytest.raises(UpstreamError) as ei:
        A.build_request({"messages": [USER, {"role": "assistant", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{nope"}}]}]}, False)
    assert ei.value.kind is ErrorKind.BAD_REQUEST


def test_images():
    body = sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_unsupported_part_is_a_bad_request():
    with pytest.raises(UpstreamError) as ei:
        A.build_request({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
                        False)
    assert ei.value.kind is ErrorKind.BAD_REQUEST and "input_audio" in ei.value.message


@pytest.mark.parametrize(
    "fmt,schema",
    [
        ({"type": "json_object"}, {"type": "object"}),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "required": ["a"]}}},
         {"type": "object", "required": ["a"]}),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}},
         {"type": "object", "properties": {"value": {"type": "array"}}, "required": ["value"]}),
    ],
)
def test_json_mode_is_a_forced_tool_with_the_schema(fmt, schema):
    body = sent({"messages": [{"role": "system", "content": "Be terse."}, USER], "response_format": fmt})
    assert body["system"] == "Be terse."
    assert body["tools"] == [{"name": "json_response", "description": body["tools"][0]["description"],
                              "input_schema": schema}]
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert "response_format" not in body
    plain = sent({"messages": [USER], "response_format": {"type": "text"}})
    assert "system" not in plain and "tools" not in plain


def test_json_schema_goes_out_as_structured_outputs_where_the_provider_has_them():
    native = AnthropicAdapter(Target(**{**{f: getattr(TARGET, f) for f in TARGET.__dataclass_fields__},
                                        "options": {**TARGET.options, "structured_outputs": True}}))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    body = orjson.loads(native.build_request(
        {"messages": [USER], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}},
        False).body)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "tools" not in body and "tool_choice" not in body
    # json_object has no schema to send natively: the forced tool still enforces it.
    body = orjson.loads(native.build_request({"messages": [USER], "response_format": {"type": "json_object"}},
                                             False).body)
    assert "output_config" not in body and body["tool_choice"] == {"type": "tool", "name": "json_response"}


def test_json_mode_next_to_the_callers_tools_lets_the_model_pick_one():
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    body = sent({"messages": [USER], "tools": tools, "response_format": {"type": "json_object"}})
    assert [t["name"] for t in body["tools"]] == ["lookup", "json_response"]
    assert body["tool_choice"] == {"type": "any"}


def test_json_tool_answer_is_message_content():
    raw = orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_response",
                                     "input": {"a": 1}}], "usage": {"input_tokens": 3, "output_tokens": 4}})
    choice = A.parse_response(raw)["choices"][0]
    assert choice["message"]["content"] == '{"a":1}' and "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_json_tool_stream_is_content_deltas():
    events = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":'
        b'{"type":"tool_use","id":"toolu_1","name":"json_response","input":{}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
        b'{"type":"input_json_delta","partial_json":"{\\"a\\":"}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
        b'{"type":"input_json_delta","partial_json":"1}"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":'
        b'{"output_tokens":4}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    dec = A.stream_decoder({"response_format": {"type": "json_object"}})
    chunks = dec.feed(events) + dec.close()
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == '{"a":1}'
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


def test_prefill_is_the_final_assistant_turn_without_trailing_whitespace():
    body = sent({"messages": [USER, {"role": "assistant", "content": "The answer is "}]})
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]}


def test_unknown_openai_fields_are_not_forwarded():
    body = sent({"messages": [USER], "n": 1, "seed": 3, "logprobs": False, "user": "u-1", "top_p": 0.5})
    assert set(body) == {"model", "max_tokens", "messages", "metadata", "top_p"}
    assert body["metadata"] == {"user_id": "u-1"}


# ---------------------------------------------------------------------------------------------- response
TOOL_RESPONSE = {  # reference 2.2 [C from S]
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [
        {"type": "text", "text": "I'll check the weather."},
        {"type": "tool_use", "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "name": "get_weather",
         "input": {"location": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 377, "output_tokens": 65, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": 0, "service_tier": "standard"},
}


def test_parse_tool_use_response():
    out = A.parse_response(orjson.dumps(TOOL_RESPONSE))
    assert out["object"] == "chat.completion" and out["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert isinstance(out["created"], int) and out["model"] == "claude-sonnet-4-20250514"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["role"] == "assistant" and msg["content"] == "I'll check the weather."
    assert msg["tool_calls"] == [{"id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "type": "function",
                                  "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"location": "Paris"}
    assert out["usage"] == {"prompt_tokens": 377, "completion_tokens": 65, "total_tokens": 442,
                            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}


def test_parse_tool_only_response_has_null_content():
    body = {**TOOL_RESPONSE, "content": TOOL_RESPONSE["content"][1:]}
    assert A.parse_response(orjson.dumps(body))["choices"][0]["message"]["content"] is None


def test_parse_usage_with_cache():
    body = {**TOOL_RESPONSE, "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 100,
                      "cache_read_input_tokens": 1000}}
    out = A.parse_response(orjson.dumps(body))
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hi", "refusal": None}
    assert out["usage"] == {"prompt_tokens": 1110, "completion_tokens": 5, "total_tokens": 1115,
                            "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 100}}


@pytest.mark.parametrize(
    "stop_reason,finish",
    [
        ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("tool_use", "tool_calls"),
        ("max_tokens", "length"), ("model_context_window_exceeded", "length"), ("refusal", "content_filter"),
    ],
)
def test_finish_reasons(stop_reason, finish):
    body = {**TOOL_RESPONSE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    if stop_reason == "refusal":
        body["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": "refused"}
    assert A.parse_response(orjson.dumps(body))["choices"][0]["finish_reason"] == finish


def test_thinking_blocks_are_dropped():
    body = {**TOOL_RESPONSE, "stop_reason": "end_turn", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "Done."}]}
    assert A.parse_response(orjson.dumps(body))["choices"][0]["message"]["content"] == "Done."


@pytest.mark.parametrize("raw", [b"", b"<html>502</html>", b"[]", b'{"type":"message"}'])
def test_malformed_2xx_is_transient(raw):
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(raw)
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_error_object_in_2xx_is_classified():
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert ei.value.kind is ErrorKind.TRANSIENT and ei.value.code == "overloaded_error"


# ---------------------------------------------------------------------------------------------- stream
BASIC_STREAM = (  # SDK fixture basic_response.txt [S]
    b'event: message_start\n'
    b'data: {"type":"message_start","message":{"id":"msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK","type":"message",'
    b'"role":"assistant","content":[],"model":"claude-3-opus-latest","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":11,"output_tokens":1}}}\n\n'
    b'event: content_block_start\n'
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\n'
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":6}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

TOOL_STREAM = (  # SDK fixture tool_use_response.txt [S], with a text block before it
    b'event: message_start\n'
    b'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],'
    b'"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n'
    b'event: content_block_start\n'
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: content_block_start\n'
    b'data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use",'
    b'"id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","name":"get_weather","caller":{"type":"direct"},"input":{}}}\n\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}\n\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    b'"partial_json":"{\\"locati"}}\n\n'
    b'event: content_block_delta\n'
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta",'
    b'"partial_json":"on\\": \\"Paris\\"}"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
    b'event: message_delta\n'
    b'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
    b'"usage":{"output_tokens":65}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

REFUSAL_TAIL = (  # SDK fixture refusal_response.txt [S]
    b'event: message_delta\n'
    b'data: {"type":"message_delta","delta":{"stop_reason":"refusal","stop_sequence":null,"stop_details":'
    b'{"type":"refusal","category":"cyber","explanation":"This request was refused due to policy."}},'
    b'"usage":{"output_tokens":0}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def decode(raw: bytes, body: dict | None = None, step: int = 0) -> list[dict]:
    d = A.stream_decoder(body or {})
    out: list[dict] = []
    if step:
        for i in range(0, len(raw), step):
            out += d.feed(raw[i:i + step])
    else:
        out += d.feed(raw)
    return out + d.close()


def deltas(chunks: list[dict]) -> list[dict]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_stream_text():
    chunks = decode(BASIC_STREAM)
    assert all(c["object"] == "chat.completion.chunk" and isinstance(c["created"], int) for c in chunks)
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": " there"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert chunks[0]["choices"][0]["index"] == 0


@pytest.mark.parametrize("step", [1, 7, 64])
def test_stream_chunk_boundaries_anywhere(step):
    whole, pieces = decode(BASIC_STREAM), decode(BASIC_STREAM, step=step)
    assert [c["choices"] for c in pieces] == [c["choices"] for c in whole]


def test_stream_crlf_framing():
    assert deltas(decode(BASIC_STREAM.replace(b"\n", b"\r\n"), step=5)) == deltas(decode(BASIC_STREAM))


def test_stream_usage_chunk_when_asked():
    chunks = decode(TOOL_STREAM, {"stream_options": {"include_usage": True}})
    last = chunks[-1]
    assert last["choices"] == []
    # cumulative: output from the last message_delta, input (+cache) from message_start
    assert last["usage"] == {"prompt_tokens": 25, "completion_tokens": 65, "total_tokens": 90,
                             "prompt_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0}}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert not any("usage" in c for c in decode(TOOL_STREAM))


def test_stream_tool_use():
    chunks = decode(TOOL_STREAM)
    ds = deltas(chunks)
    assert ds[0] == {"role": "assistant", "content": ""}
    assert ds[1] == {"content": "Checking."}
    assert ds[2] == {"tool_calls": [{"index": 0, "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "type": "function",
                                     "function": {"name": "get_weather", "arguments": ""}}]}
    frags = [d["tool_calls"][0]["function"]["arguments"] for d in ds[3:-1]]
    assert all(d["tool_calls"][0]["index"] == 0 for d in ds[3:-1])
    assert json.loads("".join(frags)) == {"location": "Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_second_tool_gets_index_1():
    extra = (
        b'event: content_block_start\n'
        b'data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2",'
        b'"name":"get_time","input":{}}}\n\n'
        b'event: content_block_delta\n'
        b'data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\n'
    )
    raw = TOOL_STREAM.replace(b"event: message_delta", extra + b"event: message_delta", 1)
    ds = deltas(decode(raw))
    starts = [d["tool_calls"][0] for d in ds if d.get("tool_calls") and "id" in d["tool_calls"][0]]
    assert [(s["index"], s["id"]) for s in starts] == [(0, "toolu_01NRLabsLyVHZPKxbKvkfSMn"), (1, "toolu_2")]
    assert {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]} in ds


def test_stream_refusal_is_content_filter_not_an_error():
    head = BASIC_STREAM[:BASIC_STREAM.index(b"event: message_delta")]
    chunks = decode(head + REFUSAL_TAIL)
    assert deltas(chunks)[1:3] == [{"content": "Hello"}, {"content": " there"}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    "event,kind",
    [
        (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', ErrorKind.TRANSIENT),
        (b'{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}',
         ErrorKind.TRANSIENT),
        (b'{"type":"error","error":{"type":"api_error","message":"Internal server error"}}', ErrorKind.TRANSIENT),
        (b'{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}', ErrorKind.RATE_LIMITED),
        (b'{"type":"error","error":{"details":null,"type":"invalid_request_error",'
         b'"message":"Output blocked by content filtering policy"}}', ErrorKind.POLICY_BLOCKED),
    ],
)
def test_stream_in_band_error(event, kind):
    d = A.stream_decoder({})
    first = d.feed(BASIC_STREAM[:BASIC_STREAM.index(b"event: ping")])
    assert first[0]["choices"][0]["delta"]["role"] == "assistant"
    with pytest.raises(UpstreamError) as ei:
        d.feed(b"event: error\ndata: " + event + b"\n\n")
    assert ei.value.kind is kind


def test_stream_pings_and_unknown_events_produce_nothing():
    d = A.stream_decoder({})
    assert d.feed(b'event: ping\ndata: {"type": "ping"}\n\n') == []
    assert d.feed(b'event: brand_new\ndata: {"type": "brand_new", "x": 1}\n\n') == []
    assert d.malformed == 0


def test_stream_missing_end_marker_is_transient():
    cut = BASIC_STREAM[:BASIC_STREAM.index(b"event: message_delta")]
    d = A.stream_decoder({})
    d.feed(cut)
    with pytest.raises(UpstreamError) as ei:
        d.close()
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_stream_with_stop_reason_but_no_message_stop_is_complete():
    cut = BASIC_STREAM[:BASIC_STREAM.index(b"event: message_stop")]
    chunks = decode(cut, {"stream_options": {"include_usage": True}})
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_stream_malformed_events_are_counted_then_fatal():
    d = A.stream_decoder({})
    d.feed(BASIC_STREAM[:BASIC_STREAM.index(b"event: ping")])
    assert d.feed(b"event: content_block_delta\ndata: {not json\n\n") == []
    assert d.malformed == 1
    assert d.feed(b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                  b'"delta":{"type":"text_delta","text":"ok"}}\n\n')[0]["choices"][0]["delta"] == {"content": "ok"}
    d.feed(b"data: nope\n\n")
    d.feed(b"data: nope\n\n")
    with pytest.raises(UpstreamError) as ei:
        d.feed(b"data: nope\n\n")
    assert ei.value.kind is ErrorKind.TRANSIENT and d.malformed == 4


# ---------------------------------------------------------------------------------------------- errors
def _err(etype: str, message: str, rid: bool = True) -> bytes:
    body = {"type": "error", "error": {"type": etype, "message": message}}
    if rid:
        body["request_id"] = "req_011CYQNJvJqSAXDd4Nzprfz4"
    return orjson.dumps(body)


CLASSIFICATION = [  # reference 7.2, every Anthropic row (+ 2.4 literals)
    ("401 authentication_error", 401, _err("authentication_error", "invalid x-api-key"), ErrorKind.ACCESS_DENIED),
    ("401 oauth expired", 401, _err("authentication_error", "OAuth token has expired.", False),
     ErrorKind.ACCESS_DENIED),
    ("403 permission_error", 403, _err("permission_error", "Request not allowed", False), ErrorKind.ACCESS_DENIED),
    ("402 billing_error", 402, _err("billing_error", "Your account has a billing problem."), ErrorKind.ACCESS_DENIED),
    ("400 credit balance too low", 400, _err("invalid_request_error",
     "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
     "purchase credits."), ErrorKind.ACCESS_DENIED),
    ("404 model: (unknown/retired)", 404, _err("not_found_error", "model: claude-3-5-haiku-latest"),
     ErrorKind.WITHDRAWN),
    ("404 model: claude-2.1", 404, _err("not_found_error", "model: claude-2.1", False), ErrorKind.WITHDRAWN),
    ("404 other not_found", 404, _err("not_found_error", "File not found: file_011CNha8iCJcU1wXNR6q4V8w"),
     ErrorKind.BAD_REQUEST),
    ("404 without envelope (wrong base_url)", 404, b"404 page not found", ErrorKind.WITHDRAWN),
    ("413 request_too_large", 413, _err("request_too_large", "Request exceeds the maximum allowed number of bytes.",
     False), ErrorKind.CONTEXT_TOO_LONG),
    ("413 cloudflare page", 413, b"<html><head><title>413 Request Entity Too Large</title></head></html>",
     ErrorKind.CONTEXT_TOO_LONG),
    ("400 prompt is too long", 400, _err("invalid_request_error", "prompt is too long: 205000 tokens > 200000 maximum",
     False), ErrorKind.CONTEXT_TOO_LONG),
    ("400 exceed context limit", 400, _err("invalid_request_error",
     "input length and `max_tokens` exceed context limit: 199000 + 8000 > 200000", False),
     ErrorKind.CONTEXT_TOO_LONG),
    ("429 rate_limit_error", 429, _err("rate_limit_error",
     "This request would exceed your account's rate limit. Please try again later."), ErrorKind.RATE_LIMITED),
    ("529 overloaded_error", 529, _err("overloaded_error", "Overloaded"), ErrorKind.TRANSIENT),
    ("500 api_error", 500, _err("api_error", "Internal server error"), ErrorKind.TRANSIENT),
    ("504 timeout_error", 504, _err("timeout_error", "Request timeout"), ErrorKind.TRANSIENT),
    ("502 html", 502, b"<html>Bad Gateway</html>", ErrorKind.TRANSIENT),
    ("400 max_tokens too big", 400, _err("invalid_request_error",
     "max_tokens: 10000 > 4096, which is the maximum allowed number of output tokens for claude-3-5-sonnet-20240620",
     False), ErrorKind.BAD_REQUEST),
    ("400 other invalid_request_error", 400, _err("invalid_request_error", "messages: Field required"),
     ErrorKind.BAD_REQUEST),
    ("400 content filtering policy [O]", 400, _err("invalid_request_error",
     "Output blocked by content filtering policy"), ErrorKind.POLICY_BLOCKED),
]


@pytest.mark.parametrize("case,status,body,kind", CLASSIFICATION, ids=[c[0] for c in CLASSIFICATION])
def test_classification(case, status, body, kind):
    err = A.classify_error(status, {"request-id": "req_1"}, body)
    assert isinstance(err, UpstreamError)
    assert err.kind is kind, case
    assert err.status == status
    assert err.message and "sk-ant-secret" not in err.message


def test_rate_limit_retry_after_and_code():
    err = A.classify_error(429, {"retry-after": "17", "anthropic-ratelimit-requests-remaining": "0"},
                           _err("rate_limit_error", "Rate limited"))
    assert err.kind is ErrorKind.RATE_LIMITED and err.retry_after == 17.0 and err.code == "rate_limit_error"
    assert A.classify_error(529, {"retry-after": "3"}, _err("overloaded_error", "Overloaded")).retry_after is None


def test_policy_block_code_and_message_for_the_caller():
    err = A.classify_error(400, {}, _err("invalid_request_error", "Output blocked by content filtering policy"))
    assert err.code == "content_filter" and err.message == "Output blocked by content filtering policy"
    bad = A.classify_error(400, {}, _err("invalid_request_error", "messages: Field required"))
    assert bad.code == "invalid_request_error" and bad.body["error"]["message"] == "messages: Field required"

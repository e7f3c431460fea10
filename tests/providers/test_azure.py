"""The Azure OpenAI adapter as tables of literal bodies (reference sections 4 and 7.2). No network."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from gateway.errors import ErrorKind, UpstreamError
from gateway.providers import adapter_class
from gateway.providers.azure import AzureOpenAIAdapter
from gateway.providers.base import Target
from gateway.providers.openai import OpenAIAdapter


def _target(style: str = "deployments", **kw) -> Target:
    base = dict(name="az-gpt", provider="azure", kind="azure-openai", upstream_model="my-gpt4o-deploy",
                base_url="https://res.openai.azure.com", vendor="Microsoft", jurisdiction="EU",
                context_window=128000, api_key="azure-secret-key-0123",
                options={"api_style": style, "api_version": "2024-10-21"})
    base.update(kw)
    return Target(**base)


A = AzureOpenAIAdapter(_target())
V1 = AzureOpenAIAdapter(_target("v1"))
FILTERS_OK = {"hate": {"filtered": False, "severity": "safe"}, "self_harm": {"filtered": False, "severity": "safe"},
              "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}


def _body(obj) -> bytes:
    return obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()


# -- request ------------------------------------------------------------------------------------------------

def test_registered_and_reuses_openai():
    assert adapter_class("azure-openai") is AzureOpenAIAdapter
    assert issubclass(AzureOpenAIAdapter, OpenAIAdapter)


def test_deployments_url_and_api_key_header():
    req = A.build_request({"model": "x", "messages": [{"role": "user", "content": "hi"}]}, False)
    assert req.method == "POST"
    assert req.url == ("https://res.openai.azure.com/openai/deployments/my-gpt4o-deploy/chat/completions"
                       "?api-version=2024-10-21")
    assert req.headers["api-key"] == "azure-secret-key-0123"
    assert "authorization" not in {k.lower() for k in req.headers}
    assert "azure-secret-key-0123" not in req.url
    assert orjson.loads(req.body)["model"] == "my-gpt4o-deploy"
    assert not req.stream


def test_v1_url_model_in_body_and_stream_accept():
    req = V1.build_request({"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": True}, True)
    assert req.url == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert orjson.loads(req.body)["model"] == "my-gpt4o-deploy"
    assert req.headers["api-key"] == "azure-secret-key-0123"
    assert req.headers["accept"] == "text/event-stream" and req.stream


def test_defaults_quoting_and_entra_token_header():
    t = _target(upstream_model="dep/with space", options={}, api_key=None,
                headers={"authorization": "Bearer entra-token"})
    req = AzureOpenAIAdapter(t).build_request({"messages": []}, False)
    assert req.url.endswith("/openai/deployments/dep%2Fwith%20space/chat/completions?api-version=2024-10-21")
    assert req.headers["authorization"] == "Bearer entra-token" and "api-key" not in req.headers


TOOL = {"type": "function", "function": {"name": "get_weather", "description": "d",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
REQUESTS = [
    ("system+developer", {"messages": [{"role": "system", "content": "be brief"},
                                       {"role": "developer", "content": "no emojis"},
                                       {"role": "user", "content": "hi"}]}),
    ("multi-turn", {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                 {"role": "user", "content": "c"}]}),
    ("tools auto", {"messages": [{"role": "user", "content": "w?"}], "tools": [TOOL], "tool_choice": "auto"}),
    ("tools none", {"messages": [{"role": "user", "content": "w?"}], "tools": [TOOL], "tool_choice": "none"}),
    ("tools required", {"messages": [{"role": "user", "content": "w?"}], "tools": [TOOL], "tool_choice": "required"}),
    ("tools named", {"messages": [{"role": "user", "content": "w?"}], "tools": [TOOL],
                     "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
    ("tool call + result", {"messages": [
        {"role": "user", "content": "w?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_Xyz123", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_Xyz123", "content": "{\"temp\": 3}"}], "tools": [TOOL]}),
    ("image", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
    ("sampling", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 50, "max_completion_tokens": 60,
                  "temperature": 0.2, "top_p": 0.9, "stop": ["\n\n", "END"], "seed": 7}),
    ("json mode", {"messages": [{"role": "user", "content": "json"}], "response_format": {"type": "json_object"}}),
    ("stream options", {"messages": [{"role": "user", "content": "x"}], "stream": True,
                        "stream_options": {"include_usage": True}}),
]


@pytest.mark.parametrize("adapter", [A, V1], ids=["deployments", "v1"])
@pytest.mark.parametrize("name,body", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_request_passes_through_openai_format(adapter, name, body):
    """Azure speaks the OpenAI chat format: everything reaches the deployment as sent, only ``model`` changes."""
    body = {"model": "gateway-name", **body}
    before = copy.deepcopy(body)
    sent = orjson.loads(adapter.build_request(body, bool(body.get("stream"))).body)
    assert body == before  # not mutated
    assert sent == {**before, "model": "my-gpt4o-deploy"}


# -- response -----------------------------------------------------------------------------------------------

def _completion(choice: dict, usage: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-9xAz", "object": "chat.completion", "created": 1741570283, "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_abc",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
            **FILTERS_OK, "jailbreak": {"filtered": False, "detected": False}}}],
        "choices": [{"index": 0, "logprobs": None, **choice}],
        "usage": usage or {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                           "prompt_tokens_details": {"cached_tokens": 0},
                           "completion_tokens_details": {"reasoning_tokens": 0}},
    }


def test_parse_text_response():
    body = _completion({"finish_reason": "stop", "content_filter_results": FILTERS_OK,
                        "message": {"role": "assistant", "content": "Hello there.", "refusal": None}})
    out = A.parse_response(_body(body))
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["message"]["content"] == "Hello there."
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["total_tokens"] == 29 and out["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def test_parse_tool_call_response():
    body = _completion({"finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_abc123", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}})
    out = A.parse_response(_body(body))
    tc = out["choices"][0]["message"]["tool_calls"][0]
    assert tc["id"] == "call_abc123" and tc["function"]["name"] == "get_weather"
    assert json.loads(tc["function"]["arguments"]) == {"city": "Oslo"}
    assert out["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("finish", ["stop", "length", "tool_calls", "content_filter"])
def test_parse_finish_reasons(finish):
    body = _completion({"finish_reason": finish, "message": {"role": "assistant", "content": "x"}})
    assert A.parse_response(_body(body))["choices"][0]["finish_reason"] == finish


def test_output_filtered_200_is_an_answer_not_an_error():
    # 4.2 [C]: output filtering -> HTTP 200, finish_reason content_filter, content null (message may even be absent)
    for choice in ({"finish_reason": "content_filter", "message": {"role": "assistant", "content": None},
                    "content_filter_results": {**FILTERS_OK, "violence": {"filtered": True, "severity": "medium"}}},
                   {"finish_reason": "content_filter",
                    "content_filter_results": {"violence": {"filtered": True, "severity": "high"}}}):
        out = A.parse_response(_body(_completion(choice)))
        assert out["choices"][0]["finish_reason"] == "content_filter"
        assert out["choices"][0]["message"] == {"role": "assistant", "content": None}


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"choices": []}', b'{"choices": ["x"]}'])
def test_malformed_2xx_is_transient(raw):
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(raw)
    assert ei.value.kind is ErrorKind.TRANSIENT


def test_error_object_in_200_body_is_classified():
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(_body({"error": {"code": "429",
                                          "message": "Rate limit is exceeded. Try again in 2 seconds."}}))
    assert ei.value.kind is ErrorKind.RATE_LIMITED and ei.value.retry_after == 2


# -- stream -------------------------------------------------------------------------------------------------

PREAMBLE = ('data: {"id":"","choices":[],"created":0,"model":"","object":"","system_fingerprint":null,'
            '"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,'
            '"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,'
            '"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}\n\n')


def _chunk(delta: dict | None, finish=None, cfr=True, **extra) -> str:
    choice: dict = {"index": 0, "finish_reason": finish, "logprobs": None}
    if delta is not None:
        choice["delta"] = delta
    if cfr:
        choice["content_filter_results"] = {} if delta == {"role": "assistant", "content": ""} else FILTERS_OK
    c = {"id": "chatcmpl-A1", "object": "chat.completion.chunk", "created": 1717000000, "model": "gpt-4o-2024-05-13",
         "system_fingerprint": "fp_5f4bad809a", "choices": [choice], **extra}
    return "data: " + json.dumps(c) + "\n\n"


TEXT_STREAM = (PREAMBLE + _chunk({"role": "assistant", "content": ""}) + _chunk({"content": "Hel"})
               + _chunk({"content": "lo"}) + _chunk({}, "stop", cfr=False)
               + 'data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1717000000,"model":"gpt-4o",'
                 '"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
               + "data: [DONE]\n\n")


def _decode(adapter, text: str, step: int | None = None, body=None):
    dec = adapter.stream_decoder(body or {"stream": True})
    raw = text.encode()
    out = []
    if step is None:
        out += dec.feed(raw)
    else:
        for i in range(0, len(raw), step):
            out += dec.feed(raw[i:i + step])
    out += dec.close()
    return out, dec


@pytest.mark.parametrize("step", [None, 1, 7, 50])
def test_stream_text_skips_prompt_filter_preamble(step):
    out, dec = _decode(A, TEXT_STREAM, step)
    assert dec.malformed == 0
    assert all(c["choices"] or c["usage"] for c in out)
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # preamble was not the first chunk
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in out if c["choices"]) == "Hello"
    assert out[-2]["choices"][0]["finish_reason"] == "stop"
    assert out[-1]["choices"] == [] and out[-1]["usage"]["total_tokens"] == 11
    assert not any("prompt_filter_results" in c for c in out)


def test_preamble_alone_is_not_content():
    from gateway.api.streaming import has_content

    dec = A.stream_decoder({})
    assert dec.feed(PREAMBLE.encode()) == []
    got = dec.feed(_chunk({"role": "assistant", "content": ""}).encode())
    assert not any(has_content(c) for c in got)
    assert any(has_content(c) for c in dec.feed(_chunk({"content": "x"}).encode()))


def test_stream_tool_call():
    args = ["{\"ci", "ty\":\"Oslo\"}"]
    text = (PREAMBLE
            + _chunk({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": "call_T1", "type": "function",
                 "function": {"name": "get_weather", "arguments": ""}}]})
            + "".join(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in args)
            + _chunk({}, "tool_calls", cfr=False) + "data: [DONE]\n\n")
    out, _ = _decode(A, text, 11)
    first = out[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["id"] == "call_T1" and first["function"] == {"name": "get_weather", "arguments": ""}
    joined = "".join(c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in out[1:3])
    assert json.loads(joined) == {"city": "Oslo"}
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_content_filter_finish_and_async_filter_annotations():
    annotation = ('data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1717000000,"model":"gpt-4o",'
                  '"choices":[{"index":0,"finish_reason":null,"content_filter_results":{"violence":{"filtered":false,'
                  '"severity":"safe"}},"content_filter_offsets":{"check_offset":0,"start_offset":0,'
                  '"end_offset":5}}]}\n\n')
    text = (PREAMBLE + _chunk({"role": "assistant", "content": ""}) + _chunk({"content": "Once"}) + annotation
            + 'data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1717000000,"model":"gpt-4o",'
              '"choices":[{"index":0,"finish_reason":"content_filter","content_filter_results":{"violence":'
              '{"filtered":true,"severity":"high"}}}]}\n\n'
            + "data: [DONE]\n\n")
    out, dec = _decode(A, text)
    assert len(out) == 3 and dec.malformed == 0
    assert out[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert out[-1]["choices"][0]["delta"] == {}


def test_stream_in_band_error_is_classified():
    text = (PREAMBLE + _chunk({"role": "assistant", "content": ""})
            + 'data: {"error":{"message":"The server had an error while processing your request.",'
              '"type":"server_error",'
              '"param":null,"code":null}}\n\ndata: [DONE]\n\n')
    dec = A.stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        dec.feed(text.encode())
    assert ei.value.kind is ErrorKind.TRANSIENT
    dec = A.stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        dec.feed(b'data: {"error":{"code":"429","message":"Rate limit is exceeded. Try again in 3 seconds."}}\n\n')
    assert ei.value.kind is ErrorKind.RATE_LIMITED and ei.value.retry_after == 3


def test_stream_keepalive_comments_produce_nothing():
    out, _ = _decode(A, ": keep-alive\n\n" + TEXT_STREAM.replace("data: [DONE]", ": ping\n\ndata: [DONE]"))
    assert len(out) == 5


def test_stream_missing_done_after_finish_is_complete_but_cut_stream_is_transient():
    out, _ = _decode(A, TEXT_STREAM.replace("data: [DONE]\n\n", ""))
    assert out[-1]["usage"]["total_tokens"] == 11
    dec = A.stream_decoder({})
    dec.feed((PREAMBLE + _chunk({"role": "assistant", "content": ""}) + _chunk({"content": "Hel"})).encode())
    with pytest.raises(UpstreamError) as ei:
        dec.close()
    assert ei.value.kind is ErrorKind.TRANSIENT
    dec = A.stream_decoder({})
    dec.feed(PREAMBLE.encode())  # only the preamble, then EOF
    with pytest.raises(UpstreamError):
        dec.close()


def test_stream_malformed_events_are_counted_then_fatal():
    out, dec = _decode(A, PREAMBLE + "data: {oops\n\n" + TEXT_STREAM)
    assert dec.malformed == 1 and len(out) == 5
    dec = A.stream_decoder({})
    with pytest.raises(UpstreamError) as ei:
        dec.feed(b"data: {x\n\ndata: [y\n\ndata: nope\n\n")
    assert ei.value.kind is ErrorKind.TRANSIENT


# -- classification (reference 4.3 and every Azure row of 7.2) --------------------------------------------------

RATE_MSG = ("Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-08-01-preview "
            "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 86400 "
            "seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the "
            "default rate limit.")
FILTER_400 = {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
               "Please modify your prompt and retry. To learn more about our content filtering policies please read "
               "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "hate": {"filtered": False, "severity": "safe"}, "jailbreak": {"filtered": False, "detected": False},
        "self_harm": {"filtered": False, "severity": "safe"}, "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": True, "severity": "medium"}}}}}

CASES = [
    # (status, headers, body, kind, retry_after, note)
    (401, {}, {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API "
               "endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API "
               "endpoint for your resource."}}, ErrorKind.ACCESS_DENIED, None, "bad key / wrong endpoint"),
    (403, {}, {"error": {"code": "403", "message": "Public access is disabled. Please configure private endpoint."}},
     ErrorKind.ACCESS_DENIED, None, "public access disabled [C shape]"),
    (403, {}, "Public access is disabled. Please configure private endpoint.", ErrorKind.ACCESS_DENIED, None,
     "firewall, non-JSON body"),
    (404, {}, {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not "
               "exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}},
     ErrorKind.WITHDRAWN, None, "deployment missing"),
    (404, {}, {"error": {"code": "404", "message": "Resource not found"}}, ErrorKind.WITHDRAWN, None,
     "retired model version / bad api-version"),
    (429, {"retry-after": "60"}, {"error": {"code": "429", "message": RATE_MSG}}, ErrorKind.RATE_LIMITED, 60.0,
     "rate limit: header wins over text"),
    (429, {}, {"error": {"code": "429", "message": RATE_MSG}}, ErrorKind.RATE_LIMITED, 86400.0,
     "rate limit: no header, text fallback (quota exhausted)"),
    (429, {"retry-after": "-1", "retry-after-ms": "-1"},
     {"error": {"code": "429", "message": "Rate limit is exceeded. Try again in 2 seconds."}},
     ErrorKind.RATE_LIMITED, 2.0, "rate limit: -1 headers ignored"),
    (429, {"retry-after-ms": "1500"}, {"error": {"code": "429", "message": "The system is currently experiencing high "
           "demand and cannot process your request. Please retry after 20 seconds."}},
     ErrorKind.RATE_LIMITED, 1.5, "peak-load shed, retry-after-ms"),
    (400, {}, FILTER_400, ErrorKind.POLICY_BLOCKED, None, "prompt content filter"),
    (400, {}, {"error": {"message": "filtered", "code": "BadRequest",
               "innererror": {"code": "ResponsibleAIPolicyViolation"}}}, ErrorKind.POLICY_BLOCKED, None,
     "policy by innererror alone"),
    (400, {}, {"error": {"message": "This model's maximum context length is 32768 tokens. However, you requested 35969 "
               "tokens (9969 in the messages, 26000 in the completion). Please reduce the length of the messages or "
               "completion.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}},
     ErrorKind.CONTEXT_TOO_LONG, None, "context too long"),
    (400, {}, {"error": {"message": "Input tokens exceed the configured limit of 272000 tokens. Your messages resulted "
               "in 509178 tokens.", "code": "400"}}, ErrorKind.CONTEXT_TOO_LONG, None,
     "GPT-5 era wording, text fallback for a bare 400"),
    (400, {}, {"error": {"message": "Invalid prompt: your prompt was flagged as potentially violating our usage "
               "policy.", "type": "invalid_request_error", "param": None, "code": "invalid_prompt"}},
     ErrorKind.POLICY_BLOCKED, None, "reasoning-model prompt flag"),
    (400, {}, {"error": {"message": "Invalid value for 'temperature': must be <= 2", "type": "invalid_request_error",
               "param": "temperature", "code": None}}, ErrorKind.BAD_REQUEST, None, "other 400"),
    (400, {}, {"error": {"code": "400", "message": "Unsupported data type"}}, ErrorKind.BAD_REQUEST, None,
     "other 400, status-echo code"),
    (500, {}, {"error": {"code": "InternalServerError", "message": "The service is temporarily unable to process "
               "your request. Please try again later."}}, ErrorKind.TRANSIENT, None, "500"),
    (502, {}, "<html>Bad Gateway</html>", ErrorKind.TRANSIENT, None, "502"),
    (503, {}, {"error": {"code": "503", "message": "Service Unavailable"}}, ErrorKind.TRANSIENT, None, "503"),
    (504, {}, "", ErrorKind.TRANSIENT, None, "504"),
]


@pytest.mark.parametrize("status,headers,body,kind,retry_after,note", CASES, ids=[c[-1] for c in CASES])
def test_classify_error(status, headers, body, kind, retry_after, note):
    err = A.classify_error(status, headers, _body(body))
    assert isinstance(err, UpstreamError)
    assert err.kind is kind, note
    assert err.status == status
    assert err.retry_after == retry_after
    assert err.message
    assert "azure-secret-key-0123" not in str(err)


def test_error_codes_for_callers():
    assert A.classify_error(400, {}, _body(FILTER_400)).code == "content_filter"
    assert A.classify_error(400, {}, _body(FILTER_400)).param == "prompt"
    inner = A.classify_error(400, {}, _body(FILTER_400)).body["error"]["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert A.classify_error(404, {}, _body(CASES[3][2])).code == "DeploymentNotFound"
    # a status echoed as a string code carries nothing the status does not
    assert A.classify_error(429, {}, _body(CASES[5][2])).code is None


def test_openai_rules_unchanged_by_azure_extension():
    # The OpenAI adapter still classifies its own bodies the same (Azure's additions are in azure.classify only).
    o = OpenAIAdapter(_target(kind="openai", base_url="http://u/v1"))
    missing = _body({"error": {"code": "DeploymentNotFound", "message": "x"}})
    assert o.classify_error(404, {}, missing).kind is ErrorKind.WITHDRAWN
    assert o.classify_error(400, {}, _body(FILTER_400)).kind is ErrorKind.POLICY_BLOCKED
    assert o._headers["authorization"] == "Bearer azure-secret-key-0123" and o._url == "http://u/v1/chat/completions"


@pytest.mark.parametrize("code", ["²", "٤٢٩", "9" * 5000])
def test_an_in_band_error_code_that_only_looks_numeric_is_classified_not_raised(code):
    """``str.isdigit()`` accepts '²' and Arabic-Indic digits, and ``int()`` refuses 5,000 digits: the upstream's
    code is text to classify, never a crash in the adapter."""
    body = orjson.dumps({"error": {"code": code, "message": "odd"}})
    with pytest.raises(UpstreamError) as ei:
        A.parse_response(body)
    assert isinstance(ei.value.kind, ErrorKind)
    dec = A.stream_decoder({})
    with pytest.raises(UpstreamError):
        dec.feed(b"data: " + body + b"\n\n")

"""Hostile bodies to ``/v1/messages``, ``/v1/messages/count_tokens`` and ``/v1/responses``: a 4xx in the dialect's
own error shape naming the field, never a 500, whichever provider kind the route starts with (each adapter writes
the body its own way, and an Anthropic-kind model gets the client's original body natively)."""

from __future__ import annotations

import httpx
import pytest

from gateway.testing import GatewayThread
from tests.conftest import GATEWAY_KEY
from tests.integration.dialect_config import KINDS, aws_credentials, dialect_config

HEADERS = {"x-api-key": GATEWAY_KEY, "content-type": "application/json"}


@pytest.fixture(scope="module")
def gw(emulator, tmp_path_factory):
    with aws_credentials(), GatewayThread(dialect_config(emulator.url), tmp_path_factory.mktemp("dialect-bad")) as g:
        yield g


@pytest.fixture(scope="module")
def http(gw):
    with httpx.Client(base_url=gw.url, headers=HEADERS, timeout=15) as c:
        yield c


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def _anthropic_error(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    return body["error"]["message"]


def _openai_error(r: httpx.Response) -> dict:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error", err
    return err


HI = '[{"role":"user","content":"hi"}]'
# (path, body template with %(route)s and %(deep)s, the field the error must name)
DEEP_CASES = {
    "tool_use input": ("/v1/messages", '{"model":"%(route)s","max_tokens":10,"messages":[{"role":"user","content":"hi"},'
                       '{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":%(deep)s}]},'
                       '{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r"}]}]}',
                       "messages[1].content[0].input.a.a.a"),
    "input_schema": ("/v1/messages", '{"model":"%(route)s","max_tokens":10,"messages":' + HI + ','
                     '"tools":[{"name":"f","input_schema":{"type":"object","properties":%(deep)s}}]}',
                     "tools[0].input_schema.properties.a"),
    "metadata": ("/v1/messages", '{"model":"%(route)s","max_tokens":10,"messages":' + HI + ',"metadata":%(deep)s}',
                 "metadata.a.a"),
    "cache_control": ("/v1/messages", '{"model":"%(route)s","max_tokens":10,"messages":' + HI + ','
                      '"system":[{"type":"text","text":"s","cache_control":%(deep)s}]}', "system[0].cache_control.a"),
    "count_tokens": ("/v1/messages/count_tokens", '{"model":"%(route)s","messages":' + HI + ','
                     '"tools":[{"name":"f","input_schema":%(deep)s}]}', "tools[0].input_schema.a"),
    "text.format.schema": ("/v1/responses", '{"model":"%(route)s","input":"hi","text":{"format":{"type":"json_schema",'
                           '"name":"n","schema":%(deep)s}}}', "text.format.schema.a"),
    "function parameters": ("/v1/responses", '{"model":"%(route)s","input":"hi","tools":[{"type":"function",'
                            '"name":"f","parameters":%(deep)s}]}', "tools[0].parameters.a"),
}


@pytest.mark.parametrize("case", list(DEEP_CASES))
def test_json_nested_too_deeply_to_forward_is_a_400_naming_the_field(emu, http, case):
    """orjson reads 1024 levels but writes only 254: a body between the two must not reach an adapter."""
    path, template, field = DEEP_CASES[case]
    for route in KINDS:
        for levels in (300, 1000):
            r = http.post(path, content=template % {"route": route, "deep": _deep(levels)})
            message = _anthropic_error(r) if path.startswith("/v1/messages") else _openai_error(r)["message"]
            assert field in message and "nested" in message, (route, message)
    assert emu.attempts() == []  # refused at the edge: no upstream saw it


# JSON Schemas no vendor would accept, each still a JSON object: the gateway forwards or refuses them, never 500s.
ODD_SCHEMAS = [{"type": {"x": 1}}, {"type": [["string"]]}, {"type": "object", "properties": {"a": {"type": {"b": 1}}}},
               {"$defs": {"P": [1]}, "$ref": "#/$defs/P"}, {"properties": [1, 2]}, {"items": [{"type": []}]}]


@pytest.mark.parametrize("schema", ODD_SCHEMAS, ids=[str(i) for i in range(len(ODD_SCHEMAS))])
def test_odd_json_schemas_never_make_a_500(emu, http, schema):
    for route in KINDS:
        bodies = [
            ("/v1/messages", {"model": route, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"name": "f", "input_schema": schema}]}),
            ("/v1/responses", {"model": route, "input": "hi", "tools": [{"type": "function", "name": "f",
                                                                         "parameters": schema}]}),
            ("/v1/responses", {"model": route, "input": "hi",
                               "text": {"format": {"type": "json_schema", "name": "n", "schema": schema}}}),
        ]
        for path, body in bodies:
            for stream in (False, True):
                r = http.post(path, json={**body, "stream": stream})
                assert r.status_code < 500, (route, path, stream, r.text)


def test_an_image_that_is_not_base64_is_a_400_naming_its_data_field(emu, http):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
    for route in KINDS:
        r = http.post("/v1/messages", json={"model": route, "max_tokens": 10, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]})
        assert "messages[0].content[1].source.data" in _anthropic_error(r), route
    assert emu.attempts() == []

"""The inbound dialects in the gateway's OpenAPI document (``/openapi.json``).

The endpoints are pure ASGI (not FastAPI routes), so their path items are declared here and merged into the
generated schema. The request schemas give the shape and the required fields; they are deliberately open
(``additionalProperties`` allowed) because the vendors add fields, and the translators check every field's type
themselves (a 400 naming the field, never a 500).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_CONTENT = {"anyOf": [{"type": "string"}, {"type": "array", "items": _ANY_OBJECT}]}
_MESSAGES = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["role", "content"],
    "properties": {"role": {"type": "string", "enum": ["user", "assistant"]}, "content": _CONTENT}}}
_ANTHROPIC_FIELDS: dict[str, Any] = {
    "model": {"type": "string", "description": "A gateway route name, alias or model name."},
    "messages": _MESSAGES,
    "system": _CONTENT,
    "max_tokens": {"type": "integer", "minimum": 1},
    "stream": {"type": "boolean"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 1},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 1},
    "stop_sequences": {"type": "array", "items": {"type": "string"}},
    "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
    "tools": {"type": "array", "items": _ANY_OBJECT},
    "tool_choice": _ANY_OBJECT,
    "thinking": _ANY_OBJECT,
}
_RESPONSES_FIELDS: dict[str, Any] = {
    "model": {"type": "string", "description": "A gateway route name, alias or model name."},
    "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": _ANY_OBJECT}]},
    "instructions": {"type": "string"},
    "max_output_tokens": {"type": "integer", "minimum": 1},
    "stream": {"type": "boolean"},
    "store": {"type": "boolean"},
    "previous_response_id": {"type": "string"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "parallel_tool_calls": {"type": "boolean"},
    "tools": {"type": "array", "items": _ANY_OBJECT},
    "tool_choice": {"anyOf": [{"type": "string"}, _ANY_OBJECT]},
    "text": {"type": "object", "properties": {"format": _ANY_OBJECT}},
}
_ANTHROPIC_ERROR = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["error"]},
    "error": {"type": "object", "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}}
_OPENAI_ERROR = {"type": "object", "properties": {"error": _ANY_OBJECT}}


def _operation(summary: str, fields: dict[str, Any], required: list[str], error: dict[str, Any],
               stream: bool = True) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": _ANY_OBJECT}}
    if stream:
        ok["text/event-stream"] = {"schema": {"type": "string"}}
    return {"post": {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": required, "properties": fields, "additionalProperties": True}}}},
        "responses": {"200": {"description": "The answer (JSON, or SSE when stream is true)", "content": ok},
                      "4XX": {"description": "A client error", "content": {"application/json": {"schema": error}}},
                      "5XX": {"description": "No model could answer",
                              "content": {"application/json": {"schema": error}}}},
    }}


PATHS: dict[str, Any] = {
    "/v1/messages": _operation("Anthropic Messages API", _ANTHROPIC_FIELDS, ["messages", "max_tokens"],
                               _ANTHROPIC_ERROR),
    "/v1/messages/count_tokens": _operation(
        "Anthropic token count (an estimate)", {k: v for k, v in _ANTHROPIC_FIELDS.items() if k != "max_tokens"},
        ["messages"], _ANTHROPIC_ERROR, stream=False),
    "/v1/responses": _operation("OpenAI Responses API", _RESPONSES_FIELDS, ["input"], _OPENAI_ERROR),
}


def with_dialect_paths(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap a FastAPI app's ``openapi()`` so the document also lists the dialect endpoints."""

    def openapi() -> dict[str, Any]:
        schema = generate()
        for path, item in PATHS.items():
            schema.setdefault("paths", {}).setdefault(path, item)
        return schema

    return openapi

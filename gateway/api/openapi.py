"""OpenAPI entries for the endpoints served as pure ASGI (outside FastAPI's routing, for speed), so that the
gateway's ``/openapi.json`` describes every inbound endpoint: clients read it, and the fuzz campaign
(tests/integration/test_fuzz.py) iterates over every operation in it.

``RAW_OPERATIONS`` maps a path to its OpenAPI path item. An endpoint added as pure ASGI adds its entry here;
``install`` merges them into the FastAPI app's generated schema (computed once, on first request).
"""

from __future__ import annotations

from typing import Any

_ERROR = {
    "description": "An OpenAI-shaped error",
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"},
            "code": {"type": ["string", "null"]}, "param": {"type": ["string", "null"]}}}}}}},
}

_PART = {"type": "object", "required": ["type"], "properties": {
    "type": {"type": "string", "enum": ["text", "image_url", "input_audio", "file", "refusal"]},
    "text": {"type": "string"},
    "refusal": {"type": "string"},
    "image_url": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string"}, "detail": {"type": "string", "enum": ["auto", "low", "high"]}}},
    "input_audio": {"type": "object", "required": ["data", "format"], "properties": {
        "data": {"type": "string"}, "format": {"type": "string", "enum": ["wav", "mp3"]}}},
    "file": {"type": "object", "properties": {"file_data": {"type": "string"}, "filename": {"type": "string"},
                                              "file_id": {"type": "string"}}},
}}
_TOOL_CALL = {"type": "object", "required": ["id", "type", "function"], "properties": {
    "id": {"type": "string"}, "type": {"type": "string", "enum": ["function"]},
    "function": {"type": "object", "required": ["name", "arguments"], "properties": {
        "name": {"type": "string"}, "arguments": {"type": "string"}}}}}
_MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool", "function"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _PART}, {"type": "null"}]},
    "name": {"type": "string"},
    "refusal": {"type": ["string", "null"]},
    "tool_calls": {"type": "array", "items": _TOOL_CALL},
    "tool_call_id": {"type": "string"},
}}
_SCHEMA_OBJECT = {"type": "object", "additionalProperties": True}
CHAT_REQUEST: dict[str, Any] = {
    "type": "object", "required": ["messages"], "additionalProperties": True,
    "properties": {
        "model": {"type": "string", "description": "a route, an alias, a model name or 'auto'"},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "n": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "user": {"type": "string"},
        "metadata": {"type": "object"},
        "parallel_tool_calls": {"type": "boolean"},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type", "function"], "properties": {
            "type": {"type": "string", "enum": ["function"]},
            "function": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "description": {"type": "string"}, "parameters": _SCHEMA_OBJECT}}}}},
        "tool_choice": {"anyOf": [
            {"type": "string", "enum": ["none", "auto", "required"]},
            {"type": "object", "required": ["type", "function"], "properties": {
                "type": {"type": "string", "enum": ["function"]},
                "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}]},
        "response_format": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["text", "json_object", "json_schema"]},
            "json_schema": {"type": "object", "properties": {"name": {"type": "string"},
                                                             "schema": _SCHEMA_OBJECT}}}},
    },
}

RAW_OPERATIONS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"post": {
        "operationId": "create_chat_completion",
        "summary": "OpenAI-compatible chat completions, routed and failed over across providers",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": CHAT_REQUEST}}},
        "responses": {
            "200": {"description": "A chat.completion object, or an SSE stream of chat.completion.chunk events "
                                   "when stream is true"},
            "400": _ERROR, "401": _ERROR, "404": _ERROR, "413": _ERROR, "429": _ERROR, "502": _ERROR,
            "503": _ERROR, "504": _ERROR,
        },
    }},
}


def install(app: Any, operations: dict[str, dict[str, Any]] | None = None) -> None:
    """Make ``app.openapi()`` (FastAPI) include ``operations`` (default ``RAW_OPERATIONS``)."""
    generate = app.openapi
    extra = RAW_OPERATIONS if operations is None else operations

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path, item in extra.items():
                schema.setdefault("paths", {}).setdefault(path, {}).update(item)
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes.setdefault("bearer", {"type": "http", "scheme": "bearer"})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

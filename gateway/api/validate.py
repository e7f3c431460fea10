"""Validation of the OpenAI chat request, by hand for speed (it runs on every request) and so that every
message names the offending field the way the OpenAI API does (``messages[2].role``).

Only shapes are checked; unknown fields pass through to OpenAI-kind upstreams untouched. Validation is total:
every value is type-checked before it is used (a ``{}`` role is a 400, never an unhashable-type crash), and a
body nested deeper than ``MAX_DEPTH`` is refused, since every translator re-encodes the body (orjson's encoder
stops at 255 levels; the translators add a few levels of their own). Whatever this module accepts, every
provider translator must translate or reject with a 400 (tests/providers/test_translation_total.py).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
MAX_DEPTH = 128  # containers inside containers; real chat bodies (JSON Schemas included) stay far below
# Content-part types whose payload is an object of their own name: {"type": "image_url", "image_url": {...}}.
_OBJECT_PARTS = {"image_url": "url", "input_audio": "data", "file": None}


def bad(param: str, message: str) -> GatewayError:
    """A 400 naming the offending field (``messages[2].content[0].image_url``); every inbound endpoint's shape."""
    return GatewayError(400, f"Invalid value for '{param}': {message}", type="invalid_request_error",
                        code="invalid_request", param=param)


def missing(param: str) -> GatewayError:
    """A 400 for a required field that is absent."""
    return GatewayError(400, f"Missing required parameter: '{param}'.", code="missing_required_parameter",
                        param=param)




def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> None:
    v = body.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise bad(key, f"expected a number, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise bad(key, f"must be between {lo:g} and {hi:g}")


def _integer(body: dict[str, Any], key: str, lo: int = 1) -> None:
    v = body.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(key, f"expected an integer, got {type(v).__name__}")
    if v < lo:
        raise bad(key, f"must be at least {lo}")


def _content(path: str, content: Any, required: bool) -> None:
    if content is None:
        if required:
            raise bad(path, "content is required for this role")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad(path, "expected a string or an array of content parts")
    for j, part in enumerate(content):
        p = f"{path}[{j}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad(p, "each content part must be an object with a string 'type'")
        ptype = part["type"]
        if ptype == "text" and not isinstance(part.get("text"), str):
            raise bad(f"{p}.text", "expected a string")
        if ptype == "refusal" and not isinstance(part.get("refusal"), str):
            raise bad(f"{p}.refusal", "expected a string")
        if ptype in _OBJECT_PARTS:
            inner = part.get(ptype)
            if not isinstance(inner, dict):
                raise bad(f"{p}.{ptype}", "expected an object")
            field = _OBJECT_PARTS[ptype]
            if field is not None and not isinstance(inner.get(field), str):
                raise bad(f"{p}.{ptype}.{field}", "expected a string")
            for k, v in inner.items():
                if v is not None and k != "detail" and not isinstance(v, str):
                    raise bad(f"{p}.{ptype}.{k}", "expected a string")


def _depth_ok(body: Any) -> bool:
    """False when containers nest deeper than ``MAX_DEPTH``. Iterative (no recursion limit), stops early, and
    visits containers only: strings and numbers cost nothing here."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)) and child:
                stack.append((child, depth + 1))
    return True


def _optional_str(msg: dict[str, Any], key: str, path: str) -> None:
    v = msg.get(key)
    if v is not None and not isinstance(v, str):
        raise bad(f"{path}.{key}", "expected a string")


def validate_chat(body: Any, raw: bytes | None = None) -> dict[str, Any]:
    """Return the body (unchanged) or raise ``GatewayError(400)`` naming the field. ``raw``, the bytes the body
    was parsed from, lets the nesting check be skipped when they hold too few brackets to nest that deep."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_request")
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("messages", "expected a non-empty array of messages")
    for i, msg in enumerate(messages):
        path = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise bad(path, "each message must be an object")
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad(f"{path}.role", f"expected one of {', '.join(sorted(ROLES))}, got {_short(role)}")
        _optional_str(msg, "name", path)
        tool_calls = msg.get("tool_calls")
        if role == "assistant":
            _content(f"{path}.content", msg.get("content"), required=not tool_calls and "refusal" not in msg)
            _optional_str(msg, "refusal", path)
            if tool_calls is not None:
                if not isinstance(tool_calls, list):
                    raise bad(f"{path}.tool_calls", "expected an array")
                for j, tc in enumerate(tool_calls):
                    tp = f"{path}.tool_calls[{j}]"
                    fn = tc.get("function") if isinstance(tc, dict) else None
                    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                        raise bad(f"{tp}.function.name", "expected a string")
                    if not isinstance(tc.get("id"), str):
                        raise bad(f"{tp}.id", "expected a string")
                    if not isinstance(fn.get("arguments", ""), str):
                        raise bad(f"{tp}.function.arguments", "expected a JSON-encoded string")
                    if not isinstance(tc.get("type", "function"), str):
                        raise bad(f"{tp}.type", "expected a string")
                    extra = tc.get("extra_content")
                    if extra is not None and not (isinstance(extra, dict)
                                                  and isinstance(extra.get("google", {}), dict)):
                        raise bad(f"{tp}.extra_content", "expected an object")
        elif role == "tool":
            _content(f"{path}.content", msg.get("content"), required=True)
            if not isinstance(msg.get("tool_call_id"), str):
                raise bad(f"{path}.tool_call_id", "required for role 'tool'")
        else:
            _content(f"{path}.content", msg.get("content"), required=True)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model", "expected a string")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad("stream", "expected a boolean")
    so = body.get("stream_options")
    if so is not None:
        if not isinstance(so, dict):
            raise bad("stream_options", "expected an object")
        if "include_usage" in so and not isinstance(so["include_usage"], bool):
            raise bad("stream_options.include_usage", "expected a boolean")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools", "expected an array")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise bad(f"tools[{i}].function.name", "expected a string")
            if "parameters" in fn and not isinstance(fn["parameters"], dict):
                raise bad(f"tools[{i}].function.parameters", "expected a JSON Schema object")
            if not isinstance(tool.get("type", "function"), str):
                raise bad(f"tools[{i}].type", "expected a string")
            if fn.get("description") is not None and not isinstance(fn["description"], str):
                raise bad(f"tools[{i}].function.description", "expected a string")
    tc = body.get("tool_choice")
    if tc is not None:
        if isinstance(tc, str):
            if tc not in TOOL_CHOICES:
                raise bad("tool_choice", f"expected none, auto, required or an object, got {tc!r}")
        elif not isinstance(tc, dict):
            raise bad("tool_choice", "expected a string or an object")
        else:
            if not isinstance(tc.get("type", "function"), str):
                raise bad("tool_choice.type", "expected a string")
            if "function" in tc:
                fn = tc["function"]
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise bad("tool_choice.function.name", "expected a string")
    rf = body.get("response_format")
    if rf is not None:
        rtype = rf.get("type") if isinstance(rf, dict) else None
        if not isinstance(rtype, str) or rtype not in RESPONSE_FORMATS:
            raise bad("response_format.type", "expected text, json_object or json_schema")
        js = rf.get("json_schema")
        if js is not None:
            if not isinstance(js, dict):
                raise bad("response_format.json_schema", "expected an object")
            if js.get("schema") is not None and not isinstance(js["schema"], dict):
                raise bad("response_format.json_schema.schema", "expected a JSON Schema object")
            if js.get("name") is not None and not isinstance(js["name"], str):
                raise bad("response_format.json_schema.name", "expected a string")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _integer(body, "max_tokens")
    _integer(body, "max_completion_tokens")
    _integer(body, "n")
    _integer(body, "seed", lo=-(2**63))
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
            raise bad("stop", "expected a string or an array of up to 4 strings")
    for key in ("user",):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise bad(key, "expected a string")
    if "metadata" in body and body["metadata"] is not None and not isinstance(body["metadata"], dict):
        raise bad("metadata", "expected an object")
    if "parallel_tool_calls" in body and not isinstance(body["parallel_tool_calls"], bool):
        raise bad("parallel_tool_calls", "expected a boolean")
    if (raw is None or raw.count(b"{") + raw.count(b"[") > MAX_DEPTH) and not _depth_ok(body):
        raise GatewayError(400, f"The request body is nested more than {MAX_DEPTH} levels deep.",
                           code="invalid_request")
    return body


def _short(value: Any) -> str:
    """A value for an error message: its repr, cut short (a caller may send a megabyte where a role goes)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

"""What the dialect translators share: field checks that name the dialect's own field, the internal body that
also carries a vendor-native original, and the usage/finish facts every dialect renders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import GatewayError

# What a translator puts on the internal request's ``stream_options``: the final usage chunk is needed by every
# dialect (Anthropic ``message_delta.usage``, Responses ``response.completed.response.usage``).
STREAM_OPTIONS = {"include_usage": True}
CHARS_PER_TOKEN = 4


def bad(param: str, message: str) -> GatewayError:
    """A 400 naming the offending field in the dialect's own terms (``messages[2].content[0].source``)."""
    return GatewayError(400, f"Invalid value for '{param}': {message}", type="invalid_request_error",
                        code="invalid_request", param=param)


def expect(value: Any, kinds: type | tuple[type, ...], param: str, what: str) -> Any:
    """``value`` if it is of ``kinds`` (booleans are never numbers), else a 400 naming ``param``."""
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise bad(param, f"expected {what}, got boolean")
    if not isinstance(value, kinds):
        raise bad(param, f"expected {what}, got {_type_name(value)}")
    return value


def optional(body: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], what: str,
             prefix: str = "") -> Any:
    value = body.get(key)
    if value is None:
        return None
    return expect(value, kinds, prefix + key, what)


def number(body: Mapping[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = optional(body, key, (int, float), "a number")
    if value is not None and not lo <= value <= hi:
        raise bad(key, f"must be between {lo:g} and {hi:g}")
    return value


def positive_int(body: Mapping[str, Any], key: str, required: bool = False) -> int | None:
    value = body.get(key)
    if value is None:
        if required:
            raise GatewayError(400, f"Missing required parameter: '{key}'.", code="missing_required_parameter",
                               param=key)
        return None
    expect(value, int, key, "an integer")
    if value < 1:
        raise bad(key, "must be at least 1")
    return value


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON-encoded arguments as an object. Models sometimes emit invalid or non-object JSON;
    that text is kept under ``_raw_arguments`` rather than dropped, so the caller can see what came back."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        return {"_raw_arguments": str(arguments)}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": str(arguments)}


def text_tokens(*parts: Any) -> int:
    """An estimate of the tokens of some JSON-able values: 4 characters a token (the same rule the streaming
    relay uses for cut streams). Not a tokenizer: good for budgeting, not billing."""
    chars = 0
    for p in parts:
        if p is None:
            continue
        chars += len(p) if isinstance(p, str) else len(dumps(p))
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def usage_numbers(usage: Mapping[str, Any] | None) -> tuple[int, int, int, int]:
    """(input, output, cached read, cache write) from an internal (OpenAI-shaped) usage object."""
    if not isinstance(usage, Mapping):
        return 0, 0, 0, 0
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    return (_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")),
            _int(details.get("cached_tokens")), _int(details.get("cache_write_tokens")))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

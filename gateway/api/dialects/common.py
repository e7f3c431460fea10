"""What the dialect translators share: field checks that name the dialect's own field, the internal body that
also carries a vendor-native original, and the usage/finish facts every dialect renders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.api.validate import bad, missing
from gateway.errors import GatewayError

# What a translator puts on the internal request's ``stream_options``: the final usage chunk is needed by every
# dialect (Anthropic ``message_delta.usage``, Responses ``response.completed.response.usage``).
STREAM_OPTIONS = {"include_usage": True}
CHARS_PER_TOKEN = 4
_MAX_WRITE_DEPTH = 250  # orjson writes at most 254 levels; the internal request nests a level or two deeper
_PATH_SHOWN = 8




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
            raise missing(key)
        return None
    expect(value, int, key, "an integer")
    if value < 1:
        raise bad(key, "must be at least 1")
    return value


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def dumps(value: Any, param: str = "") -> str:
    """``value`` as JSON text; a value nested too deeply to write is a 400 naming ``param`` (see ``too_deep``)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise too_deep(value, param) from None


def forwardable(internal: Any, original: Any, native: bool) -> bytes:
    """The internal request as JSON bytes, checking first that it can be forwarded at all: JSON is read up to 1024
    levels deep but written only up to 254 (orjson's limits), so a deeper body (``{"a":{"a":...}}`` in a tool
    schema, ``metadata``, a ``tool_use`` input) is a 400 naming its deepest field, never a 500 later. ``native``:
    the ``original`` body itself will be sent as is (a native passthrough), so it is checked too."""
    try:
        out = orjson.dumps(internal)
        if native:
            orjson.dumps(original)
    except orjson.JSONEncodeError:
        raise too_deep(original) from None
    return out


def too_deep(value: Any, prefix: str = "") -> GatewayError:
    """The 400 for a value nested too deeply to write, naming the path to its deepest part (the first
    ``_PATH_SHOWN`` steps). Walks iteratively (no recursion limit); only ever on this error path."""
    best: tuple[Any, ...] = ()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        v, path = stack.pop()
        if len(path) > len(best):
            best = path
        if isinstance(v, dict):
            stack.extend((x, (*path, str(k))) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, (*path, i)) for i, x in enumerate(v))
    name = prefix
    for step in best[:_PATH_SHOWN]:
        name += f"[{step}]" if isinstance(step, int) else (f".{step}" if name else step)
    if len(best) > _PATH_SHOWN:
        name += "..."
    return bad(name or "body", f"JSON nested {len(best)} levels deep; the gateway forwards at most about "
                               f"{_MAX_WRITE_DEPTH} levels")


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

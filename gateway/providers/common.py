"""Small pure helpers shared by provider modules: reading error bodies and retry hints."""

from __future__ import annotations

import contextlib
import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import ErrorKind, UpstreamError


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``retry-after-ms`` (OpenAI) first, then ``retry-after`` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            if math.isfinite(value := float(ms)):  # "inf" / "nan" say nothing usable (a forever cooldown)
                return max(0.0, value / 1000.0)
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        value = float(ra)
    except ValueError:
        pass
    else:
        return max(0.0, value) if math.isfinite(value) else None
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def kind_from_status(status: int) -> ErrorKind | None:
    """The HTTP-status fallback the providers share, for when their structured fields said nothing: None for
    a status that means "the caller's request" (a bare 400/422), left to the provider's last resort."""
    if status in (401, 403):
        return ErrorKind.ACCESS_DENIED
    if status == 404:
        return ErrorKind.WITHDRAWN
    if status == 413:
        return ErrorKind.CONTEXT_TOO_LONG
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (408, 409, 424) or status >= 500 or status in (0, 200):
        return ErrorKind.TRANSIENT
    return None


def refuse_untranslatable(body: Mapping[str, Any]) -> None:
    """For adapters of other kinds than the one a ``NativeBody`` came in: a request with parts only that kind
    can take (an Anthropic server tool, a PDF, ...) is answered with a 400 naming the first of them, not sent
    without them."""
    notes = getattr(body, "untranslatable", ())
    if notes:
        param, what = notes[0]
        kind = getattr(body, "native_kind", "")
        raise UpstreamError(ErrorKind.BAD_REQUEST, f"{param}: {what} can only be served by {kind}-kind models, and "
                            f"none of this route's could answer", status=400, code="unsupported_for_provider",
                            param=param)


# After this many undecodable stream events in a row a stream is treated as cut, not merely noisy.
MAX_CONSECUTIVE_MALFORMED = 3


def skip_malformed(decoder: Any) -> None:
    """Count one undecodable stream event on a decoder (its ``malformed`` total and ``_bad_run`` streak, reset
    by the decoder on the next good event); raise ``UpstreamError(transient)`` once the streak is a cut."""
    decoder.malformed += 1
    decoder._bad_run += 1
    if decoder._bad_run >= MAX_CONSECUTIVE_MALFORMED:
        raise UpstreamError(ErrorKind.TRANSIENT, "upstream stream is sending undecodable events")


def excerpt(body: bytes, limit: int = 300) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")

"""Scripted provider behaviours for the emulator.

A behaviour is chosen per model name and written as a compact spec string::

    healthy
    rate_limited:retry_after=2
    stream_cut:after=5
    slow_first_token:delay=0.5
    healthy:token_delay=0.01,context_window=50,text=Hi there

``name[:key=value[,key=value...]]``. Values that look like ints/floats become
numbers, ``true``/``false`` become booleans, everything else stays a string
(values cannot contain commas).

The behaviour names and parameters are wire-format neutral; each wire module
(``openai_wire`` today) decides how a behaviour looks on its wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Parameters honoured by every behaviour that reaches "answering".
COMMON_PARAMS: dict[str, str] = {
    "flavor": "error-body dialect: openai (default) | vllm | vllm_legacy | ollama | groq",
    "token_delay": "seconds between stream pieces (default 0)",
    "context_window": "if estimated prompt tokens exceed N, answer context_exceeded instead",
    "text": "fixed reply text",
    "words": "reply with N words 'w1 w2 ... wN'",
    "no_usage": "OpenAI wire: ignore stream_options.include_usage (as older Ollama/vLLM builds do)",
    "dimensions": "embedding wires: return vectors of N numbers whatever the request asks (default: the "
                  "request's dimensions, else the model family's native length)",
}

# name -> {param: description}; only params listed here (plus COMMON_PARAMS) are accepted.
BEHAVIOURS: dict[str, dict[str, str]] = {
    "healthy": {},
    "withdrawn": {},
    "access_revoked": {},
    # A careless upstream (or a proxy in front of it): its access error quotes the credential it received, in clear.
    "echo_key": {"status": "401 (access revoked, default) | 403 (no model access) | 404 (model withdrawn): the "
                           "wire's own error for that, with the received key appended to its message"},
    "no_model_access": {"project": "project id in the message (default proj_emulator)"},
    "region_blocked": {},
    "rate_limited": {
        "retry_after": "seconds for retry-after / retry-after-ms (default 1)",
        "kind": "429 body type: requests (default) | tokens",
        "n": "only the first N requests since the behaviour was set are rate limited (default: all)",
    },
    "quota": {},
    "overloaded": {},
    "server_error": {},
    "failing_once": {},
    "failing_n": {"n": "number of leading 500s since the behaviour was set (default 1)"},
    "reset": {},
    "no_response": {"delay": "seconds to hold the connection before closing it (default 30, max 600)"},
    "slow_first_token": {"delay": "seconds before the first token (default 1)"},
    "stream_cut": {"after": "content pieces sent before the TCP abort (default 3)"},
    "stream_error": {"after": "content pieces before the in-band error (default 3)"},
    "stream_stall": {
        "after": "content pieces before the stall (default 3)",
        "delay": "stall seconds (default 30, max 600)",
    },
    "malformed_chunk": {"after": "content pieces before the bad line (default 3)"},
    "garbage": {"after": "content pieces before 20 malformed lines (default 3)"},
    "missing_done": {},
    "context_exceeded": {},
    "content_filter": {},
    "invalid_prompt": {},
    # Continuations (a request that ends with the answer so far, as a prefill or followed by the gateway's
    # continue instruction); other requests are answered normally.
    "restart_on_continue": {},
    "restart_different": {},
    "repeat_tail": {},
    "reject_prefill": {},
    "hang": {"delay": "seconds to hold the request without a byte (default 600, the maximum)"},
    "trickle": {"delay": "seconds between single bytes of the answer (default 1)"},
    "tool_cut": {"after": "tool-call argument pieces (4 characters each) sent before the TCP abort (default 0)"},
    "flap": {"down": "answer 503 for this long after the behaviour was set (e.g. 6s), then healthy (default 5s)"},
}

VALID_FLAVORS = ("openai", "vllm", "vllm_legacy", "ollama", "groq")


@dataclass(frozen=True)
class Behaviour:
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    @property
    def flavor(self) -> str:
        return self.params.get("flavor", "openai")

    def spec(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params.items())

    def to_json(self) -> dict[str, Any]:
        return {"behaviour": self.name, "params": dict(self.params), "spec": self.spec()}


HEALTHY = Behaviour("healthy", {})


def _coerce(value: str) -> Any:
    v = value.strip()
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return value


def make_behaviour(name: str, params: dict[str, Any] | None = None) -> Behaviour:
    """Validate a behaviour name and its params (ValueError on unknown ones)."""
    name = (name or "").strip()
    if name not in BEHAVIOURS:
        raise ValueError(
            f"unknown emulator behaviour {name!r}; valid names: {', '.join(BEHAVIOURS)}"
        )
    params = dict(params or {})
    allowed = BEHAVIOURS[name].keys() | COMMON_PARAMS.keys()
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for behaviour {name!r}; valid: {sorted(allowed)}"
        )
    flavor = params.get("flavor", "openai")
    if flavor not in VALID_FLAVORS:
        raise ValueError(f"unknown flavor {flavor!r}; valid flavors: {', '.join(VALID_FLAVORS)}")
    return Behaviour(name, params)


def parse_behaviour(spec: str) -> Behaviour:
    """Parse ``name[:k=v,k=v]`` into a :class:`Behaviour` (ValueError if invalid)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty behaviour spec; valid names: {', '.join(BEHAVIOURS)}")
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    if rest.strip():
        for item in rest.split(","):
            if not item.strip():
                continue
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"bad behaviour parameter {item!r} in {spec!r} (want key=value)")
            params[key.strip()] = _coerce(value)
    return make_behaviour(name, params)

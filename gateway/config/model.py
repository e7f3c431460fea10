"""The declared config: what admins write in ``config/gateway.yaml``.

Every model forbids unknown fields and is frozen. Cross-references (route -> model -> provider) are checked
in ``gateway.config.loader`` so that each error can name its dotted path. Provider kinds are a discriminated
set of classes, one per wire format, registered in ``PROVIDER_CONFIGS``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config.durations import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    connect: Duration = 5.0
    first_token: Duration = 30.0
    idle: Duration = 30.0
    total: Duration = 300.0


class ProviderBase(_Strict):
    kind: str
    base_url: str
    api_key: str | None = Field(default=None, repr=False)
    vendor: str = "unknown"
    jurisdiction: str = "unknown"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeouts: Timeouts | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http(s) URL, got {v!r}")
        return v.rstrip("/")


class OpenAIProvider(ProviderBase):
    """OpenAI and any OpenAI-compatible server (vLLM, Ollama, LM Studio, Together, Groq)."""

    kind: Literal["openai"]


PROVIDER_CONFIGS: dict[str, type[ProviderBase]] = {
    "openai": OpenAIProvider,
}


class ModelConfig(_Strict):
    provider: str
    model: str
    context_window: int = Field(default=128000, gt=0)
    supports_tools: bool = True
    # Whether the model accepts an assistant message as the last turn (prefill). None: the provider kind's default.
    prefill: bool | None = None


class RouteConfig(_Strict):
    models: list[str] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    match: list[str] = Field(default_factory=list)
    description: str = ""


class Backoff(_Strict):
    initial: Duration = 0.1
    max: Duration = 2.0


class BreakerConfig(_Strict):
    failures: int = Field(default=3, ge=1)
    cooldown: Duration = 30.0


class FailoverConfig(_Strict):
    retries: int = Field(default=1, ge=0, le=10)
    backoff: Backoff = Backoff()
    breaker: BreakerConfig = BreakerConfig()
    withdrawn_recheck: Duration = 900.0
    timeouts: Timeouts = Timeouts()


class KeyConfig(_Strict):
    name: str = Field(min_length=1)
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError("must be the 64-hex-digit sha256 of the key (see `gateway keys hash`)")
        return v.lower()


class Limits(_Strict):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)


class GatewayConfig(_Strict):
    providers: dict[str, dict] = Field(min_length=1)  # validated per kind by the loader
    models: dict[str, ModelConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(min_length=1)
    default_route: str | None = None
    failover: FailoverConfig = FailoverConfig()
    keys: list[KeyConfig] | None = None
    limits: Limits = Limits()

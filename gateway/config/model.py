"""The declared config: what admins write in ``config/gateway.yaml``.

Every model forbids unknown fields and is frozen. Cross-references (route -> model -> provider) are checked
in ``gateway.config.loader`` so that each error can name its dotted path. Provider kinds are a discriminated
set of classes, one per wire format, registered in ``PROVIDER_CONFIGS``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    base_url: str = ""  # each kind has a default where the vendor has one public endpoint
    api_key: str | None = Field(default=None, repr=False)
    vendor: str = "unknown"
    jurisdiction: str = "unknown"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeouts: Timeouts | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http(s) URL, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _default_url(self) -> ProviderBase:
        if not self.base_url:
            default = self.default_base_url()
            if not default:
                raise ValueError("base_url: required for this provider kind")
            object.__setattr__(self, "base_url", default)
        return self

    def default_base_url(self) -> str:
        return ""


class OpenAIProvider(ProviderBase):
    """OpenAI and any OpenAI-compatible server (vLLM, Ollama, LM Studio, Together, Groq)."""

    kind: Literal["openai"]

    def default_base_url(self) -> str:
        return "https://api.openai.com/v1"


class AnthropicProvider(ProviderBase):
    """Anthropic Messages API (``x-api-key`` + ``anthropic-version``)."""

    kind: Literal["anthropic"]
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = Field(default=4096, gt=0)  # Anthropic requires max_tokens; used when absent

    def default_base_url(self) -> str:
        return "https://api.anthropic.com"


class GeminiProvider(ProviderBase):
    """Google Gemini API (generativelanguage), ``x-goog-api-key``."""

    kind: Literal["gemini"]
    api_version: str = "v1beta"

    def default_base_url(self) -> str:
        return "https://generativelanguage.googleapis.com"


class AzureOpenAIProvider(ProviderBase):
    """Azure OpenAI. ``base_url`` is the resource endpoint (``https://NAME.openai.azure.com``); a model's
    ``model`` is the deployment name. ``api_style: deployments`` uses
    ``/openai/deployments/{deployment}/chat/completions?api-version=...``; ``v1`` uses ``/openai/v1/chat/completions``.
    """

    kind: Literal["azure-openai"]
    api_version: str = "2024-10-21"
    api_style: Literal["deployments", "v1"] = "deployments"


class BedrockProvider(ProviderBase):
    """AWS Bedrock Converse / ConverseStream, SigV4-signed with credentials from the usual AWS environment or
    profile (needs the ``bedrock`` extra: botocore). ``api_key`` (a Bedrock API key) is sent as a Bearer token
    instead when set."""

    kind: Literal["bedrock"]
    region: str = "us-east-1"
    aws_profile: str | None = None

    def default_base_url(self) -> str:
        return f"https://bedrock-runtime.{self.region}.amazonaws.com"


PROVIDER_CONFIGS: dict[str, type[ProviderBase]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "azure-openai": AzureOpenAIProvider,
    "bedrock": BedrockProvider,
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

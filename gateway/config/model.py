"""The declared config: what admins write in ``config/gateway.yaml``.

Every model forbids unknown fields and is frozen. Cross-references (route -> model -> provider) are checked
in ``gateway.config.loader`` so that each error can name its dotted path. Provider kinds are a discriminated
set of classes, one per wire format, registered in ``PROVIDER_CONFIGS``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from gateway.config.durations import Duration

# A timeout of 0 passes as a duration but makes every request fail at once (deadline reached, instant stall).
PositiveDuration = Annotated[Duration, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Strict):
    connect: PositiveDuration = 5.0
    first_token: PositiveDuration = 30.0
    idle: PositiveDuration = 30.0
    total: PositiveDuration = 300.0


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
    # The provider's models have structured outputs (output_config.format): a json_schema response_format is sent
    # natively; off, it is enforced with a forced tool (works on every model).
    structured_outputs: bool = False

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


CAPABILITIES = ("tools", "json_schema", "n", "logprobs", "vision", "prefill")


class ModelSupports(_Strict):
    """What a model can do; unset (None) = the provider kind's default (``gateway.runtime.CAPABILITY_DEFAULTS``).
    A request that needs a capability a model lacks skips the model (``skipped:unsupported:<param>``)."""

    tools: bool | None = None
    json_schema: bool | None = None  # response_format json_object / json_schema, enforced by the provider
    n: bool | None = None  # n > 1 choices
    logprobs: bool | None = None
    vision: bool | None = None  # image parts in messages
    prefill: bool | None = None  # accepts a trailing assistant turn (used to continue a cut stream)


class ModelConfig(_Strict):
    provider: str
    model: str
    context_window: int = Field(default=128000, gt=0)
    supports: ModelSupports = ModelSupports()
    # Deprecated spellings of supports.tools / supports.prefill, still accepted (folded into ``supports``).
    supports_tools: bool | None = None
    prefill: bool | None = None
    # ``embeddings``: an embedding model (``POST /v1/embeddings``), which must declare the length of its vectors
    # in ``dimensions``; it can only be listed on routes of ``kind: embeddings``.
    kind: Literal["chat", "embeddings"] = "chat"
    dimensions: int | None = Field(default=None, gt=0, le=65536)
    # Send ``dimensions`` upstream (OpenAI ``dimensions``, Gemini ``outputDimensionality``, Titan ``dimensions``,
    # Cohere ``output_dimension``) for models that shorten their vectors on request; off: the model's own length.
    send_dimensions: bool = False

    @model_validator(mode="after")
    def _embedding_dimensions(self) -> ModelConfig:
        if self.kind == "embeddings" and self.dimensions is None:
            raise ValueError("dimensions: required for an embedding model (the length of its vectors)")
        if self.kind == "chat" and (self.dimensions is not None or self.send_dimensions):
            raise ValueError("dimensions: only for embedding models (set kind: embeddings)")
        return self

    @model_validator(mode="after")
    def _fold_legacy(self) -> ModelConfig:
        for old, new in (("supports_tools", "tools"), ("prefill", "prefill")):
            value = getattr(self, old)
            if value is None:
                continue
            declared = getattr(self.supports, new)
            if declared is not None and declared != value:
                raise ValueError(f"{old}: contradicts supports.{new}; keep only supports.{new}")
            object.__setattr__(self, "supports", self.supports.model_copy(update={new: value}))
        return self


class RouteTimeouts(_Strict):
    """Per-route overrides of ``failover.timeouts`` (unset fields keep the global value)."""

    first_token: PositiveDuration | None = None
    idle: PositiveDuration | None = None
    total: PositiveDuration | None = None


class SingleVendorOk(_Strict):
    """A route's declared exception to ``gateway check --strict`` (no fallback from another vendor/jurisdiction):
    who owns that risk and why it is accepted."""

    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class ClassifyConfig(_Strict):
    """A route's examples for the task classifier (``model: auto`` requests): a builtin corpus task, literal
    ``examples`` and/or an ``examples_file`` (YAML list, JSON Lines or one prompt per line; relative to the
    config file), and the score (0..1) the route needs to win."""

    builtin: Literal["security-review", "general"] | None = None
    examples: list[str] = Field(default_factory=list)
    examples_file: str | None = None
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    _file_examples: tuple[str, ...] = PrivateAttr(default=())  # read by the loader (re-read on every reload)

    @model_validator(mode="after")
    def _some(self) -> ClassifyConfig:
        if self.builtin is None and not self.examples and not self.examples_file:
            raise ValueError("classify needs builtin, examples or examples_file")
        if any(not e.strip() for e in self.examples):
            raise ValueError("examples: every example must be a non-empty string")
        return self


class EmbeddingConfig(_Strict):
    """The embedding engine's model files. Unset paths mean the files of the ``semantic`` extra's packages,
    checked against pinned sha256s; a configured path needs its sha256."""

    model: str | None = None
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    tokenizer: str | None = None
    tokenizer_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    # The first max_tokens WordPiece tokens are embedded (cost grows with it: ~12 ms at 32, ~45 ms at 128 on one
    # shared core); code further on is still seen by the code signals, computed over the whole (max_chars) text.
    max_tokens: int = Field(default=32, ge=8, le=512)


class ClassifierConfig(_Strict):
    """How routes' ``classify`` examples are matched: ``builtin`` (no model file) or ``embedding`` (ONNX)."""

    engine: Literal["builtin", "embedding"] = "builtin"
    max_chars: int = Field(default=4000, ge=64, le=100000)  # head and tail of longer prompts are kept
    embedding: EmbeddingConfig = EmbeddingConfig()


class RouteConfig(_Strict):
    models: list[str] = Field(min_length=1)
    # ``chat`` routes serve /v1/chat/completions; ``embeddings`` routes serve /v1/embeddings and list only
    # embedding models (failover moves only between models of the same ``dimensions``).
    kind: Literal["chat", "embeddings"] = "chat"
    aliases: list[str] = Field(default_factory=list)
    match: list[str] = Field(default_factory=list)
    description: str = ""
    # What a provider refusal / safety block (policy_blocked, or a 200 with finish_reason content_filter) does:
    # ``return`` it to the caller as a direct call would (default), or ``failover`` to the next model (or to
    # ``refusal_fallbacks`` when set). Either way it is counted and recorded on the attempt list.
    on_refusal: Literal["return", "failover"] = "return"
    refusal_fallbacks: list[str] = Field(default_factory=list)
    single_vendor_ok: SingleVendorOk | None = None  # waives the strict check's vendor/jurisdiction diversity rule
    # A committed stream that is cut (drop, in-band error, stall, undecodable bytes, end without end marker):
    # ``continue`` the same answer on the next model of the chain, or end it with an in-band ``error`` event.
    on_stream_cut: Literal["continue", "error"] = "continue"
    timeouts: RouteTimeouts | None = None  # per-route overrides of failover.timeouts
    classify: ClassifyConfig | None = None  # task classifier examples for `auto` requests


class Backoff(_Strict):
    initial: Duration = 0.1
    max: Duration = 2.0


class BreakerConfig(_Strict):
    failures: int = Field(default=3, ge=1)
    cooldown: PositiveDuration = 5.0  # the first opening; each consecutive re-opening doubles it
    max_cooldown: PositiveDuration = 300.0

    @model_validator(mode="after")
    def _ordered(self) -> BreakerConfig:
        if self.max_cooldown < self.cooldown:
            raise ValueError("max_cooldown: must be at least breaker.cooldown")
        return self


class FailoverConfig(_Strict):
    retries: int = Field(default=1, ge=0, le=10)
    # A 429 whose Retry-After is at most this (and fits the deadline) is waited out and the same model retried
    # once; longer or absent: the next model at once. 0 turns the wait off.
    rate_limit_wait: Duration = 2.0
    # How a non-streaming request is sent upstream. ``stream``: as a stream, assembled into one answer, so
    # first_token/idle protect it like a stream (a hung or trickling upstream is abandoned and failed over).
    # ``direct``: one request/response (less CPU per request; only ``timeouts.total`` bounds a hung upstream).
    non_streaming: Literal["stream", "direct"] = "stream"
    backoff: Backoff = Backoff()
    breaker: BreakerConfig = BreakerConfig()
    withdrawn_recheck: Duration = 900.0
    timeouts: Timeouts = Timeouts()


_NAME = r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}"


def _sha256_hex(v: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", v):
        raise ValueError("must be the 64-hex-digit sha256 of the key (see `gateway keys hash`)")
    return v.lower()


def _str_list(v: object) -> object:
    """``jurisdiction: US`` is accepted as ``jurisdiction: [US]``."""
    return [v] if isinstance(v, (str, int, float)) and not isinstance(v, bool) else v


class KeyConfig(_Strict):
    """A gateway (client) key: who the caller is, what it may use, how fast."""

    name: str = Field(min_length=1)
    sha256: str
    # Free-form caller attributes that policies test, e.g. {team: appsec, jurisdiction: US, site: berlin}.
    attributes: dict[str, str] = Field(default_factory=dict)
    routes: list[str] | None = None  # route names or aliases this key may use; None = all
    models: list[str] | None = None  # models that may serve this key; None = all
    rate_limit: int | None = Field(default=None, gt=0)  # requests per minute; 429 with Retry-After beyond it

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        return _sha256_hex(v)

    @field_validator("attributes", mode="before")
    @classmethod
    def _attrs(cls, v: object) -> object:
        if isinstance(v, dict):
            return {k: str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for k, x in v.items()}
        return v


class AdminKeyConfig(_Strict):
    """A key for the ``/admin/`` API. Never valid for ``/v1/``; client keys are never valid here."""

    name: str = Field(min_length=1)
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        return _sha256_hex(v)


class PolicyDeny(_Strict):
    models: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    vendors: list[str] = Field(default_factory=list)
    jurisdictions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> PolicyDeny:
        if not (self.models or self.providers or self.vendors or self.jurisdictions):
            raise ValueError("deny must name at least one of models, providers, vendors, jurisdictions")
        return self


Condition = dict[str, list[str]]


class PolicyConfig(_Strict):
    """Deny models to callers. Applies to a caller when every attribute in ``when`` matches (absent = all
    callers) and not every attribute in ``unless`` matches. A caller lacking an attribute does not match it."""

    name: str = Field(pattern=f"^{_NAME}$")
    deny: PolicyDeny
    when: Condition | None = None
    unless: Condition | None = None
    reason: str = Field(min_length=1)

    @field_validator("when", "unless", mode="before")
    @classmethod
    def _cond(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        out = {}
        for k, x in v.items():
            x = _str_list(x)
            out[k] = [str(i) for i in x] if isinstance(x, list) else x
        return out

    @field_validator("when", "unless")
    @classmethod
    def _cond_not_empty(cls, v: Condition | None) -> Condition | None:
        # An empty condition would silently make the rule apply to everyone (when) or to no one (unless), and an
        # empty value list can match no caller: both are almost certainly typos, and one of them fails open.
        if v is not None:
            if not v:
                raise ValueError("must name at least one attribute (omit it to apply the rule to every caller)")
            for k, vals in v.items():
                if not vals:
                    raise ValueError(f"{k}: must list at least one accepted value")
        return v


class AuthConfig(_Strict):
    """Authentication turned off *on purpose*. A reload that would leave no client keys (or no admin keys) while
    the running config has some is rejected unless the new file says so here: a truncated or half-written file
    must not open the gateway (gateway/admin/reload.py)."""

    enabled: bool = True  # false: no client authentication (then ``keys`` must be absent)
    admin: bool = True  # false: no admin API (then ``admin_keys`` must be empty)


class ReloadConfig(_Strict):
    watch: bool = True  # reload when the config file changes
    debounce: Duration = 0.3


class Limits(_Strict):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)


class AuditConfig(_Strict):
    """The audit log: one record per request (never prompt or completion text; ``store_prompt_hash`` opts in to a
    sha256 of the prompt). ``path`` is relative to the config file's directory; unset, the log is
    ``audit.sqlite`` in the state directory (see ``gateway.config.paths``)."""

    enabled: bool = True
    path: str | None = None
    retention: Duration = 30 * 86400.0
    queue_size: int = Field(default=10000, gt=0)
    store_prompt_hash: bool = False


class StateConfig(_Strict):
    """Live state shared by every worker and replica (breakers, cooldowns, withdrawn marks, rate-limit buckets,
    kill-switch propagation). ``memory`` (default): this process only. ``redis``: one Redis for the fleet."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(default=None, repr=False)  # redis://[:password@]host:port/db (may carry a secret)
    key_prefix: str = Field(default="gateway:", min_length=1, max_length=100)
    ack_timeout: PositiveDuration = 2.0  # how long an admin change waits for every live worker to apply it

    @model_validator(mode="after")
    def _url_for_redis(self) -> StateConfig:
        if self.backend == "redis":
            if not self.url:
                raise ValueError("url: required when backend is redis (redis://host:6379/0)")
            if not re.match(r"^(redis|rediss|unix)://", self.url):
                raise ValueError("url: must start with redis://, rediss:// or unix://")
        return self


class StoreConfig(_Strict):
    """Durable records (operator withdrawals, drills, their event log, the audit log). ``sqlite`` (default): files
    in ``state_dir``, for one host. ``postgres``: one database for a fleet of replicas."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    url: str | None = Field(default=None, repr=False)  # postgresql://user:password@host:5432/db

    @model_validator(mode="after")
    def _url_for_postgres(self) -> StoreConfig:
        if self.backend == "postgres":
            if not self.url:
                raise ValueError("url: required when backend is postgres (postgresql://user@host:5432/db)")
            if not re.match(r"^postgres(ql)?://", self.url):
                raise ValueError("url: must start with postgresql:// or postgres://")
        return self


class AdminConfig(_Strict):
    """``admin.session_secret``: signs status-page sessions, so that a session is valid on every worker and replica
    and survives a restart (unset: a random secret per process). Give it as ``${ENV}``; at least 16 characters."""

    session_secret: str | None = Field(default=None, min_length=16, repr=False)
class ResponsesStoreConfig(_Strict):
    """The Responses API's in-memory store of answers (``store``, ``previous_response_id``, ``item_reference``):
    per process, never on disk. ``max_responses: 0`` turns it off (``store: true`` is then ignored and a reference
    is a 400)."""

    max_responses: int = Field(default=1000, ge=0)
    max_mb: float = Field(default=32, gt=0)
    ttl: PositiveDuration = 3600.0


class GatewayConfig(_Strict):
    providers: dict[str, Any] = Field(min_length=1)  # validated per kind by the loader (ProviderBase after it)
    models: dict[str, ModelConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(min_length=1)
    default_route: str | None = None
    failover: FailoverConfig = FailoverConfig()
    keys: list[KeyConfig] | None = None
    admin_keys: list[AdminKeyConfig] = Field(default_factory=list)
    auth: AuthConfig = AuthConfig()
    policies: list[PolicyConfig] = Field(default_factory=list)
    limits: Limits = Limits()
    # Where operator withdrawals (SQLite, ``withdrawals.sqlite``) live. Relative paths are relative to the config
    # file's directory; default ``state/`` next to the config file. Read at startup only.
    state_dir: str | None = None
    reload: ReloadConfig = ReloadConfig()
    audit: AuditConfig = AuditConfig()
    state: StateConfig = StateConfig()
    store: StoreConfig = StoreConfig()
    admin: AdminConfig = AdminConfig()
    responses_store: ResponsesStoreConfig = ResponsesStoreConfig()
    classifier: ClassifierConfig = ClassifierConfig()

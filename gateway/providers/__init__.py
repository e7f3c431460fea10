"""Provider wire formats, one module each. ``ADAPTERS`` maps a config ``kind`` to ``module:Class``, imported on
first use (uvicorn's pattern), so a kind's optional dependencies (botocore for Bedrock) load only if used."""

from __future__ import annotations

import importlib
from typing import Any

ADAPTERS: dict[str, str] = {
    "openai": "gateway.providers.openai:OpenAIAdapter",
    "anthropic": "gateway.providers.anthropic:AnthropicAdapter",
    "gemini": "gateway.providers.gemini:GeminiAdapter",
    "azure-openai": "gateway.providers.azure:AzureOpenAIAdapter",
    "bedrock": "gateway.providers.bedrock:BedrockAdapter",
}


def adapter_class(kind: str) -> Any:
    module, _, name = ADAPTERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)

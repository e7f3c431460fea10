"""One gateway config with every provider kind on the emulator, for the inbound-dialect tests: for each kind a
route ``<kind>-first`` (that kind's model, then the OpenAI-kind ``gpt-5``), and ``claude-code`` for the Claude
Code replay (Anthropic primary, OpenAI-kind fallback)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import base_config

BEDROCK_ID = "anthropic.claude-3-haiku-20240307-v1:0"
# route -> (gateway model name, the model name the emulator answers with)
KINDS = {
    "anthropic-first": ("claude", "claude-sonnet-emu"),
    "openai-first": ("gpt-5", "gpt-5"),
    "gemini-first": ("gemini-2.5-pro", "gemini-2.5-pro"),
    "azure-first": ("az-4o", "az-4o-deploy"),
    "bedrock-first": ("claude-bedrock", BEDROCK_ID),
}


def dialect_config(emu_url: str, **overrides: Any) -> dict[str, Any]:
    cfg = base_config(emu_url)
    cfg["providers"].update({
        "anthropic": {"kind": "anthropic", "base_url": emu_url, "api_key": "sk-ant-provider-secret-1",
                      "vendor": "Anthropic", "jurisdiction": "US", "default_max_tokens": 512},
        "google": {"kind": "gemini", "base_url": emu_url, "api_key": "AIza-provider-gemini-secret-1234",
                   "vendor": "Google", "jurisdiction": "US"},
        "azure": {"kind": "azure-openai", "base_url": emu_url, "api_key": "azure-provider-secret-0123456789",
                  "api_style": "deployments", "vendor": "Microsoft", "jurisdiction": "US"},
        "aws": {"kind": "bedrock", "base_url": emu_url, "region": "us-east-1", "vendor": "Anthropic",
                "jurisdiction": "US"},
    })
    cfg["models"].update({
        "claude": {"provider": "anthropic", "model": "claude-sonnet-emu", "context_window": 100000},
        "gemini-2.5-pro": {"provider": "google", "model": "gemini-2.5-pro", "context_window": 100000},
        "az-4o": {"provider": "azure", "model": "az-4o-deploy", "context_window": 100000},
        "claude-bedrock": {"provider": "aws", "model": BEDROCK_ID, "context_window": 100000},
    })
    cfg["models"]["gpt-5"]["context_window"] = 100000
    for route, (model, _) in KINDS.items():
        cfg["routes"][route] = {"models": [model] if model == "gpt-5" else [model, "gpt-5"]}
    cfg["routes"]["claude-code"] = {"models": ["claude", "gpt-5"],
                                    "aliases": ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]}
    cfg.update(overrides)
    return cfg


@contextlib.contextmanager
def aws_credentials() -> Iterator[None]:
    """Example AWS credentials for the Bedrock provider (checked when the gateway starts)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        yield

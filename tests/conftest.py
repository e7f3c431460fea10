"""Shared fixtures: a provider emulator on loopback and a factory for real gateways in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.emulator.runner import EmulatorThread
from gateway.testing import GatewayThread

GATEWAY_KEY = "gw-test-key-0123456789"


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emu:
        yield emu


@pytest.fixture
def emu(emulator: EmulatorThread) -> Iterator[EmulatorThread]:
    """The session's emulator, reset to all-healthy with an empty attempt log for each test."""
    emulator.state.reset()
    yield emulator
    emulator.state.reset()


def base_config(emu_url: str, **overrides: Any) -> dict[str, Any]:
    """Three OpenAI-kind 'vendors' on the emulator, a security route and a general route."""
    cfg: dict[str, Any] = {
        "providers": {
            "vendor-a": {"kind": "openai", "base_url": emu_url + "/v1", "api_key": "sk-provider-a-secret-123456",
                         "vendor": "VendorA", "jurisdiction": "US"},
            "vendor-b": {"kind": "openai", "base_url": emu_url + "/v1", "api_key": "sk-provider-b-secret-123456",
                         "vendor": "VendorB", "jurisdiction": "US"},
            "onprem": {"kind": "openai", "base_url": emu_url + "/v1", "api_key": "local-vllm-key", "vendor": "self-hosted",
                       "jurisdiction": "self"},
        },
        "models": {
            "fable-5": {"provider": "vendor-a", "model": "fable-5", "context_window": 200},
            "gpt-5": {"provider": "vendor-b", "model": "gpt-5", "context_window": 400},
            "qwen-coder": {"provider": "onprem", "model": "qwen-coder", "context_window": 100},
        },
        "routes": {
            "security-review": {
                "models": ["fable-5", "gpt-5", "qwen-coder"],
                "aliases": ["security"],
                "match": [r"(?i)\b(security review|vulnerab\w*|exploit\w*|CVE-\d{4}-\d+|injection|XSS)\b"],
            },
            "general": {"models": ["gpt-5", "qwen-coder"]},
        },
        "default_route": "general",
        "failover": {
            "retries": 1,
            "backoff": {"initial": "10ms", "max": "50ms"},
            "breaker": {"failures": 3, "cooldown": "30s"},
            "withdrawn_recheck": "15m",
            "timeouts": {"connect": "2s", "first_token": "2s", "idle": "2s", "total": "10s"},
        },
        "keys": [{"name": "tests", "sha256": _sha(GATEWAY_KEY)}],
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.fixture
def make_gateway(tmp_path: Any) -> Iterator[Callable[..., GatewayThread]]:
    started: list[GatewayThread] = []

    def factory(config: dict[str, Any], **kwargs: Any) -> GatewayThread:
        gw = GatewayThread(config, tmp_path, **kwargs).start()
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        gw.stop()


@pytest.fixture
def client_for() -> Callable[..., Any]:
    import openai

    def make(gw: GatewayThread, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=gw.url + "/v1", api_key=kwargs.pop("api_key", GATEWAY_KEY), max_retries=0,
                             timeout=kwargs.pop("timeout", 15), **kwargs)

    return make



def fuzz_examples(default: int) -> int:
    """Example count for a property/fuzz test: its bounded ``default`` in ``make test``; ``make fuzz`` sets
    GATEWAY_FUZZ_SCALE (e.g. 100) for a long campaign."""
    import os

    return default * max(1, int(os.environ.get("GATEWAY_FUZZ_SCALE") or 1))

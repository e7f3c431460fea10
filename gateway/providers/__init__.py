"""Provider wire formats, one module each. ``ADAPTERS`` maps a config ``kind`` to its adapter class."""

from __future__ import annotations

from gateway.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, type] = {
    "openai": OpenAIAdapter,
}

"""The fleet's config sections (state, store, admin.session_secret): strict, with dotted-path errors; their
secrets are masked like provider keys."""

from __future__ import annotations

import pytest

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from gateway.runtime import build_runtime

BASE = """
providers: {a: {kind: openai, base_url: "http://x/v1", api_key: sk-provider-key}}
models: {m: {provider: a, model: m}}
routes: {r: {models: [m]}}
"""


def _errors(extra: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_config_text(BASE + extra, "g.yaml")
    return str(e.value)


@pytest.mark.parametrize("extra,expected", [
    ("state: {backend: redis}", "state: url: required when backend is redis"),
    ("state: {backend: redis, url: 'http://x'}", "state: url: must start with redis://"),
    ("state: {backend: etcd}", "state.backend"),
    ("state: {backend: memory, extra: 1}", "state.extra"),
    ("store: {backend: postgres}", "store: url: required when backend is postgres"),
    ("store: {backend: postgres, url: 'mysql://x'}", "store: url: must start with postgresql://"),
    ("admin: {session_secret: short}", "admin.session_secret"),
])
def test_bad_fleet_sections_are_config_errors_naming_the_field(extra, expected):
    assert expected in _errors(extra)


def test_defaults_are_one_process_and_fleet_secrets_are_masked():
    cfg = load_config_text(BASE, "g.yaml")
    assert cfg.state.backend == "memory" and cfg.store.backend == "sqlite" and cfg.admin.session_secret is None
    cfg = load_config_text(BASE + """
state: {backend: redis, url: "redis://:redis-pass-123@r:6379/0"}
store: {backend: postgres, url: "postgresql://gw:pg-pass-456@db/gw"}
admin: {session_secret: "a-long-session-secret-789"}
""", "g.yaml")
    secrets = build_runtime(cfg, b"x").secrets
    assert {"redis-pass-123", "pg-pass-456", "a-long-session-secret-789"} <= set(secrets)
    assert "redis-pass-123" not in repr(cfg) and "pg-pass-456" not in repr(cfg)

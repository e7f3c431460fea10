"""Config validation: every bad field is reported with its file and dotted path; `gateway check` agrees."""

from __future__ import annotations

import pytest

from gateway.cli import main as cli_main
from gateway.config.durations import parse_duration
from gateway.config.loader import load_config, parse_config
from gateway.errors import ConfigError
from tests.conftest import base_config

GOOD = {
    "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "${KEY}"}},
    "models": {"m1": {"provider": "p", "model": "x"}, "m2": {"provider": "p", "model": "y"}},
    "routes": {"r": {"models": ["m1", "m2"], "aliases": ["rr"], "match": ["(?i)security"]}},
    "default_route": "r",
}


def _errors(data, env=None) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "g.yaml", env if env is not None else {"KEY": "k"})
    return ei.value.errors


def _with(path: str, value):
    import copy

    data = copy.deepcopy(GOOD)
    node = data
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return data


def test_good_config_parses_and_resolves_env():
    cfg = parse_config(GOOD, "g.yaml", {"KEY": "secret-value"})
    assert cfg.providers["p"].api_key == "secret-value"
    assert cfg.failover.timeouts.first_token == 30.0


@pytest.mark.parametrize(
    "path,value,expected",
    [
        ("routes.r.models", ["m1", "gpt5"], "g.yaml: routes.r.models[1]: unknown model 'gpt5'"),
        ("routes.r.match", ["("], "g.yaml: routes.r.match[0]: invalid regular expression '('"),
        ("routes.r.bogus", 1, "g.yaml: routes.r.bogus: unknown field"),
        ("routes.r.models", [], "g.yaml: routes.r.models: List should have at least 1 item"),
        ("models.m1.provider", "nope", "g.yaml: models.m1.provider: unknown provider 'nope'"),
        ("models.m1.context_window", "big", "g.yaml: models.m1.context_window: Input should be a valid integer"),
        ("providers.p.kind", "openia", "g.yaml: providers.p.kind: unknown provider kind 'openia'"),
        ("providers.p.base_url", "ftp://x", "g.yaml: providers.p.base_url: must be an http(s) URL"),
        ("providers.p.extra", True, "g.yaml: providers.p.extra: unknown field"),
        ("failover.backoff", {"initial": "5 parsecs"}, "g.yaml: failover.backoff.initial: invalid duration"),
        ("failover.timeouts", {"idle": "-"}, "g.yaml: failover.timeouts.idle: invalid duration"),
        ("failover.retries", -1, "g.yaml: failover.retries: Input should be greater than or equal to 0"),
        ("default_route", "nope", "g.yaml: default_route: unknown route 'nope'"),
        ("keys", [{"name": "a", "sha256": "abc"}], "g.yaml: keys[0].sha256: must be the 64-hex-digit sha256"),
        ("routes.r.aliases", ["m1"], "g.yaml: routes.r.aliases[0]: alias 'm1' is also a model name"),
        ("unknown_top", 1, "g.yaml: unknown_top: unknown field"),
    ],
)
def test_each_error_names_its_dotted_path(path, value, expected):
    errors = _errors(_with(path, value))
    assert any(e.startswith(expected) for e in errors), errors


def test_missing_env_secret_is_a_config_error():
    errors = _errors(GOOD, env={})
    assert errors == ["g.yaml: providers.p.api_key: environment variable KEY is not set"]


def test_all_errors_are_reported_at_once():
    data = _with("routes.r.models", ["nope"])
    data["providers"]["p"]["bogus"] = 1
    errors = _errors(data)
    assert len(errors) == 2


def _base(**over):
    return base_config("http://127.0.0.1:1", **over)


@pytest.mark.parametrize("field", ["connect", "first_token", "idle", "total"])
def test_zero_timeouts_are_config_errors(field):
    cfg = _base()
    cfg["failover"]["timeouts"][field] = 0
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert f"failover.timeouts.{field}" in str(e.value)
    cfg = _base()
    cfg["routes"]["general"]["timeouts"] = {"total": 0} if field == "total" else {"idle": "0s"}
    with pytest.raises(ConfigError):
        parse_config(cfg)


def test_the_same_admin_key_listed_twice_is_a_config_error():
    h = "a" * 64
    cfg = _base(admin_keys=[{"name": "ops", "sha256": h}, {"name": "ops2", "sha256": h}])
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert "admin_keys[1].sha256" in str(e.value)


def test_auth_off_on_purpose_conflicts_with_configured_keys():
    h = "b" * 64
    with pytest.raises(ConfigError) as e:
        parse_config(_base(auth={"enabled": False}))
    assert "auth.enabled" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config(_base(auth={"admin": False}, admin_keys=[{"name": "ops", "sha256": h}]))
    assert "auth.admin" in str(e.value)
    cfg = _base(auth={"enabled": False})
    del cfg["keys"]
    assert parse_config(cfg).keys is None


def test_yaml_syntax_and_duplicate_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  p: {kind: openai\n")
    with pytest.raises(ConfigError) as ei:
        load_config(bad)
    assert "invalid YAML" in str(ei.value) and "line" in str(ei.value)
    dup = tmp_path / "dup.yaml"
    dup.write_text("routes: {}\nroutes: {}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(dup)
    assert "duplicate key 'routes'" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read" in str(ei.value)


def test_gateway_check_cli(tmp_path, capsys, monkeypatch):
    import yaml

    monkeypatch.setenv("KEY", "x")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    assert cli_main(["check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with("routes.r.models", ["m1", "gpt5"])))
    assert cli_main(["check", str(bad)]) == 1
    assert "routes.r.models[1]: unknown model 'gpt5'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["config/gateway.yaml", "config/demo.yaml"])
def test_shipped_configs_are_valid(monkeypatch, name):
    """Each shipped config builds into a runtime, resolves its secrets from the environment, turns client
    authentication on, gives every route a fallback, and passes `gateway check --strict` (what `make check` runs)."""
    import hashlib

    from gateway.runtime import build_runtime

    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy-for-the-test")
    monkeypatch.setenv("DEMO_EMULATOR_URL", "http://127.0.0.1:1")
    cfg = load_config(name)
    rt = build_runtime(cfg)
    assert set(rt.adapters) == set(cfg.models) and rt.default_route is not None
    for route in rt.routes.values():
        assert len(route.models) >= 2 and set(route.models) <= set(rt.targets), route.name
    assert rt.keys, "a shipped config must not leave client authentication off"
    assert {"demo"} <= {c.name for c in rt.keys.values()}
    # the documented demo key (README, config comments) is the one configured
    assert hashlib.sha256(b"demo-key-not-secret").hexdigest() in rt.keys
    if name.endswith("gateway.yaml"):
        assert cfg.providers["openai"].api_key == "sk-dummy-for-the-test"
        assert "sk-dummy-for-the-test" in rt.secrets
    else:
        assert all(t.base_url.startswith("http://127.0.0.1:1") for t in rt.targets.values())
        assert len({rt.targets[m].vendor for m in rt.routes["security-review"].models}) >= 3
        assert hashlib.sha256(b"demo-admin-key-not-secret").hexdigest() in rt.admin_keys
    assert cli_main(["check", "--strict", name]) == 0


@pytest.mark.parametrize("text,seconds", [("100ms", 0.1), ("2s", 2), ("15m", 900), ("1h", 3600), ("1m30s", 90),
                                          (5, 5.0), (0.5, 0.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5x", "s", "1.2.3s", -1, True, None])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_route_patterns_must_be_linear_time():
    errors = _errors(_with("routes.r.match", [r"(?<=CVE-)\d+"]))
    assert any(e.startswith("g.yaml: routes.r.match[0]: ") and "linear-time" in e for e in errors), errors


def test_a_pathological_pattern_cannot_stall_routing_on_a_crafted_prompt():
    import threading

    from gateway.routing.select import select_route
    from gateway.runtime import build_runtime

    cfg = parse_config(_with("routes.r.match", [r"(a+)+$"]), "g.yaml", {"KEY": "k"})
    rt = build_runtime(cfg)
    prompt = [{"role": "user", "content": "a" * 40 + "b"}]  # exponential for a backtracking engine
    result: list = []
    t = threading.Thread(target=lambda: result.append(select_route(rt, "auto", None, prompt)), daemon=True)
    t.start()
    t.join(2)
    assert result and result[0].reason == "default"

"""Policy rules and caller keys: config validation (dotted paths) and the pure evaluation."""

from __future__ import annotations

import copy
import hashlib

import pytest

from gateway.config.loader import parse_config
from gateway.errors import ConfigError, GatewayError
from gateway.routing.policy import check_route
from gateway.runtime import build_runtime
from tests.conftest import base_config

SHA = hashlib.sha256(b"k").hexdigest()
SHA2 = hashlib.sha256(b"k2").hexdigest()
GOOD = {
    "providers": {
        "a": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "vendor": "Fable", "jurisdiction": "US"},
        "b": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "vendor": "Other", "jurisdiction": "EU"},
    },
    "models": {"fable-5": {"provider": "a", "model": "f5"}, "mythos-5": {"provider": "a", "model": "m5"},
               "gpt-5": {"provider": "b", "model": "g5"}},
    "routes": {"sec": {"models": ["fable-5", "gpt-5"], "aliases": ["security"]}, "gen": {"models": ["gpt-5"]}},
    "keys": [{"name": "us", "sha256": SHA, "attributes": {"jurisdiction": "US"}},
             {"name": "de", "sha256": SHA2, "attributes": {"jurisdiction": "DE", "site": "berlin"},
              "routes": ["security"], "models": ["gpt-5", "fable-5"], "rate_limit": 10}],
    "policies": [{"name": "export-control-2026-06", "deny": {"models": ["fable-5", "mythos-5"]},
                  "unless": {"jurisdiction": ["US"]}, "reason": "Commerce Department directive of 2026-06-12"}],
    "admin_keys": [{"name": "ops", "sha256": hashlib.sha256(b"admin").hexdigest()}],
}


def _errors(data) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "g.yaml", {})
    return ei.value.errors


def _with(mutate):
    data = copy.deepcopy(GOOD)
    mutate(data)
    return data


def test_good_policy_config_compiles_to_per_caller_denials():
    rt = build_runtime(parse_config(GOOD, "g.yaml", {}), b"t")
    us, de = rt.keys[SHA], rt.keys[SHA2]
    assert us.denials == {}
    assert set(de.denials) == {"fable-5", "mythos-5"}
    assert de.denials["fable-5"].outcome == "denied:export-control-2026-06"
    assert de.routes == frozenset({"sec"}) and de.rate_limit == 10
    assert rt.anonymous.denials["fable-5"].policy == "export-control-2026-06"  # no attribute: fail closed
    assert rt.admin_keys == {hashlib.sha256(b"admin").hexdigest(): "ops"}


def test_key_model_restriction_and_when_condition():
    def mutate(d):
        d["keys"][1]["models"] = ["gpt-5"]
        d["policies"].append({"name": "berlin-only", "deny": {"vendors": ["Other"]}, "when": {"site": "berlin"},
                              "reason": "site rule"})
    rt = build_runtime(parse_config(_with(mutate), "g.yaml", {}), b"t")
    de = rt.keys[SHA2]
    assert de.denials["gpt-5"].policy == "berlin-only"  # a rule beats the key's own restriction
    assert rt.keys[SHA].denials.get("gpt-5") is None
    assert build_runtime(parse_config(_with(lambda d: d["keys"][1].update(models=["fable-5"])), "g.yaml", {}), b"t") \
        .keys[SHA2].denials["gpt-5"].policy == "key-models"


def test_route_restriction():
    rt = build_runtime(parse_config(GOOD, "g.yaml", {}), b"t")
    check_route(rt.keys[SHA2], "sec")
    with pytest.raises(GatewayError) as ei:
        check_route(rt.keys[SHA2], "gen")
    assert ei.value.status == 403 and ei.value.code == "route_not_allowed"


@pytest.mark.parametrize("cond", [
    {"when": {}},                                   # empty: would apply to everyone silently
    {"unless": {}},                                 # empty: would exempt everyone -> denies nothing
    {"when": {"jurisdiction": []}},                 # no value can match -> denies nothing
    {"unless": {"jurisdiction": []}},
])
def test_empty_policy_conditions_are_config_errors(cond):
    pol = {"name": "p", "deny": {"models": ["fable-5"]}, "reason": "r", **cond}
    with pytest.raises(ConfigError) as e:
        parse_config(base_config("http://127.0.0.1:1", policies=[pol]))
    assert "policies[0]" in str(e.value)


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d["policies"][0]["deny"].update(models=["fable-6"]),
     "g.yaml: policies[0].deny.models[0]: unknown model 'fable-6'"),
    (lambda d: d["policies"][0]["deny"].update(vendors=["Fabel"]),
     "g.yaml: policies[0].deny.vendors[0]: unknown vendor 'Fabel' (known: Fable, Other)"),
    (lambda d: d["policies"][0]["deny"].update(providers=["zz"]), "g.yaml: policies[0].deny.providers[0]: unknown"),
    (lambda d: d["policies"][0]["deny"].update(jurisdictions=["CN"]),
     "g.yaml: policies[0].deny.jurisdictions[0]: unknown jurisdiction 'CN'"),
    (lambda d: d["policies"][0].update(deny={}), "g.yaml: policies[0].deny: deny must name at least one"),
    (lambda d: d["policies"][0].pop("reason"), "g.yaml: policies[0].reason: required field is missing"),
    (lambda d: d["policies"][0].update(name="bad name"), "g.yaml: policies[0].name:"),
    (lambda d: d["policies"].append(dict(d["policies"][0])), "g.yaml: policies[1].name: duplicate policy name"),
    (lambda d: d["keys"][0].update(routes=["nope"]), "g.yaml: keys[0].routes[0]: unknown route or alias 'nope'"),
    (lambda d: d["keys"][0].update(models=["nope"]), "g.yaml: keys[0].models[0]: unknown model 'nope'"),
    (lambda d: d["keys"][0].update(rate_limit=0), "g.yaml: keys[0].rate_limit: Input should be greater than 0"),
    (lambda d: d["admin_keys"].append({"name": "x", "sha256": SHA}),
     "g.yaml: admin_keys[1].sha256: an admin key must not also be a client key"),
    (lambda d: d["routes"]["sec"].update(on_refusal="retry"), "g.yaml: routes.sec.on_refusal:"),
    (lambda d: d["routes"]["sec"].update(refusal_fallbacks=["gpt-5"]),
     "g.yaml: routes.sec.refusal_fallbacks: only used with on_refusal: failover"),
    (lambda d: d["routes"]["sec"].update(on_refusal="failover", refusal_fallbacks=["x"]),
     "g.yaml: routes.sec.refusal_fallbacks[0]: unknown model 'x'"),
])
def test_policy_and_key_errors_name_their_dotted_path(mutate, expected):
    errors = _errors(_with(mutate))
    assert any(e.startswith(expected) for e in errors), errors

"""Alert rules pass promtool; every metric the dashboard and the alerts use is one the gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.observability import metrics as metrics_module
from gateway.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/prometheus/alerts.yaml"
DASHBOARD = ROOT / "deploy/grafana/gateway-dashboard.json"
_NAME = re.compile(r"\bgateway_[a-z0-9_]+\b")


def exported_names() -> set[str]:
    m = Metrics()
    m.watch_state(lambda: [("m", "p")], lambda _: True, lambda _: 0)
    m.watch_withdrawn(lambda: [("m", "p", "operator")])
    m.watch_routes(lambda: [("r", ["m"])], lambda _: True)
    names: set[str] = set()
    for family in m.registry.collect():
        base = family.name
        if family.type == "counter":
            names |= {base + "_total", base + "_created"}
        elif family.type == "histogram":
            names |= {base + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(base)
    return names


def test_every_constant_in_metrics_module_is_exported():
    constants = {v for k, v in vars(metrics_module).items() if k.isupper() and isinstance(v, str)
                 and v.startswith("gateway_")}
    assert {"gateway_routes_without_healthy_fallback", "gateway_audit_queue_depth",
            "gateway_audit_dropped_total"} <= constants
    exported = exported_names()
    for c in constants:
        assert c in exported or c + "_bucket" in exported, c


def _alert_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    d = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in d["templating"]["list"] if v.get("type") == "query"]
    return exprs


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_deploy_metrics_are_exported(source):
    exprs = _alert_exprs() if source == "alerts" else _dashboard_exprs()
    used = {n for e in exprs for n in _NAME.findall(e)}
    assert used, "no gateway metric found in any expression"
    unknown = used - exported_names()
    assert not unknown, f"{source} uses metrics the gateway does not export: {sorted(unknown)}"


def test_dashboard_covers_the_required_panels():
    d = json.loads(DASHBOARD.read_text())
    text = " ".join(_dashboard_exprs())
    for name in ("gateway_requests_total", "gateway_failovers_total", "gateway_route_fallback_depth_bucket",
                 "gateway_time_to_first_token_seconds_bucket", "gateway_model_available",
                 "gateway_routes_without_healthy_fallback"):
        assert name in text, name
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))


def test_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install the Debian package `prometheus` (apt-get install -y prometheus); "
                    "`make test` does this itself (scripts/ensure-system-deps.sh)")
    r = subprocess.run([promtool, "check", "rules", str(ALERTS)], check=False, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    names = {rule["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for rule in g["rules"]}
    assert {"GatewayPrimaryModelWithdrawn", "GatewayRouteWithoutHealthyFallback", "GatewayFailoverRateHigh",
            "GatewayAllModelsOfRouteDown", "GatewayAuditRecordsDropped"} <= names


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level names of every module the ``gateway`` package imports, per importing file."""
    import ast
    import sys

    root = Path(__file__).resolve().parents[2]
    found: dict[str, set[str]] = {}
    for f in (root / "gateway").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for n in names:
                top = n.split(".")[0]
                if top != "gateway" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(f.relative_to(root)))
    return found


def test_the_package_imports_only_declared_runtime_dependencies():
    """A gateway module importing a test extra (httpx) or an undeclared package (yarl) breaks in the image,
    which installs ``.[bedrock]``: every import is a declared dependency, or belongs to a non-test extra (an
    optional engine imported only when configured, e.g. ``semantic``)."""
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=\[ ;]", d)[0].lower().replace("_", "-")
                for d in project["dependencies"] + [x for extra, deps in project["optional-dependencies"].items()
                                                     if extra != "test" for x in deps]}
    dists = packages_distributions()
    # `make demo` runs in the development virtualenv (test extras installed) and drives the official SDKs as a
    # client would; it is not an entry point of the image.
    dev_only = {"gateway/demo.py": {"anthropic", "openai"}}
    undeclared = {}
    for top, files in _third_party_imports().items():
        owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
        files = {f for f in files if top not in dev_only.get(f, ())}
        if files and not owners & declared:
            undeclared[top] = sorted(files)
    assert not undeclared, f"imported but not a runtime dependency: {undeclared}"

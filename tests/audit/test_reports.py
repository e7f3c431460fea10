"""Reports over configs and synthetic audit rows, and the CLI subcommands through ``gateway.cli.main``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from gateway.audit.store import SQLiteAuditStore, record_to_row
from gateway.cli import main
from gateway.failover.attempts import Attempt
from gateway.observability.record import RequestRecord
from gateway.reports import dependency, diff, explain, strict, whatif
from gateway.reports.common import load_runtime
from tests.conftest import base_config

A = ("vendor-a", "VendorA")
B = ("vendor-b", "VendorB")


def _cfg(**over) -> dict:
    cfg = base_config("http://127.0.0.1:9")
    cfg["models"]["qwen-coder"]["supports_tools"] = False
    cfg.update(over)
    return cfg


def _write(tmp: Path, cfg: dict, name: str = "gateway.yaml") -> Path:
    p = tmp / name
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def _row(i: int, route: str, attempts: list[Attempt], served: list[str], status: int = 200, t: float | None = None):
    chain = {"security-review": ("fable-5", "gpt-5", "qwen-coder"), "general": ("gpt-5", "qwen-coder")}[route]
    return record_to_row(RequestRecord(f"r{i}", t or time.time() - 60, "tests", route, "name", False, status, 0.1,
                                       attempts, served, {"total_tokens": 3}, chain))


def _seed(db: Path) -> None:
    ok_a = Attempt("fable-5", *A, "ok", 200)
    rows = [_row(i, "security-review", [ok_a], ["fable-5"]) for i in range(6)]
    rows += [_row(10 + i, "security-review", [Attempt("fable-5", *A, "withdrawn", 404),
                                              Attempt("gpt-5", *B, "ok", 200)], ["gpt-5"]) for i in range(3)]
    rows += [_row(20, "security-review", [Attempt("fable-5", *A, "policy_blocked", 400),
                                          Attempt("gpt-5", *B, "ok", 200)], ["gpt-5"])]
    rows += [_row(30 + i, "general", [Attempt("gpt-5", *B, "ok", 200)], ["gpt-5"]) for i in range(9)]
    rows += [_row(40, "general", [Attempt("gpt-5", *B, "transient", 503), Attempt("qwen-coder", "onprem",
                                                                                  "self-hosted", "transient", 500)],
                  [], status=502)]
    rows += [_row(50, "general", [Attempt("gpt-5", *B, "ok", 200)], ["gpt-5"], t=time.time() - 40 * 86400)]
    store = SQLiteAuditStore(db)
    store.write(rows)
    store.close()


@pytest.fixture
def setup(tmp_path):
    cfg_path = _write(tmp_path, _cfg())
    _seed(tmp_path / "state" / "audit.sqlite")  # the default: audit.sqlite in the state directory
    return cfg_path


def test_dependency_report_from_config_and_audit(setup):
    rt = load_runtime(setup)
    from gateway.reports.common import audit_rows

    rows, db = audit_rows(rt, setup, None, 30 * 86400)
    rep = dependency.build(rt, rows, 30 * 86400, db)
    assert rep["requests"] == 20  # the 40-day-old row is outside the window
    sec = next(r for r in rep["routes"] if r["route"] == "security-review")
    assert [h["vendor"] for h in sec["chain"]] == ["VendorA", "VendorB", "self-hosted"]
    assert sec["vendors"] == ["VendorA", "VendorB", "self-hosted"] and sec["jurisdictions"] == ["US", "self"]
    assert sec["flags"] == []
    t = sec["traffic"]
    assert t["requests"] == 10 and t["by_model"] == {"fable-5": 6, "gpt-5": 4}
    assert t["by_vendor"] == {"VendorA": 6, "VendorB": 4}
    assert t["failovers"] == {"withdrawn": 3, "policy_blocked": 1} and t["refusals"] == {"failover": 1}
    gen = next(r for r in rep["routes"] if r["route"] == "general")
    assert gen["traffic"]["failed"] == 1 and gen["traffic"]["failovers"] == {"transient": 1}
    text = dependency.render(rep)
    assert "security-review" in text and "fable-5 60.0% (6)" in text
    md = dependency.render(rep, "markdown")
    assert "| route | primary |" in md and "## Route `general`" in md
    assert json.loads(dependency.render(rep, "json"))["requests"] == 20


def test_flags_single_vendor_jurisdiction_and_no_fallback(tmp_path):
    cfg = _cfg()
    cfg["routes"]["solo"] = {"models": ["qwen-coder"]}
    cfg["routes"]["us-only"] = {"models": ["fable-5", "gpt-5"]}
    rt = load_runtime(_write(tmp_path, cfg))
    rep = {r["route"]: r for r in dependency.build(rt, None, 86400)["routes"]}
    assert rep["solo"]["flags"] == ["no_fallback"]
    assert rep["us-only"]["flags"] == ["single_jurisdiction"]
    assert rep["general"]["flags"] == []
    assert "no audit log found" in dependency.render(dependency.build(rt, None, 86400))


def test_whatif_moves_loses_and_breaks(setup):
    rt = load_runtime(setup)
    from gateway.reports.common import audit_rows

    rows, _ = audit_rows(rt, setup, None, 30 * 86400)
    res = whatif.simulate(rt, [("vendor", "VendorA")], rows)
    sec = next(r for r in res["routes"] if r["route"] == "security-review")
    assert sec["status"] == "moves" and sec["served_by"] == "gpt-5"
    assert sec["losses"] == []  # gpt-5 has the larger window and tools
    assert sec["traffic"] == {"requests": 10, "would_move": 6, "would_fail": 0}
    assert res["broken_routes"] == []
    res = whatif.simulate(rt, [("vendor", "VendorA"), ("vendor", "VendorB")], rows)
    sec = next(r for r in res["routes"] if r["route"] == "security-review")
    assert sec["served_by"] == "qwen-coder"
    assert "context window 200 -> 100" in sec["losses"] and "no tool calling" in sec["losses"]
    assert "no fallback left" in sec["warnings"]
    res = whatif.simulate(rt, [("jurisdiction", "US"), ("model", "qwen-coder")], rows)
    assert res["broken_routes"] == ["security-review", "general"]
    assert res["traffic"]["would_fail"] == 19
    text = whatif.render(res)
    assert "BREAKS" in text and "BROKEN: security-review, general" in text
    with pytest.raises(ValueError, match="matches no configured model"):
        whatif.simulate(rt, [("vendor", "Nobody")])
    with pytest.raises(ValueError, match="unknown withdraw kind"):
        whatif.simulate(rt, [("region", "x")])


def test_whatif_applies_caller_policy(tmp_path):
    cfg = _cfg(policies=[{"name": "eu-data", "deny": {"vendors": ["VendorB"]}, "when": {"jurisdiction": ["DE"]},
                          "reason": "no VendorB for German callers"}])
    rt = load_runtime(_write(tmp_path, cfg))
    res = whatif.simulate(rt, [("vendor", "VendorA")], caller={"jurisdiction": "DE"})
    sec = next(r for r in res["routes"] if r["route"] == "security-review")
    assert sec["served_by"] == "qwen-coder" and "policy eu-data" in sec["removed"]["gpt-5"]
    res = whatif.simulate(rt, [("vendor", "VendorA")], caller={"jurisdiction": "US"})
    assert next(r for r in res["routes"] if r["route"] == "security-review")["served_by"] == "gpt-5"


def test_strict_check_and_waiver(tmp_path):
    cfg = _cfg()
    cfg["routes"]["us-only"] = {"models": ["fable-5", "gpt-5"]}
    rt = load_runtime(_write(tmp_path, cfg))
    passed, text = strict.report(rt.config, "g.yaml")
    assert not passed and "routes.us-only: no fallback from a different jurisdiction (all US)" in text
    cfg["routes"]["us-only"]["single_vendor_ok"] = {"owner": "appsec@example.com", "reason": "US data only"}
    rt = load_runtime(_write(tmp_path, cfg))
    passed, text = strict.report(rt.config, "g.yaml")
    assert passed and "accepted by appsec@example.com: US data only" in text


def test_diff_gains_and_losses(tmp_path):
    old = load_runtime(_write(tmp_path, _cfg(), "old.yaml"))
    cfg = _cfg()
    cfg["routes"]["security-review"]["models"] = ["fable-5", "qwen-coder"]
    cfg["routes"]["new-route"] = {"models": ["gpt-5"]}
    new = load_runtime(_write(tmp_path, cfg, "new.yaml"))
    res = diff.diff(old, new)
    sec = next(r for r in res["routes"] if r["route"] == "security-review")
    assert sec["vendors"] == {"gained": [], "lost": ["VendorB"]} and sec["models"]["lost"] == ["gpt-5"]
    assert next(r for r in res["routes"] if r["route"] == "new-route")["change"] == "added"
    assert res["loses_diversity"] == ["security-review"]
    assert "-VendorB" in diff.render(res)


def test_explain_route_policy_and_state(tmp_path):
    cfg = _cfg(policies=[{"name": "no-a", "deny": {"vendors": ["VendorA"]}, "unless": {"team": ["appsec"]},
                          "reason": "legal hold"}])
    cfg["keys"].append({"name": "appsec", "sha256": "0" * 64, "attributes": {"team": "appsec"}})
    rt = load_runtime(_write(tmp_path, cfg))
    req = {"messages": [{"role": "user", "content": "security review please " + "x" * 1200}]}
    state = {"gpt-5": {"state": "breaker_open", "until_in_s": 12.0},
             "qwen-coder": {"state": "withdrawn_by_operator",
                            "withdrawal": {"actor": "alice", "created_at": "2026-06-12T00:00:00Z", "reason": "legal",
                                           "reference": "DOC-1", "contact": "never"}}}
    res = explain.explain(rt, req, key_name="tests", state=state)
    assert res["route"] == "security-review" and res["route_reason"] == "match:0"
    verdicts = [(c["model"], c["verdict"], c.get("why", "")) for c in res["candidates"]]
    assert verdicts[0][1] == "skipped" and "policy 'no-a'" in verdicts[0][2]
    assert "breaker open" in verdicts[1][2] and "withdrawn by alice" in verdicts[2][2]
    assert "no candidate would be tried" in res["outcome"]
    res = explain.explain(rt, req, key_name="appsec")
    assert res["candidates"][0]["verdict"] == "tried first"
    assert "context window" in res["candidates"][0]["notes"][0]  # ~300 tokens > 200
    res = explain.explain(rt, {"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert res["route"] is None and res["error"]["code"] == "model_not_found"
    with pytest.raises(ValueError):
        explain.explain(rt, req, key_name="ghost")


# -- CLI -------------------------------------------------------------------------------------------------
def test_cli_audit_formats(setup, capsys):
    assert main(["audit", "--config", str(setup)]) == 0
    out = capsys.readouterr().out
    assert "Route security-review" in out and "20 requests" in out
    assert main(["audit", "--config", str(setup), "--format", "markdown", "--window", "7d"]) == 0
    assert "| security-review |" in capsys.readouterr().out
    assert main(["audit", "--config", str(setup), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == 20


def test_cli_audit_diff(tmp_path, capsys):
    a = _write(tmp_path, _cfg(), "a.yaml")
    cfg = _cfg()
    cfg["routes"]["general"]["models"] = ["gpt-5"]
    b = _write(tmp_path, cfg, "b.yaml")
    assert main(["audit", "--diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "general" in out and "-self-hosted" in out and "routes losing a vendor or jurisdiction: general" in out


def test_cli_whatif_exit_status(setup, capsys):
    assert main(["whatif", "--config", str(setup), "--withdraw", "vendor=VendorA"]) == 0
    assert "security-review  moves" in capsys.readouterr().out
    assert main(["whatif", "--config", str(setup), "--withdraw", "jurisdiction=US", "model=qwen-coder"]) == 1
    assert "BROKEN" in capsys.readouterr().out
    assert main(["whatif", "--config", str(setup), "--withdraw", "vendor"]) == 2
    assert "KIND=NAME" in capsys.readouterr().err
    assert main(["whatif", "--config", str(setup), "--withdraw", "vendor=VendorA", "--for-caller",
                 "jurisdiction=DE", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["caller"] == {"jurisdiction": "DE"}


def test_cli_check_strict(tmp_path, capsys):
    good = _write(tmp_path, _cfg(), "good.yaml")
    assert main(["check", "--strict", str(good)]) == 0
    assert "strict check OK" in capsys.readouterr().out
    cfg = _cfg()
    cfg["routes"]["solo"] = {"models": ["gpt-5"]}
    bad = _write(tmp_path, cfg, "bad.yaml")
    assert main(["check", str(bad)]) == 0  # without --strict: valid
    capsys.readouterr()
    assert main(["check", "--strict", str(bad)]) == 1
    assert "routes.solo: no fallback at all" in capsys.readouterr().err


def test_cli_explain(setup, capsys, tmp_path):
    assert main(["explain", "--config", str(setup), "--prompt", "Triage CVE-2024-1234", "--key-name", "tests"]) == 0
    out = capsys.readouterr().out
    assert "route: security-review (match:0)" in out and "fable-5" in out and "tried first" in out
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"model": "general", "messages": [{"role": "user", "content": "hi"}]}))
    assert main(["explain", "--config", str(setup), str(req), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["route"] == "general"


def test_gateway_explain_rejects_a_request_file_that_is_not_a_chat_request(tmp_path, capsys):
    from gateway.cli import main

    for text, expected in (("[1, 2]", "expected a JSON object"), ('{"messages": 5}', "'messages'"),
                           ("nope", "Expecting value")):
        f = tmp_path / "req.json"
        f.write_text(text)
        assert main(["explain", "--config", "config/demo.yaml", str(f)]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err


def test_cli_demo_config_reports(capsys):
    root = Path(__file__).resolve().parents[2]
    demo = str(root / "config/demo.yaml")
    assert main(["check", "--strict", demo]) == 0
    assert main(["whatif", "--config", demo, "--withdraw", "vendor=Anthropic", "--db", "/nonexistent/x.sqlite"]) == 0
    out = capsys.readouterr().out
    assert "security-review  moves      gpt-5" in out

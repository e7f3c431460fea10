"""No Docker engine runs here, so the Dockerfile is checked with Docker's own parser (the `dockerfile` package)."""

from __future__ import annotations

from pathlib import Path

import dockerfile

ROOT = Path(__file__).resolve().parents[2]


def _final_stage() -> list:
    cmds = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    last_from = max(i for i, c in enumerate(cmds) if c.cmd.upper() == "FROM")
    return cmds[last_from:]


def test_small_base_multi_stage():
    stage = _final_stage()
    assert stage[0].value[0].endswith("-slim")
    assert any(c.cmd.upper() == "COPY" and "--from=build" in c.flags for c in stage)


def test_runs_as_non_root():
    users = [c for c in _final_stage() if c.cmd.upper() == "USER"]
    assert users and users[-1].value[0] not in ("root", "0")


def test_entrypoint_is_gateway_serve_and_config_mounted():
    stage = _final_stage()
    entry = next(c for c in stage if c.cmd.upper() == "ENTRYPOINT")
    assert list(entry.value[:2]) == ["gateway", "serve"]
    assert any(c.cmd.upper() == "VOLUME" and "/config" in c.value for c in stage)
    cmd = next(c for c in stage if c.cmd.upper() == "CMD")
    assert "--config" in cmd.value


def test_healthcheck_probes_healthz():
    hc = next(c for c in _final_stage() if c.cmd.upper() == "HEALTHCHECK")
    assert "/healthz" in " ".join(hc.value)
    assert any(f.startswith("--interval") for f in hc.flags)

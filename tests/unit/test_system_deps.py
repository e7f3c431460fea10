"""`make test` sets itself up: scripts/ensure-system-deps.sh finds missing Debian packages and, not being root,
prints the exact command and fails (as root it runs that command; that path is what a fresh CI machine takes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-system-deps.sh"


def _run(tmp_path: Path, have: tuple[str, ...], uid: int) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    for name in (*have, "apt-get"):
        (bin_dir / name).write_text("#!/bin/sh\necho \"$0 $*\" >> \"$LOG\"\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {"PATH": str(bin_dir), "LOG": str(tmp_path / "log"), "SYSTEM_DEPS_PG_BIN": str(tmp_path / "no-pg")}
    return subprocess.run([shutil.which("bash") or "/bin/bash", str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=30)


def test_not_root_prints_the_exact_apt_command_for_what_is_missing(tmp_path):
    r = _run(tmp_path, have=("promtool", "chromium"), uid=1000)
    assert r.returncode == 1
    assert ("sudo apt-get update && sudo apt-get install -y -q --no-install-recommends chromium-driver "
            "redis-server postgresql nodejs npm") in r.stderr, r.stderr
    assert not (tmp_path / "log").exists()  # nothing was run


def test_root_installs_what_is_missing_and_nothing_when_all_present(tmp_path):
    r = _run(tmp_path, have=("promtool", "chromium", "chromedriver", "initdb", "node", "npm"), uid=0)
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "log").read_text().splitlines()
    assert [c.split("/")[-1] for c in calls] == ["apt-get update -q",
                                                 "apt-get install -y -q --no-install-recommends redis-server"]
    (tmp_path / "log").unlink()
    os.rename(tmp_path / "bin", tmp_path / "bin-1")
    r = _run(tmp_path, have=("promtool", "chromium", "chromedriver", "initdb", "node", "npm", "redis-server"),
             uid=0)
    assert r.returncode == 0 and not (tmp_path / "log").exists()

"""Hot reload survives Kubernetes' update of a mounted ConfigMap: the kubelet writes the new files into a fresh
timestamped directory, swaps the ``..data`` symlink to it atomically and deletes the old directory; the config
path itself (``gateway.yaml -> ..data/gateway.yaml``) never changes."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import yaml

from gateway.testing import GatewayThread
from tests.integration.test_admin import ADMIN_KEY, admin_config

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def _publish(mount: Path, cfg: dict, n: int) -> None:
    """What the kubelet's AtomicWriter does for one ConfigMap update."""
    new = mount / f"..2026_12_02_00_00_0{n}.{n:09d}"
    new.mkdir()
    (new / "gateway.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    old = os.readlink(mount / "..data") if (mount / "..data").is_symlink() else None
    tmp = mount / "..data_tmp"
    tmp.symlink_to(new.name)
    os.replace(tmp, mount / "..data")
    if not (mount / "gateway.yaml").is_symlink():
        (mount / "gateway.yaml").symlink_to("..data/gateway.yaml")
    if old:
        shutil.rmtree(mount / old)


def _version(gw: GatewayThread) -> str:
    return httpx.get(gw.url + "/admin/state", headers=ADMIN, timeout=5).json()["config"]["version"]


def _routes(gw: GatewayThread) -> list[str]:
    return list(httpx.get(gw.url + "/admin/state", headers=ADMIN, timeout=5).json()["routes"]["general"]["models"])


def test_reload_follows_configmap_symlink_swaps(emu, tmp_path):
    mount = tmp_path / "config"
    mount.mkdir()
    cfg = admin_config(emu.url)
    cfg["state_dir"] = str(tmp_path / "state")
    cfg["reload"] = {"watch": True, "debounce": "50ms"}
    _publish(mount, cfg, 1)
    with GatewayThread(mount / "gateway.yaml") as gw:
        for n, chain in ((2, ["qwen-coder", "gpt-5"]), (3, ["gpt-5"]), (4, ["qwen-coder"])):
            before = _version(gw)
            _publish(mount, dict(cfg, routes={**cfg["routes"], "general": {"models": chain}}), n)
            deadline = time.monotonic() + 5
            while _routes(gw) != chain:
                assert time.monotonic() < deadline, f"update {n} of the ConfigMap was not picked up"
                time.sleep(0.05)
            assert _version(gw) != before

"""Where the gateway keeps state on disk, derived from the config (pure)."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.config.model import GatewayConfig


def state_dir(config: GatewayConfig, config_path: str | Path | None) -> Path | None:
    """``state_dir`` from the config > ``$GATEWAY_STATE_DIR`` (the container image sets /var/lib/gateway) >
    ``state/`` next to the config file. A relative path is relative to the config file's directory."""
    configured = config.state_dir or os.environ.get("GATEWAY_STATE_DIR")
    base = Path(config_path).resolve().parent if config_path else None
    if configured:
        p = Path(configured)
        return p if p.is_absolute() or base is None else base / p
    return base / "state" if base is not None else None


def audit_path(config: GatewayConfig, config_path: str | Path | None) -> Path:
    """``audit.path`` (relative to the config file's directory), else ``audit.sqlite`` in the state directory, so
    that a read-only config mount (the container image) needs no setting."""
    if config.audit.path:
        p = Path(config.audit.path)
        if p.is_absolute() or config_path is None:
            return p
        return Path(config_path).resolve().parent / p
    sd = state_dir(config, config_path)
    return (sd if sd is not None else Path("state")) / "audit.sqlite"

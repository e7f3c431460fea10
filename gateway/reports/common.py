"""Shared by the reports: tolerant config loading, audit rows, small formatting helpers."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.config.durations import parse_duration
from gateway.config.loader import load_config
from gateway.runtime import Runtime, build_runtime

DEFAULT_CONFIG = "config/gateway.yaml"


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_runtime(path: str | Path, strict_env: bool = False) -> Runtime:
    """Reports read a config without needing its secrets: an unset ``${VAR}`` (without a default) becomes a
    placeholder instead of an error, unless ``strict_env``."""
    from gateway.config.loader import load_config_text

    text = Path(path).read_text(encoding="utf-8")
    if not strict_env:
        text = _ENV_REF.sub(lambda m: m.group(0) if m.group(1) in os.environ else f"${{{m.group(1)}:-unset}}", text)
    cfg = load_config_text(text, str(path)) if not strict_env else load_config(path)
    return build_runtime(cfg, Path(path).read_bytes())


def audit_rows(runtime: Runtime, config_path: str | Path, db: str | None, window: float,
               now: float | None = None) -> tuple[list[dict[str, Any]] | None, str]:
    """Rows of the last ``window`` seconds, and the database path; None when there is no audit log yet."""
    from gateway.audit.store import SQLiteAuditStore, open_store
    from gateway.config.paths import audit_path

    store_cfg = runtime.config.store
    url = db if db and db.startswith(("postgres://", "postgresql://")) else None
    if url is None and not db and store_cfg.backend == "postgres" and store_cfg.url:
        url = store_cfg.url
    if url is not None:
        pg = open_store(url, readonly=True)
        now = time.time() if now is None else now
        try:
            return list(pg.rows(now - window)), str(getattr(pg, "path", "postgresql"))
        finally:
            pg.close()
    path = Path(db) if db else audit_path(runtime.config, config_path)
    if not path.exists():
        return None, str(path)
    now = time.time() if now is None else now
    store = SQLiteAuditStore(path, readonly=True)
    try:
        return list(store.rows(now - window)), str(path)
    finally:
        store.close()


def parse_window(text: str) -> float:
    return parse_duration(text)


def hop(runtime: Runtime, model: str) -> dict[str, Any]:
    t = runtime.targets[model]
    return {"model": model, "provider": t.provider, "vendor": t.vendor, "jurisdiction": t.jurisdiction,
            "context_window": t.context_window, "supports_tools": t.supports_tools, "prefill": t.prefill}


def ctx(n: int) -> str:
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:.0f}k" if n % 1000 == 0 or n >= 10_000 else f"{n / 1000:.1f}k"
    return str(n)


def pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> str:
    cells = [[str(h) for h in headers]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = [indent + "  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)).rstrip(),
           indent + "  ".join("-" * w for w in widths)]
    for r in cells[1:]:
        out.append(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(out)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(c: Any) -> str:
        return ("" if c is None else str(c)).replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def failover_reason(outcome: str) -> str:
    if outcome.startswith("skipped:"):
        return outcome[len("skipped:"):]
    if outcome.startswith("denied:"):
        return "denied"
    return outcome


def served_model(row: Mapping[str, Any]) -> str | None:
    served = row.get("served") or []
    return served[-1] if served and row.get("status", 500) < 400 else None

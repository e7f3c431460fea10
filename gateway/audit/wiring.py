"""What a ``Gateway`` owns for continuity and observability: the audit writer, the per-request JSON log line and
the route-health gauges. The gateway calls four things::

    self.continuity = Continuity(self)           # in Gateway.__init__, after self.metrics / state / withdrawals
    await self.continuity.start()                # in Gateway.start()
    await self.continuity.aclose()               # in Gateway.stop(), after in-flight requests finished
    gw.continuity.on_request(record)             # once per finished request (chat endpoint, ``finally:``)
    self.continuity.on_reload(runtime)           # in Gateway.swap() (re-registers the new config's secrets)

``on_request`` never raises and never blocks: it formats one log line and appends to an in-memory queue.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from gateway.audit.store import open_store
from gateway.audit.writer import AuditWriter
from gateway.config.paths import audit_path
from gateway.observability import logs
from gateway.observability.redact import redact

log = logging.getLogger("gateway.audit")


def prompt_hash(messages: Any) -> str:
    """sha256 of the canonical JSON of the messages (only stored when ``audit.store_prompt_hash`` is on)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def model_usable(gw: Any, model: str) -> bool:
    """Usable now: no operator withdrawal/drill, no withdrawn/cooling/open-breaker state (no probe taken)."""
    withdrawals = getattr(gw, "withdrawals", None)
    if withdrawals is not None and withdrawals.check(model) is not None:
        return False
    return bool(gw.state.available(model))


def routes_without_healthy_fallback(gw: Any) -> list[str]:
    return [n for n, r in gw.runtime.routes.items() if sum(model_usable(gw, m) for m in r.models) < 2]


class Continuity:
    def __init__(self, gw: Any) -> None:
        self.gw = gw
        rt = gw.runtime
        cfg = rt.config.audit
        self._secrets = rt.secrets
        self.log = logs.JsonLog(self._secrets)
        logs.ensure_output()
        self.writer: AuditWriter | None = None
        self.path = None
        if cfg.enabled:
            store = rt.config.store
            # With ``store.backend: postgres`` the audit log lives there (``path`` stays None: no local file).
            location = store.url if store.backend == "postgres" and store.url else None
            if location is None:
                self.path = audit_path(rt.config, getattr(gw, "config_path", None))
            self.writer = AuditWriter(open_store(location or self.path), queue_size=cfg.queue_size,
                                      retention=cfg.retention,
                                      metrics=gw.metrics, redact=self._redact, keep_prompt_hash=cfg.store_prompt_hash)
        gw.metrics.watch_routes(lambda: [(n, r.models) for n, r in gw.runtime.routes.items()],
                                lambda m: model_usable(gw, m))

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def prompt_hash(self, body: dict[str, Any]) -> str | None:
        """For ``RequestRecord.prompt_hash``: the hash when the opt-in is on, else None (nothing computed)."""
        if not self.gw.runtime.config.audit.store_prompt_hash:
            return None
        return prompt_hash(body.get("messages"))

    def on_request(self, record: Any) -> None:
        try:
            self.log.request(record)
        except Exception:
            log.exception("request log line failed")
        if self.writer is not None:
            self.writer.submit(record)

    def on_reload(self, runtime: Any) -> None:
        self._secrets = runtime.secrets
        self.log.set_secrets(self._secrets)

    async def start(self) -> None:
        if self.writer is not None:
            await self.writer.start()

    async def aclose(self) -> None:
        if self.writer is not None:
            await self.writer.aclose()

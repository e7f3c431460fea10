"""Hot reload of the config file: on change (watchfiles), on SIGHUP, and on ``POST /admin/reload``.

A reload reads the file once, validates it fully and builds a new ``Runtime`` off the event loop, then swaps
it whole (``Gateway.swap``). Requests in flight keep the snapshot they started with. An invalid file is
rejected: the running config stays, the error (with its dotted path) is logged, counted in
``gateway_config_reloads_total{result="error"}`` and shown in ``/admin/state``. Reloads are serialised.
Reloads fail closed: a valid file that would turn client authentication off or remove every admin key is
rejected the same way unless it says so explicitly (``auth: {enabled: false}`` / ``auth: {admin: false}``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from gateway.runtime import Runtime, build_runtime

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("gateway.reload")


@dataclass(slots=True)
class ReloadResult:
    result: str  # ok | unchanged | error
    trigger: str
    at: float
    version: str  # the version running after this reload
    errors: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"result": self.result, "trigger": self.trigger,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)), "version": self.version,
                "errors": list(self.errors)}


def _build(path: Path) -> Runtime:
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror or e}"]) from None
    config = load_config_text(text, str(path))
    try:
        return build_runtime(config, text)
    except Exception as e:  # an adapter that cannot be built (e.g. a missing optional dependency)
        raise ConfigError([f"{path}: cannot build the runtime: {type(e).__name__}: {e}"]) from None


def fails_open(old: Runtime, new: Runtime, path: str) -> list[str]:
    """Why a reload from ``old`` to ``new`` would open the gateway without the new file saying so: no client keys
    where there were some (authentication off), or no admin keys where there were some (no kill switch in an
    incident). A truncated or half-written file produces exactly that; the explicit opt-outs are
    ``auth: {enabled: false}`` and ``auth: {admin: false}``."""
    errors = []
    if old.keys is not None and new.keys is None and new.config.auth.enabled:
        errors.append(f"{path}: keys: this reload would turn client authentication off (the running config has "
                      f"{len(old.keys)} key(s)); if that is intended, say so with `auth: {{enabled: false}}`")
    if old.admin_keys and not new.admin_keys and new.config.auth.admin:
        errors.append(f"{path}: admin_keys: this reload would remove every admin key (the running config has "
                      f"{len(old.admin_keys)}); if that is intended, say so with `auth: {{admin: false}}`")
    return errors


class ConfigReloader:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.last: ReloadResult | None = None
        self.counts = {"ok": 0, "error": 0}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._stop: asyncio.Event | None = None
        self._sighup = False

    async def reload(self, trigger: str) -> ReloadResult:
        gw = self.gw
        if not gw.config_path:
            raise ConfigError(["the gateway was not started from a config file; nothing to reload"])
        async with self._lock:
            old = gw.runtime
            try:
                runtime = await asyncio.to_thread(_build, Path(gw.config_path))
                refused = fails_open(old, runtime, str(gw.config_path))
                if refused:
                    raise ConfigError(refused)
            except ConfigError as e:
                res = ReloadResult("error", trigger, time.time(), old.version, list(e.errors))
                self.counts["error"] += 1
                gw.metrics.reloads.labels("error").inc()
                log.error("config reload (%s) rejected; still running version %s:\n%s", trigger, old.version, e)
                gw.lifecycle("reload", result="error", trigger=trigger, version=old.version, errors=list(e.errors))
            else:
                changed = runtime.version != old.version
                if changed:
                    gw.swap(runtime)
                    if runtime.config.state_dir != old.config.state_dir:
                        log.warning("config reload: state_dir changed; it takes effect at the next restart")
                    for field in ("state", "store"):  # connections are made once, at start-up
                        if getattr(runtime.config, field) != getattr(old.config, field):
                            log.warning("config reload: %s changed; it takes effect at the next restart", field)
                res = ReloadResult("ok" if changed else "unchanged", trigger, time.time(), runtime.version)
                self.counts["ok"] += 1
                gw.metrics.reloads.labels("ok").inc()
                log.info("config reload (%s): %s, version %s", trigger, res.result, runtime.version)
                gw.lifecycle("reload", result=res.result, trigger=trigger, version=runtime.version)
            self.last = res
            return res

    # -- triggers ----------------------------------------------------------------------------------------
    def start(self) -> None:
        gw = self.gw
        if not gw.config_path:
            return
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            try:
                loop.add_signal_handler(signal.SIGHUP, self._spawn, "SIGHUP")
                self._sighup = True
            except (NotImplementedError, RuntimeError):  # pragma: no cover - platform without signals
                pass
        rc = gw.runtime.config.reload
        if rc.watch:
            self._stop = asyncio.Event()
            self._keep(loop.create_task(self._watch(Path(gw.config_path), rc.debounce), name="config-watcher"))

    async def stop(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        if self._stop is not None:
            self._stop.set()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    def _spawn(self, trigger: str) -> None:
        self._keep(asyncio.get_running_loop().create_task(self.reload(trigger)))

    def _keep(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, path: Path, debounce: float) -> None:
        import watchfiles

        # Watch the directory the config path names, not only where it resolves to now: a mounted Kubernetes
        # ConfigMap (``gateway.yaml -> ..data/gateway.yaml``, ``..data -> ..<timestamp>``) is updated by writing a
        # new timestamped directory, swapping the ``..data`` symlink and deleting the old directory, so the
        # resolved target's directory disappears with every update.
        path = path.absolute()
        target = path.resolve()
        dirs = {path.parent}
        if not target.parent.is_relative_to(path.parent):
            dirs.add(target.parent)  # the config is a symlink to a file elsewhere: edits there count too

        def only_config(change: Any, p: str) -> bool:
            q = Path(p)
            return q.name == path.name or q.name == "..data" or q == target

        try:
            async for _ in watchfiles.awatch(*sorted(dirs), watch_filter=only_config,
                                             debounce=max(1, int(debounce * 1000)), step=20,
                                             stop_event=self._stop, rust_timeout=500, recursive=False):
                await self.reload("file change")
        except asyncio.CancelledError:
            raise
        except Exception:  # the watcher must never take the gateway down
            log.exception("config file watcher stopped; reload with SIGHUP or POST /admin/reload")

"""Shared, wire-format-neutral emulator state: behaviours, counters, attempt log.

All mutation happens under a ``threading.Lock`` and readers get copies, so the
state can be inspected from a test thread while the emulator's event loop runs
in another.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

from gateway.emulator.behaviours import HEALTHY, Behaviour, make_behaviour, parse_behaviour

DEFAULT_MODEL = "*"  # behaviour key used for models without their own behaviour


class EmulatorState:
    """Per-model behaviours (default ``healthy``), per-model counters, attempt log.

    Attempt log entries (dicts): ``seq, time, wire, path, model, stream, behaviour,
    status`` (HTTP status sent, 0 = connection reset / no response), ``disconnected``
    (client went away before we finished), ``tokens_sent``, ``request`` (parsed
    JSON body or None), ``auth`` (an auth header was present; the value is never stored).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        max_attempts: int = 10_000,
        on_attempt: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.api_key = api_key
        self.on_attempt = on_attempt  # called (copy of entry) when an attempt finishes
        self._lock = threading.Lock()
        self._behaviours: dict[str, Behaviour] = {}
        self._counters: dict[str, int] = {}
        self._set_at: dict[str, float] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=max_attempts)
        self._seq = 0

    # ---- behaviours -------------------------------------------------------
    def set_behaviour(self, model: str, behaviour: Behaviour | str) -> Behaviour:
        """Script ``model`` (``"*"`` = default for unscripted models); resets its counter."""
        if isinstance(behaviour, str):
            behaviour = parse_behaviour(behaviour)
        elif not isinstance(behaviour, Behaviour):
            raise TypeError("behaviour must be a Behaviour or a spec string")
        else:
            behaviour = make_behaviour(behaviour.name, behaviour.params)
        with self._lock:
            self._behaviours[model] = behaviour
            self._set_at[model] = time.monotonic()
            if model == DEFAULT_MODEL:
                for m in [m for m in self._counters if m not in self._behaviours]:
                    del self._counters[m]
            else:
                self._counters.pop(model, None)
        return behaviour

    def behaviour_for(self, model: str | None) -> Behaviour:
        b = self._behaviours  # dict reads are atomic under the GIL
        if model is not None:
            found = b.get(model)
            if found is not None:
                return found
        return b.get(DEFAULT_MODEL, HEALTHY)

    def set_for(self, model: str | None) -> float:
        """Seconds since ``model``'s behaviour (or the default one) was set."""
        at = self._set_at.get(model or "", self._set_at.get(DEFAULT_MODEL))
        return 0.0 if at is None else time.monotonic() - at

    def behaviours(self) -> dict[str, Behaviour]:
        with self._lock:
            return dict(self._behaviours)

    def next_count(self, model: str | None) -> int:
        """Return how many requests ``model`` saw since its behaviour was set, then count this one."""
        key = model or ""
        with self._lock:
            n = self._counters.get(key, 0)
            self._counters[key] = n + 1
        return n

    # ---- attempt log --------------------------------------------------------
    def begin_attempt(
        self,
        *,
        wire: str,
        path: str,
        model: str | None,
        stream: bool,
        behaviour: str,
        request: Any,
        auth: bool,
    ) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "time": time.time(),
                "wire": wire,
                "path": path,
                "model": model,
                "stream": stream,
                "behaviour": behaviour,
                "status": 0,
                "disconnected": False,
                "tokens_sent": 0,
                "request": request,
                "auth": auth,
                "done": False,
            }
            self._log.append(entry)
        return entry

    def update_attempt(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)

    def finish_attempt(self, entry: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            entry.update(fields)
            entry["done"] = True
        cb = self.on_attempt
        if cb is not None:
            try:
                cb(dict(entry))
            except Exception:  # a logging callback must never break the emulator
                pass

    def attempts(self, model: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log if model is None or e["model"] == model]

    def clear_attempts(self) -> None:
        with self._lock:
            self._log.clear()

    def reset(self) -> None:
        """All models back to healthy, counters and attempt log cleared."""
        with self._lock:
            self._behaviours.clear()
            self._counters.clear()
            self._set_at.clear()
            self._log.clear()

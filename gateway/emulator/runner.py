"""Run the emulator in a background thread (tests, demo, drills).

    with EmulatorThread({"gpt-5": "withdrawn"}) as emu:
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="sk-test")
        emu.set("gpt-5", "rate_limited:retry_after=2")
        emu.attempts("gpt-5")
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from gateway.emulator.app import start
from gateway.emulator.behaviours import Behaviour
from gateway.emulator.state import EmulatorState


class EmulatorThread:
    """Emulator on ``host``:``port`` (default 127.0.0.1, ephemeral) in a daemon thread
    with its own event loop. Use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        scripts: dict[str, str] | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state: EmulatorState | None = None,
        start_timeout: float = 5.0,
    ) -> None:
        self.state = state if state is not None else EmulatorState(api_key=api_key)
        for model, spec in (scripts or {}).items():
            self.state.set_behaviour(model, spec)
        self.host = host
        self.port = port
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> "EmulatorThread":
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._main, name="provider-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise RuntimeError("emulator did not start in time")
        if self._error is not None:
            self._thread.join(1)
            self._thread = None
            raise RuntimeError(f"emulator failed to start: {self._error!r}") from self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                self._runner, self.port = loop.run_until_complete(start(self.state, self.host, self.port))
            except BaseException as exc:  # report to the starting thread
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def stop(self, timeout: float = 3.0) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if thread is None or loop is None:
            return
        try:
            if runner is not None and not loop.is_closed():
                fut = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
                try:
                    fut.result(timeout)
                except Exception:
                    fut.cancel()
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None
            self._runner = None
            self._loop = None

    def __enter__(self) -> "EmulatorThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- conveniences -----------------------------------------------------------------
    def set(self, model: str, spec: str | Behaviour) -> Behaviour:
        """Script ``model`` (``"*"`` = default) with a spec like ``"stream_cut:after=2"``."""
        return self.state.set_behaviour(model, spec)

    def attempts(self, model: str | None = None) -> list[dict[str, Any]]:
        return self.state.attempts(model)

    def clear(self) -> None:
        """Clear the attempt log."""
        self.state.clear_attempts()

    def reset(self) -> None:
        """All models healthy, counters and log cleared."""
        self.state.reset()

"""Run a real gateway (uvicorn on an ephemeral loopback port) in a background thread: for the tests, the demo
and the benchmark. Not imported by the serving path."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from gateway.app import GatewayApp, create_app
from gateway.server import PROTOCOL


class ManualClock:
    """A monotonic clock that tests can move forward: real time plus an offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class GatewayThread:
    """``with GatewayThread(config_dict_or_path, tmp_dir) as gw: gw.url`` -> ``http://127.0.0.1:PORT``."""

    def __init__(self, config: dict[str, Any] | str | Path, workdir: str | Path | None = None,
                 clock: Any = None, *, graceful_timeout: float = 5, ssl: dict[str, str] | None = None,
                 **app_kwargs: Any) -> None:
        if isinstance(config, dict):
            if workdir is None:
                raise ValueError("workdir is required when config is a dict")
            path = Path(workdir) / "gateway.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            config = path
        self.config_path = Path(config)
        self.clock = clock or ManualClock()
        self.graceful_timeout = graceful_timeout
        self.ssl = ssl or {}  # uvicorn's ssl_certfile / ssl_keyfile
        self.app: GatewayApp = create_app(self.config_path, clock=self.clock, **app_kwargs)
        self.gateway = self.app.gateway
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> GatewayThread:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, loop="asyncio", http=PROTOCOL,
                                lifespan="on", access_log=False, log_level="warning", proxy_headers=False,
                                timeout_graceful_shutdown=self.graceful_timeout, **self.ssl)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.run, name="gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None


    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

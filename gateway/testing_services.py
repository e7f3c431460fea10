"""Real services on loopback for the tests and the benchmark: ``redis-server`` and PostgreSQL, each on a free port
in a temporary directory, torn down after. Also ``GatewayProcess``: ``gateway serve --workers N`` as a child
process. Not imported by the serving path.

A missing binary is an error that says what to install (never a silent skip).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

def pg_bin() -> Path:
    """Where initdb/pg_ctl live: ``$GATEWAY_PG_BIN``, else the newest /usr/lib/postgresql/<version>/bin (Debian
    keeps the server binaries off PATH), else the directory of an ``initdb`` on PATH."""
    if os.environ.get("GATEWAY_PG_BIN"):
        return Path(os.environ["GATEWAY_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else Path("/usr/lib/postgresql/15/bin")


class MissingService(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


class RedisServer:
    """``redis-server`` on 127.0.0.1:<free port>, no persistence, data in a temp dir. ``kill``/``start`` again
    keep the port (for outage tests)."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise MissingService("redis-server is not installed: apt-get install redis-server "
                                 "(make test installs it when run as root)")
        self.dir = tempfile.mkdtemp(prefix="gw-redis-")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, 10, self.proc, "redis-server")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class PostgresServer:
    """A throw-away PostgreSQL cluster (``initdb`` + ``pg_ctl``) on 127.0.0.1:<free port>. PostgreSQL refuses to
    run as root: as root the cluster belongs to ``nobody`` (commands run through ``runuser``)."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        if not (self.bin / "initdb").exists():
            raise MissingService(f"PostgreSQL is not installed ({self.bin}/initdb missing): apt-get install "
                                 "postgresql (make test installs it when run as root)")
        self.dir = Path(tempfile.mkdtemp(prefix="gw-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = "gateway"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "nobody", "--"]
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/gateway"

    def _run(self, *cmd: str) -> None:
        r = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=60, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-500:]}")

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "30",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                        "-c synchronous_commit=off -c full_page_writes=off", "start")
        self.started = True
        if not (self.dir / "created").exists():
            self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "gateway")
            (self.dir / "created").touch()
        return self

    def database(self, name: str) -> str:
        """A fresh, empty database in this cluster (dropped first if it exists); returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def kill(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class GatewayProcess:
    """``gateway serve --config PATH --workers N`` on a free loopback port, as a child process (its own process
    group, so ``kill`` takes the workers too)."""

    def __init__(self, config: str | Path, workers: int = 2, env: dict[str, str] | None = None,
                 log: str | Path | None = None) -> None:
        self.config = str(config)
        self.workers = workers
        self.port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log) if log else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> GatewayProcess:
        """Start the process without waiting for it (``start`` waits); several replicas boot in parallel."""
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", self.config, "--port",
                                      str(self.port), "--workers", str(self.workers), "--log-level", "warning",
                                      "--graceful-timeout", "5"], env=self.env, stdout=out, stderr=out,
                                     start_new_session=True)
        return self

    def start(self, timeout: float = 30) -> GatewayProcess:
        if self.proc is None:
            self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway serve exited with {self.proc.returncode} (log: {self.log_path})")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:  # noqa: S310 - loopback
                    if r.status == 200:
                        return self
            time.sleep(0.05)
        raise RuntimeError(f"gateway serve did not answer within {timeout}s (log: {self.log_path})")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

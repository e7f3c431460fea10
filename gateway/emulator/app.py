"""aiohttp application for the provider emulator: wire routes + control endpoints.

Control endpoints (JSON):

* ``GET    /_emulator/health``            -> ``{"status": "ok"}``
* ``GET    /_emulator/attempts[?model=m]`` -> list of attempt dicts
* ``DELETE /_emulator/attempts``          -> clear the log
* ``GET    /_emulator/models``            -> ``{model: {"behaviour", "params", "spec"}}`` (``"*"`` = default)
* ``PUT    /_emulator/models/{model}``    body ``{"behaviour": "rate_limited", "params": {...}}``
  or ``{"spec": "rate_limited:retry_after=2"}``; resets that model's counters
* ``POST   /_emulator/reset``             -> all models healthy, counters + log cleared

Adding a wire format: write ``register(app, state)`` in its module and append it to
``WIRES`` below (or pass ``wires=`` to :func:`build_app`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Callable, Iterable

import orjson
from aiohttp import web

from gateway.emulator import anthropic_wire, azure_wire, bedrock_wire, embeddings_wire, gemini_wire, openai_wire
from gateway.emulator.behaviours import make_behaviour, parse_behaviour
from gateway.emulator.state import EmulatorState

WireHook = Callable[[web.Application, EmulatorState], None]

WIRES: tuple[WireHook, ...] = (
    embeddings_wire.register,  # first: gemini_wire's catch-all model route would take :embedContent
    openai_wire.register,
    anthropic_wire.register,
    gemini_wire.register,
    azure_wire.register,
    bedrock_wire.register,
)

STATE_KEY = web.AppKey("emulator_state", EmulatorState)
SHUTDOWN_TIMEOUT = 0.5  # seconds in-flight handlers get on shutdown before cancellation


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data, default=str), content_type="application/json"
    )


def _bad(message: str) -> web.Response:
    return _json({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, 400)


def _add_control_routes(app: web.Application, state: EmulatorState) -> None:
    async def health(request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def get_attempts(request: web.Request) -> web.Response:
        return _json(state.attempts(request.query.get("model")))

    async def clear_attempts(request: web.Request) -> web.Response:
        state.clear_attempts()
        return _json({"cleared": True})

    async def get_models(request: web.Request) -> web.Response:
        return _json({m: b.to_json() for m, b in state.behaviours().items()})

    async def put_model(request: web.Request) -> web.Response:
        model = request.match_info["model"]
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _bad("body must be JSON")
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        try:
            if "spec" in body:
                behaviour = state.set_behaviour(model, str(body["spec"]))
            elif "behaviour" in body:
                params = body.get("params") or {}
                if not isinstance(params, dict):
                    return _bad("params must be an object")
                behaviour = state.set_behaviour(model, make_behaviour(str(body["behaviour"]), params))
            else:
                return _bad('body needs "spec" or "behaviour"')
        except ValueError as exc:
            return _bad(str(exc))
        return _json({"model": model, **behaviour.to_json()})

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return _json({"reset": True})

    app.router.add_get("/_emulator/health", health)
    app.router.add_get("/_emulator/attempts", get_attempts)
    app.router.add_delete("/_emulator/attempts", clear_attempts)
    app.router.add_get("/_emulator/models", get_models)
    app.router.add_put("/_emulator/models/{model}", put_model)
    app.router.add_post("/_emulator/reset", reset)


def build_app(state: EmulatorState, wires: Iterable[WireHook] | None = None) -> web.Application:
    """Application serving every wire format in ``wires`` (default :data:`WIRES`) for ``state``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    for hook in WIRES if wires is None else wires:
        hook(app, state)
    _add_control_routes(app, state)
    return app


async def start(
    state: EmulatorState, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (``await runner.cleanup()`` to stop) and the bound port."""
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    return runner, bound


async def serve(
    host: str,
    port: int,
    state: EmulatorState,
    *,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until cancelled. ``on_ready(bound_port)`` is called once listening."""
    runner, bound = await start(state, host, port)
    try:
        if on_ready is not None:
            on_ready(bound)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def format_attempt(a: dict[str, Any]) -> str:
    """One log line per attempt (used by ``run(log_requests=True)``)."""
    flags = " disconnected" if a.get("disconnected") else ""
    return (
        f"#{a['seq']} {a['wire']} {a['path']} model={a['model']} stream={a['stream']} "
        f"behaviour={a['behaviour']} status={a['status']} tokens={a['tokens_sent']}{flags}"
    )


def run(
    host: str,
    port: int,
    scripts: dict[str, str],
    api_key: str | None = None,
    log_requests: bool = False,
) -> None:
    """Blocking entry point for ``gateway emulate``. ``scripts`` maps model -> behaviour spec
    (``"*"`` sets the default for unscripted models)."""

    def printer(a: dict[str, Any]) -> None:
        print(format_attempt(a), flush=True)

    state = EmulatorState(api_key=api_key, on_attempt=printer if log_requests else None)
    for model, spec in scripts.items():
        state.set_behaviour(model, spec)

    def ready(bound: int) -> None:
        print(f"provider emulator listening on http://{host}:{bound}", flush=True)
        for model, b in state.behaviours().items():
            print(f"  {model} = {b.spec()}", flush=True)

    try:
        asyncio.run(serve(host, port, state, on_ready=ready))
    except KeyboardInterrupt:
        print("emulator stopped", file=sys.stderr)


def parse_model_args(items: Iterable[str]) -> dict[str, str]:
    """``["gpt-5=withdrawn", "x=healthy:token_delay=0.01"]`` -> ``{model: spec}`` (ValueError if bad)."""
    out: dict[str, str] = {}
    for item in items:
        model, eq, spec = item.partition("=")
        if not eq or not model.strip() or not spec.strip():
            raise ValueError(f"--model expects MODEL=SPEC, got {item!r}")
        parse_behaviour(spec.strip())  # fail fast on typos
        out[model.strip()] = spec.strip()
    return out


def add_arguments(parser: Any) -> None:
    """Add the ``gateway emulate`` options to an argparse parser."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--model", action="append", default=[], metavar="MODEL=SPEC",
        help="script a model, e.g. gpt-5=withdrawn or x=healthy:token_delay=0.01 ('*' = default)",
    )
    parser.add_argument("--api-key", default=None, help="require exactly this bearer key")
    parser.add_argument("--log-requests", action="store_true", help="print one line per attempt")


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.emulator`` / ``gateway emulate`` entry point."""
    import argparse

    parser = argparse.ArgumentParser(prog="gateway emulate", description="LLM provider emulator")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        scripts = parse_model_args(args.model)
    except ValueError as exc:
        parser.error(str(exc))
    run(args.host, args.port, scripts, args.api_key, args.log_requests)
    return 0

"""Command line: ``gateway serve | check | emulate | keys``. ``python -m gateway`` is the same."""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from collections.abc import Sequence

from gateway.errors import ConfigError

CONFIG_ENV = "GATEWAY_CONFIG"


def _factory():  # used by uvicorn (also with --workers N, where each worker imports it)
    from gateway.app import create_app

    return create_app(os.environ[CONFIG_ENV])


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.config.loader import load_config

    try:
        load_config(args.config)  # fail fast, with the precise message, before starting workers
    except ConfigError as e:
        print(f"gateway: invalid config\n{e}", file=sys.stderr)
        return 2
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    uvicorn.run(
        "gateway.cli:_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        lifespan="on",
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.config.loader import load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"{args.file}: OK ({len(cfg.providers)} providers, {len(cfg.models)} models, {len(cfg.routes)} routes)")
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    from gateway.emulator.app import run

    scripts = {}
    for item in args.model or []:
        name, sep, spec = item.partition("=")
        if not sep:
            print(f"gateway emulate: --model expects NAME=BEHAVIOUR, got {item!r}", file=sys.stderr)
            return 2
        scripts[name] = spec
    try:
        run(args.host, args.port, scripts, args.api_key, not args.quiet)
    except ValueError as e:
        print(f"gateway emulate: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_cmd == "new":
        key = "gw-" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(key.encode()).hexdigest()
        print(f"key (shown once, give it to the caller): {key}")
        print("add to keys: in the config:")
        print(f"  - {{name: {args.name}, sha256: {digest}}}")
        return 0
    data = sys.stdin.readline().strip() if args.key == "-" else args.key
    print(hashlib.sha256(data.encode()).hexdigest())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description="Multi-provider LLM failover gateway")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--log-level", default="info")
    s.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="seconds to let in-flight requests finish on SIGTERM")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check", help="validate a config file")
    c.add_argument("file")
    c.set_defaults(func=cmd_check)

    e = sub.add_parser("emulate", help="serve emulated providers on loopback")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=9100)
    e.add_argument("--model", action="append", metavar="NAME=BEHAVIOUR",
                   help="e.g. gpt-5=withdrawn or fable-5=rate_limited:retry_after=2 (repeatable)")
    e.add_argument("--api-key", default=None, help="require this key (default: any non-empty key)")
    e.add_argument("--quiet", action="store_true", help="do not print one line per attempt")
    e.set_defaults(func=cmd_emulate)

    k = sub.add_parser("keys", help="gateway keys")
    ksub = k.add_subparsers(dest="keys_cmd", required=True)
    kn = ksub.add_parser("new", help="make a new random key and print its config line")
    kn.add_argument("name")
    kh = ksub.add_parser("hash", help="print the sha256 of a key ('-' reads stdin)")
    kh.add_argument("key")
    k.set_defaults(func=cmd_keys)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))

"""Command line: ``gateway serve | check | emulate | keys``. ``python -m gateway`` is the same."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from gateway.errors import ConfigError

CONFIG_ENV = "GATEWAY_CONFIG"


def _factory():  # used by uvicorn (also with --workers N, where each worker imports it)
    from gateway.app import create_app

    return create_app(os.environ[CONFIG_ENV])


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.config.loader import load_config
    from gateway.server import PROTOCOL

    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        print("gateway: --ssl-certfile and --ssl-keyfile go together", file=sys.stderr)
        return 2

    try:
        load_config(args.config)  # fail fast, with the precise message, before starting workers
    except ConfigError as e:
        print(f"gateway: invalid config\n{e}", file=sys.stderr)
        return 2
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics answers for the whole process tree, whichever worker takes the scrape (see Metrics.exposition).
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
    elif os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # set by the deployment (an emptyDir): it must exist
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    uvicorn.run(
        "gateway.cli:_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http=PROTOCOL,  # uvicorn's httptools protocol plus the gateway's connection limits and timeouts
        access_log=False,
        proxy_headers=False,  # the gateway does not use the client address; the middleware costs per request
        log_level=args.log_level,
        timeout_graceful_shutdown=args.graceful_timeout,
        lifespan="on",
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
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
    if getattr(args, "strict", False):
        from gateway.reports.strict import report

        passed, text = report(cfg, args.file)
        print(text, file=sys.stdout if passed else sys.stderr)
        return 0 if passed else 1
    return 0


def _report_config(args: argparse.Namespace) -> Any:
    from gateway.reports.common import load_runtime

    return load_runtime(args.config)


def cmd_audit(args: argparse.Namespace) -> int:
    from gateway.reports import dependency
    from gateway.reports.common import audit_rows, parse_window

    try:
        if args.diff:
            from gateway.reports import diff
            from gateway.reports.common import load_runtime

            old, new = (load_runtime(f) for f in args.diff)
            print(diff.render(diff.diff(old, new), args.format), end="")
            return 0
        rt = _report_config(args)
        window = parse_window(args.window)
        rows, db = audit_rows(rt, args.config, args.db, window)
    except (ConfigError, ValueError, OSError) as e:
        print(f"gateway audit: {e}", file=sys.stderr)
        return 2
    print(dependency.render(dependency.build(rt, rows, window, db), args.format), end="")
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from gateway.reports import whatif
    from gateway.reports.common import audit_rows, parse_window

    try:
        rt = _report_config(args)
        specs = whatif.parse_specs(args.withdraw)
        caller = dict(whatif.parse_specs(args.for_caller, "--for-caller")) if args.for_caller else None
        rows, _ = audit_rows(rt, args.config, args.db, parse_window(args.window))
        res = whatif.simulate(rt, specs, rows, caller=caller, key_name=args.key)
    except (ConfigError, ValueError, OSError) as e:
        print(f"gateway whatif: {e}", file=sys.stderr)
        return 2
    print(whatif.render(res, args.format), end="")
    return 1 if res["broken_routes"] else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.reports import explain

    try:
        rt = _report_config(args)
        if args.request:
            request = json.loads(Path(args.request).read_text(encoding="utf-8"))
            if not isinstance(request, dict):
                raise ValueError(f"{args.request}: expected a JSON object (an OpenAI chat request)")
            if "messages" in request:
                from gateway.api.validate import validate_chat
                from gateway.errors import GatewayError

                try:
                    validate_chat(request)
                except GatewayError as e:
                    raise ValueError(f"{args.request}: {e.message}") from None
        else:
            request = {"messages": [{"role": "user", "content": args.prompt or ""}]}
        if args.model:
            request["model"] = args.model
        headers = {"x-gateway-route": args.route} if args.route else None
        if args.url:
            if not args.admin_key:
                print("gateway explain: --url needs an admin key (GATEWAY_ADMIN_KEY)", file=sys.stderr)
                return 2
            status, data = _admin_request(args, "GET", "/admin/state")
            if status >= 400:
                print(f"gateway explain: {args.url}/admin/state: HTTP {status}", file=sys.stderr)
                return 2
            state = data["models"]
        else:
            from gateway.config.paths import state_dir

            sd = state_dir(rt.config, args.config) or Path("state")
            store = rt.config.store
            db = store.url if store.backend == "postgres" and store.url else sd / "withdrawals.sqlite"
            state = explain.withdrawals_state(rt, db)
        res = explain.explain(rt, request, key_name=args.key_name, headers=headers, state=state)
    except (ConfigError, ValueError, OSError) as e:
        print(f"gateway explain: {e}", file=sys.stderr)
        return 2
    print(explain.render(res, args.format), end="")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """``gateway classify eval``: the task classifier's accuracy on the held-out corpus for a config's routes."""
    from gateway.routing.classify import build_classifier, route_examples
    from gateway.routing.classify.corpus import builtin_corpus, challenge_set, load_corpus_file
    from gateway.routing.classify.evaluate import evaluate, render

    try:
        rt = _report_config(args)
        config = rt.config
        if not route_examples(config):
            raise ValueError(f"{args.config}: no route has a classify block")
        clf = rt.classifier
        if args.engine and args.engine != config.classifier.engine:
            config = config.model_copy(update={"classifier": config.classifier.model_copy(
                update={"engine": args.engine})})
            clf = None
        corpus = load_corpus_file(args.corpus) if args.corpus else list(builtin_corpus())
        if clf is None or args.corpus:
            clf = build_classifier(config, corpus)
        tasks = {r.classify.builtin: n for n, r in config.routes.items() if r.classify and r.classify.builtin}
        if args.split == "challenge":  # never trained on: the classifier fits the train split only
            corpus = [*corpus, *challenge_set()]
        res = evaluate(clf, tasks, corpus, args.split)
    except (ConfigError, ValueError, OSError) as e:
        print(f"gateway classify: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=2) if args.format == "json" else render(res), end="\n" if args.format == "json"
          else "")
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
        prefix = "gwa-" if args.admin else "gw-"
        key = prefix + secrets.token_urlsafe(32)
        digest = hashlib.sha256(key.encode()).hexdigest()
        entry: dict[str, Any] = {"name": args.name, "sha256": digest}
        if not args.admin:
            attrs = {}
            for item in args.attr or []:
                k, sep, v = item.partition("=")
                if not sep or not k:
                    print(f"gateway keys new: --attr expects KEY=VALUE, got {item!r}", file=sys.stderr)
                    return 2
                attrs[k] = v
            if attrs:
                entry["attributes"] = attrs
            if args.routes:
                entry["routes"] = args.routes.split(",")
            if args.models:
                entry["models"] = args.models.split(",")
            if args.rate_limit:
                entry["rate_limit"] = args.rate_limit
        line = json.dumps(entry, separators=(", ", ": "))
        print(f"key (shown once, give it to the {'admin' if args.admin else 'caller'}): {key}")
        print(f"add to {'admin_keys' if args.admin else 'keys'}: in the config:")
        print(f"  - {line}")
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
    s.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this PEM certificate (chain)")
    s.add_argument("--ssl-keyfile", default=None, help="the certificate's PEM private key")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check", help="validate a config file")
    c.add_argument("file")
    c.add_argument("--strict", action="store_true",
                   help="also fail when a route has no fallback from another vendor or another jurisdiction "
                        "(unless it declares single_vendor_ok)")
    c.set_defaults(func=cmd_check)

    default_config = os.environ.get(CONFIG_ENV, "config/gateway.yaml")
    formats = ["table", "markdown", "json"]
    au = sub.add_parser("audit", help="dependency report: routes, vendors, jurisdictions, traffic from the audit log")
    au.add_argument("--config", default=default_config, help=f"config file (env {CONFIG_ENV})")
    au.add_argument("--db", help="audit database (default: the config's audit.path)")
    au.add_argument("--window", default="30d", help="traffic window, e.g. 7d, 24h (default 30d)")
    au.add_argument("--format", choices=formats, default="table")
    au.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"), help="dependency diff between two config files")
    au.set_defaults(func=cmd_audit)

    w = sub.add_parser("whatif", help="what breaks if a vendor/model/provider/jurisdiction is withdrawn")
    w.add_argument("--withdraw", action="extend", nargs="+", required=True, metavar="KIND=NAME",
                   help="vendor=Anthropic, model=..., provider=..., jurisdiction=... (several allowed)")
    w.add_argument("--for-caller", action="extend", nargs="+", metavar="ATTR=VALUE",
                   help="apply the config's policies for a caller with these attributes, e.g. jurisdiction=DE")
    w.add_argument("--key", help="apply the policies (and models: restriction) of this configured key")
    w.add_argument("--config", default=default_config, help=f"config file (env {CONFIG_ENV})")
    w.add_argument("--db", help="audit database (default: the config's audit.path)")
    w.add_argument("--window", default="30d", help="traffic window (default 30d)")
    w.add_argument("--format", choices=formats, default="table")
    w.set_defaults(func=cmd_whatif)

    x = sub.add_parser("explain", help="which route and models a request would use, and why")
    x.add_argument("request", nargs="?", help="request JSON file (an OpenAI chat completions body)")
    x.add_argument("--prompt", help="the user message, instead of a request file")
    x.add_argument("--model", help="the request's model field (route, alias, model or auto)")
    x.add_argument("--route", help="as the x-gateway-route header")
    x.add_argument("--key-name", help="the caller: a key name from the config")
    x.add_argument("--config", default=default_config, help=f"config file (env {CONFIG_ENV})")
    x.add_argument("--url", help="a running gateway: use its live state (breakers, cooling, drills)")
    x.add_argument("--admin-key", default=os.environ.get("GATEWAY_ADMIN_KEY"), help="admin key for --url")
    x.add_argument("--format", choices=formats[::2], default="table")
    x.set_defaults(func=cmd_explain)

    cl = sub.add_parser("classify", help="the task classifier for auto routing")
    clsub = cl.add_subparsers(dest="classify_cmd", required=True)
    ce = clsub.add_parser("eval", help="accuracy, per-route precision/recall and confusion on the held-out corpus")
    ce.add_argument("--config", default=default_config, help=f"config file (env {CONFIG_ENV})")
    ce.add_argument("--corpus", help="a corpus in the shipped corpus.yaml format (default: the shipped corpus)")
    ce.add_argument("--engine", choices=["builtin", "embedding"], help="override the config's classifier.engine")
    ce.add_argument("--split", choices=["test", "challenge"], default="test",
                    help="score the held-out split (default) or the challenge set (word traps, unworded tasks)")
    ce.add_argument("--format", choices=["table", "json"], default="table")
    ce.set_defaults(func=cmd_classify)

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
    kn.add_argument("--attr", action="append", metavar="KEY=VALUE", help="caller attribute, e.g. jurisdiction=US")
    kn.add_argument("--routes", help="comma-separated routes this key may use (default: all)")
    kn.add_argument("--models", help="comma-separated models that may serve this key (default: all)")
    kn.add_argument("--rate-limit", type=int, help="requests per minute")
    kn.add_argument("--admin", action="store_true", help="make an admin key (for admin_keys:)")
    kh = ksub.add_parser("hash", help="print the sha256 of a key ('-' reads stdin)")
    kh.add_argument("key")
    k.set_defaults(func=cmd_keys)

    a = sub.add_parser("admin", help="operate a running gateway: withdraw, reinstate, drill, state, reload")
    a.add_argument("--url", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"),
                   help="gateway base URL (env GATEWAY_URL)")
    a.add_argument("--admin-key", default=os.environ.get("GATEWAY_ADMIN_KEY"),
                   help="admin key (env GATEWAY_ADMIN_KEY; prefer the variable: arguments show in ps)")
    asub = a.add_subparsers(dest="admin_cmd", required=True)
    aw = asub.add_parser("withdraw", help="take a model/provider/vendor out of all traffic now")
    aw.add_argument("target", choices=["model", "provider", "vendor"])
    aw.add_argument("name")
    aw.add_argument("--reason", required=True)
    aw.add_argument("--reference", default="", help="e.g. the legal document")
    aw.add_argument("--actor", help="who (default: the admin key's name)")
    aw.add_argument("--contact", choices=["never", "recheck"], default="never")
    ar = asub.add_parser("reinstate", help="end a withdrawal")
    ar.add_argument("target", choices=["model", "provider", "vendor"])
    ar.add_argument("name")
    ar.add_argument("--actor")
    ad = asub.add_parser("drill", help="rehearse a withdrawal for a while")
    ad.add_argument("target", choices=["model", "provider", "vendor"])
    ad.add_argument("name")
    ad.add_argument("--duration", required=True, help="e.g. 10m")
    ad.add_argument("--reason", default="failover drill")
    ad.add_argument("--actor")
    asub.add_parser("state", help="show config version, model states, withdrawals, drills, policies")
    asub.add_parser("reload", help="reload the config file now")
    a.set_defaults(func=cmd_admin)
    return p


def _admin_request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method,
                                 headers={"authorization": f"Bearer {args.admin_key}",
                                          "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:  # noqa: S310 - operator-given URL
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, {"error": {"message": e.reason}}


def _print_state(st: dict[str, Any]) -> None:
    c = st["config"]
    print(f"config {c['version']} loaded {c['loaded_at']} from {c['path']}")
    lr = c.get("last_reload")
    if lr:
        print(f"last reload: {lr['result']} ({lr['trigger']}, {lr['at']})")
        for e in lr.get("errors") or ():
            print(f"  {e}")
    print("\nmodels:")
    for name, m in st["models"].items():
        extra = ""
        if "withdrawal" in m:
            w = m["withdrawal"]
            extra = f"  by {w['actor']} at {w['created_at']}: {w['reason']} [{w['reference']}] contact={w['contact']}"
        elif "drill" in m:
            extra = f"  DRILL until {m['drill']['until']} ({m['drill']['remaining_s']}s left) by {m['drill']['actor']}"
        elif m.get("until_in_s") is not None:
            extra = f"  for {m['until_in_s']}s"
        print(f"  {name:<24} {m['provider']:<14} {m['state']:<22} breaker={m['breaker']}{extra}")
    print("\npolicies:" if st["policies"] else "\npolicies: none")
    for p in st["policies"]:
        cond = "".join(f" {k}={p[k]}" for k in ("when", "unless") if k in p)
        print(f"  {p['name']}: deny {', '.join(p['denied_models'])}{cond} - {p['reason']}")


def cmd_admin(args: argparse.Namespace) -> int:
    if not args.admin_key:
        print("gateway admin: no admin key (use --admin-key or GATEWAY_ADMIN_KEY)", file=sys.stderr)
        return 2
    import http.client

    try:
        return _admin_cmd(args)
    except (OSError, ValueError, http.client.HTTPException) as e:  # unreachable, bad URL, not a gateway's JSON
        print(f"gateway admin {args.admin_cmd}: {args.url}: {getattr(e, 'reason', None) or e}", file=sys.stderr)
        return 2


def _admin_cmd(args: argparse.Namespace) -> int:
    cmd = args.admin_cmd
    if cmd == "withdraw":
        body = {"target": args.target, "name": args.name, "reason": args.reason, "reference": args.reference,
                "contact": args.contact}
        if args.actor:
            body["actor"] = args.actor
        status, data = _admin_request(args, "POST", "/admin/withdrawals", body)
    elif cmd == "reinstate":
        import urllib.parse

        q = f"?actor={urllib.parse.quote(args.actor)}" if args.actor else ""
        path = f"/admin/withdrawals/{urllib.parse.quote(args.target)}/{urllib.parse.quote(args.name, safe='')}{q}"
        status, data = _admin_request(args, "DELETE", path)
    elif cmd == "drill":
        body = {"target": args.target, "name": args.name, "duration": args.duration, "reason": args.reason}
        if args.actor:
            body["actor"] = args.actor
        status, data = _admin_request(args, "POST", "/admin/drills", body)
    elif cmd == "reload":
        status, data = _admin_request(args, "POST", "/admin/reload")
    else:
        status, data = _admin_request(args, "GET", "/admin/state")
    if status >= 400:
        err = (data.get("error") if isinstance(data, dict) else None) or {}
        err = err if isinstance(err, dict) else {"message": err}
        print(f"gateway admin {cmd}: HTTP {status}: {err.get('message', data)}", file=sys.stderr)
        return 1
    prop = data.get("propagation") if isinstance(data, dict) else None
    if prop is not None:  # a fleet (state.backend: redis): who applied the change before the call returned
        line = f"fleet: applied by {len(prop['applied'])} of {len(prop['workers'])} workers in {prop['seconds']}s"
        if prop["not_applied"]:
            print(f"{line}; NOT confirmed by: {', '.join(prop['not_applied'])}", file=sys.stderr)
        else:
            print(line)
    if cmd == "state":
        _print_state(data)
    elif cmd == "withdraw":
        w = data["withdrawal"]
        print(f"withdrawn: {w['target']} {w['name']} -> models {', '.join(data['models'])} (contact={w['contact']}, "
              f"by {w['actor']} at {w['created_at']})")
    elif cmd == "reinstate":
        print(f"reinstated: {args.target} {args.name} -> models {', '.join(data['models']) or '(none configured)'}")
    elif cmd == "drill":
        d = data["drill"]
        print(f"drill: {d['target']} {d['name']} out of traffic until {d['until']} "
              f"(models {', '.join(data['models'])})")
    else:
        r = data["reload"]
        print(f"reload: {r['result']}, running version {r['version']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))

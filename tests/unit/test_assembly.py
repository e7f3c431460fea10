"""The assembly's shape: endpoint and admin components are given small services, never the ``Gateway``.

``gateway.app`` builds the services and imports ``gateway.api`` and ``gateway.admin``; nothing there imports
``gateway.app`` back (not even for type checking), and no component takes a ``gw`` parameter to reach into.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).parent
COMPONENTS = ("api", "admin", "audit", "state", "failover", "services.py")


def _modules() -> list[Path]:
    out: list[Path] = []
    for name in COMPONENTS:
        p = ROOT / name
        out.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return out


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "gateway":
                names.update(f"gateway.{a.name}" for a in node.names)
    return names


def test_components_never_import_the_assembly() -> None:
    offenders = {str(p.relative_to(ROOT)) for p in _modules() if "gateway.app" in _imports(ast.parse(p.read_text()))}
    assert _modules() and not offenders, f"import gateway.app (the assembly) back: {sorted(offenders)}"


def test_components_take_services_not_the_gateway() -> None:
    offenders = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                if any(a.arg in ("gw", "gateway") for a in args):
                    offenders.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not offenders, f"take the whole Gateway: {offenders}"

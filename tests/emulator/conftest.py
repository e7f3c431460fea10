"""Make the repo root importable when the package is not installed (no pyproject pythonpath yet)."""

import importlib.util
import pathlib
import sys

if importlib.util.find_spec("gateway") is None:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

"""The labelled corpus shipped with the gateway (``corpus.yaml``) and operators' examples files.

``builtin_corpus()`` composes the shipped file into ``Example`` rows (text, label, split): prose prompts as
they are, and request phrasings followed by code (see the file's header for how labels and the train/test
split are assigned). ``read_examples_file`` reads an operator's file: YAML (a list of strings, or of mappings
with ``text``), JSON Lines (``{"text": ...}`` per line) or plain text (one prompt per non-empty line); any
problem raises ``ValueError`` with a message the config loader prefixes with the file's path.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_EXAMPLES_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    split: str = "train"  # train | test | challenge


def _held_out(i: int) -> bool:
    return i % 4 == 3


def compose(doc: dict) -> list[Example]:
    out: list[Example] = []

    def split(i: int) -> str:
        return "test" if _held_out(i) else "train"

    for key, label in (("security_prose", "security-review"), ("general_prose", "general")):
        out += [Example(t.strip(), label, split(i)) for i, t in enumerate(doc[key])]
    asks = {kind: {s: [a for i, a in enumerate(doc[kind]) if split(i) == s] for s in ("train", "test")}
            for kind in ("plain_asks", "security_asks")}
    for key, vulnerable in (("vulnerable_code", True), ("benign_code", False)):
        for i, code in enumerate(doc[key]):
            s = split(i)
            plain, sec = asks["plain_asks"][s], asks["security_asks"][s]
            # Deterministic pairing; the stride spreads phrasings across snippets and languages.
            ask_p = plain[(i * 7 + (0 if vulnerable else 3)) % len(plain)]
            ask_s = sec[(i * 5 + (1 if vulnerable else 0)) % len(sec)]
            body = code.rstrip("\n")
            # Half the prompts put the ask first, half after the code: both occur in the wild.
            p_text = f"{ask_p}\n\n{body}" if i % 2 == 0 else f"{body}\n\n{ask_p}"
            s_text = f"{ask_s}\n\n{body}" if i % 2 == 1 else f"{body}\n\n{ask_s}"
            out.append(Example(p_text, "security-review" if vulnerable else "general", s))
            out.append(Example(s_text, "security-review", s))
    return out


def builtin_corpus() -> tuple[Example, ...]:
    """The shipped corpus (package data), read afresh: a few ms with the C YAML loader, once per build."""
    text = resources.files("gateway.routing.classify").joinpath("corpus.yaml").read_text(encoding="utf-8")
    return tuple(compose(yaml.load(text, Loader=_LOADER)))


def challenge_set() -> tuple[Example, ...]:
    """The challenge set (``challenge.yaml``, package data): prompts written apart from the corpus to probe word
    traps and unworded security tasks; never trained on (split ``challenge``)."""
    text = resources.files("gateway.routing.classify").joinpath("challenge.yaml").read_text(encoding="utf-8")
    doc = yaml.load(text, Loader=_LOADER)
    return tuple(Example(t.strip(), label, "challenge") for label in ("security-review", "general")
                 for t in doc[label])


def load_corpus_file(path: str | Path) -> list[Example]:
    """A corpus in the shipped format (``gateway classify eval --corpus``). Raises ``ValueError``."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read corpus: {e}") from None
    keys = ("security_prose", "general_prose", "plain_asks", "security_asks", "vulnerable_code", "benign_code")
    if not isinstance(doc, dict) or any(not isinstance(doc.get(k), list) or not doc[k] for k in keys):
        raise ValueError(f"a corpus is a mapping with non-empty lists {', '.join(keys)}")
    if any(not isinstance(x, str) for k in keys for x in doc[k]):
        raise ValueError("every corpus entry must be a string")
    return compose(doc)


def read_regular_file(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``ValueError`` otherwise (the caller adds the
    path). Anything else is refused before it is opened: a FIFO would block a reload forever and a device
    such as /dev/zero would be read without end."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if limit is not None and st.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        with path.open("rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"cannot read: {e.strerror or e}") from None
    if limit is not None and len(data) > limit:  # grew since the stat
        raise ValueError(f"larger than {limit} bytes")
    return data


def read_examples_file(path: Path) -> list[str]:
    """Example prompts from an operator's file. Raises ``ValueError`` (the caller adds the path)."""
    data = read_regular_file(path, MAX_EXAMPLES_FILE_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text: {e}") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
        if isinstance(doc, dict) and "examples" in doc:
            doc = doc["examples"]
        if not isinstance(doc, list):
            raise ValueError("expected a YAML list of example prompts")
        items = [x.get("text") if isinstance(x, dict) else x for x in doc]
        return _strings(items)
    if suffix == ".jsonl":
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ValueError(f"line {n}: invalid JSON: {e}") from None
            items.append(obj.get("text") if isinstance(obj, dict) else obj)
        return _strings(items, "line")
    return _strings([line.strip() for line in text.splitlines() if line.strip()], "line")


def _strings(items: list, what: str = "entry") -> list[str]:
    out = []
    for i, x in enumerate(items):
        if not isinstance(x, str) or not x.strip():
            hint = " (quote an entry that contains ': ')" if isinstance(x, dict) else ""
            raise ValueError(f"{what} {i + 1}: expected a non-empty string (or a mapping with text){hint}")
        out.append(x)
    if not out:
        raise ValueError("no examples in the file")
    return out

"""Task classifier cost per request (part of ``make bench``; alone: ``python bench/classify_cost.py``).

In-process, pinned to one core: ``Classifier.classify`` on held-out corpus prompts (short, as most requests
are) and on 512-token prompts (code and prose from the corpus, 512 WordPiece tokens or more), for the builtin
engine and the embedding engine. The embedding engine's cache of corpus vectors is emptied first so every
prompt is really embedded. Prints p50/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIG = {
    "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}},
    "models": {"m1": {"provider": "p", "model": "m1"}, "m2": {"provider": "p", "model": "m2"}},
    "routes": {"security-review": {"models": ["m1"], "classify": {"builtin": "security-review"}},
               "general": {"models": ["m2"]}},
    "default_route": "general",
}


def long_prompts(corpus: list, count: int, tokens: int = 512) -> list[str]:
    from tokenizers import Tokenizer

    from gateway.routing.classify.engines import DEFAULT_TOKENIZER, _package_file

    tok = Tokenizer.from_file(str(_package_file(*DEFAULT_TOKENIZER[:2])))
    tok.no_truncation()
    tok.no_padding()
    out = []
    for i in range(count):
        parts, n, j = [], 0, i
        while n < tokens:
            parts.append(corpus[j % len(corpus)].text)
            n = len(tok.encode("\n\n".join(parts)).ids)
            j += 7
        out.append("\n\n".join(parts))
    return out


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1e3


def measure(clf, prompts: list[str], rounds: int) -> dict[str, float]:
    """Wall time and this thread's CPU time per call. On a shared machine the wall time includes waiting for
    the core; the CPU time is what one classification costs (the steadier figure, as for the HTTP bench)."""
    for p in prompts[:5]:
        clf.classify(p)  # warm up
    wall, cpu = [], []
    for _ in range(rounds):
        for p in prompts:
            c0, t0 = time.thread_time(), time.perf_counter()
            clf.classify(p)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
    wall.sort()
    cpu.sort()
    return {"n": len(wall), "p50": statistics.median(wall) * 1e3, "p99": _pct(wall, 0.99),
            "cpu_p50": statistics.median(cpu) * 1e3, "cpu_p99": _pct(cpu, 0.99)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="passes over the prompts (builtin engine)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from gateway.config.loader import parse_config
    from gateway.routing.classify import build_classifier
    from gateway.routing.classify.corpus import builtin_corpus

    corpus = list(builtin_corpus())
    short = [e.text for e in corpus if e.split == "test"]
    long = long_prompts(corpus, 40)
    print("\nTask classifier cost (one core, in-process; ms per request)\n")
    print("| engine | prompts | n | CPU p50 ms | CPU p99 ms | wall p50 ms | wall p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for engine, rounds in (("builtin", args.rounds), ("embedding", 1)):
        cfg = parse_config({**CONFIG, "classifier": {"engine": engine}}, "bench.yaml", {})
        clf = build_classifier(cfg)
        if engine == "embedding":
            clf.engine._cache.clear()  # measure real embedding runs, not the shipped corpus vectors
        for label, prompts in (("held-out corpus (short)", short), ("512 tokens", long)):
            m = measure(clf, prompts, rounds)
            print(f"| {engine} | {label} | {m['n']} | {m['cpu_p50']:.3f} | {m['cpu_p99']:.3f} | {m['p50']:.3f} "
                  f"| {m['p99']:.3f} |")
    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What of a continuation may reach the client: the rule that keeps a continued stream from splicing two answers.

A model asked to continue a cut answer may instead repeat it (whole, or its last sentence) before continuing, or
start the answer again in other words. ``SpliceGuard`` holds the continuation's opening text until it can tell:

* it repeats the whole answer so far, or at least ``MIN_TAIL`` of its last words (after normalising
  whitespace): the repeated words are dropped and the rest is forwarded, so the client sees each word once;
* its opening resembles the answer's opening (``looks_restarted``): ``Restarted`` is raised and nothing of it is
  forwarded (the caller ends the stream with the ``stream_interrupted`` error event);
* otherwise it is a real continuation and is forwarded as is.

Pure: text in, text out. Holding costs at most ``HOLD_WORDS + PREAMBLE`` words of latency at the start of a
continuation, never the rest of the stream.
"""

from __future__ import annotations

import difflib
import re

HOLD_WORDS = 12  # words of the answer's opening compared with the continuation's opening
PREAMBLE = 4  # extra continuation words allowed before a restarted answer ("Sure, here it is again:")
MIN_TAIL = 2  # a repeated tail shorter than this (and not the whole answer) is taken as coincidence
_WORD = re.compile(r"\S+")
_NORM = re.compile(r"[^\w]+")


class Restarted(Exception):
    """The continuation starts the answer again in other words."""


def _norm(words: list[str]) -> list[str]:
    out = []
    for w in words:
        n = _NORM.sub("", w.lower())
        if n:
            out.append(n)
    return out


def _similarity(a: list[str], b: list[str]) -> float:
    """Share of ``a``'s tokens that ``b`` has in the same order."""
    if not a or not b:
        return 0.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(a)


def _opens_again(opening: list[str], cont: list[str]) -> bool:
    """The continuation repeats the answer's first two words, in a row, at its start or right after a preamble
    sentence ("Let me start again. ...") of at most ``PREAMBLE`` words."""
    words = [_NORM.sub("", w.lower()) for w in cont[:PREAMBLE + 2]]
    for i in range(min(PREAMBLE + 1, len(words) - 1)):
        if words[i] == opening[0] and words[i + 1] == opening[1] and (i == 0 or cont[i - 1][-1] in ".:!?"):
            return True
    return False


def looks_restarted(sent: list[str], cont: list[str]) -> bool:
    """True when the continuation's opening shares at least half of the answer's opening words, in order.

    When the answer so far is long enough to have more after its opening, the opening must also resemble the
    continuation more than any later stretch of the answer does: a list or a table continued in the same shape
    ("Step 7: ...") resembles its latest rows at least as much, a restart resembles the beginning best.
    """
    opening = _norm(sent[:HOLD_WORDS])
    b = _norm(cont[:HOLD_WORDS + PREAMBLE])
    if len(opening) < 2 or not b:
        return False
    sim = _similarity(opening, b)
    if sim * len(opening) < 3 or sim < 0.5:
        # Two or three words sent are too few for a share; a restart still opens with the answer's first two
        # words together, right after at most a short preamble.
        return len(opening) <= 3 and _opens_again(opening, cont)
    rest = _norm(sent[HOLD_WORDS:])[-4 * HOLD_WORDS:]
    if len(rest) >= HOLD_WORDS:
        # The best-aligned window of the answer after its opening (once per continuation: at most 37 windows).
        later = max(_similarity(rest[i:i + HOLD_WORDS], b) for i in range(len(rest) - HOLD_WORDS + 1))
        return sim > later + 0.05  # it resembles the beginning best: a restart
    return True


class SpliceGuard:
    """One continuation. ``feed`` each text delta, forward what it returns; ``finish`` at the end of the
    continuation (or before its finish chunk) and forward that too. Either may raise ``Restarted``."""

    __slots__ = ("sent", "partial", "buf", "decided")

    def __init__(self, sent: str) -> None:
        self.sent = sent.split()
        # The cut may have fallen inside a word ("secur|ity"): a continuation may then start mid-word.
        self.partial = bool(sent) and not sent[-1].isspace()
        self.buf = ""
        self.decided = False

    def feed(self, text: str) -> str:
        if self.decided:
            return text
        self.buf += text
        return self._decide(final=False)

    def finish(self) -> str:
        if self.decided:
            return ""
        return self._decide(final=True)

    # -- decision --------------------------------------------------------------------------------------------
    def _decide(self, final: bool) -> str:
        spans = [(m.start(), m.end()) for m in _WORD.finditer(self.buf)]
        if not final and spans and spans[-1][1] == len(self.buf):
            spans = spans[:-1]  # the last word may still grow
        words = [self.buf[s:e] for s, e in spans]
        n, m = len(self.sent), len(words)
        if n == 0:
            return self._forward()
        pending = False
        best = 0
        for j in range(n, 0, -1):  # overlap of j words: the answer's last j words open the continuation
            if j < MIN_TAIL and j != n:
                continue
            k = min(j, m)
            if all(self._same(n - j + i, words[i]) for i in range(k)):
                if m >= j:
                    best = max(best, j)
                else:
                    pending = True
        if pending and not final:
            return ""
        if best:
            return self._drop(best, spans, words)
        if not final and m < min(n, HOLD_WORDS) + PREAMBLE:
            return ""  # not enough of the continuation yet to tell a restart from a continuation
        if looks_restarted(self.sent, words):
            raise Restarted()
        return self._forward()

    def _same(self, i: int, word: str) -> bool:
        s = self.sent[i]
        if s == word:
            return True
        # The answer's last word, cut mid-word, repeated whole by the continuation.
        return i == len(self.sent) - 1 and self.partial and word.startswith(s)

    def _drop(self, j: int, spans: list[tuple[int, int]], words: list[str]) -> str:
        end = spans[j - 1][1]
        rest = self.buf[end:]
        last = self.sent[-1]
        if self.partial and words[j - 1] != last:  # "secur" was sent, "security" repeated: keep "ity"
            rest = words[j - 1][len(last):] + rest
        self.decided = True
        self.buf = ""
        return rest

    def _forward(self) -> str:
        self.decided = True
        out, self.buf = self.buf, ""
        return out

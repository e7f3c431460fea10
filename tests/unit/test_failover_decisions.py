"""The decision table's steps, the breaker's back-off, the splice guard, the tool-call gate, capabilities and the
capability config: pure units, no network, injected clocks."""

from __future__ import annotations

import pytest

from gateway.api.splice import Restarted, SpliceGuard
from gateway.api.reading import ToolCallGate, _Assembler
from gateway.config.model import FailoverConfig, ModelConfig
from gateway.errors import ErrorKind, UpstreamError
from gateway.failover.breaker import BreakerState, CircuitBreaker
from gateway.failover.candidates import continuation_chain, required_capabilities
from gateway.failover.table import PREFILL_REJECTED, Action, step
from gateway.runtime import capabilities_of

CFG = FailoverConfig.model_validate({"retries": 2, "backoff": {"initial": "100ms", "max": "1s"},
                                     "rate_limit_wait": "2s"})


def _step(kind, tries=1, time_left=60.0, closed=True, continuation=False, **kw):
    return step(UpstreamError(kind, "x", **kw), tries=tries, time_left=time_left, breaker_closed=closed, cfg=CFG,
                continuation=continuation)


@pytest.mark.parametrize("kind,kw,tries,time_left,closed,action,wait", [
    (ErrorKind.TRANSIENT, {}, 1, 60, True, Action.RETRY, 0.1),
    (ErrorKind.TRANSIENT, {}, 2, 60, True, Action.RETRY, 0.2),
    (ErrorKind.TRANSIENT, {}, 3, 60, True, Action.NEXT, 0),  # retries spent
    (ErrorKind.TRANSIENT, {}, 1, 60, False, Action.NEXT, 0),  # the breaker opened: its verdict wins
    (ErrorKind.TRANSIENT, {}, 1, 0.05, True, Action.NEXT, 0),  # the backoff does not fit the deadline
    (ErrorKind.TRANSIENT, {"code": "first_token_timeout"}, 1, 60, True, Action.NEXT, 0),  # slow stays slow
    (ErrorKind.RATE_LIMITED, {"retry_after": 1.5}, 1, 60, True, Action.RETRY, 1.5),
    (ErrorKind.RATE_LIMITED, {"retry_after": 1.5}, 2, 60, True, Action.NEXT, 0),  # waited out once only
    (ErrorKind.RATE_LIMITED, {"retry_after": 3.0}, 1, 60, True, Action.NEXT, 0),  # longer than rate_limit_wait
    (ErrorKind.RATE_LIMITED, {}, 1, 60, True, Action.NEXT, 0),  # absent
    (ErrorKind.RATE_LIMITED, {"retry_after": 1.5}, 1, 1.0, True, Action.NEXT, 0),  # past the deadline
    (ErrorKind.BAD_REQUEST, {}, 1, 60, True, Action.ANSWER, 0),
    (ErrorKind.WITHDRAWN, {}, 1, 60, True, Action.NEXT, 0),
])
def test_step(kind, kw, tries, time_left, closed, action, wait):
    s = _step(kind, tries, time_left, closed, **kw)
    assert s.action is action
    if action is Action.RETRY:
        assert wait <= s.wait <= wait + (0.1 if kind is ErrorKind.TRANSIENT else 0)


def test_a_rejected_prefill_is_retried_once_on_the_same_model_then_moves_on():
    assert _step(ErrorKind.BAD_REQUEST, 1, continuation=True, code=PREFILL_REJECTED).action is Action.RETRY
    assert _step(ErrorKind.BAD_REQUEST, 2, continuation=True, code=PREFILL_REJECTED).action is Action.NEXT
    assert _step(ErrorKind.BAD_REQUEST, 1, continuation=True).action is Action.NEXT


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_backs_off_doubling_to_max_and_resets_on_success():
    clock = Clock()
    b = CircuitBreaker(failures=2, cooldown=5, clock=clock, max_cooldown=30)
    b.record_failure()
    b.record_failure()
    opened = []
    for _ in range(5):  # each failed probe re-opens it for twice as long, up to max_cooldown
        assert b.state is BreakerState.OPEN
        opened.append(b.current_cooldown)
        clock.t = b.open_until - 0.01
        assert not b.allow()
        clock.t = b.open_until
        assert b.allow() and not b.allow()  # exactly one half-open probe
        b.record_failure()
    assert opened == [5, 10, 20, 30, 30]
    clock.t += 30
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.current_cooldown == 5
    b.record_failure()
    b.record_failure()
    assert b.current_cooldown == 5  # a fresh opening after a success is short again


@pytest.mark.parametrize("sent,pieces,forwarded", [
    ("w1 w2 w3 w4", [" w5", " w6", " w7", " w8", " w9", " w10", " w11", " w12"], " w5 w6 w7 w8 w9 w10 w11 w12"),
    ("w1 w2 w3 w4", ["w1", " w2", " w3", " w4", " w5", " w6"], " w5 w6"),  # the whole answer again
    ("One. Two three four.", [" Two", " three", " four.", " Five."], " Five."),  # the last sentence again
    ("w1 w2 w3 w4", [" w4", " w5", " w6", " w7", " w8", " w9", " w10", " w11", " w12"],
     " w4 w5 w6 w7 w8 w9 w10 w11 w12"),  # one word of overlap is coincidence, not a repeat
    ("the login secur", ["ity", " review", " is", " done"], "ity review is done"),  # cut mid-word
    ("the login secur", [" login", " security", " review"], "ity review"),  # repeated across the mid-word cut
    ("w1  w2\nw3", ["w1 w2 w3", " w4"], " w4"),  # whitespace normalised
    ("Hi", [" there"], " there"),
    ("The login handler", [" has", " two", " problems:", " the", " handler", " trusts", " the", " cookie."],
     " has two problems: the handler trusts the cookie."),  # a few words sent, a real continuation
    ("Use the", [" parameterised", " query", " API;", " use", " the", " ORM", " where", " possible."],
     " parameterised query API; use the ORM where possible."),
])
def test_splice_guard_forwards_each_word_once(sent, pieces, forwarded):
    g = SpliceGuard(sent)
    out = "".join(g.feed(p) for p in pieces) + g.finish()
    assert out == forwarded
    assert g.feed(" more") == " more"  # decided: the rest streams through


def test_splice_guard_holds_a_repeat_until_it_diverges():
    g = SpliceGuard("w1 w2 w3 w4")
    assert g.feed("w1") == "" and g.feed(" w2") == "" and g.feed(" w3") == ""


@pytest.mark.parametrize("sent,cont", [
    ("w1 w2 w3 w4 w5 w6", "Let me start again. w1 w2 alt-w3 w4 w5 alt-w6"),
    ("Hello from fable-5. You said: Please do a security review",
     "Hello again from gpt-5. You said: please do a security review"),
    ("w1 w2 w3", "Let me start again. w1 w2 alt-w3 w4 w5 alt-w6"),  # cut after a few words
    ("w1 w2", "Let me start again. w1 w2 alt-w3 w4 w5 alt-w6"),
])
def test_splice_guard_rejects_a_restart_in_other_words(sent, cont):
    g = SpliceGuard(sent)
    with pytest.raises(Restarted):
        for piece in cont.split(" "):
            g.feed(piece + " ")
        g.finish()


def test_splice_guard_lets_a_list_continued_in_the_same_shape_through():
    sent = " ".join(f"Step {i}: check the input of handler {i}." for i in range(1, 6))
    g = SpliceGuard(sent)
    cont = " Step 6: check the input of handler 6. Step 7: check the input of handler 7."
    out = "".join(g.feed(w + " ") for w in cont.split(" ")) + g.finish()
    assert " ".join(out.split()) == " ".join(cont.split())
    # The same answer restarted from its first step is still caught.
    g = SpliceGuard(sent)
    with pytest.raises(Restarted):
        for w in "Sure. Step 1: verify the input of handler 1. Step 2: verify the input of handler 2.".split(" "):
            g.feed(w + " ")
        g.finish()


def test_tool_call_gate_holds_each_call_until_it_is_complete():
    def call(i, args, **extra):
        return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": args},
                                                                   **extra}]}}]}

    gate = ToolCallGate()
    assert gate.feed([call(0, "", id="a")]) == []
    assert gate.feed([call(0, '{"x"')]) == []
    out = gate.feed([call(1, "", id="b")])  # the next call begins: the first is complete
    assert len(out) == 2 and gate.held
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    assert len(gate.feed([call(1, "{}"), finish])) == 3 and not gate.held
    text = {"choices": [{"index": 0, "delta": {"content": "hi"}}]}
    assert gate.feed([text]) == [text]


def test_assembler_builds_one_completion_from_chunks():
    acc = _Assembler()
    acc.add([{"id": "c1", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                                           "content": "Hel"}}]},
             {"choices": [{"index": 0, "delta": {"content": "lo"}, "logprobs": {"content": [{"token": "x"}]}}]},
             {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
    assert not acc.complete()
    acc.add([{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}])
    assert acc.complete()
    r = acc.result()
    assert r["choices"][0]["message"]["content"] == "Hello" and r["choices"][0]["finish_reason"] == "stop"
    assert r["choices"][0]["logprobs"] == {"content": [{"token": "x"}]} and r["usage"]["total_tokens"] == 3


@pytest.mark.parametrize("body,needs", [
    ({"messages": []}, ()),
    ({"messages": [], "tools": [{}], "tool_choice": "none"}, ()),
    ({"messages": [], "tools": [{}], "response_format": {"type": "json_schema"}, "n": 2, "logprobs": True},
     ("tools", "json_schema", "n", "logprobs")),
    ({"messages": [], "response_format": {"type": "text"}, "n": 1, "top_logprobs": 0}, ()),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, ("vision",)),
])
def test_required_capabilities(body, needs):
    assert required_capabilities(body) == needs


def test_capabilities_per_kind_with_declared_overrides_and_the_legacy_fields():
    m = ModelConfig.model_validate({"provider": "p", "model": "m", "supports_tools": False, "prefill": True,
                                    "supports": {"logprobs": True}})
    assert capabilities_of("anthropic", m.supports) == frozenset({"json_schema", "vision", "prefill", "logprobs"})
    assert "n" in capabilities_of("openai", ModelConfig(provider="p", model="m").supports)
    with pytest.raises(ValueError, match="contradicts supports.tools"):
        ModelConfig.model_validate({"provider": "p", "model": "m", "supports_tools": False,
                                    "supports": {"tools": True}})


def test_continuation_chain_is_the_rest_minus_served():
    assert continuation_chain(("a", "b", "c", "d"), "b", ["a", "b", "c"]) == ("d",)
    assert continuation_chain(("a", "b"), "x", ["x"]) == ()

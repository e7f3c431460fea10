"""FleetState (the local cache the hot path reads in a fleet) and WithdrawalDB.mirror, without Redis: what each
worker does with marks, the probe token and clears. The wire side is tested in tests/fleet/."""

from __future__ import annotations

from gateway.errors import ErrorKind
from gateway.failover.withdrawals import Entry, WithdrawalDB
from gateway.state.live import BREAKER_OPEN, FleetState
from gateway.testing import ManualClock


def _state(worker: str = "r0/1") -> tuple[FleetState, list[dict], list[tuple[str, str]], ManualClock]:
    clock = ManualClock()
    wall = [1_000_000.0]
    st = FleetState(clock, lambda: wall[0] + clock.offset, worker)
    sent: list[dict] = []
    wanted: list[tuple[str, str]] = []
    st.outbox = sent.append
    st.request_probe = lambda m, e: wanted.append((m, e))
    st.shared = True
    st.configure(["a", "b"], 2, 5.0, 60.0)
    return st, sent, wanted, clock


def test_a_published_mark_is_skipped_until_it_ends_then_forgotten():
    st, sent, _, clock = _state()
    st.apply_mark("a", "cooling", st.to_wall(clock() + 2), origin="r1/7")
    assert st.skip_reason("a") == "cooling" and not st.available("a")
    assert st.describe("a")["state"] == "cooling" and st.describe("a")["seen_by"] == "r1/7"
    clock.advance(2.1)
    assert st.skip_reason("a") is None and "a" not in st.remote and sent == []


def test_local_failures_are_published_with_their_end():
    st, sent, _, clock = _state()
    st.record_failure("a", ErrorKind.RATE_LIMITED, 3.0, "slow down")
    st.record_failure("b", ErrorKind.WITHDRAWN, None, "model gone sk-secret-123")
    kinds = {m["m"]: m["k"] for m in sent if m["t"] == "mark"}
    assert kinds == {"a": "cooling", "b": "withdrawn"}
    a = next(m for m in sent if m["m"] == "a")
    assert abs(a["u"] - st.to_wall(clock() + 3.0)) < 0.01


def test_half_open_needs_the_fleet_token_for_that_opening():
    st, sent, wanted, clock = _state()
    st.record_failure("a", ErrorKind.TRANSIENT, None, "")
    st.record_failure("a", ErrorKind.TRANSIENT, None, "")  # 2 failures: open, shared
    mark = next(m for m in sent if m["t"] == "mark" and m["k"] == BREAKER_OPEN)
    assert st.skip_reason("a") == BREAKER_OPEN
    clock.advance(5.1)
    assert st.skip_reason("a") == BREAKER_OPEN and wanted == [("a", repr(mark["u"]))]  # asks for the token
    st.grant_probe("a", "another-opening")
    assert st.skip_reason("a") == BREAKER_OPEN  # a token for an older opening is no use
    st.grant_probe("a", repr(mark["u"]))
    assert st.skip_reason("a") is None  # the probe
    assert not st.may_retry("a")
    assert any(m["t"] == "extend" for m in sent)
    sent.clear()
    st.record_success("a")
    assert sent == [{"t": "clear", "m": "a"}] and "a" not in st.remote


def test_a_failed_probe_reopens_for_the_fleet_and_a_clear_resets_every_worker():
    st, sent, _, clock = _state()
    st.apply_mark("a", BREAKER_OPEN, st.to_wall(clock() + 1), origin="r1/7")
    clock.advance(1.1)
    st.skip_reason("a")
    st.grant_probe("a", repr(st.remote["a"].wall))
    assert st.skip_reason("a") is None
    st.record_failure("a", ErrorKind.TRANSIENT, None, "")
    assert [m["k"] for m in sent if m["t"] == "mark"] == [BREAKER_OPEN]
    assert st.skip_reason("a") == BREAKER_OPEN
    st.record_failure("b", ErrorKind.RATE_LIMITED, 30.0, "")
    st.apply_clear("a")
    st.apply_clear("b")  # an operator's reinstatement elsewhere: this worker's own cooldown ends too
    assert st.skip_reason("a") is None and st.skip_reason("b") is None


def test_store_down_leaves_the_decision_to_this_workers_breaker():
    st, _, wanted, clock = _state()
    st.apply_mark("a", BREAKER_OPEN, st.to_wall(clock() + 1), origin="r1/7")
    st.shared = False
    clock.advance(1.1)
    assert st.skip_reason("a") is None and wanted == []  # no token to ask for: local breaker (closed) decides


def test_mirror_makes_the_local_database_equal_to_the_fleets_set(tmp_path):
    db = WithdrawalDB(tmp_path / "w.sqlite")
    db.init()
    db.put(Entry("withdrawal", "model", "old", "r", created_at=1.0))
    fleet = [Entry("withdrawal", "vendor", "V", "legal", "ref", "jane", "ops", "never", 2.0),
             Entry("drill", "model", "m", "rehearsal", created_at=3.0, until_wall=9e9)]
    assert db.mirror(fleet) is True
    assert sorted((e.kind, e.target, e.name) for e in db.current()) == [("drill", "model", "m"),
                                                                        ("withdrawal", "vendor", "V")]
    v = db.version()
    assert db.mirror(fleet) is False and db.version() == v  # no change, no write
    assert db.events(1)[0]["action"] == "fleet-sync"


def test_each_failed_fleet_probe_doubles_the_cooldown_whoever_sent_it():
    st, sent, _, clock = _state()
    st.configure(["a", "b"], 2, 5.0, 60.0, max_cooldown=15.0)
    st.apply_mark("a", BREAKER_OPEN, st.to_wall(clock() + 5), origin="r1/7", openings=1)  # opened elsewhere
    lengths = []
    for _ in range(3):
        clock.advance(st.remote["a"].until - clock() + 0.01)
        st.skip_reason("a")
        st.grant_probe("a", st.remote["a"].epoch)
        assert st.skip_reason("a") is None  # the fleet's probe, here (this worker's own breaker is closed)
        st.record_failure("a", ErrorKind.TRANSIENT, None, "")
        lengths.append(round(st.remote["a"].until - clock(), 3))
    assert lengths == [10.0, 15.0, 15.0]  # 5 s doubled per failed probe, capped by max_cooldown
    assert [m["n"] for m in sent if m["t"] == "mark"] == [2, 3, 4]

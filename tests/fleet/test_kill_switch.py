"""The kill switch across a fleet: 2 replicas x 2 workers (``gateway serve --workers 2``) sharing one real
redis-server, each replica with its own state_dir (only Redis connects them)."""

from __future__ import annotations

import threading
import time

import httpx

from gateway.cli import main as cli_main
from tests.conftest import GATEWAY_KEY
from tests.fleet.conftest import ADMIN_KEY, LIMITED_KEY, admin, chat, fleet_config

WITHDRAW = {"target": "model", "name": "fable-5", "reason": "Commerce Department directive", "actor": "jane@corp",
            "contact": "never"}


def _load(gps, stop: threading.Event, results: list[int], per: int = 2,
          sent: list[tuple[float, str]] | None = None) -> list[threading.Thread]:
    """Continuous requests; ``results`` gets each status; ``sent`` (if given) each request's send time and the
    attempts the gateway made for it."""
    def run(gp) -> None:
        while not stop.is_set():
            t = time.time()
            try:
                r = chat(gp)
            except Exception:  # noqa: BLE001 - a transport failure counts as a failed request
                results.append(-1)
                continue
            results.append(r.status_code)
            if sent is not None:
                sent.append((t, r.headers.get("x-gateway-attempts", "")))

    threads = [threading.Thread(target=run, args=(gp,), daemon=True) for gp in gps for _ in range(per)]
    for t in threads:
        t.start()
    return threads


def test_withdrawal_is_in_force_on_all_four_workers_before_the_admin_call_returns(emu, fleet, capsys):
    r0, r1 = fleet.gps
    stop = threading.Event()
    results: list[int] = []
    sent: list[tuple[float, str]] = []
    threads = _load([r0, r1], stop, results, sent=sent)
    try:
        deadline = time.monotonic() + 5
        while len(emu.attempts("fable-5")) < 8:  # the load is reaching the model on every replica
            assert time.monotonic() < deadline, "the load never reached the model to be withdrawn"
            time.sleep(0.05)
        r = admin(r0, "POST", "/admin/withdrawals", json=WITHDRAW)
        returned = time.time()
        assert r.status_code == 201, r.text
        prop = r.json()["propagation"]
        assert prop["complete"] is True and prop["not_applied"] == [], prop
        assert len(prop["applied"]) == 4 and {w.split("/")[0] for w in prop["applied"]} == {"r0", "r1"}, prop
        # Keep the load on (any worker that still used the model would contact it now), for a second at least and
        # until enough requests were sent after the return (bounded).
        deadline = time.monotonic() + 10
        time.sleep(1.0)
        while sum(1 for t, _ in list(sent) if t > returned) < 12 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    # Every request sent after the call returned, on any worker of any replica, skipped the model...
    after = [attempts for t, attempts in sent if t > returned]
    assert len(after) >= 12 and all(a.startswith("fable-5=skipped:withdrawn_by_operator") for a in after), after[:3]
    # ...and the model heard nothing after it (the emulator stamps a request when it handles it, so allow for
    # its own scheduling delay on a loaded machine: an attempt sent before the return may be stamped just after).
    late = [a for a in emu.attempts("fable-5") if a["time"] > returned + 0.25]
    assert late == [], f"{len(late)} contacts with the withdrawn model after the admin call returned"
    assert results and set(results) == {200}, f"failed requests: {[s for s in results if s != 200][:5]}"

    # Reinstatement travels the same way (here through the CLI, which says who applied it).
    assert cli_main(["admin", "--url", r1.url, "--admin-key", ADMIN_KEY, "reinstate", "model", "fable-5"]) == 0
    assert "fleet: applied by 4 of 4 workers" in capsys.readouterr().out
    served = {chat(gp).headers.get("x-gateway-model") for gp in (r0, r1) for _ in range(4)}
    assert served == {"fable-5"}


def test_a_drill_and_its_early_end_reach_every_worker_before_the_call_returns(emu, fleet):
    r0, r1 = fleet.gps
    r = admin(r0, "POST", "/admin/drills", json={"target": "vendor", "name": "VendorA", "duration": "10m"})
    assert r.status_code == 201 and r.json()["propagation"]["complete"] and len(r.json()["propagation"]["applied"]) == 4
    assert all(chat(gp).headers["x-gateway-attempts"].startswith("fable-5=skipped:drill") for gp in (r0, r1, r1, r0))
    r = admin(r1, "DELETE", "/admin/drills/vendor/VendorA")
    assert r.status_code == 200 and r.json()["propagation"]["complete"], r.text
    assert {chat(gp).headers["x-gateway-model"] for gp in (r0, r1, r1, r0)} == {"fable-5"}
    assert len(emu.attempts("fable-5")) == 4  # the four after the drill ended; none during it


def test_rate_limit_and_metrics_hold_for_the_whole_fleet(emu, fleet):
    gps = fleet.gps

    def scrape() -> float:
        text = httpx.get(gps[0].url + "/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("gateway_requests_total{"))

    start = scrape()
    statuses = [chat(gps[i % 2], key=LIMITED_KEY).status_code for i in range(12)]
    # 6 a minute for the fleet, not 6 per worker (4 workers would let 12 through)
    assert statuses.count(200) == 6 and statuses.count(429) == 6, statuses

    for _ in range(10):
        assert chat(gps[0]).status_code == 200
    seen = [scrape() for _ in range(12)]  # whichever of replica 0's two workers answers, it counts for both
    assert seen == sorted(seen), seen
    assert seen[-1] - start == 10 + len(statuses[0::2]), (start, seen)


def test_one_replica_sigkilled_the_other_is_unaffected_and_loses_nothing_from_the_audit(
        emu, redis_server, postgres_session, replicas, tmp_path):
    import hashlib

    from gateway.audit.postgres import PostgresAuditStore

    other = "gw-other-replica-key-012345"
    url = postgres_session.database("sigkill")
    cfg = fleet_config(emu.url, redis_server.url, tmp_path, store={"backend": "postgres", "url": url})
    cfg["keys"].append({"name": "other", "sha256": hashlib.sha256(other.encode()).hexdigest()})
    r0, r1 = replicas(cfg)
    stop = threading.Event()
    answered: list[int] = []
    survivor = _load([r0], stop, answered)

    def on_r1() -> None:
        while not stop.is_set():
            try:
                chat(r1, key=other)
            except Exception:  # noqa: BLE001 - r1 is about to die
                pass

    doomed = threading.Thread(target=on_r1, daemon=True)
    doomed.start()
    try:
        time.sleep(0.5)
        r1.kill()  # SIGKILL to the whole process group: both workers, no shutdown at all
        time.sleep(0.3)
        # The kill switch answers within the ack timeout and names the workers that did not confirm.
        t0 = time.monotonic()
        r = admin(r0, "POST", "/admin/withdrawals", json=WITHDRAW)
        assert r.status_code == 201 and time.monotonic() - t0 < 3.5
        prop = r.json()["propagation"]
        assert prop["complete"] is False and {w.split("/")[0] for w in prop["not_applied"]} == {"r1"}, prop
        assert {w.split("/")[0] for w in prop["applied"]} == {"r0"} and len(prop["applied"]) == 2, prop
        time.sleep(0.5)
    finally:
        stop.set()
        for t in (*survivor, doomed):
            t.join(10)
    assert answered and set(answered) == {200}, "the surviving replica failed requests"
    r0.stop()  # graceful: everything it answered is written before it exits
    r0.proc.wait(15)
    store = PostgresAuditStore(url, readonly=True)
    try:
        rows = [row for row in store.rows(0) if row["key_name"] == "tests"]
    finally:
        store.close()
    assert len(rows) == len(answered), f"{len(answered)} answered by the surviving replica, {len(rows)} in the audit"


def test_no_contact_after_the_call_returned_for_streams_and_continuations_in_flight(emu, fleet):
    """Streaming load whose streams are cut and continued onto the model being withdrawn: after the admin call
    returned, no continuation and no new stream on any worker contacts it; every stream still completes."""
    r0, r1 = fleet.gps
    emu.set("fable-5", "stream_cut:after=2,token_delay=0.01")
    emu.set("gpt-5", "healthy:token_delay=0.01,words=12")
    stop = threading.Event()
    results: list[str] = []

    def run(gp) -> None:
        body = {"model": "security", "messages": [{"role": "user", "content": "security review please"}],
                "stream": True}
        auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
        while not stop.is_set():
            try:
                with httpx.stream("POST", gp.url + "/v1/chat/completions", json=body, headers=auth,
                                  timeout=15) as r:
                    text = "".join(r.iter_text())
                results.append("ok" if r.status_code == 200 and "[DONE]" in text and '"error"' not in text
                               else f"{r.status_code}:{text[-200:]}")
            except Exception as e:  # noqa: BLE001 - a transport failure counts as a failed request
                results.append(f"exc:{e!r}")

    threads = [threading.Thread(target=run, args=(gp,), daemon=True) for gp in (r0, r1) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 5
        while len(emu.attempts("gpt-5")) < 8:  # continuations (or breaker-skipped streams) reach gpt-5 everywhere
            assert time.monotonic() < deadline, "the load never reached gpt-5"
            time.sleep(0.05)
        r = admin(r1, "POST", "/admin/withdrawals", json={**WITHDRAW, "name": "gpt-5"})
        returned = time.time()
        assert r.status_code == 201 and r.json()["propagation"]["complete"], r.text
        n = len(results)
        deadline = time.monotonic() + 10
        time.sleep(1.0)
        while len(results) < n + 12 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    late = [a for a in emu.attempts("gpt-5") if a["time"] > returned + 0.25]
    assert late == [], f"{len(late)} contacts with the withdrawn model after the admin call returned"
    bad = [x for x in results if x != "ok"]
    assert len(results) >= n + 12 and bad == [], bad[:3]


def test_a_short_drill_ends_on_time_on_every_worker(emu, fleet):
    r0, r1 = fleet.gps
    r = admin(r1, "POST", "/admin/drills", json={"target": "model", "name": "fable-5", "duration": "1s"})
    assert r.status_code == 201 and r.json()["propagation"]["complete"], r.text
    started = time.monotonic()
    assert all(chat(gp).headers["x-gateway-attempts"].startswith("fable-5=skipped:drill") for gp in (r0, r1, r1, r0))
    time.sleep(max(0.0, 1.3 - (time.monotonic() - started)))
    served = [chat(gp).headers.get("x-gateway-model") for gp in (r0, r1) for _ in range(6)]
    assert served == ["fable-5"] * 12, served
    drills = [admin(gp, "GET", "/admin/state").json() for gp in (r0, r1) for _ in range(3)]
    assert all(d["models"]["fable-5"]["state"] != "drill" for d in drills), [d["models"]["fable-5"] for d in drills]


def test_requests_in_flight_that_fail_over_after_the_call_returned_skip_the_withdrawn_model(emu, fleet):
    """Requests held by a hanging first model when the next one is withdrawn: they fail over after the admin call
    returned, on every worker, and must skip it."""
    r0, r1 = fleet.gps
    emu.set("fable-5", "no_response:delay=0.6")
    stop = threading.Event()
    results: list[int] = []
    sent: list[tuple[float, str]] = []
    threads = _load([r0, r1], stop, results, per=3, sent=sent)
    try:
        time.sleep(0.3)  # every worker has requests waiting on fable-5
        r = admin(r0, "POST", "/admin/withdrawals", json={**WITHDRAW, "name": "gpt-5"})
        returned = time.time()
        assert r.status_code == 201 and r.json()["propagation"]["complete"], r.text
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    late = [a for a in emu.attempts("gpt-5") if a["time"] > returned + 0.25]
    assert late == [], f"{len(late)} contacts with the withdrawn model after the admin call returned"
    assert results and set(results) == {200}, results
    assert any("gpt-5=skipped:withdrawn_by_operator" in a for _, a in sent), sent[:3]


def test_a_worker_that_went_silent_is_named_not_applied_rather_than_left_out(emu, fleet):
    """A replica frozen past the heartbeat window (a stalled host, a partition) is not waited for, but the admin
    call must not claim the change is in force everywhere: its workers are named as not having applied it."""
    import os
    import signal

    r0, r1 = fleet.gps
    os.killpg(r1.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(2.6)  # past LIVE_WITHIN: r1's workers no longer count as live
        r = admin(r0, "POST", "/admin/withdrawals", json=WITHDRAW)
        assert r.status_code == 201, r.text
        prop = r.json()["propagation"]
    finally:
        os.killpg(r1.proc.pid, signal.SIGCONT)
    assert prop["complete"] is False, prop
    assert {w.split("/")[0] for w in prop["not_applied"]} == {"r1"} and len(prop["not_applied"]) == 2, prop
    assert len(prop["applied"]) == 2, prop
    from tests.fleet.conftest import wait_for_workers

    wait_for_workers(r0, 4)
    # Back in the fleet: the change reached it (the frozen workers read the announcement when they resumed).
    assert all(chat(r1).headers["x-gateway-attempts"].startswith("fable-5=skipped:withdrawn_by_operator")
               for _ in range(4))


def test_a_replica_stopped_gracefully_leaves_and_is_not_counted_against_the_kill_switch(emu, fleet):
    from tests.fleet.conftest import wait_for_workers

    r0, r1 = fleet.gps
    r1.stop()  # a rolling restart: SIGTERM, drained, the workers leave the fleet
    try:
        r = admin(r0, "POST", "/admin/withdrawals", json=WITHDRAW)
        prop = r.json()["propagation"]
        assert r.status_code == 201 and prop["complete"] is True and len(prop["applied"]) == 2, prop
    finally:
        r1.spawn().start()
        wait_for_workers(r0, 4)
    # The restarted replica has the change (from the fleet's copy) before it serves.
    assert chat(r1).headers["x-gateway-attempts"].startswith("fable-5=skipped:withdrawn_by_operator")

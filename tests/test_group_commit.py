"""Group commit (audit/group.py): threads deciding at once on one trail share one transaction and one
fsync; each gets its own reply or its own error, only after the commit that keeps its decision.

Groups are made deterministic by holding the first block open until the others are queued (the gate
counts them), then watching the statements with sqlite3's trace callback.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit import AuditTrail, StorageUnavailable, merge_facts
from audit.backends import is_postgres
from service.decide import decide, item_of
from tests.conftest import lead
from tests.postgres import secrets_for
from tests.server import Server

AT = "2026-11-23T10:00:00Z"


@pytest.fixture
def trail(tmp_path):
    with AuditTrail(tmp_path / "audit.db") as t:
        yield t


def item(ruleset, lead_id: str) -> dict:
    request = lead(lead_id=lead_id)
    return item_of(ruleset, ruleset.evaluate(merge_facts(None, request), AT), request, "decision", None, 0.0)


def until(check) -> None:
    """Wait (bounded) for another thread to reach a state."""
    for _ in range(2000):
        if check():
            return
        time.sleep(0.005)
    raise AssertionError("the other threads never got there")


def stored(trail) -> list[str]:
    return [r[0] for r in trail.db.execute("SELECT lead_id FROM decisions ORDER BY seq")]


def grouped(trail, default, blocks: dict, traced: list):
    """Run `blocks` {lead_id: block(uow)} as one group: the first holds the transaction until every
    other is queued. Returns {lead_id: reply or the exception raised}."""
    gate, results, first = trail._lock, {}, next(iter(blocks))
    held = threading.Event()

    def run(lead_id):
        try:
            with trail.deciding(lead_id) as uow:
                if lead_id == first:
                    held.set()
                    until(lambda: gate._queued == len(blocks) - 1)
                results[lead_id] = blocks[lead_id](uow)
        except Exception as exc:  # each caller's own error
            results[lead_id] = exc
        traced.append(("returned", lead_id))

    leader = threading.Thread(target=run, args=(first,))
    leader.start()
    held.wait(10)
    others = [threading.Thread(target=run, args=(k,)) for k in blocks if k != first]
    for t in others:
        t.start()
    for t in [leader, *others]:
        t.join(30)
    return results


def recording(default, lead_id):
    return lambda uow: uow.record(**item(default, lead_id))


def test_decisions_queued_while_a_transaction_is_open_commit_together_and_only_then_return(trail, default):
    traced: list = []
    trail.db.conn.set_trace_callback(traced.append)
    leads = [f"G{i}" for i in range(6)]
    results = grouped(trail, default, {k: recording(default, k) for k in leads}, traced)
    trail.db.conn.set_trace_callback(None)
    assert traced.count("BEGIN IMMEDIATE") == 1 and traced.count("COMMIT") == 1
    # Nobody was answered before the one commit.
    assert traced.index("COMMIT") < min(traced.index(("returned", k)) for k in leads)
    assert {k: results[k]["lead_id"] for k in leads} == {k: k for k in leads}
    assert sorted(stored(trail)) == leads
    assert trail.verify() == []


def test_a_link_written_without_the_groups_head_is_followed_by_the_next_block(trail, default):
    """Regression: a reload recorded in a group between two decisions (the server's workers record
    them on SIGHUP while others decide) read the chain's head itself; the next decision in the group
    then linked from the head before it and failed on a duplicate chain seq (503)."""
    from audit import deployments

    def reload(uow):
        return deployments.record_reload(trail, {"active": {}}, [], [], "tests")

    # Reloads and decisions alternate: whatever order the queued blocks run in, unless every decision
    # runs before every reload (1 order in 20), one decision follows a reload.
    decisions = [f"H{i}" for i in range(4)]
    blocks = {"H0": recording(default, "H0")}
    for n, lead_id in enumerate(decisions[1:]):
        blocks[f"R{n}"], blocks[lead_id] = reload, recording(default, lead_id)
    results = grouped(trail, default, blocks, [])
    assert not [r for r in results.values() if isinstance(r, Exception)], results
    assert sorted(stored(trail)) == decisions
    assert trail.verify() == []


def test_a_block_done_wakes_only_the_next_writer_and_the_commit_wakes_its_members(
    trail, default, monkeypatch
):
    """Each waiting thread is woken when it can go on, not on every change of the gate: the next
    queued writer when a block is done, the leader when none is left, the members (and a waiting
    reader) at the commit. Waking every waiter on every change cost a seventh of a worker's GIL time
    (py-spy, issue 15); here it would wake each queued writer once per block written before its own."""
    gate, woken = trail._lock, []
    lock = next(v._lock for v in vars(gate).values() if isinstance(v, threading.Condition))
    wait = threading.Condition.wait

    def counted(cond, *args, **kwargs):
        result = wait(cond, *args, **kwargs)
        if cond._lock is lock:
            woken.append(threading.get_ident())
        return result

    monkeypatch.setattr(threading.Condition, "wait", counted)
    reader = threading.Thread(target=lambda: gate.__enter__() and gate.__exit__(None, None, None))

    def first(uow):  # a reader comes while the group is open: it waits for the commit
        reader.start()
        until(lambda: gate._readers == 1)
        return uow.record(**item(default, "W0"))

    leads = [f"W{i}" for i in range(8)]
    blocks = {"W0": first, **{k: recording(default, k) for k in leads[1:]}}
    groups, written = gate.groups, gate.blocks
    results = grouped(trail, default, blocks, [])
    reader.join(10)
    assert {k: results[k]["lead_id"] for k in leads} == {k: k for k in leads}
    assert (gate.groups - groups, gate.blocks - written) == (1, len(leads))  # one group, as meant
    # 7 queued writers woken once to write and once by the commit, the leader once, the reader once.
    assert len(woken) <= 2 * (len(leads) - 1) + 2, len(woken)


def test_a_failing_block_loses_only_its_own_writes(trail, default):
    def fails(uow):
        uow.record(**item(default, "F2"))
        raise ValueError("this caller's own error")

    blocks = {"F1": recording(default, "F1"), "F2": fails, "F3": recording(default, "F3")}
    results = grouped(trail, default, blocks, [])
    assert isinstance(results["F2"], ValueError)
    assert results["F1"]["lead_id"] == "F1" and results["F3"]["lead_id"] == "F3"
    assert stored(trail) == ["F1", "F3"]
    assert trail.db.execute("SELECT count(*) FROM leads WHERE lead_id = 'F2'").fetchone()[0] == 0
    assert trail.verify() == []  # the chain has no hole where the undone block's link was


def test_a_failing_first_block_leaves_the_queued_ones_to_commit_without_it(trail, default):
    def fails(uow):
        uow.record(**item(default, "E1"))
        raise ValueError("the leader's own error")

    blocks = {"E1": fails, "E2": recording(default, "E2"), "E3": recording(default, "E3")}
    results = grouped(trail, default, blocks, [])
    assert isinstance(results["E1"], ValueError)
    assert sorted(stored(trail)) == ["E2", "E3"]
    assert trail.verify() == []


def test_a_failed_commit_is_every_members_error_and_keeps_nothing(trail, default, monkeypatch):
    execute = trail.db.execute

    def commit_fails(sql, *args):
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return execute(sql, *args)

    monkeypatch.setattr(trail.db, "execute", commit_fails)
    results = grouped(trail, default, {k: recording(default, k) for k in ("C1", "C2", "C3")}, [])
    monkeypatch.undo()
    assert all(isinstance(r, StorageUnavailable) for r in results.values()), results
    assert stored(trail) == []
    decide(default, trail, lead(lead_id="C1"), at=AT)  # and the trail writes again afterwards
    assert stored(trail) == ["C1"] and trail.verify() == []


def test_a_read_does_not_wait_for_the_open_group_and_never_sees_its_uncommitted_rows(trail, default):
    gate, seen = trail._lock, []
    release = threading.Event()

    def writer():
        with trail.deciding("R1") as uow:
            uow.record(**item(default, "R1"))
            release.wait(10)

    w = threading.Thread(target=writer)
    w.start()
    try:
        until(lambda: gate.group is not None and trail._depth)
        # The group's transaction is open (its writer blocked): a read on another thread completes
        # meanwhile, on a read connection, and sees the last committed state: no lead R1 yet.
        r = threading.Thread(target=lambda: seen.append(trail.lead_version("R1")))
        r.start()
        r.join(10)
        assert not r.is_alive() and seen == [None]
        assert gate.group is not None and w.is_alive()  # still open: the read did not wait for it
    finally:
        release.set()
        w.join(10)
    assert trail.lead_version("R1") is not None  # committed: every read sees it now


def test_a_thread_inside_its_write_block_reads_its_own_rows(trail, default):
    with trail.deciding("R2") as uow:
        uow.record(**item(default, "R2"))
        assert trail.lead_version("R2") is not None  # on the writer connection, uncommitted
        assert trail._open_readers == set()  # no read connection was used inside the block


def test_close_closes_every_read_connection(tmp_path, default):
    path = tmp_path / "audit.db"
    opened = AuditTrail(path)
    held, go = threading.Barrier(5), threading.Event()

    def reader():
        with opened._reading() as conn:  # five read connections at once, each on its own thread
            conn.execute("SELECT 1")
            held.wait(10)
            go.wait(10)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    with opened._reading():
        held.wait(10)
        readers = set(opened._open_readers)
        assert len(readers) == 5
        go.set()
    for t in threads:
        t.join(10)
    opened.close()
    for conn in readers:
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            conn.execute("SELECT 1")


def test_threads_hammering_one_trail_lose_nothing_and_record_each_key_once(audit_db, default):
    threads, rounds, leads = 8, 12, 4
    with AuditTrail(audit_db, secrets=secrets_for(audit_db)) as trail:

        def work(t):
            replies = []
            for i in range(rounds):
                lead_id = f"H{(t + i) % leads}"
                event = {"id": f"e-{t}-{i}", "type": "page_view", "at": AT}
                replies.append(decide(default, trail, lead(lead_id=lead_id, events=[event]), at=AT)[0])
                # Every thread retries the same request under the same key: recorded once.
                replies.append(
                    decide(default, trail, lead(lead_id="K"), at=AT, client="c", idempotency_key=f"k{i}")[0]
                )
            return replies

        with ThreadPoolExecutor(threads) as pool:
            replies = [r for rs in pool.map(work, range(threads)) for r in rs]
        gate = trail._lock
        assert trail.db.execute("SELECT count(*) FROM decisions").fetchone()[0] == threads * rounds + rounds
        assert len({r["decision_id"] for r in replies}) == threads * rounds + rounds
        # No lead lost an event to a concurrent decision: each lead's facts hold every event sent to it.
        for n in range(leads):
            events = {e["id"] for e in trail.lead_facts(f"H{n}")["events"]}
            sent = {f"e-{t}-{i}" for t in range(threads) for i in range(rounds) if (t + i) % leads == n}
            assert sent <= events
        assert trail.verify() == []
        if is_postgres(audit_db):  # a PostgreSQL transaction is one thread's: every group is one block
            assert gate.blocks == gate.groups >= threads * rounds * 2
        else:
            assert gate.blocks >= gate.groups > 0


def test_concurrent_clients_through_the_real_server_all_land_once(tmp_path):
    server = Server(tmp_path / "audit.db", workers=1).start()
    try:

        def send(n):
            status, reply, _ = server.request("POST", "/v1/decisions", lead(lead_id=f"S{n % 5}"))
            return status, reply["decision_id"]

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(send, range(96)))
    finally:
        server.stop()
    assert {s for s, _ in results} == {201}
    with AuditTrail(tmp_path / "audit.db") as trail:
        ids = {r[0] for r in trail.db.execute("SELECT id FROM decisions")}
        assert ids == {d for _, d in results}
        assert trail.verify() == []


def test_readers_and_writers_take_turns(trail, default):
    """A writer queued behind a holder of the connection (an archive, a backup, a verification) goes
    before the holders who came after it (and they after it)."""
    gate, seen, release = trail._lock, [], threading.Event()

    def first_reader():
        with gate:
            release.wait(10)

    r0 = threading.Thread(target=first_reader)
    r0.start()
    until(lambda: gate.owner is not None)
    w = threading.Thread(target=lambda: trail.record(**item(default, "T1")))
    w.start()
    until(lambda: gate._queued == 1)

    def later_reader():
        with gate:
            seen.append(trail.db.execute("SELECT lead_id FROM leads WHERE lead_id = 'T1'").fetchone())

    r1 = threading.Thread(target=later_reader)
    r1.start()
    until(lambda: gate._readers == 1)
    release.set()
    for t in (r0, w, r1):
        t.join(10)
    assert seen and seen[0] is not None  # the later reader saw the queued writer's decision

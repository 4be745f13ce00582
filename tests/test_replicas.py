"""Two machines, one trail: two `leadgate serve` replicas on two ports share one PostgreSQL database.

Clients spread their hand-offs over both replicas; in every round one replica is SIGKILLed while
requests are in flight, and a client whose request died retries it on the other replica with the
same Idempotency-Key (what a load balancer's retry does). However the kills fall, every acknowledged
decision is in the trail exactly once, `leadgate audit verify` passes, and weighted round robin
counted across both replicas gives exactly the weights' shares. A reload made through one replica is
served by the other, whose own files are older; a review session opened on one is the same session
on the other.
"""

from __future__ import annotations

import shutil
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from audit import assignment
from audit.keys import create
from cli import main
from tests.conftest import RULESETS, with_version
from tests.server import Server
from tests.test_assignment import TEAMS, hand_off
from tests.test_sessions import Browser

ROUNDS, PER_ROUND, CLIENTS = 3, 40, 8
TEAM = "account-executives"


def machine(tmp_path, name: str):
    """A replica's own copy of the ruleset files, as on its own machine."""
    rulesets = tmp_path / name
    rulesets.mkdir()
    shutil.copy(RULESETS / "default.yaml", rulesets)
    (rulesets / "teams.yaml").write_text(TEAMS.replace("cap: 6", "cap: 1000"))
    return rulesets


@pytest.mark.slow
def test_two_replicas_one_killed_in_rounds_lose_nothing_double_nothing_and_stay_fair(
    pg_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEADGATE_SECRET_FILE", str(tmp_path / "shared.key"))  # the same on both machines
    replicas = [
        Server(pg_url, workers=2, rulesets=machine(tmp_path, name), logs=tmp_path) for name in ("a", "b")
    ]
    acked: dict[str, tuple[int, dict]] = {}
    retried, replayed = [], []
    try:
        for replica in replicas:
            replica.start()
        for round_ in range(ROUNDS):
            survivor, victim = replicas[round_ % 2], replicas[(round_ + 1) % 2]
            done, kill_now = [0], threading.Event()
            lock = threading.Lock()

            def send(i, survivor=survivor, victim=victim, done=done, kill_now=kill_now, lock=lock):
                # the same request on either replica: one API key (a retry resends the request's own
                # headers), one Idempotency-Key per lead
                body = hand_off(i)
                key = {"Idempotency-Key": f"replica-{i}", "Authorization": f"Bearer {replicas[0].key}"}
                first = (survivor, victim)[i % 2]
                try:
                    status, reply, _ = first.request("POST", "/v1/decisions", body, key)
                except OSError:  # the replica died under the request: retry where the balancer sends it
                    status, reply = None, None
                if status is None or status >= 500:
                    retried.append(i)
                    status, reply, headers = survivor.request("POST", "/v1/decisions", body, key)
                    if headers.get("Idempotent-Replayed") == "true":
                        replayed.append(i)  # the killed replica had recorded it, but never answered
                with lock:
                    done[0] += 1
                    if done[0] == PER_ROUND // 4:
                        kill_now.set()
                return i, status, reply

            def kill(victim=victim, kill_now=kill_now):
                kill_now.wait(60)
                victim.stop(signal.SIGKILL)

            killer = threading.Thread(target=kill)
            killer.start()
            leads = range(round_ * PER_ROUND, (round_ + 1) * PER_ROUND)
            with ThreadPoolExecutor(CLIENTS) as pool:
                for i, status, reply in pool.map(send, leads):
                    assert status in (200, 201), (i, status, reply)
                    acked[f"A-{i}"] = (status, reply)
            killer.join()
            victim.start()  # back for the next round, on the same port
        with replicas[0].trail() as trail:
            rows = trail._read("SELECT id, lead_id FROM decisions WHERE kind = 'decision'")
            counts = assignment.counts(trail, TEAM, next(iter(acked.values()))[1]["evaluated_at"][:10])
        by_lead: dict[str, list[str]] = {}
        for r in rows:
            by_lead.setdefault(r["lead_id"], []).append(r["id"])
        total = ROUNDS * PER_ROUND
        assert len(acked) == total and all(len(ids) == 1 for ids in by_lead.values())
        assert {lead: reply["decision_id"] for lead, (_, reply) in acked.items()} == {
            lead: ids[0] for lead, ids in by_lead.items()
        }
        owners = [reply["assignment"]["owner"] for _, reply in acked.values()]
        shares = {"sam": total // 2, "lee": total // 4, "kim": total // 4}  # weights 2:1:1, Ola away
        assert counts == shares and {o: owners.count(o) for o in set(owners)} == shares
        verified = CliRunner().invoke(main, ["audit", "verify", "--db", pg_url])
        assert verified.exit_code == 0 and "chain intact" in verified.output, verified.output

        # a reload through replica a reaches replica b, whose own files still say version 3
        (tmp_path / "a" / "default.yaml").write_text(
            with_version((RULESETS / "default.yaml").read_text(), 99)
        )
        status, reloaded, _ = replicas[0].request("POST", "/v1/admin/reload")
        assert status == 200, reloaded
        for replica in replicas:
            status, reply, _ = replica.request("POST", "/v1/decisions", hand_off(10_000 + replica.port))
            assert status == 201 and reply["ruleset"]["version"] == 99, reply
    finally:
        for replica in replicas:
            replica.stop()
    print(f"retried after a kill: {len(retried)} of {ROUNDS * PER_ROUND}, of which {len(replayed)} replayed")


def test_a_review_session_opened_on_one_replica_is_the_same_session_on_the_other(
    pg_url, tmp_path, monkeypatch
):
    """Sessions live in the shared trail and cookies are signed with the shared key file: a reviewer the
    balancer moves between machines stays signed in, and signing out on one ends it on both."""
    monkeypatch.setenv("LEADGATE_SECRET_FILE", str(tmp_path / "shared.key"))
    a, b = (Server(pg_url, workers=1, secure_cookies=0, logs=tmp_path) for _ in range(2))
    with a, b:
        with a.trail() as trail:
            key = create(trail, "reviewer", "review")[1]
        on_a = Browser(a)
        on_a.sign_in(key)
        on_b = Browser(b, on_a.cookie)
        assert on_b.signed_in() and on_a.signed_in()
        status, _, _ = on_b.request(
            "POST", "/review/sign-out", {"csrf_token": on_b.token("/review/rulesets")}
        )
        assert status == 302
        assert not Browser(a, on_a.cookie).signed_in()

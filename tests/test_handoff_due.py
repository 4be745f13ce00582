"""Issue 14: a hand-off keeps one due time while its route stays the same, and the reply and `sla` agree.

Before the fix `route.due_at` moved on every re-decision (an answer at 10:25 moved it from 10:30 to
10:55) while `leadgate sla` measured against the first hand-off's due time.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import AuditTrail, outcomes
from cli import main
from service.decide import decide, decide_batch
from service.outcomes import report_outcome
from tests.history import GOOD_FIT, POOR_FIT

LEAD = "D-1"
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FIRST = {
    "lead_id": LEAD,
    "profile": {**GOOD_FIT, "email": "ana@acme.io"},
    "events": [{"type": "demo_request", "at": "2026-11-23T09:00:00Z", "id": "demo-1"}],
}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_answer_after_hand_off_keeps_the_first_due_time_and_says_when_handed_off(
    tmp_path, default, make_trail
):
    db = tmp_path / "d.db"
    trail = make_trail(db, durability="normal")
    first = decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")[0]["route"]
    assert (first["id"], first["due_at"], first["handed_off_at"]) == (
        "sales_handoff",
        "2026-11-23T10:30:00Z",
        "2026-11-23T10:00:00Z",
    )
    answer = {"lead_id": LEAD, "answers": {"timeline": "now"}}
    later = decide(default, trail, answer, at="2026-11-23T10:25:00Z")[0]["route"]
    assert later["id"] == "sales_handoff"
    assert later["due_at"] == "2026-11-23T10:30:00Z" and later["handed_off_at"] == "2026-11-23T10:00:00Z"
    trail.close()
    # `leadgate sla` measures the same due time: overdue one minute after it, not at it.
    for at, overdue in (("2026-11-23T10:30:00Z", []), ("2026-11-23T10:31:00Z", ["2026-11-23T10:30:00Z"])):
        out = CliRunner().invoke(main, ["sla", "--json", "--at", at, "--db", str(db)])
        assert out.exit_code == 0, out.output
        assert [o["due_at"] for o in json.loads(out.output)["overdue"]] == overdue


def test_a_new_route_starts_a_new_sla(tmp_path, default, make_trail):
    trail = make_trail(tmp_path / "d.db", durability="normal")
    decide(default, trail, FIRST, at="2026-11-23T10:00:00Z")
    poor = {"lead_id": LEAD, "profile": POOR_FIT}
    moved = decide(default, trail, poor, at="2026-11-23T10:10:00Z")[0]["route"]
    assert moved["id"] != "sales_handoff" and moved["due_at"] is None and moved["handed_off_at"] is None
    back = decide(default, trail, {"lead_id": LEAD, "profile": GOOD_FIT}, at="2026-11-23T10:20:00Z")[0]
    assert back["route"]["id"] == "sales_handoff"
    assert back["route"]["due_at"] == "2026-11-23T10:50:00Z"
    assert back["route"]["handed_off_at"] == "2026-11-23T10:20:00Z"


def test_a_batch_deciding_a_lead_twice_keeps_its_hand_off(tmp_path, default, make_trail):
    trail = make_trail(tmp_path / "d.db", durability="normal")
    second = {"lead_id": LEAD, "answers": {"timeline": "now"}}
    replies = decide_batch([default, default], trail, [FIRST, second], at="2026-11-23T10:00:00Z")
    later = decide(default, trail, {"lead_id": LEAD}, at="2026-11-23T10:05:00Z")[0]
    assert {r["route"]["due_at"] for r in [*replies, later]} == {"2026-11-23T10:30:00Z"}


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["answer", "poor_fit", "good_fit", "accepted", "rejected", "nothing"]),
        st.integers(min_value=1, max_value=100),  # minutes after the previous step
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_reply_and_sla_always_agree_on_the_due_time(default, steps):
    with tempfile.TemporaryDirectory() as tmp, AuditTrail(Path(tmp) / "d.db", durability="normal") as trail:
        at = START
        reply = decide(default, trail, FIRST, at=_iso(at))[0]
        opened = {_key(reply["route"]): 0}  # hand-off -> the step whose decision opened it
        reported: list[int] = []  # steps that reported an outcome (it acts on the hand-off going on)
        for step, (kind, minutes) in enumerate(steps, start=1):
            at += timedelta(minutes=minutes)
            if kind in ("accepted", "rejected"):
                outcome = {"type": kind, "at": _iso(at)} | (
                    {"reason": "bad_timing"} if kind == "rejected" else {}
                )
                reply = report_outcome(default, trail, LEAD, outcome, at=_iso(at))["decision"]
                reported.append(step)
            else:
                request = {
                    "answer": {"answers": {"timeline": "now"}},
                    "poor_fit": {"profile": POOR_FIT},
                    "good_fit": {"profile": GOOD_FIT},
                    "nothing": {},
                }[kind]
                reply = decide(default, trail, {"lead_id": LEAD, **request}, at=_iso(at))[0]
            opened.setdefault(_key(reply["route"]), step)
            acted = any(s > opened[_key(reply["route"])] for s in reported)
            _agree(trail, reply["route"], acted)


def _key(route: dict) -> tuple:
    return route["id"], route["handed_off_at"]


def _agree(trail: AuditTrail, route: dict, acted: bool) -> None:
    def overdue(at: str) -> list[dict]:
        return [o for o in outcomes.sla(trail, at)["overdue"] if o["lead_id"] == LEAD]

    if route["due_at"] is None:
        assert route["handed_off_at"] is None
        assert overdue("2099-01-01T00:00:00Z") == []
        return
    due = datetime.fromisoformat(route["due_at"].replace("Z", "+00:00"))
    handed = datetime.fromisoformat(route["handed_off_at"].replace("Z", "+00:00"))
    assert handed <= due
    if acted:  # answered: `sla` counts it as acted on, never overdue
        assert overdue("2099-01-01T00:00:00Z") == []
        return
    assert overdue(route["due_at"]) == []
    [item] = overdue(_iso(due + timedelta(minutes=1)))
    assert (item["due_at"], item["at"], item["route"]) == (
        route["due_at"],
        route["handed_off_at"],
        route["id"],
    )

"""Hand-offs reach people: `leadgate deliver` gets every event to a real receiver on 127.0.0.1, signed,
once per id at least, in order per lead, through failures, timeouts and a receiver down for a while."""

from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner

from audit import AuditTrail, deliveries, outbox
from cli import main
from service import deploy
from service.config import load_config
from service.deliver import Deliverer
from service.outcomes import report_outcome
from tests.receiver import (
    ENV,
    KEY,
    Receiver,
    drain,
    event_ids,
    hand_off,
    webhook_world,
    write_rulesets,
)

world_fixture = pytest.fixture(name="world")(webhook_world)

# -- delivery ------------------------------------------------------------------------------------


def test_every_event_arrives_signed_under_its_own_id(world, registry):
    trail, deliverer, receiver = world
    receiver.start()
    for i in range(5):
        hand_off(registry, trail, f"L-{i}")
    expected = event_ids(trail)
    d = deliverer()
    assert drain(d, lambda: len(receiver.ids()) >= len(expected))
    assert sorted(receiver.ids()) == sorted(expected)
    assert all(s["verified"] for s in receiver.seen)
    assert all(s["id"] == s["event"]["id"] for s in receiver.seen)
    assert {r["status"] for r in deliveries.listing(trail)} == {"delivered"}
    first = deliveries.listing(trail)[0]
    [attempt] = deliveries.attempts(trail, first["id"])
    assert attempt["status"] == 204 and attempt["latency_ms"] > 0 and attempt["error"] is None


def test_a_wrong_secret_is_refused_by_the_receiver(world, registry):
    trail, deliverer, receiver = world
    receiver.start()
    hand_off(registry, trail, "L-wrong")
    d = deliverer(delivery_attempts=2)
    d.environ = {"LEADGATE_WEBHOOK_SALES_SECRET": "whsec_" + base64.b64encode(b"x" * 32).decode()}
    assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"dead"})
    assert receiver.seen and not any(s["verified"] for s in receiver.seen) and not receiver.accepted


def test_the_last_failed_attempt_makes_a_dead_letter_and_retry_delivers_it(world, registry):
    trail, deliverer, receiver = world
    receiver.fail_all = True
    receiver.start()
    hand_off(registry, trail, "L-dead")
    d = deliverer(delivery_attempts=3)
    assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"dead"})
    dead = deliveries.listing(trail, "dead")[0]
    assert [a["status"] for a in deliveries.attempts(trail, dead["id"])] == [500, 500, 500]
    assert dead["last_error"] == "answered HTTP 500"
    # Dead letters release their lead: the lead's later event went on (and died the same way).
    assert len(deliveries.listing(trail, "dead")) == 2
    receiver.fail_all = False
    result = CliRunner().invoke(main, ["deliveries", "retry", "--dead", "--db", str(trail.path)])
    assert result.exit_code == 0, result.output
    assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"delivered"})
    assert sorted(receiver.ids()) == sorted(event_ids(trail))


def test_a_failing_lead_blocks_its_own_later_events_not_other_leads(world, registry):
    trail, deliverer, receiver = world
    receiver.fail_leads = {"L-stuck"}
    receiver.start()
    hand_off(registry, trail, "L-stuck")
    hand_off(registry, trail, "L-free")
    d = deliverer(delivery_attempts=100)
    assert drain(d, lambda: len(receiver.ids()) == len(event_ids(trail, "L-free")))
    stuck = [s for s in receiver.seen if s["event"]["lead_id"] == "L-stuck"]
    assert stuck and {s["id"] for s in stuck} == {event_ids(trail, "L-stuck")[0]}  # the head only


def test_a_receiver_down_for_a_while_gets_everything_in_order_per_lead(world, registry):
    trail, deliverer, receiver = world
    d = deliverer(delivery_attempts=1000)
    for round_ in range(3):
        for lead in ("L-a", "L-b", "L-c"):
            hand_off(registry, trail, lead)
            outcome = {"type": ["contacted", "meeting_held", "accepted"][round_]}
            report_outcome(registry.get("default"), trail, lead, outcome, teams=registry.deployment.teams)
        for _ in range(5):
            d.step()  # receiver down: connection refused, every attempt kept
    assert all(r["status"] == "pending" for r in deliveries.listing(trail))
    assert any(r["last_error"] for r in deliveries.listing(trail))
    receiver.start()
    expected = event_ids(trail)
    assert drain(d, lambda: len(receiver.ids()) >= len(expected))
    assert sorted(receiver.ids()) == sorted(expected)
    for lead in ("L-a", "L-b", "L-c"):
        assert [i for i in receiver.ids() if i in set(event_ids(trail, lead))] == event_ids(trail, lead)


def test_with_many_in_flight_and_random_failures_each_lead_still_arrives_in_order(world, registry):
    import threading

    trail, deliverer, receiver = world
    receiver.fail_rate = 0.3
    receiver.delay = 0.01
    receiver.start()
    leads = [f"L-order-{i}" for i in range(12)]
    for round_ in range(3):
        for lead in leads:
            hand_off(registry, trail, lead)
            outcome = {"type": ["contacted", "meeting_held", "accepted"][round_]}
            report_outcome(registry.get("default"), trail, lead, outcome, teams=registry.deployment.teams)
    expected = event_ids(trail)
    d = deliverer(delivery_attempts=1000, delivery_concurrency=8, delivery_poll_ms=5)
    stop = threading.Event()
    runner = threading.Thread(target=d.run, args=(stop,))
    runner.start()
    try:
        assert receiver.wait(lambda: set(receiver.ids()) >= set(expected), 60)
    finally:
        stop.set()
        runner.join(30)
    assert len(receiver.seen) > len(expected)  # failures happened and were retried
    received = receiver.ids()
    for lead in leads:
        mine = set(event_ids(trail, lead))
        assert [i for i in dict.fromkeys(received) if i in mine] == event_ids(trail, lead)
    concurrent = max(
        sum(1 for t in (s["at"] for s in receiver.seen) if abs(t - s0["at"]) < 0.01) for s0 in receiver.seen
    )
    assert concurrent > 1  # several leads were in flight at once


def test_slow_answers_arrive_and_timeouts_are_retried(world, registry):
    trail, deliverer, receiver = world
    receiver.delay = 0.3
    receiver.start()
    hand_off(registry, trail, "L-slow")
    d = deliverer(delivery_timeout_ms=2000)
    assert drain(d, lambda: len(receiver.ids()) == 2)
    receiver.delay = 1.0
    hand_off(registry, trail, "L-timeout")
    d = deliverer(delivery_timeout_ms=300, delivery_attempts=100)
    d.step()
    [first] = [r for r in deliveries.listing(trail) if r["lead_id"] == "L-timeout" and r["attempts"]]
    assert first["status"] == "pending" and "timed out" in first["last_error"]
    receiver.delay = 0.0
    assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"delivered"})


def test_chat_destinations_get_a_slack_message_with_owner_due_time_and_review_link(tmp_path, registry):
    receiver = Receiver(KEY).start()
    trail = AuditTrail(tmp_path / "c.db", durability="normal")
    try:
        chat = (
            "  chat:\n    url_env: LEADGATE_WEBHOOK_CHAT_URL\n    format: slack\n"
            "    secret_env: LEADGATE_WEBHOOK_SALES_SECRET\n"
            "    events: [lead.handed_off]\n    teams: [account-executives]\n"
        )
        directory = write_rulesets(tmp_path, "http://127.0.0.1:9/unused", chat)
        (directory / "destinations.yaml").write_text(
            (directory / "destinations.yaml")
            .read_text()
            .replace("events: [lead", "events: [sla.breached]\n#", 1)
        )
        deploy.reload(registry, trail, directory, "tests")
        reply = hand_off(registry, trail, "L-chat")
        config = load_config(environ={}, db=str(trail.path), public_url="https://leads.example.com")
        d = Deliverer(config, trail, environ={**ENV, "LEADGATE_WEBHOOK_CHAT_URL": receiver.url})
        assert drain(d, lambda: len(receiver.accepted) == 1)
        message = receiver.accepted[0]["event"]
        owner, due = reply["assignment"]["name"], reply["route"]["due_at"]
        assert "https://leads.example.com/review/leads/L-chat" in message["text"]
        assert owner in message["text"] and due in message["text"] and "sales_handoff" in message["text"]
        assert message["blocks"][0]["type"] == "section"
    finally:
        receiver.stop()
        trail.close()


def test_cli_lists_and_replays_deliveries(world, registry):
    trail, deliverer, receiver = world
    receiver.start()
    hand_off(registry, trail, "L-cli")
    d = deliverer()
    assert drain(d, lambda: len(receiver.ids()) == 2)
    runner = CliRunner()
    listed = runner.invoke(main, ["deliveries", "list", "--attempts", "--db", str(trail.path)])
    assert listed.exit_code == 0 and "delivered" in listed.output and "#1" in listed.output
    event = event_ids(trail, "L-cli")[0]
    replayed = runner.invoke(main, ["deliveries", "replay", event, "--db", str(trail.path)])
    assert replayed.exit_code == 0 and "queued" in replayed.output
    assert drain(d, lambda: receiver.ids().count(event) == 2)
    missing = runner.invoke(main, ["deliveries", "replay", "evt_nope", "--db", str(trail.path)])
    assert missing.exit_code == 1
    delivered = deliveries.listing(trail, "delivered")[0]["id"]
    again = runner.invoke(main, ["deliveries", "retry", delivered, "--db", str(trail.path)])
    assert again.exit_code == 1 and "replay" in again.output


# -- the review page -----------------------------------------------------------------------------


def test_the_review_page_lists_failed_deliveries_and_retries_one_with_its_csrf_token(
    world, registry, make_app, tmp_path
):
    from audit.keys import create
    from tests.test_review import sign_in, token

    trail, deliverer, receiver = world
    receiver.fail_all = True
    receiver.start()
    hand_off(registry, trail, "L-page")
    assert drain(deliverer(delivery_attempts=1), lambda: len(deliveries.listing(trail, "dead")) == 2)
    dead = deliveries.listing(trail, "dead")[0]["id"]
    app = make_app(db=str(trail.path), rulesets=str(tmp_path / "rulesets"), secure_cookies=0)
    keys = {scope: create(trail, scope, scope)[1] for scope in ("review", "admin")}
    reviewer, admin = app.test_client(), app.test_client()
    assert sign_in(reviewer, keys["review"]).status_code == 302
    assert sign_in(admin, keys["admin"]).status_code == 302
    page = reviewer.get("/review/deliveries")
    assert page.status_code == 200 and dead in page.text and "answered HTTP 500" in page.text
    assert f'id="retry-{dead}"' not in page.text  # reviewers see, admins retry
    assert (
        reviewer.post(f"/review/deliveries/{dead}/retry", data={"csrf_token": token(page)}).status_code == 403
    )
    page = admin.get("/review/deliveries")
    assert f'id="retry-{dead}"' in page.text
    assert admin.post(f"/review/deliveries/{dead}/retry", data={}).status_code == 400  # no token
    assert admin.post(f"/review/deliveries/{dead}/retry", data={"csrf_token": "forged"}).status_code == 400
    assert deliveries.get(trail, dead)["status"] == "dead"
    done = admin.post(f"/review/deliveries/{dead}/retry", data={"csrf_token": token(page)})
    assert done.status_code == 302 and deliveries.get(trail, dead)["status"] == "pending"
    assert (
        admin.post("/review/deliveries/dlv_nope/retry", data={"csrf_token": token(page)}).status_code == 404
    )
    receiver.fail_all = False
    assert drain(deliverer(), lambda: deliveries.get(trail, dead)["status"] == "delivered")
    assert "No delivery is failing" not in admin.get("/review/deliveries").text  # the other is still dead


def test_the_deliverer_tells_a_breached_sla_by_itself_once_and_not_an_answered_one(world, registry):
    from datetime import UTC, datetime, timedelta

    from service.decide import decide
    from service.outcomes import escalate_overdue
    from tests.test_api import LEAD

    trail, deliverer, receiver = world
    receiver.start()
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    teams = registry.deployment.teams
    for lead in ("L-late", "L-answered"):
        body = {**LEAD, "lead_id": lead}
        decide(registry.get("default"), trail, body, at=two_hours_ago, teams=teams)
    report_outcome(
        registry.get("default"), trail, "L-answered", {"type": "accepted"}, at=two_hours_ago, teams=teams
    )
    d = deliverer()

    def breaches():
        return [s["event"] for s in receiver.accepted if s["event"]["type"] == "sla.breached"]

    assert drain(d, breaches)
    [told] = breaches()
    assert told["lead_id"] == "L-late" and told["data"]["route"] == "sales_handoff"
    assert 85 <= told["data"]["minutes_overdue"] <= 95
    escalate_overdue(registry.get, trail, teams=teams)  # re-routes the lead: the same breach, not a second
    assert drain(d, lambda: not deliveries.listing(trail, "pending"))
    assert [e["type"] for e in outbox.events(trail, "L-late")].count("sla.breached") == 1
    assert not [e for e in outbox.events(trail, "L-answered") if e["type"] == "sla.breached"]


def test_a_deliverer_that_lost_its_lock_to_another_stops_instead_of_sending_twice(tmp_path, monkeypatch):
    import threading

    import service.deliver
    from service.deliver import AlreadyRunning

    monkeypatch.setattr(service.deliver, "HOLD_CHECK_S", 0)
    answers = iter([True, True, False])  # another machine's deliverer took the lock at the third look
    with AuditTrail(tmp_path / "d.db", durability="normal") as trail:
        d = Deliverer(load_config(environ={}, db=str(trail.path)), trail, environ=ENV)
        stop = threading.Event()
        with pytest.raises(AlreadyRunning, match="lost its lock and another leadgate deliver holds it"):
            d.run(stop, lambda: next(answers))
        assert next(answers, "asked no more") == "asked no more"

"""Hand-offs reach people: the outbox is transactional and `leadgate deliver` gets every event to a real
receiver on 127.0.0.1, signed, once per id at least, in order per lead, through failures and kills."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit import AuditTrail, deliveries, outbox
from cli import main
from engine import FactsError, RulesetError
from engine.destinations import load_destinations
from service import deploy
from service.config import load_config
from service.decide import decide, report_outcome
from service.deliver import Deliverer, render
from tests.receiver import Receiver
from tests.server import LEADGATE, ROOT
from tests.test_api import LEAD

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
ENV = {"LEADGATE_WEBHOOK_SALES_SECRET": SECRET}
ALL = "[lead.handed_off, lead.stage_changed, lead.disqualified, sla.breached, outcome.recorded]"


def write_rulesets(tmp_path: Path, url: str, extra: str = "") -> Path:
    directory = tmp_path / "rulesets"
    if not directory.exists():
        shutil.copytree(ROOT / "rulesets", directory)
    (directory / "destinations.yaml").write_text(
        f"version: 1\ndestinations:\n  sales:\n    url: {url}\n"
        f"    secret_env: LEADGATE_WEBHOOK_SALES_SECRET\n    events: {ALL}\n{extra}"
    )
    return directory


@pytest.fixture
def world(tmp_path, registry):
    """(trail, deliverer factory, receiver) on a fresh database whose destination is the receiver."""
    receiver = Receiver(KEY)
    trail = AuditTrail(tmp_path / "d.db", durability="normal")
    deploy.reload(registry, trail, write_rulesets(tmp_path, receiver.url), "tests")

    made = []

    def deliverer(**settings):
        config = load_config(environ={}, db=str(tmp_path / "d.db"), delivery_backoff_ms=1, **settings)
        made.append(Deliverer(config, trail, environ=ENV))
        return made[-1]

    yield trail, deliverer, receiver
    for d in made:
        d.close()
    receiver.stop()
    trail.close()


def hand_off(registry, trail, lead_id: str, **changes) -> dict:
    request = {**copy.deepcopy(LEAD), "lead_id": lead_id, **changes}
    return decide(registry.get("default"), trail, request, teams=registry.deployment.teams)[0]


def drain(deliverer, done, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliverer.step()
        if done():
            return True
        time.sleep(0.01)
    return done()


def event_ids(trail, lead_id=None) -> list[str]:
    return [e["id"] for e in outbox.events(trail, lead_id, limit=10_000)]


# -- destinations.yaml ---------------------------------------------------------------------------


def test_a_destination_file_is_checked_with_file_and_line():
    text = (
        "version: 1\ndestinations:\n  crm:\n    url: ftp://crm.example.com\n    events: [lead.handed_of]\n"
        "    secret: hunter2hunter2\n  chat:\n    url: https://u:p@chat.example.com/x\n"
        "    secret_env: MY_SECRET\n    events: [sla.breached]\n    format: teams\n"
    )
    with pytest.raises(RulesetError) as caught:
        load_destinations(text, "destinations.yaml")
    messages = {(p.line, p.message.split(" (")[0]) for p in caught.value.problems}
    assert (4, "url must be an http:// or https:// address") in messages
    assert any(line == 5 and "unknown event 'lead.handed_of'" in m for line, m in messages)
    assert any(line == 6 and "unknown key 'secret'" in m for line, m in messages)
    assert (8, "url must not hold credentials: sign with a secret instead") in messages
    assert any(line == 9 and "LEADGATE_WEBHOOK_" in m for line, m in messages)
    assert (11, "format must be one of json, slack") in messages
    both = (
        "version: 1\ndestinations:\n  x:\n    url: https://a.example.com\n    url_env: LEADGATE_WEBHOOK_X\n"
    )
    for text in (both, "version: 1\ndestinations:\n  x: {events: [sla.breached]}\n"):
        with pytest.raises(RulesetError, match="needs either url or url_env"):
            load_destinations(text)


def test_a_broken_destinations_file_keeps_the_last_good_one(tmp_path, registry):
    trail = AuditTrail(tmp_path / "r.db", durability="normal")
    try:
        directory = write_rulesets(tmp_path, "http://127.0.0.1:9/a")
        deploy.reload(registry, trail, directory, "tests")
        (directory / "destinations.yaml").write_text("version: 2\ndestinations:\n  sales: {url: nowhere}\n")
        _, problems, kept = deploy.reload(registry, trail, directory, "tests")
        assert kept == {"@destinations": 1}
        assert any("url must be" in p.message for p in problems)
        assert set(registry.deployment.destinations.destinations) == {"sales"}
        result = CliRunner().invoke(main, ["rulesets", "validate", "--dir", str(directory)])
        assert result.exit_code == 1 and "destinations.yaml:3" in result.output
    finally:
        trail.close()


def test_filters_narrow_what_a_destination_is_told():
    text = (
        "version: 1\ndestinations:\n  ae:\n    url: https://x.example.com/h\n    events: [lead.handed_off]\n"
        "    teams: [account-executives]\n    rulesets: [default]\n"
    )
    ae = load_destinations(text).destinations["ae"]
    event = {
        "type": "lead.handed_off",
        "ruleset": "default",
        "route": "sales_handoff",
        "team": "account-executives",
    }
    assert ae.wants(event)
    assert not ae.wants({**event, "team": "sdr"})
    assert not ae.wants({**event, "ruleset": "doggie-delights"})
    assert not ae.wants({**event, "type": "lead.stage_changed"})


def test_a_missing_or_weak_secret_is_an_attempt_error_that_names_the_variable_not_a_value(tmp_path):
    from audit.secrets import Secrets
    from service.deliver import DeliveryFailed, address, signing_key

    text = "version: 1\ndestinations:\n  s:\n    url: https://x.example.com/h\n    events: [sla.breached]\n"
    keyed = load_destinations(text).destinations["s"]
    named = load_destinations(text + "    secret_env: LEADGATE_WEBHOOK_S\n").destinations["s"]
    secrets = Secrets(tmp_path / "k.key")
    assert signing_key(keyed, secrets) == signing_key(keyed, Secrets(tmp_path / "k.key")) != b""  # kept
    with pytest.raises(DeliveryFailed, match="LEADGATE_WEBHOOK_S is not set"):
        signing_key(named, secrets, environ={})
    with pytest.raises(DeliveryFailed, match="32\\+ characters") as caught:
        signing_key(named, secrets, environ={"LEADGATE_WEBHOOK_S": "short-value"})
    assert "short-value" not in str(caught.value)
    assert signing_key(named, secrets, environ={"LEADGATE_WEBHOOK_S": SECRET}) == KEY
    hidden = load_destinations(text.replace("url: https://x.example.com/h", "url_env: LEADGATE_WEBHOOK_U"))
    chat = hidden.destinations["s"]
    with pytest.raises(DeliveryFailed, match="LEADGATE_WEBHOOK_U is not set"):
        address(chat, {})
    with pytest.raises(DeliveryFailed, match="url must be an http") as caught:
        address(chat, {"LEADGATE_WEBHOOK_U": "ftp://secret-token@x"})
    assert "secret-token" not in str(caught.value)
    assert (
        address(chat, {"LEADGATE_WEBHOOK_U": "https://hooks.example.com/T/B/X"})
        == "https://hooks.example.com/T/B/X"
    )


# -- the outbox ----------------------------------------------------------------------------------


def test_a_hand_off_writes_its_events_with_the_decision_and_a_refused_one_writes_none(world, registry):
    trail, _, _ = world
    reply = hand_off(registry, trail, "L-ok")
    kinds = [e["type"] for e in outbox.events(trail, "L-ok")]
    assert kinds == ["lead.handed_off", "lead.stage_changed"]
    assert outbox.events(trail, "L-ok")[0]["data"]["decision_id"] == reply["decision_id"]
    # Refused: bad input never reaches the audit, nor the outbox.
    with pytest.raises(FactsError):
        hand_off(registry, trail, "L-bad", profile={"employees": "many"})
    # Rolled back: the decision was recorded inside a transaction that then failed.
    with pytest.raises(RuntimeError), trail.transaction():
        hand_off(registry, trail, "L-rolled-back")
        raise RuntimeError("the caller's transaction fails after the decision")
    # A preview decides the same way and tells nobody.
    decide(registry.get("default"), trail, {**copy.deepcopy(LEAD), "lead_id": "L-preview"}, kind="preview")
    assert {e["lead_id"] for e in outbox.events(trail)} == {"L-ok"}
    # Deciding again without a change opens no second hand-off.
    hand_off(registry, trail, "L-ok")
    assert len(event_ids(trail, "L-ok")) == 2


def test_outcomes_and_sla_breaches_are_events_and_a_breach_is_told_once(world, registry):
    trail, _, _ = world
    hand_off(registry, trail, "L-sla")
    from service.decide import escalate_overdue

    later = "2030-01-01T00:00:00Z"
    teams = registry.deployment.teams
    escalate_overdue(registry.get, trail, at=later, teams=teams)
    escalate_overdue(registry.get, trail, at=later, teams=teams)
    report_outcome(registry.get("default"), trail, "L-sla", {"type": "accepted"}, at=later, teams=teams)
    kinds = [e["type"] for e in outbox.events(trail, "L-sla")]
    assert kinds.count("sla.breached") == 1 and kinds.count("outcome.recorded") == 1
    breach = next(e for e in outbox.events(trail, "L-sla") if e["type"] == "sla.breached")
    assert breach["data"]["route"] == "sales_handoff" and breach["data"]["team"] == "account-executives"


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


def test_render_keeps_the_plain_event_for_json():
    event = {"id": "evt_1", "type": "lead.handed_off", "lead_id": "L", "timestamp": "t", "data": {}}
    assert json.loads(render(event, "json", "http://x")) == event


# -- the deliverer as a process ------------------------------------------------------------------


def _deliverer_process(db: Path, log: Path, **env) -> subprocess.Popen:
    environ = {
        **os.environ,
        **ENV,
        "LEADGATE_DB": str(db),
        "LEADGATE_DELIVERY_BACKOFF_MS": "50",
        "LEADGATE_DELIVERY_POLL_MS": "20",
        **env,
    }
    with open(log, "ab") as out:
        return subprocess.Popen([str(LEADGATE), "deliver"], env=environ, stdout=out, stderr=out)


@pytest.mark.slow
def test_sigkill_mid_flight_loses_nothing_and_redelivers_under_the_same_id(world, registry, tmp_path):
    trail, _, receiver = world
    receiver.delay = 2.0  # the deliverer is killed while it waits for the answer
    receiver.start()
    for i in range(3):
        hand_off(registry, trail, f"L-kill-{i}")
    expected = event_ids(trail)
    log = tmp_path / "deliver.log"
    proc = _deliverer_process(Path(trail.path), log)
    try:
        assert receiver.wait(lambda: len(receiver.seen) >= 1, 20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        in_flight = {s["id"] for s in receiver.seen}
        assert not (in_flight & set(receiver.ids()))  # none of them was answered
        receiver.delay = 0.0
        proc = _deliverer_process(Path(trail.path), log)
        assert receiver.wait(lambda: set(receiver.ids()) >= set(expected), 30), log.read_text()[-2000:]
        redelivered = [s["id"] for s in receiver.seen]
        assert all(redelivered.count(i) >= 2 for i in in_flight)  # the same ids, sent again
        assert all(s["verified"] for s in receiver.seen)
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "delivered evt_" in text  # the log says what happened, and nothing secret
    blob = b"".join(p.read_bytes() for p in Path(trail.path).parent.glob("d.db*") if p.name != "d.db.key")
    for form in (SECRET, base64.b64encode(KEY).decode(), KEY.hex()):
        assert form not in text and form.encode() not in blob
    assert KEY not in blob


def test_only_one_deliverer_runs_per_database(world, tmp_path):
    trail, _, _ = world
    log = tmp_path / "one.log"
    first = _deliverer_process(Path(trail.path), log)
    try:
        deadline = time.monotonic() + 20
        while "destinations:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(
            [str(LEADGATE), "deliver"],
            env={**os.environ, "LEADGATE_DB": str(trail.path)},
            capture_output=True,
            timeout=60,
        )
        assert second.returncode == 1 and b"another leadgate deliver is running" in second.stderr
    finally:
        first.terminate()
        assert first.wait(10) == 0


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


def test_the_review_page_lists_failed_deliveries_and_retries_one_with_its_csrf_token(world, registry):
    from api import create_app
    from audit.keys import create
    from tests.test_review import sign_in, token

    trail, deliverer, receiver = world
    receiver.fail_all = True
    receiver.start()
    hand_off(registry, trail, "L-page")
    assert drain(deliverer(delivery_attempts=1), lambda: len(deliveries.listing(trail, "dead")) == 2)
    dead = deliveries.listing(trail, "dead")[0]["id"]
    app = create_app(db=str(trail.path), rulesets=str(Path(trail.path).parent / "rulesets"), secure_cookies=0)
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


def test_the_example_receiver_verifies_signatures_and_drops_duplicates(tmp_path, registry):
    import http.client
    import sys

    from tests.server import free_port

    port = free_port()
    example = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "receiver.py"), "--port", str(port), "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    trail = AuditTrail(tmp_path / "e.db", durability="normal")
    d = Deliverer(load_config(environ={}, db=str(trail.path)), trail, environ=ENV)
    try:
        assert example.stdout.readline().startswith("listening")
        deploy.reload(registry, trail, write_rulesets(tmp_path, f"http://127.0.0.1:{port}/hooks"), "tests")
        hand_off(registry, trail, "L-example")
        assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"delivered"})
        handed_off = event_ids(trail, "L-example")[0]
        deliveries.replay(trail, handed_off)
        assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"delivered"})
        assert len(d.connections._all) == 1  # the three requests went over one kept-alive connection
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/hooks", b'{"type": "lead.handed_off"}', {"webhook-id": "evt_forged"})
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        d.close()
        example.terminate()
        output = example.communicate(timeout=10)[0]
        trail.close()
    lines = output.splitlines()
    first = json.loads(lines[0])
    assert first["id"] == handed_off and first["owner"] and first["route"] == "sales_handoff"
    assert f"duplicate {handed_off} (already handled)" in lines
    assert "refused: the signature does not verify" in lines


@pytest.mark.slow
def test_through_the_real_server_every_hand_off_is_told_and_no_refused_request_is(tmp_path):
    from tests.server import Server

    receiver = Receiver(KEY).start()
    directory = write_rulesets(tmp_path, receiver.url)
    db = tmp_path / "server.db"
    server = Server(db, workers=2, rulesets=directory)
    log = tmp_path / "deliver.log"
    with server:
        proc = _deliverer_process(db, log)
        try:
            accepted = []
            for i in range(12):
                lead = {**copy.deepcopy(LEAD), "lead_id": f"L-http-{i}"}
                status, reply, _ = server.request("POST", "/v1/decisions", lead)
                assert status == 201
                accepted.append(reply)
                bad = {**lead, "lead_id": f"L-refused-{i}", "profile": {"employees": "many"}}
                assert 400 <= server.request("POST", "/v1/decisions", bad)[0] < 500
                preview = {**lead, "lead_id": f"L-preview-{i}"}
                assert server.request("POST", "/v1/preview", preview)[0] == 200
            trail = AuditTrail(db)
            try:
                expected = event_ids(trail)
            finally:
                trail.close()
            assert receiver.wait(lambda: set(receiver.ids()) >= set(expected), 30), log.read_text()[-2000:]
        finally:
            proc.terminate()
            proc.wait(10)
            receiver.stop()
    told = [s["event"] for s in receiver.accepted]
    handed_off = [e for e in told if e["type"] == "lead.handed_off"]
    assert sorted(e["data"]["decision_id"] for e in handed_off) == sorted(r["decision_id"] for r in accepted)
    assert not [e for e in told if not e["lead_id"].startswith("L-http-")]  # nothing for refusals, previews
    assert set(receiver.ids()) == set(expected) and all(s["verified"] for s in receiver.seen)

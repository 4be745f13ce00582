"""The outbox and the destinations file: events written with what causes them, never otherwise;
destinations checked with file and line, filtered, their secrets never in the repository."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from audit import AuditTrail, outbox
from cli import main
from engine import FactsError, RulesetError
from engine.destinations import load_destinations
from service import deploy
from service.decide import decide
from service.outcomes import report_outcome
from service.webhooks import render
from tests.receiver import (
    KEY,
    SECRET,
    event_ids,
    hand_off,
    webhook_world,
    write_rulesets,
)
from tests.test_api import LEAD

world_fixture = pytest.fixture(name="world")(webhook_world)

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
    from service.webhooks import DeliveryFailed, address, signing_key

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
    with pytest.raises(RuntimeError), trail.unit_of_work():
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
    from service.outcomes import escalate_overdue

    later = "2030-01-01T00:00:00Z"
    teams = registry.deployment.teams
    escalate_overdue(registry.get, trail, at=later, teams=teams)
    escalate_overdue(registry.get, trail, at=later, teams=teams)
    report_outcome(registry.get("default"), trail, "L-sla", {"type": "accepted"}, at=later, teams=teams)
    kinds = [e["type"] for e in outbox.events(trail, "L-sla")]
    assert kinds.count("sla.breached") == 1 and kinds.count("outcome.recorded") == 1
    breach = next(e for e in outbox.events(trail, "L-sla") if e["type"] == "sla.breached")
    assert breach["data"]["route"] == "sales_handoff" and breach["data"]["team"] == "account-executives"


def test_render_keeps_the_plain_event_for_json():
    event = {"id": "evt_1", "type": "lead.handed_off", "lead_id": "L", "timestamp": "t", "data": {}}
    assert json.loads(render(event, "json", "http://x")) == event


def test_the_key_file_secret_of_a_destination_is_printed_for_its_receiver_and_stays_the_same(tmp_path):
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    from audit.secrets import Secrets
    from service.webhooks import signing_key

    db = tmp_path / "s.db"
    runner = CliRunner()
    first = runner.invoke(main, ["deliveries", "secret", "crm", "--db", str(db)])
    second = runner.invoke(main, ["deliveries", "secret", "crm", "--db", str(db)])
    assert first.exit_code == 0 and first.output == second.output and first.output.startswith("whsec_")
    other = runner.invoke(main, ["deliveries", "secret", "chat", "--db", str(db)])
    assert other.output != first.output  # each destination its own
    crm = load_destinations(
        "version: 1\ndestinations:\n  crm: {url: 'https://x.example.com', events: [sla.breached]}\n"
    )
    key = signing_key(crm.destinations["crm"], Secrets(f"{db}.key"))
    at = datetime.now(UTC)
    assert Webhook(first.output.strip()).sign("evt_1", at, "{}") == Webhook(key).sign("evt_1", at, "{}")
    assert first.output.strip().encode() not in b"".join(
        p.read_bytes() for p in tmp_path.glob("s.db*") if p.suffix != ".key"
    )

"""Shared fixtures: the shipped rulesets, and a builder for small rulesets written inline in tests."""

from __future__ import annotations

import gc
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from engine import Registry, compile_source
from engine.files import load_directory

pytest_plugins = ["tests.postgres"]  # postgres_server, pg_url, audit_db

ROOT = Path(__file__).resolve().parent.parent
RULESETS = ROOT / "rulesets"
AT = "2026-11-23T10:00:00Z"


@pytest.fixture(autouse=True)
def openapi_conformance(monkeypatch):
    """Every reply a test gets from the Flask test client or a real server must match /openapi.json
    (tests/contract.py).

    Yields the list of breaches found, which a test may read; the test fails when it is not empty.
    """
    from flask.testing import FlaskClient

    from tests import contract

    found: list[str] = []
    contract.breaches.clear()
    send = FlaskClient.open

    def checked(self, *args, **kwargs):
        response = send(self, *args, **kwargs)
        found.extend(contract.problems(self.application, response))
        return response

    monkeypatch.setattr(FlaskClient, "open", checked)
    yield found
    found.extend(contract.breaches)  # replies of a real server (tests/server.py)
    assert not found, "replies that break /openapi.json:\n" + "\n".join(found)


@pytest.fixture
def old(tmp_path):
    """A copy of tests/data/v10.db (and its key file): a trail as the code of issue 10 left it."""
    target = tmp_path / "v10.db"
    shutil.copy("tests/data/v10.db", target)
    shutil.copy("tests/data/v10.db.key", f"{target}.key")
    return target


@pytest.fixture(scope="session")
def registry() -> Registry:
    reg = Registry()
    assert load_directory(reg, RULESETS) == []
    return reg


@pytest.fixture(scope="session")
def default(registry):
    return registry.get("default")


@pytest.fixture
def make_app():
    """make_app(**settings) -> a Flask app; the audit connection of each is closed after the test."""
    from api import create_app, state

    made = []

    def make(**settings):
        made.append(create_app(**settings))
        return made[-1]

    yield make
    for app in made:
        state.close(app)


@pytest.fixture
def make_trail():
    """make_trail(path, **options) -> an AuditTrail, closed after the test even when the test fails."""
    from audit import AuditTrail

    made = []

    def make(path, **options):
        made.append(AuditTrail(path, **options))
        return made[-1]

    yield make
    for trail in made:
        trail.close()


@pytest.fixture
def app(make_app, tmp_path):
    """The Flask app on a fresh audit file and the shipped rulesets."""
    return make_app(db=str(tmp_path / "api.db"), rulesets=str(RULESETS))


def unclosed_connections(action) -> list[str]:
    """The ResourceWarnings ("unclosed database") that running `action` leaves to the garbage collector."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        action()
        gc.collect()
    return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]


@pytest.fixture(scope="session")
def history_db(tmp_path_factory, registry):
    """(path, trail, truth) of an audit file holding tests/history.py's generated leads and outcomes."""
    from audit import AuditTrail
    from tests import history

    path = tmp_path_factory.mktemp("history") / "h.db"
    with AuditTrail(path, durability="normal") as trail:
        yield path, trail, history.build(trail, registry.get("default"), history.N)


BASE = {
    "leadgate": 1,
    "name": "mini",
    "version": 1,
    "description": "A small ruleset for one test",
    "owners": {"marketing": {"name": "M"}, "sales": {"name": "S"}},
    "stages": [
        {"id": "not_a_lead", "kind": "not_a_lead"},
        {"id": "disqualified", "kind": "disqualified"},
        {"id": "recycled", "kind": "recycled"},
        {"id": "lead"},
        {"id": "mql"},
        {"id": "sql"},
    ],
    "scores": {
        "fit": {"min": 0, "max": 100, "good_at": 50, "grades": {"A": 75, "B": 50, "C": 0}},
        "engagement": {"min": 0, "max": 100, "half_life_days": 10},
    },
    "qualification": {"budget": {}, "authority": {}},
    "questions": [
        {
            "id": "budget",
            "item": "budget",
            "text": "Budget?",
            "answers": ["yes", "no"],
            "amount": True,
            "met": ["yes"],
            "unmet": ["no"],
            "met_at_least": 1000,
        },
        {
            "id": "authority",
            "item": "authority",
            "text": "Role?",
            "answers": ["decision_maker", "user"],
            "met": ["decision_maker"],
            "unmet": ["user"],
        },
        {"id": "talk_to_sales", "text": "Talk now?", "answers": ["yes", "no"]},
    ],
    "routes": {
        "sales": {
            "destination": "sales",
            "team": "ae",
            "sla_minutes": 15,
            "next_step": {"action": "book_meeting", "text": "Book"},
        },
        "nurture": {
            "destination": "nurture",
            "track": "basic",
            "next_step": {"action": "thank_you", "text": "Thanks"},
        },
        "out": {"destination": "disqualified", "next_step": {"action": "none", "text": "-"}},
    },
    "defaults": {"route": "nurture", "not_a_lead_route": "nurture", "disqualified_route": "out"},
}


def mini_source(rules: list[dict], **overrides) -> str:
    # Through JSON: PyYAML writes a shared object as an anchor and alias, which rulesets may not contain.
    doc = json.loads(json.dumps({**BASE, **overrides, "rules": rules}))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@pytest.fixture
def mini():
    """mini(rules, **top-level overrides) -> a compiled ruleset."""
    return lambda rules, **overrides: compile_source(mini_source(rules, **overrides), "mini.yaml")


def with_version(source: str, version: int) -> str:
    """A ruleset source with its `version:` line set to `version`."""
    out, n = re.subn(r"(?m)^version: \d+$", f"version: {version}", source, count=1)
    assert n == 1
    return out


def lead(**parts) -> dict:
    facts = {"lead_id": parts.pop("lead_id", "L1")}
    facts.update(parts)
    return facts

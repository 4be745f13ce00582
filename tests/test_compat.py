"""The cross-Python replay check (tests/compat.py) passes on a faithful trail and fails on a changed one.

`make test-compat` runs it across interpreters; here it runs within one, so that a check which could
never fail would be caught.
"""

from __future__ import annotations

import json
import shutil

import pytest

from audit import AuditTrail
from audit.codec import codec_for
from engine.cases import cases_path
from engine.files import ruleset_files
from engine.yamlsource import load
from tests import compat
from tests.conftest import RULESETS


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("compat") / "trail.db"
    return path, compat.record(path)


def copy(recorded, tmp_path):
    path, _ = recorded
    target = tmp_path / path.name
    shutil.copy(path, target)
    # The key file travels with the copy: without it the personal tokens cannot be checked.
    for side in (".json", ".key"):
        shutil.copy(path.with_name(path.name + side), target.with_name(target.name + side))
    return target


def test_the_trail_holds_every_shipped_case_and_the_sample_leads(recorded):
    path, n = recorded
    with AuditTrail(path) as trail:
        leads = [r["lead_id"] for r in trail._read("SELECT lead_id FROM decisions")]
    for file in ruleset_files(RULESETS):
        cases = load(cases_path(file).read_text(), str(file)).data["cases"]
        assert {f"{file.stem}:{case['id']}" for case in cases} <= set(leads)
    assert {f"L-{i:06d}" for i in range(500)} <= set(leads)
    assert len(leads) == n and leads.count("L-000000") == 2  # a second turn, with answers


def test_a_faithful_trail_replays_identically(recorded, tmp_path):
    path = copy(recorded, tmp_path)
    line = compat.check(path)
    assert f"replayed the {recorded[1]} decisions" in line and "every decision identical" in line


def test_a_changed_decision_fails_the_check(recorded, tmp_path):
    path = copy(recorded, tmp_path)
    with AuditTrail(path) as trail:
        # The reply is a zstd frame (audit.codec): written back as edited text, as an attacker could.
        digest, stored = trail.db.execute(
            "SELECT ruleset_digest, decision FROM decisions WHERE seq = 3"
        ).fetchone()
        decision = json.loads(codec_for(trail.db).unpack(stored, digest))
        trail.db.execute(
            "UPDATE decisions SET decision = ? WHERE seq = 3",
            (json.dumps({**decision, "stage": "tampered"}),),
        )
    with pytest.raises(compat.CompatFailure, match="audit verify"):
        compat.check(path)


def test_a_missing_decision_fails_the_check(recorded, tmp_path):
    path = copy(recorded, tmp_path)
    side = path.with_name(path.name + ".json")
    claimed = json.loads(side.read_text())
    side.write_text(json.dumps({**claimed, "decisions": claimed["decisions"] + 1}))
    with pytest.raises(compat.CompatFailure, match="expected all"):
        compat.check(path)


def test_recording_never_appends_to_an_existing_file(recorded):
    with pytest.raises(compat.CompatFailure, match="fresh file"):
        compat.record(recorded[0])

"""Issue 14: a ruleset's content never changes without a new version, checked by `make test` itself.

Before the fix `rulesets/default.yaml` changed (business hours on the qualification route) and kept
`version: 2`, so two different "default v2" existed; only the pull-request workflow compared versions.
Now rulesets/versions.lock holds every shipped (name, version, digest) and this file fails the suite
when a shipped file's content differs from its locked digest, saying how to fix it.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from cli import main
from service import lock
from tests.conftest import RULESETS, with_version


def test_shipped_rulesets_match_the_version_lock():
    problems = lock.problems(RULESETS)
    assert problems == [], "\n".join(problems)


def test_the_default_ruleset_ships_as_v3_and_the_old_versions_stay_locked():
    locked = lock.read(RULESETS)
    assert {v for n, v in locked if n == "default"} == {1, 2, 3}
    assert {(s.name, s.version) for s in lock.shipped(RULESETS)} >= {("default", 3)}


@pytest.fixture
def rulesets(tmp_path):
    target = tmp_path / "rulesets"
    shutil.copytree(RULESETS, target)
    return target


def _lock(*args):
    return CliRunner().invoke(main, ["rulesets", "lock", *args])


def test_content_changed_under_a_locked_version_fails_and_says_how_to_fix_it(rulesets):
    path = rulesets / "default.yaml"
    path.write_text(path.read_text().replace("sla_minutes: 30", "sla_minutes: 45", 1))
    [problem] = lock.problems(rulesets)
    assert f"{path}: default v3 changed without a new version" in problem
    assert "raise its `version:` to 4, then run `.venv/bin/leadgate rulesets lock`" in problem
    before = (rulesets / lock.LOCK).read_text()
    refused = _lock("--dir", str(rulesets))
    assert refused.exit_code == 1 and "locked with other content" in refused.output
    assert (rulesets / lock.LOCK).read_text() == before  # nothing written
    check = _lock("--check", "--dir", str(rulesets))
    assert check.exit_code == 1 and "changed without a new version" in check.output

    # The fix it names: raise the version, lock it; the old line stays as it was.
    path.write_text(with_version(path.read_text(), 4))
    assert "is not in" in lock.problems(rulesets)[0]
    done = _lock("--dir", str(rulesets))
    assert done.exit_code == 0 and "locked default v4 sha256:" in done.output
    assert lock.problems(rulesets) == []
    assert (rulesets / lock.LOCK).read_text().startswith(before)


def test_layout_and_comments_do_not_count_as_content(rulesets):
    path = rulesets / "default.yaml"
    path.write_text("# a new comment\n" + path.read_text().replace("sla_minutes: 30", "sla_minutes:   30", 1))
    assert lock.problems(rulesets) == []


def test_going_back_to_an_old_number_with_new_content_is_refused(rulesets):
    path = rulesets / "doggie-delights.yaml"
    path.write_text(with_version(path.read_text(), 1))
    [problem] = lock.problems(rulesets)
    assert "doggie-delights v1 changed without a new version" in problem and "to 3" in problem


def test_a_malformed_lock_line_names_its_line(rulesets):
    with (rulesets / lock.LOCK).open("a") as f:
        f.write("default three sha256:x\n")
    with pytest.raises(lock.LockError, match=r"versions.lock:\d+: expected `name version sha256:…`"):
        lock.problems(rulesets)

"""Every ruleset file under rulesets/ validates, matches the schema, and passes all its cases."""

from __future__ import annotations

import jsonschema
import pytest

from engine.cases import cases_path, run_cases
from engine.files import ruleset_files
from engine.schema import ruleset_schema
from engine.yamlsource import load
from tests.conftest import RULESETS

FILES = ruleset_files(RULESETS)


def test_the_default_and_the_b2c_example_ship():
    assert {p.stem for p in FILES} >= {"default", "doggie-delights"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_ruleset_matches_the_published_schema(path):
    jsonschema.validate(load(path.read_text(), str(path)).data, ruleset_schema())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_cases_pass_and_exercise_every_rule(registry, path):
    report = run_cases(registry.get(path.stem), cases_path(path))
    assert report.failures() == []
    assert report.unexercised == []


def test_default_has_at_least_thirty_cases(registry):
    report = run_cases(registry.get("default"), cases_path(RULESETS / "default.yaml"))
    assert len(report.results) >= 30

"""The docs stay true: every command, setting and ruleset key is documented where people look."""

from __future__ import annotations

from dataclasses import fields

import click
import pytest

from cli import main
from engine.schema import ruleset_schema
from service.config import Config
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
RULESETS_DOC = ROOT / "docs" / "rulesets.md"


def commands(group: click.Group, prefix: str = "leadgate"):
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path


@pytest.mark.parametrize("command", sorted(commands(main)))
def test_every_command_is_in_the_readme(command):
    assert f"`{command}" in README


@pytest.mark.parametrize("setting", [f"LEADGATE_{f.name}" for f in fields(Config)])
def test_every_setting_is_in_the_readme(setting):
    assert f"`{setting}`" in README


def test_the_readme_quick_start_is_the_two_commands():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick and "make test" in quick


def _schema_keys():
    schema = ruleset_schema()
    keys = set(schema["properties"])
    for name in ("condition", "actions", "rule", "test", "aggregate"):
        keys |= set(schema["$defs"][name].get("properties", {}))
    for name in ("routes", "scores"):
        keys |= set(schema["properties"][name]["additionalProperties"]["properties"])
    keys |= set(schema["properties"]["questions"]["items"]["properties"])
    return sorted(keys)


@pytest.mark.parametrize("key", _schema_keys())
def test_every_ruleset_key_is_taught_in_docs_rulesets(key):
    assert f"`{key}" in RULESETS_DOC.read_text(), f"docs/rulesets.md does not mention `{key}`"


def test_every_endpoint_is_in_the_readme(make_app):

    app = make_app(db=":memory:")
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1"):
            path = rule.rule.replace("<", "{").replace(">", "}")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                assert f"{method} {path}" in README, f"{method} {path} is not in the README"


def test_every_error_code_is_in_the_readme():
    import re

    from api import errors

    codes = {code for code, _ in errors.HTTP_CODES.values()}
    source = "".join(
        (ROOT / "api" / name).read_text() for name in ("errors.py", "decisions.py", "parsing.py", "auth.py")
    )
    codes |= set(re.findall(r'ApiError\(\d+, "([a-z_]+)"', source))
    codes |= {
        "invalid_facts",
        "unknown_ruleset",
        "storage_unavailable",
        "evaluation_failed",
        "internal_error",
        "idempotency_conflict",
    }
    for code in sorted(codes):
        assert f"`{code}`" in README, code

"""Structural validation of a ruleset document against the published JSON Schema.

The schema (engine/ruleset.schema.json) is the format's contract for editors; this module turns its
errors into Problems with a line, a rule id and, for unknown keys, a "did you mean".
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources

import jsonschema

from .errors import Problem
from .yamlsource import Located


@cache
def ruleset_schema() -> dict:
    return json.loads(resources.files("engine").joinpath("ruleset.schema.json").read_text("utf-8"))


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = ruleset_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def suggest(word: str, known) -> str:
    """' (did you mean X?)' when a known name is close to `word`, else ''."""
    word, known = str(word), sorted(map(str, known))
    folded = [k for k in known if k.casefold() == word.casefold()]
    # A word that starts a known name ("demo" for "demo_request") is a better hint than edit distance.
    prefixed = [k for k in known if len(word) >= 3 and k.casefold().startswith(word.casefold())]
    close = (
        folded
        or (prefixed if len(prefixed) == 1 else [])
        or difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    )
    return f" (did you mean {close[0]!r}?)" if close else ""


def rule_id_at(doc: Located, path) -> str | None:
    path = list(path)
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
        if isinstance(rules, list) and path[1] < len(rules) and isinstance(rules[path[1]], dict):
            rid = rules[path[1]].get("id")
            return rid if isinstance(rid, str) else f"rules[{path[1]}]"
    return None


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "the document"


def _leaf_errors(error):
    """The most specific errors behind a oneOf/anyOf failure, so messages name the real cause."""
    if error.context:
        deepest = max(len(e.absolute_path) for e in error.context)
        best = [e for e in error.context if len(e.absolute_path) == deepest]
        if deepest > len(error.absolute_path):
            for e in best:
                yield from _leaf_errors(e)
            return
    yield error


def validate_structure(doc: Located) -> list[Problem]:
    problems: set[Problem] = set()
    for top in _validator().iter_errors(doc.data):
        for error in _leaf_errors(top):
            path = list(error.absolute_path)
            problems.add(_problem(doc, error, path))
    return sorted(problems)


def _problem(doc: Located, error, path) -> Problem:
    rule = rule_id_at(doc, path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema
        allowed = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))

        extra = [k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns)]
        hints = set(allowed)
        if patterns:
            hints |= {"profile.", "answers."}
        msgs = [f"unknown key {k!r} in {_where(path)}{suggest(k, hints)}" for k in extra]
        key_path = path + [extra[0]] if extra else path
        return Problem(doc.file, doc.line(key_path), rule, "; ".join(msgs))
    if error.validator == "required":
        return Problem(doc.file, doc.line(path), rule, f"{_where(path)}: {error.message}")
    if error.validator == "enum":
        allowed = error.validator_value
        return Problem(
            doc.file,
            doc.line(path),
            rule,
            f"{_where(path)}: {error.instance!r} is not one of {', '.join(map(str, allowed))}"
            + suggest(error.instance, map(str, allowed)),
        )
    if error.validator == "pattern" and path and path[-1] == "id":
        return Problem(
            doc.file,
            doc.line(path),
            rule,
            f"{_where(path)}: {error.instance!r} is not a valid id (lower case letters, digits, _ and -)",
        )
    return Problem(doc.file, doc.line(path), rule, f"{_where(path)}: {error.message}")

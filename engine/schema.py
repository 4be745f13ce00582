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


_KINDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list ([a, b] or one `- item` per line)",
    "object": "a mapping (`key: value` lines, or {key: value})",
    "null": "empty",
}


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"the number {value:g}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "empty"


def _shown(value) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _hint(schema: dict) -> str:
    description = schema.get("description") if isinstance(schema, dict) else None
    return f" ({description.rstrip('.')})" if description and len(description) < 160 else ""


def _problem(doc: Located, error, path) -> Problem:
    rule = rule_id_at(doc, path)
    # Inside a rule the rule id is shown already: `then.ready`, not `rules.42.then.ready`.
    shown_path = path[2:] if rule and len(path) >= 2 else path
    where = _where(shown_path)
    line, column = doc.line(path), doc.column(path)

    def say(message: str) -> Problem:
        return Problem(doc.file, line, rule, message, column)

    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema
        allowed = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))

        extra = [k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns)]
        hints = set(allowed)
        if patterns:
            hints |= {"profile.", "answers.", "computed."}
        msgs = [
            f"unknown key {k!r} in {_where(path)}{suggest(k, hints)}"
            + (
                " (a ',' inside {…} starts a new key: put text that holds ',' in quotes)"
                if error.instance[k] is None and not suggest(k, hints)
                else ""
            )
            for k in extra
        ]
        key_path = path + [extra[0]] if extra else path
        return Problem(doc.file, doc.line(key_path), rule, "; ".join(msgs), doc.column(key_path))
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        sub = (error.schema.get("properties") or {}).get(missing, {})
        return say(f"{where} needs `{missing}`{_hint(sub)}")
    if error.validator == "enum":
        allowed = error.validator_value
        return say(
            f"{where}: {error.instance!r} is not one of {', '.join(map(str, allowed))}"
            + suggest(error.instance, map(str, allowed)),
        )
    if error.validator == "const":
        wanted = error.validator_value
        extra = " (leave it out instead)" if wanted is True else ""
        return say(f"{where} can only be {_shown(wanted)}, not {_shown(error.instance)}{extra}")
    if error.validator == "type":
        wanted = error.validator_value
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        words = " or ".join(_KINDS.get(w, w) for w in wanted)
        extra = ""
        if shown_path and shown_path[-1] == "tag" and isinstance(error.instance, list):
            extra = "; to test several tags, use `all:` or `any:` with one `tag:` each"
        return say(
            f"{where} must be {words}, not {_kind_of(error.instance)}{extra}{_hint(error.schema)}",
        )
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = error.validator_value
        words = {
            "minimum": "at least",
            "exclusiveMinimum": "more than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[error.validator]
        return say(f"{where} must be {words} {bound:g}, not {_shown(error.instance)}")
    if error.validator in ("minItems", "minProperties"):
        return say(f"{where} cannot be empty{_hint(error.schema)}")
    if error.validator == "maxItems":
        return say(f"{where} has more than {error.validator_value} items")
    if error.validator == "pattern" and path and path[-1] == "id":
        return say(
            f"{where}: {error.instance!r} is not a valid id (lower case letters, digits, _ and -)",
        )
    if error.validator == "pattern":
        return say(
            f"{where}: {error.instance!r} is not in the expected form{_hint(error.schema)}",
        )
    return say(f"{where}: {error.message}")

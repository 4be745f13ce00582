"""Checking one value of lead facts: its type, its bounds, and text that is valid Unicode.

durable_rules compares loosely and fails on floats written with an exponent, so every value is
checked and cleaned here before it becomes a fact; each problem is collected under its field name.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date

from .vocabulary import BOOLEAN, DATE, LIST, NUMBER

MAX_NUMBER = 1e15
MAX_TEXT = 2000
MAX_LIST = 100
MAX_EVENTS = 2000
MAX_PROPERTIES = 50


def clean_number(value):
    """A JSON number durable_rules can parse: integral values as int, others without an exponent."""
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        value = round(value, 6)
        return 0 if "e" in repr(value) else value
    return value


class Errors(dict):
    """Problems by field name, several per field."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)


def check_value(value, ftype: str, field: str, errors: Errors):
    if value is None:
        return None
    if ftype == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.add(field, f"must be a number, not {type(value).__name__}")
        elif not math.isfinite(value) or abs(value) > MAX_NUMBER:
            errors.add(field, f"must be a finite number no larger than {MAX_NUMBER:.0e}")
        else:
            return clean_number(value)
    elif ftype == BOOLEAN:
        if isinstance(value, bool):
            return value
        errors.add(field, "must be true or false")
    elif ftype == DATE:
        try:
            return date.fromisoformat(value).isoformat()
        except (TypeError, ValueError):
            errors.add(field, "must be a date written YYYY-MM-DD")
    elif ftype == LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors.add(field, "must be a list of text values")
        elif len(value) > MAX_LIST:
            errors.add(field, f"must have at most {MAX_LIST} items")
        elif any(len(v) > MAX_TEXT for v in value):
            errors.add(field, f"items must be at most {MAX_TEXT} characters")
        else:
            return list(value)
    else:
        if not isinstance(value, str):
            errors.add(field, f"must be text, not {type(value).__name__}")
        elif len(value) > MAX_TEXT:
            errors.add(field, f"must be at most {MAX_TEXT} characters")
        else:
            return value
    return None


# Built once (json.dumps builds one per call). Facts come from JSON, so they hold no cycle to look for.
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
# What no text may hold: a lone surrogate (JSON may escape one, \ud800, but it is no Unicode character:
# neither durable_rules nor SQLite takes it) or NUL (\u0000: PostgreSQL refuses it in text, SQLite's
# JSON functions end a text at it). Neither is ever a lead's real data.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROPERTY = re.compile(r"[a-z][a-z0-9_]{0,63}")  # the name of an event property


NUL = "must not hold a NUL character (\\u0000)"
SURROGATE = "must be valid Unicode text (a lone surrogate such as \\ud800 is not)"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be taken (NUL or SURROGATE), or None: the one check of every text a caller
    sends (API or CLI)."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return NUL if found.group() == "\x00" else SURROGATE


def unstorable(facts: dict) -> dict[str, list[str]]:
    """Fields whose text (or name) no store can take (`text_problem`). Field names are escaped, so
    they can be printed."""
    try:  # one encoding of the whole document finds none in the common case; paths only when it fails
        text = _encode(facts)  # NUL is written \u0000
        text.encode("utf-8")  # fails on a lone surrogate
        if "\\u0000" not in text:
            return {}
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError):
        pass
    errors: dict[str, list[str]] = {}
    stack = [(facts, "")]
    while stack:
        value, field = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                errors[field.encode("utf-8", "backslashreplace").decode()] = [problem]
        elif isinstance(value, dict):
            stack.extend((v, f"{field}.{k}" if field else str(k)) for k, v in value.items())
            stack.extend((k, f"{field}.{k}" if field else str(k)) for k in value if isinstance(k, str))
        elif isinstance(value, list):
            stack.extend((v, f"{field}[{i}]") for i, v in enumerate(value))
    return errors

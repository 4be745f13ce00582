"""Computed values: small CEL expressions over a lead's profile and answers, declared in the ruleset.

    computed:
      budget_per_seat_month:
        description: Budget per seat and month
        type: number
        expr: answers.budget / answers.seats / 12.0

CEL (the Common Expression Language, here the `common-expression-language` package, a Rust
interpreter) is a standard, side-effect-free language: no loops, no attribute access on Python
objects, time linear in the expression. Comprehension macros (map, filter, all, exists) are refused
too, and an expression is at most MAX_EXPR characters, so an evaluation is bounded.

Like the other features (features.py), values are computed in Python before the facts reach
durable_rules, which then matches `computed.<name>` like any field (under v.<name> on the lead fact).
A value is missing when one of its inputs is missing or of another kind (the text "yes" where an
amount is expected), or when the expression fails (division by zero): as for any missing field, every
comparison with it is false.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

import cel

from .errors import FactsError, Problem
from .schema import suggest
from .times import DAY, parse_time
from .vocabulary import BOOLEAN, DATE, NUMBER, STRING

MAX_EXPR = 1000
TYPES = (NUMBER, STRING, BOOLEAN)
_REFERENCE = re.compile(r"\b(profile|answers|computed)\.([a-z][a-z0-9_]*)")
_DATE_CALL = re.compile(r"days_(until|since)\(\s*((?:profile|answers)\.[a-z][a-z0-9_]*)\s*\)")
_MACRO = re.compile(r"\.\s*(map|filter|all|exists|exists_one)\s*\(")
_NAMES = {"profile", "answers", "computed"}
# What an expression may call: CEL's operators and a few standard functions, plus our date arithmetic.
_FUNCTIONS = {
    *("!_", "-_", "@in", "@not_strictly_false", "_?_:_", "_[_]", "_&&_", "_||_"),
    *(f"_{op}_" for op in ("+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=")),
    *("size", "int", "double", "string", "bool", "startsWith", "endsWith", "contains", "matches"),
    *("lowerAscii", "upperAscii", "trim", "days_until", "days_since"),
}
_SAMPLES = {NUMBER: 7.0, STRING: "sample", BOOLEAN: True, DATE: "2026-06-30", "list": ["sample"]}


@dataclass(frozen=True)
class Computed:
    name: str
    description: str
    type: str
    expr: str
    inputs: tuple[str, ...]  # "answers.budget", "computed.x" ... in the order they appear
    program: object

    def words(self) -> str:
        return f"{self.description or self.name} = {self.expr}"


def parse(name: str, spec: dict) -> tuple[Computed | None, str | None]:
    """A Computed from its declaration, or the reason it cannot be one (syntax, names, loops)."""
    expr = spec["expr"]
    if len(expr) > MAX_EXPR:
        return None, f"the expression is longer than {MAX_EXPR} characters: split it into several values"
    if _MACRO.search(expr):
        return None, "loops over lists (map, filter, all, exists) are not allowed in computed values"
    try:
        program = cel.compile(expr)
    except ValueError as exc:
        detail = str(exc).split("ERROR: <input>:", 1)[-1].split("\n", 1)[0]
        return None, f"the expression {expr!r} is not valid CEL: {detail}"
    unknown_names = sorted(set(program.variables()) - _NAMES)
    if unknown_names:
        return None, (
            f"unknown name {unknown_names[0]!r} in {expr!r}: use profile.<field>, answers.<field> or "
            "computed.<name>"
        )
    unknown_functions = sorted(f for f in program.functions() if f not in _FUNCTIONS)
    if unknown_functions:
        return (
            None,
            f"function {unknown_functions[0]!r} is not available (available: {', '.join(sorted(f for f in _FUNCTIONS if f[0].isalpha()))})",
        )
    inputs = tuple(dict.fromkeys(f"{a}.{b}" for a, b in _REFERENCE.findall(expr)))
    return Computed(name, spec.get("description", ""), spec["type"], expr, inputs, program), None


def _days(value, at: datetime) -> float | None:
    """Days from `at` to a date or time given as ISO text (a date alone means its midnight, UTC).

    None (CEL's null) for anything else: raising here would make the library print the error."""
    try:
        if isinstance(value, str) and len(value) == 10:
            value = date.fromisoformat(value).isoformat() + "T00:00:00Z"
        return round((parse_time(value, "date").timestamp() - at.timestamp()) / DAY, 4)
    except (FactsError, ValueError):
        return None


def _context(profile: dict, answers: dict, computed: dict, at: datetime) -> cel.Context:
    def floats(section: dict) -> dict:
        # CEL never mixes int and double: every number is a double, so 10000 / 12.0 is 833.33.
        return {
            k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
            for k, v in section.items()
        }

    return cel.Context(
        {"profile": floats(profile), "answers": floats(answers), "computed": floats(computed)},
        {"days_until": lambda v: _days(v, at), "days_since": lambda v: -_days(v, at)},
    )


def _typed(value, ctype: str):
    """The value if it is of the declared type (numbers finite, rounded to 6 places), else None."""
    if ctype == NUMBER:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return round(float(value), 6)
        return None
    if ctype == BOOLEAN:
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def evaluate(values: tuple[Computed, ...], profile: dict, answers: dict, at: datetime) -> tuple[dict, list]:
    """({name: value}, [detail]) for these facts; `values` come in dependency order."""
    out: dict = {}
    details = []
    sections = {"profile": profile, "answers": answers}
    for c in values:
        shown = {}
        missing = []
        for ref in c.inputs:
            section, name = ref.split(".", 1)
            got = out.get(name) if section == "computed" else sections[section].get(name)
            shown[ref] = got
            if got is None:
                missing.append(ref)
        value = None
        if not missing:
            try:
                value = _typed(c.program.execute(_context(profile, answers, out, at)), c.type)
            except Exception:  # noqa: BLE001 - a CEL error (type, division by zero) makes the value missing
                value = None
        detail = {"type": "computed", "name": c.name, "value": value, "inputs": shown}
        if missing:
            detail["note"] = f"missing: {', '.join(missing)}"
        elif value is None:
            detail["note"] = "could not be computed from these inputs"
        if value is not None:
            out[c.name] = value
        details.append(detail)
    return out, details


def sample_problem(c: Computed, field_types: dict[str, str], computed_types: dict[str, str]) -> str | None:
    """Evaluate on typical inputs of the declared types: a type mistake shows as a problem here."""
    for function, ref in _DATE_CALL.findall(c.expr):
        if field_types.get(ref, DATE) != DATE:
            return f"days_{function} needs a date field, and {ref} is {field_types[ref]} (declare a field with type: date)"
    profile, answers, computed = {}, {}, {}
    for ref in c.inputs:
        section, name = ref.split(".", 1)
        ftype = (computed_types if section == "computed" else field_types).get(ref)
        if ftype is None:
            return None  # reported as an unknown field already
        target = {"profile": profile, "answers": answers, "computed": computed}[section]
        target[name] = _SAMPLES.get(ftype, "sample")
    try:
        result = c.program.execute(
            _context(profile, answers, computed, parse_time("2026-01-01T00:00:00Z", "at"))
        )
    except Exception as exc:  # noqa: BLE001 - CEL reports type errors as exceptions of several kinds
        message = str(exc).split(". Convert explicitly")[0]
        hint = (
            " (numbers are decimals here: write 12.0, not 12)"
            if "int" in message and "float" in message
            else ""
        )
        return f"{c.expr!r} cannot be computed: {message}{hint}"
    if _typed(result, c.type) is None and not (c.type == NUMBER and isinstance(result, float)):
        kind = {bool: BOOLEAN, str: STRING, int: NUMBER, float: NUMBER, type(None): "nothing (null)"}.get(
            type(result), type(result).__name__
        )
        return f"{c.expr!r} gives {kind}, but the value is declared as {c.type}"
    return None


def order(values: dict[str, Computed]) -> tuple[list[Computed], list[str]]:
    """The values in an order where each comes after the values it reads; names caught in a circle."""
    done: list[str] = []
    remaining = dict(values)
    while remaining:
        ready = [
            n
            for n, c in remaining.items()
            if all(r.split(".", 1)[1] in done for r in c.inputs if r.startswith("computed."))
            or any(r.startswith("computed.") and r.split(".", 1)[1] not in values for r in c.inputs)
        ]
        if not ready:
            return [values[n] for n in done], sorted(remaining)
        for n in ready:
            done.append(n)
            del remaining[n]
    return [values[n] for n in done], []


def compile_values(model, file: str, line_of) -> list[Problem]:
    """Compile the ruleset's computed values into model.computed (in dependency order); their problems."""
    problems = []
    parsed = {}
    for name, spec in model.computed_specs.items():
        value, problem = parse(name, spec)
        if problem:
            problems.append(
                Problem(file, line_of(("computed", name, "expr")), None, f"computed.{name}: {problem}")
            )
            continue
        parsed[name] = value
        for ref in value.inputs:
            section, field_name = ref.split(".", 1)
            known = {
                "profile": model.profile_fields,
                "answers": model.answer_fields,
                "computed": model.computed_specs,
            }
            if field_name not in known[section]:
                problems.append(
                    Problem(
                        file,
                        line_of(("computed", name, "expr")),
                        None,
                        f"computed.{name}: unknown {ref!r}"
                        + suggest(field_name, known[section]).replace("'", f"'{section}.", 1),
                    )
                )
    ordered, circle = order(parsed)
    if circle:
        problems.append(
            Problem(
                file,
                line_of(("computed", circle[0])),
                None,
                f"computed values {', '.join(circle)} read each other in a circle: none can be computed first",
            )
        )
    types = {f"profile.{k}": v for k, v in model.profile_fields.items()}
    types |= {f"answers.{k}": v for k, v in model.answer_fields.items()}
    for q in model.questions:  # an amount question is sampled with its amount: that is what arithmetic reads
        if q.amount:
            types[f"answers.{q.id}"] = "number"
    ctypes = {f"computed.{k}": v["type"] for k, v in model.computed_specs.items()}
    if not problems:
        for value in ordered:
            problem = sample_problem(value, types, ctypes)
            if problem:
                problems.append(
                    Problem(
                        file,
                        line_of(("computed", value.name, "expr")),
                        None,
                        f"computed.{value.name}: {problem}",
                    )
                )
    model.computed = tuple(ordered)
    return problems

"""Semantic checks of a ruleset: references, impossible conditions and unreachable thresholds.

These run after the structure passed the JSON Schema; each returns Problems with file, line and rule.
"""

from __future__ import annotations

import math

from .errors import Problem
from .hours import zone_problem
from .model import Rule, Ruleset
from .schema import suggest

ACTION_WRITES = {
    "not_a_lead": "slot:stage",
    "disqualify": "slot:stage",
    "stage": "slot:stage",
    "recycle": "slot:stage",
    "funnel": "slot:funnel",
    "ready": "slot:ready",
    "route": "slot:route",
}


def writes_of(rule: Rule) -> set[str]:
    """The derived kinds a rule's actions change: slot:* and points:*."""
    then = rule.then
    out = {kind for key, kind in ACTION_WRITES.items() if key in then}
    out |= {f"points:{s}" for s in then.get("points", {})}
    out |= {f"slot:qual:{i}" for i in then.get("qualify", {})}
    out |= {f"slot:tag:{t}" for t in _as_list(then.get("tag"))}
    return out


def _as_list(value) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


class Checker:
    def __init__(self, model: Ruleset, file: str, line_of):
        self.model, self.file, self.line_of = model, file, line_of
        self.problems: list[Problem] = []

    def _add(self, path, message, rule=None):
        self.problems.append(Problem(self.file, self.line_of(path), rule, message))

    def _known(self, value, known, what, path, rule=None) -> bool:
        if value in known:
            return True
        self._add(path, f"unknown {what} {value!r}" + suggest(value, list(known)), rule)
        return False

    def document(self) -> list[Problem]:
        m = self.model
        seen: set[str] = set()
        for i, stage in enumerate(m.stages):
            if stage.id in seen:
                self._add(("stages", i, "id"), f"stage {stage.id!r} is listed twice")
            seen.add(stage.id)
        for kind in ("not_a_lead", "disqualified", "recycled"):
            idx = [i for i, s in enumerate(m.stages) if s.kind == kind]
            for i in idx[1:]:
                self._add(("stages", i, "kind"), f"only one stage may be of kind {kind}")
        for kind in ("not_a_lead", "disqualified"):
            if m.stage_of_kind(kind) is None:
                self._add(("stages",), f"a stage of kind {kind} is required")
        if not m.funnel_stages:
            self._add(("stages",), "at least one funnel stage (without a kind) is required")
        if m.scores["fit"].good_at is None:
            self._add(
                ("scores", "fit"), "scores.fit needs good_at: the total from which a lead is a good fit"
            )
        for name, score in m.scores.items():
            if score.good_at is not None and name != "fit":
                self._add(("scores", name, "good_at"), "good_at is for the fit score only")
            if score.min is not None and score.max is not None and score.min >= score.max:
                self._add(("scores", name), f"min ({score.min}) must be below max ({score.max})")
        qids: set[str] = set()
        for i, q in enumerate(m.questions):
            path = ("questions", i)
            if q.id in qids:
                self._add(path + ("id",), f"question {q.id!r} is listed twice")
            qids.add(q.id)
            if q.item is not None:
                self._known(q.item, m.qualification, "qualification item", path + ("item",))
            for key in ("met", "unmet"):
                for answer in getattr(q, key):
                    if answer not in q.answers:
                        self._add(
                            path + (key,),
                            f"{answer!r} is not one of the question's answers" + suggest(answer, q.answers),
                        )
            if (q.met or q.unmet or q.met_at_least is not None) and q.item is None:
                self._add(path, "met / unmet need an item to settle")
            if q.met_at_least is not None and not q.amount:
                self._add(path + ("met_at_least",), "met_at_least needs amount: true")
        if m.business_hours is not None:
            problem = zone_problem(m.business_hours["timezone"])
            if problem:
                self._add(("business_hours", "timezone"), problem)
            elif m.business_hours["start"] >= m.business_hours["end"]:
                self._add(("business_hours", "end"), "business hours must end after they start")
        for rid, route in m.routes.items():
            if route.business_hours and m.business_hours is None:
                self._add(
                    ("routes", rid, "business_hours"), "business_hours: true needs a top-level business_hours"
                )
            if route.business_hours and not route.sla_minutes:
                self._add(
                    ("routes", rid, "business_hours"), "business_hours counts sla_minutes: give the route one"
                )
        defaults = m.defaults
        for key in ("route", "not_a_lead_route", "disqualified_route"):
            self._known(defaults[key], m.routes, "route", ("defaults", key))
        dq = m.routes.get(defaults["disqualified_route"])
        if dq is not None and dq.destination != "disqualified":
            self._add(
                ("defaults", "disqualified_route"),
                "the disqualified route must have destination disqualified",
            )
        ids: set[str] = set()
        for rule in m.rules:
            if rule.id in ids:
                self._add(rule.path + ("id",), f"rule id {rule.id!r} is used twice", rule.id)
            ids.add(rule.id)
            self._actions(rule)
        return self.problems

    def _actions(self, rule: Rule) -> None:
        m, then, path = self.model, rule.then, rule.path + ("then",)
        for score in then.get("points", {}):
            self._known(score, m.scores, "score", path + ("points", score), rule.id)
        for key in ("per", "cap", "decay"):
            if key in then and "points" not in then:
                self._add(path + (key,), f"{key} only makes sense with points", rule.id)
        if "stage" in then and self._known(
            then["stage"], [s.id for s in m.stages], "stage", path + ("stage",), rule.id
        ):
            kind = next(s.kind for s in m.stages if s.id == then["stage"])
            if kind is not None:
                self._add(
                    path + ("stage",),
                    f"use `{'recycle' if kind == 'recycled' else kind}: <reason>` "
                    f"to move a lead to the {kind} stage",
                    rule.id,
                )
        if "recycle" in then and m.stage_of_kind("recycled") is None:
            self._add(path + ("recycle",), "recycle needs a stage of kind recycled", rule.id)
        if "route" in then:
            self._known(then["route"], m.routes, "route", path + ("route",), rule.id)
        for item in then.get("qualify", {}):
            self._known(item, m.qualification, "qualification item", path + ("qualify", item), rule.id)
        for q in _as_list(then.get("ask")):
            self._known(q, m.question_ids, "question", path + ("ask",), rule.id)

    def reachability(self, rule: Rule, alternatives, writers: dict[str, set[str]]) -> None:
        """Flag a rule no lead can ever fire."""
        if rule.generated:
            return
        reasons = [self._impossible(alt, writers) for alt in alternatives]
        if reasons and all(reasons):
            self._add(rule.path + ("when",), f"this rule can never fire: {reasons[0]}", rule.id)

    def _impossible(self, alt, writers) -> str | None:
        m = self.model
        for fact, exprs in alt.tests.items():
            if fact == "slot:stage":
                values = _eq_values(exprs)
                # A stage is reachable from the start, or when some rule moves a lead there (a later
                # decision then starts from it).
                reachable = set(m.funnel_stages[:1]) | writers.get("stage-values", set())
                if values is not None and not values & reachable:
                    return f"no rule moves a lead to stage {sorted(values)[0]}"
            if fact.startswith("slot:tag:") and "slot:" + fact[5:] not in writers:
                return f"no rule sets tag {fact.split(':', 2)[2]}"
            if fact == "slot:route":
                values = _eq_values(exprs)
                if values is not None and not values & writers.get("route-values", set()):
                    return f"no rule routes to {sorted(values)[0]}"
            if fact == "slot:ready" and "slot:ready" not in writers and _eq_values(exprs) == {True}:
                return "no rule marks a lead ready"
            if fact == "slot:quadrant":
                values = _eq_values(exprs) or set()
                if (
                    values
                    and all(v.endswith("_ready") and not v.endswith("not_ready") for v in values)
                    and "slot:ready" not in writers
                ):
                    return "no rule marks a lead ready, so no lead is in a ready quadrant"
            if fact.startswith("score:"):
                name = fact.split(":", 1)[1]
                low, high = _bounds(exprs, "pts")
                most = writers.get(f"max:{name}", math.inf)
                least = writers.get(f"min:{name}", -math.inf)
                if low is not None and low[0] > most or (low is not None and low[0] == most and low[1]):
                    return (
                        f"{name} needs {'more than' if low[1] else 'at least'} {low[0]:g} points but at most "
                        f"{most:g} are available"
                    )
                if high is not None and (high[0] < least or (high[0] == least and high[1])):
                    return f"{name} needs {'less than' if high[1] else 'at most'} {high[0]:g} points but never goes below {least:g}"
            if fact == "lead":
                contradiction = _contradiction(exprs)
                if contradiction:
                    return contradiction
        return None


def _eq_values(exprs) -> set | None:
    """Values a slot must equal, when the tests pin it to a set; None when they do not."""
    values = None
    for e in exprs:
        if e[0] == "cmp" and e[1] == "eq":
            found = {e[3]}
        elif e[0] == "or" and all(x[0] == "cmp" and x[1] == "eq" for x in e[1]):
            found = {x[3] for x in e[1]}
        else:
            continue
        values = found if values is None else values & found
    return values


def _bounds(exprs, key):
    """Lowest and highest allowed value of `key` from plain comparisons: ((value, strict), …)."""
    low = high = None
    for e in exprs:
        parts = e[1] if e[0] == "and" else [e]
        for p in parts:
            if p[0] != "cmp" or p[2] != key:
                continue
            op, v = p[1], p[3]
            if op in ("gt", "gte"):
                cand = (v, op == "gt")
                if low is None or cand > low:
                    low = cand
            elif op in ("lt", "lte"):
                cand = (v, op == "lt")
                if high is None or (v, not cand[1]) < (high[0], not high[1]):
                    high = cand
            elif op == "eq" and isinstance(v, int | float):
                low = (v, False) if low is None or v > low[0] else low
                high = (v, False) if high is None or v < high[0] else high
    return low, high


def _contradiction(exprs) -> str | None:
    equal: dict[str, set] = {}
    keys = set()
    flat = []
    for e in exprs:
        flat.extend(e[1] if e[0] == "and" else [e])
    for p in flat:
        if p[0] == "cmp":
            keys.add(p[2])
            if p[1] == "eq":
                equal.setdefault(p[2], set()).add(json_key(p[3]))
    for key, values in equal.items():
        if len(values) > 1:
            return f"{_label(key)} cannot equal {' and '.join(sorted(values))} at once"
    for key in keys:
        low, high = _bounds(flat, key)
        if low and high and (low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1]))):
            return f"no value of {_label(key)} is both {'>' if low[1] else '≥'} {low[0]:g} and {'<' if high[1] else '≤'} {high[0]:g}"
    for p in flat:
        if p[0] == "nex" and p[1] in keys:
            return f"{_label(p[1])} cannot be absent and compared at once"
    return None


def json_key(v) -> str:
    return repr(v)


def _label(key: str) -> str:
    prefix, _, name = key.partition(".")
    return {"p": "profile.", "a": "answers.", "an": "answers.", "f": "a computed feature "}.get(
        prefix, ""
    ) + name


# -- regular expressions that backtrack catastrophically ------------------------------------------
#
# Python's `re` backtracks, and a `matches` test runs on every lead, on text of up to MAX_TEXT
# characters a caller chooses. A pattern such as (a+)+$ takes exponential time on "aaaa…!", and
# \w+\w+@ or .*a.*b cubic time (ten seconds on 2,000 characters): one request would hold a worker.
# `re` has no time limit, so such patterns are refused when the ruleset is validated, on the parsed
# pattern. The test is conservative: a pattern it refuses may be safe. What it lets through backtracks
# at most quadratically, under half a second on the longest text a lead may send
# (tests/test_attacks.py searches thousands of generated patterns to hold it to that).

# Characters stand for their classes when testing whether two parts can match the same text.
_ALPHABET = tuple(chr(c) for c in range(0x250)) + ("\u00a0", "\u2028", "\u3000", "中", "ß", "\U0001f600")
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")
_HAZARDS = {
    "backreference": "a backreference or conditional group (\\1, (?P=name), (?(1)…))",
    "nested": "a quantifier inside a repeated group, as in (a+)+ or (\\w+\\s?)*",
    "alternatives": "alternatives that can match the same text inside a repeated group, as in (a|ab)*",
    "adjacent": "quantifiers that can match the same text one after the other, "
    "as in \\w+\\w+@, .*a.*b or \\w{1,3}\\w+x",
    "complex": "too many ways through its optional parts to check (simplify it)",
}


class _Hazard(Exception):
    def __init__(self, kind: str):
        self.kind = kind


def regex_hazard(pattern: str) -> str | None:
    """Why this pattern may backtrack catastrophically, or None. The pattern must compile."""
    import re
    import re._parser as sre_parse  # the stdlib's own parser: the analysis sees what `re` will run

    try:
        parsed = sre_parse.parse(pattern)
        _walk(list(parsed), repeated=False)
        # Under (?m) a ^ matches after every newline: only \A then anchors the search.
        _adjacent(list(parsed), anchored=not parsed.state.flags & re.MULTILINE)
    except _Hazard as hazard:
        return _HAZARDS[hazard.kind]
    return None


def _op(item) -> str:
    return str(item[0])


def _body(item) -> list:
    """The sub-pattern of a group, repeat, lookaround or atomic group."""
    op, av = _op(item), item[1]
    if op == "SUBPATTERN":
        return list(av[3])
    if op in _REPEATS or op == "POSSESSIVE_REPEAT":
        return list(av[2])
    if op in ("ASSERT", "ASSERT_NOT"):
        return list(av[1])
    if op == "ATOMIC_GROUP":
        return list(av)
    return []


def _walk(seq: list, repeated: bool) -> None:
    """Raise _Hazard for the first dangerous shape in `seq` (inside a repeat when `repeated`)."""
    for item in seq:
        op = _op(item)
        if op in ("GROUPREF", "GROUPREF_EXISTS"):
            raise _Hazard("backreference")
        if op == "BRANCH":
            branches = [list(b) for b in item[1][1]]
            if repeated and _overlapping(branches):
                raise _Hazard("alternatives")
            for branch in branches:
                _walk(branch, repeated)
        elif op in _REPEATS:
            body = _body(item)
            if item[1][1] > 1 and (_varies(body) or _nullable(body)):
                raise _Hazard("nested")
            _walk(body, repeated or item[1][1] > 1)
        elif op in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
            _walk(_body(item), False)  # never gives back what it took: no backtracking into it
        elif op == "SUBPATTERN":
            _walk(_body(item), repeated)
        elif op in ("ASSERT", "ASSERT_NOT"):
            _walk(_body(item), repeated)
            _adjacent(_body(item), anchored=False)  # a lookaround searches on its own


def _varies(seq: list) -> bool:
    """Whether a sub-pattern holds a variable quantifier (alternatives are checked on their own)."""
    for item in seq:
        op = _op(item)
        if op in _REPEATS and item[1][0] != item[1][1]:
            return True
        if op == "BRANCH" and any(_varies(list(b)) for b in item[1][1]):
            return True
        if op not in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP") and _varies(_body(item)):
            return True
    return False


def _nullable(seq: list) -> bool:
    return all(_nullable_item(item) for item in seq)


def _nullable_item(item) -> bool:
    op = _op(item)
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return True
    if op in _REPEATS or op == "POSSESSIVE_REPEAT":
        return item[1][0] == 0 or _nullable(_body(item))
    if op == "BRANCH":
        return any(_nullable(list(b)) for b in item[1][1])
    if op in ("SUBPATTERN", "ATOMIC_GROUP"):
        return _nullable(_body(item))
    return False


def _overlapping(branches: list[list]) -> bool:
    """Whether two alternatives can start with the same character (or one can match nothing)."""
    seen: set[str] = set()
    for branch in branches:
        if _nullable(branch):
            return True
        first = _first(branch)
        if first & seen:
            return True
        seen |= first
    return False


def _first(seq: list) -> frozenset:
    out: set[str] = set()
    for item in seq:
        op = _op(item)
        if op == "BRANCH":
            for branch in item[1][1]:
                out |= _first(list(branch))
        elif op in ("AT", "ASSERT", "ASSERT_NOT"):
            pass
        elif _body(item):
            out |= _first(_body(item))
        else:
            out |= _chars_of_atom(item)
        if not _nullable_item(item):
            break
    return frozenset(out)


def _chars(item) -> frozenset:
    """Every character a part of the pattern can match (on the sample alphabet)."""
    op = _op(item)
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return frozenset()
    if op == "BRANCH":
        return frozenset().union(*(_chars(i) for b in item[1][1] for i in b))
    body = _body(item)
    if body:
        return frozenset().union(*(_chars(i) for i in body))
    return _chars_of_atom(item)


def _chars_of_atom(item) -> frozenset:
    op, av = _op(item), item[1]
    if op == "LITERAL":
        raw = {chr(av)}
    elif op == "NOT_LITERAL":
        raw = {c for c in _ALPHABET if c.casefold() != chr(av).casefold()}
    elif op == "IN":
        raw = _in_set(av)
    else:  # ANY, and anything unforeseen: every character, the cautious answer
        raw = set(_ALPHABET)
    # Patterns run ignoring case: a character matches when any of its cases does.
    folded = {c.casefold() for c in raw}
    return frozenset(c for c in _ALPHABET if c in raw or c.casefold() in folded)


def _in_set(items) -> set[str]:
    import re

    negate, chosen = False, set()
    for op, av in items:
        op = str(op)
        if op == "NEGATE":
            negate = True
        elif op == "LITERAL":
            chosen.add(chr(av))
        elif op == "RANGE":
            chosen |= {c for c in _ALPHABET if av[0] <= ord(c) <= av[1]}
        elif op == "CATEGORY" and str(av) in _CATEGORIES:
            rx = re.compile(_CATEGORIES[str(av)])
            chosen |= {c for c in _ALPHABET if rx.fullmatch(c)}
        else:
            chosen |= set(_ALPHABET)
    return set(_ALPHABET) - chosen if negate else chosen


def _adjacent(seq: list, anchored: bool) -> None:
    """Repeats that choose how much to take, in a chain, each able to take text the one before it
    took, with only such text between them, and something after them that can fail: every split of
    that text is tried. A search tries every start too, so two such repeats cost n³ (three when
    anchored by ^). Checked on every way through the pattern, so a repeat inside a group or an
    alternative is seen beside what follows the group.
    """
    starts = {"AT_BEGINNING_STRING"} | ({"AT_BEGINNING"} if anchored else set())
    for way in _ways(seq):
        chains = [0] * len(way)  # the longest chain starting at each part, right to left
        for i in range(len(way) - 1, -1, -1):
            kind, chars, _ = way[i]
            if kind != "U":
                continue
            chains[i] = 1
            for j in range(i + 1, len(way)):
                other, others, optional = way[j]
                if other == "U" and chars & others and _can_fail(way[j + 1 :]):
                    chains[i] = max(chains[i], 1 + chains[j])
                if not (optional or others & chars):
                    break  # text the first repeat cannot take separates it from what follows
        longest = 3 if way and way[0][0] == "A" and way[0][1] in starts else 2
        if max(chains, default=0) >= longest:
            raise _Hazard("adjacent")


_MAX_WAYS = 4096


def _ways(seq: list) -> list[tuple]:
    """Every way through a sequence, as parts (kind, characters, optional): U a repeat that chooses how
    much to take, S text that must be there (or, optional, may be), A an anchor or lookaround."""
    ways: list[tuple] = [()]
    for item in seq:
        options = _item_ways(item)
        ways = [way + option for way in ways for option in options]
        if len(ways) > _MAX_WAYS:
            raise _Hazard("complex")
    return ways


def _item_ways(item) -> list[tuple]:
    op = _op(item)
    if op == "AT":
        return [(("A", str(item[1]), True),)]
    if op in ("ASSERT", "ASSERT_NOT"):
        return [(("A", op, True),)]
    if op in _REPEATS and item[1][0] != item[1][1]:
        if _varies(_body(item)):  # only (…)? gets here: "nested" refused a choice in a longer repeat
            return [(), *_ways(_body(item))]
        # Any choice of how much to take, even {1,3} or ?, multiplies the splits tried beside it.
        return [(("U", _chars(item), item[1][0] == 0 or _nullable(_body(item))),)]
    if op in ("SUBPATTERN", "BRANCH", *_REPEATS) and not _varies([item]):
        # Without a choice of length inside, one part stands for all its ways: fewer ways to check.
        return [(("S", _chars(item), _nullable_item(item)),)]
    if op == "SUBPATTERN":
        return _ways(_body(item))
    if op == "BRANCH":
        return [way for branch in item[1][1] for way in _ways(list(branch))]
    if op in _REPEATS:  # a fixed count of a body with a choice inside: only {0} or {1} get here
        return _ways(_body(item)) if item[1][0] else [()]
    # A character, a class, or a possessive repeat or atomic group: it never gives back what it took.
    return [(("S", _chars(item), _nullable_item(item)),)]


def _can_fail(tail: tuple) -> bool:
    """Whether what follows can refuse a position: text that must be there, an anchor, a lookaround."""
    return any(kind == "A" or not optional for kind, _, optional in tail)

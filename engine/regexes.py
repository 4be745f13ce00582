r"""Regular expressions that backtrack catastrophically, refused when a ruleset is validated.

Python's `re` backtracks, and a `matches` test runs on every lead, on text of up to MAX_TEXT
characters a caller chooses. A pattern such as (a+)+$ takes exponential time on "aaaa…!", and
\w+\w+@ or .*a.*b cubic time (ten seconds on 2,000 characters): one request would hold a worker.
`re` has no time limit, so such patterns are refused when the ruleset is validated, on the parsed
pattern. The test is conservative: a pattern it refuses may be safe. What it lets through backtracks
at most quadratically, under half a second on the longest text a lead may send
(tests/test_attacks.py searches thousands of generated patterns to hold it to that).
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the stdlib's own parser: the analysis sees what `re` will run

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

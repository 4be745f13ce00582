"""Compiling a ruleset file onto durable_rules, once, failing fast.

Steps: load YAML (with lines) → JSON Schema → model → reference checks → generated rules for question
answers → conditions lowered to durable_rules patterns → layers → "can never fire" checks → one
durable_rules ruleset registered under a unique name. Every problem found is reported at once, with
file, line and rule id; nothing invalid reaches evaluation.

Layers are what makes forward chaining safe with totals: a rule that reads a score total runs after
every rule that adds to that score (and after the total is taken); a rule that reads a slot (stage,
route, a qualification item…) runs after every rule that sets it, unless it sets that slot too (so the
SQL rule can chain on the stage the MQL rule just set). A layer becomes the rule's durable_rules
`pri`, and the rule's own `priority` orders it within its layer.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field

from . import computed
from .actions import Shape, action_steps
from .checks import Checker, writes_of
from .conditions import Alternative, Feature, Lowering, pattern
from .errors import Problem, RulesetError
from .model import Rule, Ruleset, build
from .schema import validate_structure
from .yamlsource import load

LAYER = 1001  # priorities 0..999 (+1) fit inside one layer
_names = itertools.count(1)


def digest_of(data) -> str:
    """Content hash of the normalised source: the parsed document as canonical JSON.

    Comments and layout do not change it; any change to what the ruleset says does.
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class Handler:
    """What to run in Python when a durable_rules rule fires."""

    kind: str  # rule | tally | matrix
    name: str  # the rule id, or the durable_rules name of a tally or the matrix
    rule: Rule | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # durable alias -> fact key
    per_event: bool = False
    decay: bool = False
    model: Ruleset | None = None
    scores: tuple[str, ...] = ()  # a tally's scores, totalled in one action

    def __post_init__(self):
        self.event_aliases = sorted(a for a, f in self.aliases.items() if f.startswith("event"))
        self.steps = action_steps(self.rule, self.model) if self.rule else []
        self.cap = self.rule.then.get("cap") if self.rule else None


@dataclass
class Plan:
    definition: dict
    handlers: dict[str, Handler]
    lead_keys: set[str]
    features: list[Feature]
    event_types: set[str]
    event_keys: set[str]
    read_slots: set[str]
    layers: dict[str, int]
    alternatives: dict[str, list[Alternative]]
    event_features: list[tuple[str, str, str, tuple]] = field(default_factory=list)  # name, prop, op, values
    shape: Shape | None = None
    tallies: list[tuple[str, ...]] = field(default_factory=list)  # scores totalled together, by layer

    def __post_init__(self):
        # The keys rules read, split once: (section, name) pairs, e.g. ("p", "country").
        self.lead_fields = sorted(
            tuple(k.split(".", 1)) for k in self.lead_keys if "." in k and not k.startswith("f.")
        )
        self.uses_channel = "c" in self.lead_keys
        self.event_fields = sorted(tuple(k.split(".", 1)) for k in self.event_keys if k[:2] in ("p.", "n."))


def question_rules(model: Ruleset) -> list[Rule]:
    """One generated rule per outcome of each question: an answer settles its qualification item."""
    rules = []
    for i, q in enumerate(model.questions):
        if q.item is None:
            continue
        least, most = q.met_at_least, q.met_at_most
        within = {k: v for k, v in (("gte", least), ("lte", most)) if v is not None}
        outside = [{k: v} for k, v in (("lt", least), ("gt", most)) if v is not None]
        for status, answers in (("met", q.met), ("unmet", q.unmet)):
            alts: list[dict] = []
            shown = list(answers)
            if answers:
                alts.append({f"answers.{q.id}": {"in": list(answers)}})
            if status == "met" and within:
                alts.append({f"answers.{q.id}": within})
                shown.append(_range_words(least, most))
            if status == "unmet":
                alts += [{f"answers.{q.id}": test} for test in outside]
                shown += [f"{'<' if 'lt' in t else '>'} {_num(next(iter(t.values())))}" for t in outside]
            if not alts:
                continue
            rules.append(
                Rule(
                    id=f"answer-{q.id}-{status}",
                    description=f"Answered {q.id} with {', '.join(shown)}: {q.item} is {status}",
                    priority=-1,
                    when=alts[0] if len(alts) == 1 else {"any": alts},
                    then={"qualify": {q.item: status}},
                    path=("questions", i),
                    generated=True,
                )
            )
    return rules


def _range_words(least, most) -> str:
    if least is not None and most is not None:
        return f"{_num(least)} to {_num(most)}"
    return f"≥ {_num(least)}" if least is not None else f"≤ {_num(most)}"


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _keys(expr, out: set[str]) -> None:
    if expr[0] in ("and", "or"):
        for e in expr[1]:
            _keys(e, out)
    else:
        out.add(expr[2] if expr[0] == "cmp" else expr[1])


def stratify(nodes: dict[str, tuple[set[str], set[str]]]) -> tuple[dict[str, int], list[list[str]]]:
    """Layer of every node from (reads, writes); the circles of nodes that wait on each other, if any."""
    writers: dict[str, set[str]] = {}
    for node, (_, writes) in nodes.items():
        for kind in writes:
            writers.setdefault(kind, set()).add(node)
    preds: dict[str, set[str]] = {n: set() for n in nodes}
    for node, (reads, writes) in nodes.items():
        for kind in reads - writes:
            preds[node] |= writers.get(kind, set()) - {node}
    layer: dict[str, int] = {}
    remaining = dict(preds)
    while remaining:
        ready = [n for n, p in remaining.items() if p <= layer.keys()]
        if not ready:
            return layer, _circles({n: p & remaining.keys() for n, p in remaining.items()})
        for n in ready:
            layer[n] = 1 + max((layer[p] for p in remaining[n]), default=-1)
            del remaining[n]
    return layer, []


def _circles(preds: dict[str, set[str]]) -> list[list[str]]:
    """One circle per group of nodes that wait on each other (nodes only waiting on a circle excluded).

    Each circle is given in the order its results flow: every node feeds the next, the last the first.
    """
    circles, done = [], set()
    for start in sorted(preds):
        if start in done:
            continue
        # Walk predecessors until a node repeats: every node left here waits on something, so it must.
        path, seen, node = [], {}, start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = min(preds[node])
        circle = path[seen[node] :][::-1]
        done |= set(path)
        if not set(circle) & {n for c in circles for n in c}:
            circles.append(circle)
    return circles


def describe_node(node: str) -> str:
    if node == "@matrix":
        return "@matrix (fit and quadrant)"
    if node.startswith("@tally:"):
        return f"the {node.split(':', 1)[1]} total"
    return node


def _kind_words(kind: str) -> str:
    section, _, name = kind.partition(":")
    if name.startswith("qual:"):
        return f"qualification {name[5:]}"
    if name.startswith("tag:"):
        return f"tag {name[4:]}"
    return name


def plan(model: Ruleset, file: str, line_of) -> Plan:
    checker = Checker(model, file, line_of)
    problems: list[Problem] = list(checker.document()) + computed.compile_values(model, file, line_of)
    model.rules = question_rules(model) + model.rules
    lowering = Lowering(model, file, line_of)
    alternatives: dict[str, list[Alternative]] = {}
    nodes: dict[str, tuple[set[str], set[str]]] = {}
    for rule in model.rules:
        alts, reads = lowering.rule(rule.id, rule.when, rule.path)
        alternatives[rule.id] = alts
        writes = writes_of(rule)
        if "slot:route" in writes:
            reads = reads | {"slot:stage"}  # routing happens once the stage is settled
        nodes[rule.id] = (reads, writes)
        if rule.then.get("per") == "event" and not all(len(a.event_facts) == 1 for a in alts):
            problems.append(
                Problem(
                    file,
                    line_of(rule.path + ("then", "per")),
                    rule.id,
                    "per: event needs exactly one event condition (event: TYPE) in the rule",
                )
            )
    problems += lowering.problems
    for name in sorted(model.scores):  # the digest ignores key order: so must everything it identifies
        nodes[f"@tally:{name}"] = ({f"points:{name}"}, {f"total:{name}"})
    nodes["@matrix"] = ({"total:fit", "slot:ready"}, {"slot:fit", "slot:quadrant"})
    layers, circles = stratify(nodes)
    if circles:
        by_id = {r.id: r for r in model.rules}
        for circle in circles:
            steps = []
            for i, node in enumerate(circle):
                if node.startswith("@tally:"):
                    continue
                after = circle[(i + 1) % len(circle)]
                if after.startswith("@tally:"):
                    name = after.split(":", 1)[1]
                    reader = describe_node(circle[(i + 2) % len(circle)])
                    steps.append(
                        f"{describe_node(node)} adds {name} points to the {name} total, which {reader} reads"
                    )
                    continue
                kinds = sorted((nodes[after][0] - nodes[after][1]) & nodes[node][1])
                steps.append(
                    f"{describe_node(node)} sets {_kind_words(kinds[0])}, which {describe_node(after)} reads"
                )
            rules = [n for n in circle if n in by_id]
            first = min((by_id[r] for r in rules), key=lambda r: r.path) if rules else model.rules[0]
            problems.append(
                Problem(
                    file,
                    line_of(first.path),
                    first.id,
                    "these depend on each other's results in a circle, so no order works: "
                    + "; ".join(steps)
                    + ". Break the circle by changing "
                    + (f"one of these rules: {', '.join(rules)}" if len(rules) > 1 else f"rule {rules[0]}"),
                )
            )
        raise RulesetError(problems)

    summary = _writers_summary(model, nodes)
    for rule in model.rules:
        checker.reachability(rule, alternatives[rule.id], summary)
    problems = sorted(set(problems) | set(checker.problems))
    if problems:
        raise RulesetError(problems)
    return _durable(model, alternatives, layers, lowering)


def _writers_summary(model: Ruleset, nodes) -> dict:
    """What rules can produce, for the "can never fire" checks."""
    out: dict = {}
    for reads_writes in nodes.values():
        for kind in reads_writes[1]:
            out[kind] = True
    out["stage-values"] = set()
    out["route-values"] = set()
    for rule in model.rules:
        then = rule.then
        if "stage" in then:
            out["stage-values"].add(then["stage"])
        for key, kind in (
            ("recycle", "recycled"),
            ("disqualify", "disqualified"),
            ("not_a_lead", "not_a_lead"),
        ):
            if key in then:
                out["stage-values"].add(model.stage_of_kind(kind))
        if "route" in then:
            out["route-values"].add(then["route"])
    out["route-values"] |= {
        model.defaults["route"],
        model.defaults["not_a_lead_route"],
        model.defaults["disqualified_route"],
    }
    for name, score in model.scores.items():
        most = least = 0.0
        for rule in model.rules:
            pts = rule.then.get("points", {}).get(name)
            if pts is None:
                continue
            cap = rule.then.get("cap")
            repeat = rule.then.get("per") == "event"
            bound = cap if cap is not None else (math.inf if repeat else abs(pts))
            if pts > 0:
                most += bound
            else:
                least -= bound
        out[f"max:{name}"] = min(most, score.max) if score.max is not None else most
        out[f"min:{name}"] = max(least, score.min) if score.min is not None else least
    return out


def _durable(model: Ruleset, alternatives, layers, lowering: Lowering) -> Plan:
    definition: dict = {}
    handlers: dict[str, Handler] = {}
    lead_keys: set[str] = set()
    event_keys: set[str] = set()
    event_types: set[str] = set()
    read_slots: set[str] = set()
    for rule in model.rules:
        then = rule.then
        pri = 1 + layers[rule.id] * LAYER + rule.priority + 1
        points_decay = any(model.scores[s].half_life_days for s in then.get("points", {}))
        for i, alt in enumerate(alternatives[rule.id]):
            aliases: dict[str, str] = {}
            patterns = []
            for n, (fact, exprs) in enumerate(sorted(alt.tests.items())):
                alias = (
                    "l"
                    if fact == "lead"
                    else f"e{fact.split(':')[1]}"
                    if fact.startswith("event")
                    else f"x{n}"
                )
                aliases[alias] = fact
                patterns.append({alias: pattern(fact, exprs)})
                keys: set[str] = set()
                for e in exprs:
                    _keys(e, keys)
                if fact == "lead":
                    lead_keys |= keys
                elif fact.startswith("event"):
                    event_keys |= keys
                    event_types |= {e[3] for e in _flat(exprs) if e[0] == "cmp" and e[2] == "type"}
                elif fact.startswith("slot:"):
                    read_slots.add(fact[5:])
            if not patterns:  # `when` held nothing testable (already reported); keep the rule inert
                continue
            name = rule.id if len(alternatives[rule.id]) == 1 else f"{rule.id}#{i}"
            body: dict = {"all": patterns, "pri": pri}
            if alt.event_facts:
                body["cap"] = 1000  # one action with every matching event, not one per event
            definition[name] = body
            handlers[name] = Handler(
                "rule",
                rule.id,
                rule,
                aliases,
                then.get("per") == "event",
                bool(alt.event_facts) and then.get("decay", points_decay),
                model,
            )
    # Scores whose totals are taken at the same point of the chain are totalled by one action.
    by_layer: dict[int, list[str]] = {}
    for name in sorted(model.scores):
        by_layer.setdefault(layers[f"@tally:{name}"], []).append(name)
    tallies = [tuple(names) for _, names in sorted(by_layer.items())]
    for layer, names in sorted(by_layer.items()):
        key = f"@tally:{'+'.join(names)}"
        definition[key] = {
            "all": [{"m": {"$and": [{"t": "tally"}, {"score": key}]}}],
            "pri": 1 + layer * LAYER,
        }
        handlers[key] = Handler("tally", key, scores=tuple(names))
    definition["@matrix"] = {"all": [{"m": {"t": "matrix"}}], "pri": 1 + layers["@matrix"] * LAYER}
    handlers["@matrix"] = Handler("matrix", "matrix")
    return Plan(
        definition,
        handlers,
        lead_keys,
        list(lowering.features.values()),
        event_types,
        event_keys,
        read_slots,
        layers,
        alternatives,
        [(name, prop, op, values) for (prop, op, values), name in lowering.event_features.items()],
        Shape(model, read_slots),
        tallies,
    )


def _flat(exprs):
    for e in exprs:
        if e[0] in ("and", "or"):
            yield from _flat(e[1])
        else:
            yield e


def compile_source(text: str, file: str = "<ruleset>"):
    """A CompiledRuleset from ruleset source text, or RulesetError with every problem."""
    from .runtime import CompiledRuleset

    doc = load(text, file)
    problems = validate_structure(doc)
    if problems:
        raise RulesetError(problems)
    model = build(doc.data)
    the_plan = plan(model, file, doc.line)
    return CompiledRuleset(
        model, the_plan, text, digest_of(doc.data), file, f"leadgate-{next(_names)}-{model.name}"
    )


def check_source(text: str, file: str = "<ruleset>") -> list[Problem]:
    """Every problem of a ruleset source; empty when it compiles (nothing is registered)."""
    try:
        doc = load(text, file)
        problems = validate_structure(doc)
        if problems:
            return problems
        plan(build(doc.data), file, doc.line)
    except RulesetError as exc:
        return exc.problems
    return []

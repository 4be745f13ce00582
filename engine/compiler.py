"""Compiling a ruleset file onto durable_rules, once, failing fast.

Steps: load YAML (with lines) → JSON Schema → model → reference checks → generated rules for question
answers → conditions lowered to durable_rules patterns → layers → "can never fire" checks → one
durable_rules ruleset registered under a unique name. Every problem found is reported at once, with
file, line and rule id; nothing invalid reaches evaluation.

Layers (layers.py) make forward chaining safe with totals; a layer becomes the rule's durable_rules
`pri`, and the rule's own `priority` orders it within its layer. Scores whose totals are taken in the
same layer are totalled by one action.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field

from . import computed
from .actions import MATRIX_SLOTS, Shape, action_steps
from .checks import Checker, writes_of
from .conditions import Alternative, Feature, Lowering, pattern
from .errors import Problem, RulesetError
from .layers import circle_problems, stratify
from .model import Rule, Ruleset, build
from .questions import question_rules
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
        self.lead_names = {
            s: [n for section, n in self.lead_fields if section == s] for s in ("p", "a", "an", "v")
        }
        self.uses_channel = "c" in self.lead_keys
        self.event_fields = sorted(tuple(k.split(".", 1)) for k in self.event_keys if k[:2] in ("p.", "n."))
        self.tally_keys = [f"@tally:{'+'.join(names)}" for names in self.tallies]
        self.slot_facts = sorted(self.read_slots - MATRIX_SLOTS)  # the slots mirrored from the start


def _keys(expr, out: set[str]) -> None:
    if expr[0] in ("and", "or"):
        for e in expr[1]:
            _keys(e, out)
    else:
        out.add(expr[2] if expr[0] == "cmp" else expr[1])


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
        problems += circle_problems(circles, nodes, model, file, line_of)
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
        key = f"@tally:{'+'.join(names)}"  # as Plan.tally_keys
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

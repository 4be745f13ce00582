"""The state of one evaluation while its rules fire: the actions and the reasons they record.

Actions are small and pure: they change *slots* (stage, funnel, route, ready, tags, qualification
items; fit and quadrant from the matrix), add points, and record a reason for every rule that fired,
in firing order, with its effects — so each score can be rebuilt by hand from the reasons.
A slot that some rule reads is mirrored as a durable_rules fact: changing it retracts the old fact and
asserts the new one, and that is what chains the rules forward.

What is the same for every evaluation of a ruleset (stage ranks, half-lives, the starting slots) is
worked out once, in `Shape`; an evaluation only copies the starting slots.
"""

from __future__ import annotations

import json
from datetime import datetime

from . import hours
from .model import Ruleset
from .vocabulary import FUNNEL_POSITIONS

VERDICT_KINDS = ("not_a_lead", "disqualified")
# Set once, by the matrix, before any rule reads them: no placeholder fact to retract first.
MATRIX_SLOTS = frozenset({"fit", "quadrant"})
FUNNEL_RANK = {p: i for i, p in enumerate(FUNNEL_POSITIONS)}
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _round(x: float) -> float:
    x += 0.0  # a float, and never -0.0
    if x.is_integer():  # most points: round() would give x back, at ten times the cost
        return x
    r = round(x, 2)
    return 0.0 if r == 0 else r


class Shape:
    """What every evaluation of one ruleset starts from, computed once when it is compiled."""

    def __init__(self, model: Ruleset, read_slots: set[str]):
        self.read_slots = frozenset(read_slots)
        self.kind_of = {s.id: s.kind for s in model.stages}
        self.rank = {s: i for i, s in enumerate(model.funnel_stages)}
        recycled = model.stage_of_kind("recycled")
        if recycled:
            self.rank[recycled] = -1
        self.first_stage = model.funnel_stages[0]
        self.half_lives = {name: score.half_life_days for name, score in model.scores.items()}
        # For SLAs counted in business hours (checked when the ruleset was compiled).
        self.business_hours = hours.parse(model.business_hours) if model.business_hours else None
        self.slots: dict[str, object] = {
            "stage": self.first_stage,
            "funnel": "tofu",
            "route": "none",
            "ready": False,
            "fit": "unset",
            "quadrant": "unset",
        }
        self.slots.update({f"qual:{item}": "unknown" for item in model.qualification})


class Run:
    def __init__(self, model: Ruleset, plan, facts: dict, at: datetime):
        shape: Shape = plan.shape
        self.model, self.plan, self.facts, self.at = model, plan, facts, at
        self.current_rule: str | None = None
        self.reasons: list[dict] = []
        self.fired: set[str] = set()
        self.counted: dict[str, set[str]] = {}
        self.points: dict[str, list[tuple[float, str]]] = {
            name: [] for name in model.scores
        }  # (points, rule)
        self.totals: dict[str, float] = {}
        self.grades: dict[str, str | None] = {}
        self.asked: list[str] = []
        self.status_reason: str | None = None
        self.verdict_route: str | None = None  # the route the verdict's own rule chose, if it chose one
        self.kind_of, self.rank, self._read_slots = shape.kind_of, shape.rank, shape.read_slots
        self._half_lives = shape.half_lives
        self.slots = dict(shape.slots)
        previous = facts.get("previous_stage")
        if previous in self.rank:
            self.slots["stage"] = previous
        self.set_by: dict[str, str] = {}
        self._facts: dict[str, str] = {}
        self._scores: list[str] = []
        self.ages: list[float] = []  # of the lead's events, by index (the event fact e3 is events[3])
        self._lead_events = facts["events"]
        self.sid = ""
        self._assert = self._retract = None

    # -- durable_rules side ------------------------------------------------------------------
    def bind(self, sid: str, assert_fact, retract_fact) -> None:
        """Connect to the durable_rules session: the functions take a fact as JSON text."""
        self.sid, self._assert, self._retract = sid, assert_fact, retract_fact

    def slot_fact(self, slot: str, sid: str) -> str:
        """A mirrored slot as the JSON text durable_rules gets, kept so retracting it costs no encoding."""
        value = self.slots.get(slot, False)  # tags start unset
        # Slot values are ids ([a-z0-9_]) or booleans: no JSON encoder needed.
        literal = ("true" if value else "false") if isinstance(value, bool) else f'"{value}"'
        text = f'{{"id":"slot:{slot}","t":"slot","slot":"{slot}","sid":"{sid}","v":{literal}}}'
        self._facts[slot] = text
        return text

    def held(self) -> list[str]:
        """The facts this run asserted that the session still holds: slots and totals."""
        return [*self._facts.values(), *self._scores]

    def _set(self, slot: str, value, rule_id: str) -> None:
        self.slots[slot] = value
        self.set_by[slot] = rule_id
        if slot in self._read_slots:
            old = self._facts.get(slot)
            if old is not None:
                self._retract(old)
            self._assert(self.slot_fact(slot, self.sid))

    # -- actions -----------------------------------------------------------------------------
    def fire(self, handler, combos: list[tuple[int, ...]] | None) -> None:
        """Run a rule's steps for what it matched: each combination is the indexes of its events (the
        event fact e3 is events[3]), one per event condition in the order of handler.event_aliases."""
        rule_id = handler.name
        per_event = handler.per_event
        if rule_id in self.fired and not per_event:
            return  # once per lead: another alternative or a later match adds nothing
        events = self._events(handler, combos) if combos else []
        if per_event and not events:
            return
        self.fired.add(rule_id)
        effects = [getattr(self, step)(handler, events, *args) for step, args in handler.steps]
        self.reasons.append({"rule": rule_id, "description": handler.rule.description, "effects": effects})

    def _events(self, handler, combos: list[tuple[int, ...]]) -> list[int]:
        """The indexes of the matched events, oldest first; for per-event rules only those not counted yet."""
        if handler.per_event:
            seen = self.counted.setdefault(handler.name, set())
            found = {c[0] for c in combos}
            new = sorted(found - seen)
            seen.update(found)
            return new
        if len(combos) == 1:
            best = combos[0]
        else:  # once: the freshest combination counts, and a combination is as fresh as its oldest event
            ages = self.ages
            best = min(combos, key=lambda c: (max(ages[i] for i in c), sorted(c)))
        return list(best)

    def _points(self, handler, events: list[int], score: str, pts: float) -> dict:
        effect: dict = {"type": "points", "score": score}
        half_life = self._half_lives[score] if handler.decay else None
        ages = self.ages
        if handler.per_event:
            detail = []
            total = 0.0
            for i in events:
                got = _round(pts * (0.5 ** (ages[i] / half_life) if half_life else 1.0))
                total += got
                detail.append(self._event_detail(i, got))
            effect["events"] = detail
        else:
            weight = 0.5 ** (max(ages[i] for i in events) / half_life) if half_life and events else 1.0
            total = pts * weight
            if events and handler.decay:
                effect["events"] = [self._event_detail(i, None) for i in events]
        total = _round(total)
        cap = handler.cap
        if cap is not None:
            rule_id = handler.name
            already = sum(p for p, rid in self.points[score] if rid == rule_id)
            room = max(0.0, cap - abs(already))
            if abs(total) > room:
                effect["capped_from"] = total
                total = _round(room if total > 0 else -room)
        effect["points"] = total
        self.points[score].append((total, handler.name))
        return effect

    def _event_detail(self, i: int, points) -> dict:
        event = self._lead_events[i]
        out = {"type": event["type"], "at": event["at"], "age_days": self.ages[i]}
        if "id" in event:
            out["id"] = event["id"]
        if points is not None:
            out["points"] = points
        return out

    def _verdict(self, handler, events, kind: str, reason: str) -> dict:
        rule_id = handler.name
        target = self.model.stage_of_kind(kind)
        current = self.slots["stage"]
        effect = {"type": "stage", "from": current, "to": target, "reason": reason}
        if self.kind_of.get(current) == "disqualified" or (
            kind == "not_a_lead" and self.kind_of.get(current) == kind
        ):
            effect.update(applied=False, note=f"already {current}")
        else:
            self._set("stage", target, rule_id)
            self.status_reason = reason
            self.verdict_route = handler.rule.then.get("route")  # a later verdict without one resets it
            effect["applied"] = True
        return effect

    def _move(self, handler, events, target: str, recycle: str | None = None) -> dict:
        rule_id = handler.name
        current = self.slots["stage"]
        effect = {"type": "stage", "from": current, "to": target}
        if recycle is not None:
            effect["reason"] = recycle
        if self.kind_of.get(current) in VERDICT_KINDS:
            effect.update(applied=False, note=f"the lead is {current}")
        elif target == current:
            effect.update(applied=False, note=f"already {current}")
        elif recycle is None and self.rank[target] < self.rank[current]:
            effect.update(applied=False, note=f"stages only move forward: already {current}")
        else:
            self._set("stage", target, rule_id)
            effect["applied"] = True
        return effect

    def _funnel(self, handler, events, position: str) -> dict:
        current = self.slots["funnel"]
        if FUNNEL_RANK[position] > FUNNEL_RANK[current]:
            self._set("funnel", position, handler.name)
            return {"type": "funnel", "from": current, "to": position, "applied": True}
        return {
            "type": "funnel",
            "from": current,
            "to": position,
            "applied": False,
            "note": f"already {current}",
        }

    def _first(self, slot: str, value, rule_id: str, unset, effect: dict) -> dict:
        """Slots where the first rule to set them wins (priority decides who is first)."""
        if self.slots[slot] == unset:
            self._set(slot, value, rule_id)
            effect["applied"] = True
        elif self.slots[slot] == value:
            effect.update(applied=False, note=f"already set by {self.set_by[slot]}")
        else:
            effect.update(applied=False, note=f"kept {self.slots[slot]!r} set by {self.set_by[slot]}")
        return effect

    def _route(self, handler, events, route: str) -> dict:
        stage = self.slots["stage"]
        if self.kind_of.get(stage) in VERDICT_KINDS:
            if self.set_by.get("stage") == handler.name:
                # Not-a-lead routes chosen by reason: the rule that gave the verdict also names its route.
                return {"type": "route", "route": route, "applied": True, "note": f"route for this {stage}"}
            return {"type": "route", "route": route, "applied": False, "note": f"the lead is {stage}"}
        return self._first("route", route, handler.name, "none", {"type": "route", "route": route})

    def _qualify(self, handler, events, item: str, status: str) -> dict:
        return self._first(
            f"qual:{item}",
            status,
            handler.name,
            "unknown",
            {"type": "qualification", "item": item, "value": status},
        )

    def _ready(self, handler, events) -> dict:
        return self._first("ready", True, handler.name, False, {"type": "ready", "value": True})

    def _tag(self, handler, events, tag: str) -> dict:
        if self.slots.get(f"tag:{tag}") is not True:
            self._set(f"tag:{tag}", True, handler.name)
        return {"type": "tag", "value": tag}

    def _ask(self, handler, events, question: str) -> dict:
        if question not in self.asked:
            self.asked.append(question)
        return {"type": "ask", "question": question}

    # -- built-in steps ----------------------------------------------------------------------
    def computed(self, details: list[dict]) -> None:
        """The ruleset's computed values with their inputs, first among the reasons: rules build on them.

        A value none of whose inputs were given is left out: it says nothing about this lead."""
        for c, detail in zip(self.model.computed, details, strict=True):
            if any(v is not None for v in detail["inputs"].values()):
                self.reasons.append(
                    {"rule": f"@computed.{c.name}", "description": c.words(), "effects": [detail]}
                )

    def tally(self, names: tuple[str, ...]) -> None:
        """The totals of these scores (all taken at the same point of the chain), asserted as facts."""
        for name in names:
            score = self.model.scores[name]
            total = _round(sum(p for p, _ in self.points[name]))
            limit = None
            if score.max is not None and total > score.max:
                limit = ("max", score.max)
            elif score.min is not None and total < score.min:
                limit = ("min", score.min)
            if limit:
                cut = _round(limit[1] - total)
                self.points[name].append((cut, f"@limit.{name}"))
                self.reasons.append(
                    {
                        "rule": f"@limit.{name}",
                        "description": f"{name.capitalize()} stays {'at most' if limit[0] == 'max' else 'at least'} {limit[1]:g}",
                        "effects": [{"type": "points", "score": name, "points": cut}],
                    }
                )
                total = _round(limit[1])
            self.totals[name] = total
            self.grades[name] = score.grade(total)
            grade = self.grades[name]
            # Score names are ids and sids digits; totals are floats, written as json.dumps writes them.
            text = f'{{"id":"score:{name}","t":"score","sid":"{self.sid}","name":"{name}","pts":{total!r}' + (
                "}" if grade is None else f',"grade":{_encode(grade)}}}'
            )
            self._scores.append(text)
            self._assert(text)

    def matrix(self) -> None:
        fit_total, good_at = self.totals["fit"], self.model.scores["fit"].good_at
        fit = "good" if fit_total >= good_at else "poor"
        ready = bool(self.slots["ready"])
        quadrant = f"{fit}_fit_{'ready' if ready else 'not_ready'}"
        self._set("fit", fit, "@matrix")
        self._set("quadrant", quadrant, "@matrix")
        self.reasons.append(
            {
                "rule": "@matrix",
                "description": f"Fit {fit_total:g} is {'at least' if fit == 'good' else 'below'} {good_at:g} "
                f"({fit} fit); {'sales-ready' if ready else 'not sales-ready'}",
                "effects": [{"type": "fit", "value": fit}, {"type": "quadrant", "value": quadrant}],
            }
        )


def action_steps(rule, model: Ruleset) -> list[tuple[str, tuple]]:
    """A rule's `then` as the Run methods to call, in the fixed order effects are applied."""
    then = rule.then
    steps: list[tuple[str, tuple]] = []
    for key, kind in (("not_a_lead", "not_a_lead"), ("disqualify", "disqualified")):
        if key in then:
            steps.append(("_verdict", (kind, then[key])))
    if "stage" in then:
        steps.append(("_move", (then["stage"],)))
    if "recycle" in then:
        steps.append(("_move", (model.stage_of_kind("recycled"), then["recycle"])))
    if "funnel" in then:
        steps.append(("_funnel", (then["funnel"],)))
    steps += [("_qualify", (item, status)) for item, status in then.get("qualify", {}).items()]
    if then.get("ready"):
        steps.append(("_ready", ()))
    steps += [("_tag", (t,)) for t in _as_list(then.get("tag"))]
    steps += [("_points", (score, pts)) for score, pts in then.get("points", {}).items()]
    if "route" in then:
        steps.append(("_route", (then["route"],)))
    steps += [("_ask", (q,)) for q in _as_list(then.get("ask"))]
    return steps


def _as_list(value) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)

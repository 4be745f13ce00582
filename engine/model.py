"""The parsed form of a ruleset: plain dataclasses built from a structurally valid document."""

from __future__ import annotations

from dataclasses import dataclass, field

from .vocabulary import ANSWER_FIELDS, DERIVED_PROFILE_FIELDS, EVENT_TYPES, PROFILE_FIELDS

DEFAULT_PRIORITY = 500


@dataclass(frozen=True)
class Stage:
    id: str
    description: str
    kind: str | None  # None for funnel stages


@dataclass(frozen=True)
class Score:
    name: str
    description: str
    min: float | None
    max: float | None
    good_at: float | None
    half_life_days: float | None
    grades: tuple[tuple[str, float], ...]  # highest threshold first

    def grade(self, points: float) -> str | None:
        for letter, lowest in self.grades:
            if points >= lowest:
                return letter
        return self.grades[-1][0] if self.grades else None


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    properties: dict[str, str] | None  # declared types of its properties; None: standard, any property

    @property
    def declared(self) -> bool:
        return self.properties is not None


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    item: str | None
    answers: tuple[str, ...]
    amount: bool
    free_text: bool
    met: tuple[str, ...]
    unmet: tuple[str, ...]
    met_at_least: float | str | None  # a number, or "computed.<name>"
    met_at_most: float | str | None
    auto: bool

    def to_dict(self) -> dict:
        out = {"id": self.id, "text": self.text, "answers": list(self.answers)}
        if self.amount:
            out["amount"] = True
        if self.free_text:
            out["free_text"] = True
        if self.item:
            out["item"] = self.item
        return out


@dataclass(frozen=True)
class Route:
    id: str
    destination: str
    team: str | None
    track: str | None
    sla_minutes: int | None
    next_step: dict
    description: str
    business_hours: bool = False  # the SLA counts only the ruleset's business hours
    # The next step once nothing is left to ask, for a route whose next step asks questions.
    next_step_when_answered: dict | None = None


@dataclass
class Rule:
    id: str
    description: str
    priority: int
    when: dict
    then: dict
    path: tuple  # where the rule sits in the document, for line numbers
    generated: bool = False  # made by leadgate (question answers), not written in the file


@dataclass
class Ruleset:
    name: str
    version: int
    description: str
    owners: dict
    currency: str | None
    profile_fields: dict[str, str]
    answer_fields: dict[str, str]
    declared_answers: dict[str, str]  # as written under fields.answers, for the checks
    lists: dict[str, tuple[str, ...]]
    stages: tuple[Stage, ...]
    scores: dict[str, Score]
    qualification: dict[str, str]
    questions: tuple[Question, ...]
    routes: dict[str, Route]
    defaults: dict[str, str]
    rules: list[Rule] = field(default_factory=list)
    outcome_reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rejected/lost -> reasons
    business_hours: dict | None = None  # as written; engine.hours.parse makes it usable
    event_types: dict[str, EventType] = field(default_factory=dict)  # standard ones, then declared ones
    computed_specs: dict[str, dict] = field(default_factory=dict)  # as written; compiled by the compiler
    computed: tuple = ()  # engine.computed.Computed values in dependency order, set by the compiler

    @property
    def declared_event_types(self) -> list[str]:
        return [name for name, e in self.event_types.items() if e.declared]

    @property
    def funnel_stages(self) -> list[str]:
        return [s.id for s in self.stages if s.kind is None]

    def stage_of_kind(self, kind: str) -> str | None:
        return next((s.id for s in self.stages if s.kind == kind), None)

    @property
    def question_ids(self) -> set[str]:
        return {q.id for q in self.questions}


def build(data: dict) -> Ruleset:
    """A Ruleset from a document that passed validate_structure."""
    fields = data.get("fields") or {}
    profile = {
        **PROFILE_FIELDS,
        **DERIVED_PROFILE_FIELDS,
        **{k: v["type"] for k, v in (fields.get("profile") or {}).items()},
    }
    questions = tuple(_question(q) for q in data.get("questions") or [])
    declared = {k: v["type"] for k, v in (fields.get("answers") or {}).items()}
    answers = {**ANSWER_FIELDS, **declared}
    # A question's answers are text (or an amount): its own declaration wins; checks report a clash.
    answers.update({q.id: "string" for q in questions})
    qualification = {k: (v or {}).get("description", k) for k, v in (data.get("qualification") or {}).items()}
    return Ruleset(
        name=data["name"],
        version=data["version"],
        description=data["description"],
        owners=data["owners"],
        currency=data.get("currency"),
        profile_fields=profile,
        answer_fields=answers,
        declared_answers=declared,
        lists={k: tuple(v) for k, v in (data.get("lists") or {}).items()},
        stages=tuple(Stage(s["id"], s.get("description", ""), s.get("kind")) for s in data["stages"]),
        scores={name: _score(name, s) for name, s in data["scores"].items()},
        qualification=qualification,
        questions=questions,
        routes={rid: _route(rid, r) for rid, r in data["routes"].items()},
        defaults=dict(data["defaults"]),
        outcome_reasons={k: tuple(v) for k, v in (data.get("outcomes") or {}).items()},
        business_hours=data.get("business_hours"),
        computed_specs=dict(data.get("computed") or {}),
        event_types={
            **{name: EventType(name, "", None) for name in EVENT_TYPES},
            **{
                name: EventType(
                    name,
                    e.get("description", ""),
                    {k: v["type"] for k, v in (e.get("properties") or {}).items()},
                )
                for name, e in (data.get("events") or {}).items()
            },
        },
        rules=[
            Rule(
                r["id"],
                r["description"],
                r.get("priority", DEFAULT_PRIORITY),
                r["when"],
                r["then"],
                ("rules", i),
            )
            for i, r in enumerate(data["rules"])
        ],
    )


def _score(name: str, s: dict) -> Score:
    grades = tuple(sorted((s.get("grades") or {}).items(), key=lambda kv: -kv[1]))
    return Score(
        name,
        s.get("description", ""),
        s.get("min"),
        s.get("max"),
        s.get("good_at"),
        s.get("half_life_days"),
        grades,
    )


def _question(q: dict) -> Question:
    return Question(
        id=q["id"],
        text=q["text"],
        item=q.get("item"),
        answers=tuple(q["answers"]),
        amount=q.get("amount", False),
        free_text=q.get("free_text", False),
        met=tuple(q.get("met") or ()),
        unmet=tuple(q.get("unmet") or ()),
        met_at_least=q.get("met_at_least"),
        met_at_most=q.get("met_at_most"),
        auto=q.get("auto", q.get("item") is not None),
    )


def _route(rid: str, r: dict) -> Route:
    return Route(
        rid,
        r["destination"],
        r.get("team"),
        r.get("track"),
        r.get("sla_minutes"),
        dict(r["next_step"]),
        r.get("description", ""),
        r.get("business_hours", False),
        dict(r["next_step_when_answered"]) if r.get("next_step_when_answered") else None,
    )

"""The API's contract: one marshmallow schema per body and reply; the OpenAPI document comes from them.

Profile fields and answers are typed by the ruleset that decides (a ruleset may declare more), so
here they are described from the standard vocabulary and checked by the engine, which names each
wrong field in the same error shape.
"""

from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

from engine.facts import LEAD_ID, LEAD_ID_RULE
from engine.vocabulary import (
    ANSWER_FIELDS,
    DESTINATIONS,
    EVENT_TYPES,
    FUNNEL_POSITIONS,
    LIST,
    NUMBER,
    PROFILE_FIELDS,
    QUADRANTS,
)

_OPENAPI_TYPE = {NUMBER: "number", LIST: "array", "boolean": "boolean", "string": "string"}


def _vocabulary_schema(
    name: str, vocabulary: dict[str, str], doc: str, amounts: bool = False
) -> type[Schema]:
    """A schema documenting a vocabulary; with `amounts`, text fields may also be numbers (answers)."""

    def described(ftype: str) -> dict:
        if amounts and ftype == "string":
            return {"nullable": True, "oneOf": [{"type": "string"}, {"type": "number"}]}
        return {"type": _OPENAPI_TYPE[ftype]} | ({"items": {"type": "string"}} if ftype == LIST else {})

    attrs = {
        field: fields.Raw(allow_none=True, metadata=described(ftype)) for field, ftype in vocabulary.items()
    }
    attrs["Meta"] = type("Meta", (), {"unknown": INCLUDE})
    schema = type(name, (Schema,), attrs)
    schema.__doc__ = doc
    return schema


ProfileSchema = _vocabulary_schema(
    "Profile",
    PROFILE_FIELDS,
    "What is known of the lead. null removes a stored value. Fields a ruleset declares are allowed too.",
)
AnswersSchema = _vocabulary_schema(
    "Answers",
    ANSWER_FIELDS,
    "Answers to qualification questions (text, or an amount where the question allows).",
    amounts=True,
)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class EventSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    at = fields.String(required=True, metadata={"format": "date-time", "example": "2026-11-23T09:00:00Z"})
    id = fields.String(
        validate=validate.Length(1, 200), metadata={"description": "An event sent twice counts once."}
    )
    properties = fields.Dict(keys=fields.String(), metadata={"example": {"content": "whitepaper"}})


class RulesetPinSchema(StrictSchema):
    name = fields.String(validate=validate.Length(1, 64))
    version = fields.Integer(strict=True, validate=validate.Range(min=1))


class DecisionRequestSchema(StrictSchema):
    lead_id = fields.String(
        validate=validate.Regexp(LEAD_ID, error=LEAD_ID_RULE),
        metadata={
            "example": "L-1001",
            "description": "Your id of the lead (required with a server-side key; a form key sends none "
            "to start a lead, and gets the id leadgate chose). " + LEAD_ID_RULE + ".",
        },
    )
    lead_token = fields.String(
        validate=validate.Length(1, 1000),
        metadata={"description": "Form keys: the lead_token of the previous reply, to continue that lead."},
    )
    channel = fields.String(
        allow_none=True, validate=validate.Length(max=100), metadata={"example": "demo_form"}
    )
    profile = fields.Nested(ProfileSchema)
    events = fields.List(fields.Nested(EventSchema), validate=validate.Length(max=2000))
    answers = fields.Nested(AnswersSchema)
    ruleset = fields.Nested(
        RulesetPinSchema, metadata={"description": "Pin a ruleset (default: the configured one)."}
    )


class BatchRequestSchema(StrictSchema):
    items = fields.List(fields.Nested(DecisionRequestSchema), required=True, validate=validate.Length(min=1))


class RulesetIdentitySchema(Schema):
    name = fields.String()
    version = fields.Integer()
    digest = fields.String(metadata={"description": "sha256 of the normalised ruleset source"})


class NextStepSchema(Schema):
    action = fields.String()
    text = fields.String()


class RouteSchema(Schema):
    id = fields.String()
    destination = fields.String(validate=validate.OneOf(DESTINATIONS))
    team = fields.String(allow_none=True)
    track = fields.String(allow_none=True)
    sla_minutes = fields.Integer(allow_none=True)
    due_at = fields.String(allow_none=True)
    next_step = fields.Nested(NextStepSchema)


class QuestionSchema(Schema):
    id = fields.String()
    text = fields.String()
    answers = fields.List(fields.String())
    item = fields.String()
    amount = fields.Boolean()
    free_text = fields.Boolean()


class ReasonSchema(Schema):
    rule = fields.String(metadata={"description": "Rule id; leadgate's own steps start with @"})
    description = fields.String()
    effects = fields.List(
        fields.Dict(), metadata={"description": "points, stage, funnel, route, … with applied"}
    )


class AssignmentSchema(Schema):
    team = fields.String()
    owner = fields.String(allow_none=True, metadata={"description": "null: the team's queue takes it"})
    name = fields.String(allow_none=True)
    basis = fields.String(validate=validate.OneOf(["lead_owner", "domain_owner", "round_robin", "none"]))
    reason = fields.String()


class DecisionSchema(Schema):
    decision_id = fields.String()
    lead_id = fields.String()
    ruleset = fields.Nested(RulesetIdentitySchema)
    is_lead = fields.Boolean()
    stage = fields.String()
    status_reason = fields.String(allow_none=True)
    funnel = fields.String(validate=validate.OneOf(FUNNEL_POSITIONS))
    scores = fields.Dict(keys=fields.String(), values=fields.Float())
    grades = fields.Dict(keys=fields.String(), values=fields.String())
    fit = fields.String(validate=validate.OneOf(["good", "poor"]))
    ready = fields.Boolean()
    quadrant = fields.String(validate=validate.OneOf(QUADRANTS))
    qualification = fields.Dict(keys=fields.String(), values=fields.String())
    tags = fields.List(fields.String())
    route = fields.Nested(RouteSchema)
    next_questions = fields.List(fields.Nested(QuestionSchema))
    reasons = fields.List(fields.Nested(ReasonSchema))
    evaluated_at = fields.String()
    assignment = fields.Nested(
        AssignmentSchema,
        allow_none=True,
        metadata={"description": "Who takes a hand-off to a team (rulesets/teams.yaml); null otherwise"},
    )
    lead_token = fields.String(
        metadata={
            "description": "Form keys only: send it back to continue this lead (the reply to a "
            "form key holds only decision_id, lead_id, lead_token, route, next_questions, evaluated_at)"
        }
    )
    lead_token_expires_at = fields.String(metadata={"description": "Form keys only: when lead_token expires"})


class BatchResponseSchema(Schema):
    decisions = fields.List(fields.Nested(DecisionSchema))


class DecisionRecordSchema(Schema):
    decision_id = fields.String()
    kind = fields.String(validate=validate.OneOf(["decision", "preview"]))
    seq = fields.Integer()
    lead_id = fields.String()
    evaluated_at = fields.String()
    recorded_at = fields.String()
    channel = fields.String(allow_none=True)
    client = fields.String(allow_none=True)
    ruleset = fields.Nested(RulesetIdentitySchema)
    latency_ms = fields.Float(allow_none=True)
    input = fields.Dict(allow_none=True)
    facts = fields.Dict()
    decision = fields.Nested(DecisionSchema)


class LeadSchema(Schema):
    lead_id = fields.String()
    created_at = fields.String()
    updated_at = fields.String()
    channel = fields.String(allow_none=True)
    stage = fields.String()
    facts = fields.Dict(
        metadata={"description": "Accumulated profile (personal fields as tokens), answers, events"}
    )
    latest_decision = fields.Nested(DecisionSchema)


class TimelineItemSchema(Schema):
    decision_id = fields.String()
    seq = fields.Integer()
    evaluated_at = fields.String()
    recorded_at = fields.String()
    channel = fields.String(allow_none=True)
    stage = fields.String()
    route = fields.String()
    destination = fields.String()
    quadrant = fields.String()
    scores = fields.Dict(keys=fields.String(), values=fields.Float())
    ruleset = fields.Nested(RulesetIdentitySchema)
    changes = fields.Dict()


class TimelineSchema(Schema):
    items = fields.List(fields.Nested(TimelineItemSchema))
    next_before = fields.Integer(
        allow_none=True, metadata={"description": "Pass as ?before= for older entries"}
    )


class PageQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    before = fields.Integer(validate=validate.Range(min=0))


class WhySchema(Schema):
    lead_id = fields.String()
    decision_id = fields.String()
    evaluated_at = fields.String()
    ruleset = fields.Nested(RulesetIdentitySchema)
    is_lead = fields.Boolean()
    stage = fields.String()
    status_reason = fields.String(allow_none=True)
    staged_by = fields.List(fields.Dict())
    funnel = fields.String()
    fit = fields.String()
    ready = fields.Boolean()
    quadrant = fields.String()
    route = fields.Nested(RouteSchema)
    routed_by = fields.Dict(allow_none=True)
    assignment = fields.Nested(AssignmentSchema, allow_none=True)
    scores = fields.Dict()
    qualification = fields.Dict()
    open_questions = fields.List(fields.Nested(QuestionSchema))
    changes = fields.Dict()
    text = fields.String(metadata={"description": "The same explanation in plain words"})


class QuestionsSchema(Schema):
    lead_id = fields.String()
    stage = fields.String()
    decision_id = fields.String()
    questions = fields.List(fields.Nested(QuestionSchema))


class OwnerSchema(Schema):
    name = fields.String()
    email = fields.String()


class RulesetVersionSchema(Schema):
    name = fields.String()
    version = fields.Integer()
    digest = fields.String()
    active = fields.Boolean()
    role = fields.String(
        validate=validate.OneOf(["active", "candidate", "shadow"]),
        metadata={
            "description": "active (decides by default), candidate (pin it), shadow (also run on live leads)"
        },
    )
    description = fields.String()
    owners = fields.Dict(keys=fields.String(), values=fields.Nested(OwnerSchema))
    stages = fields.List(fields.String())
    scores = fields.List(fields.String())
    questions = fields.List(fields.Nested(QuestionSchema))
    routes = fields.List(fields.String())
    rules = fields.Integer(metadata={"description": "Number of rules"})


class RulesetListSchema(Schema):
    rulesets = fields.List(fields.Nested(RulesetVersionSchema))


class RulesetDetailSchema(Schema):
    name = fields.String()
    active_version = fields.Integer(allow_none=True)
    shadow_version = fields.Integer(allow_none=True)
    versions = fields.List(fields.Nested(RulesetVersionSchema))
    source = fields.String(
        allow_none=True, metadata={"description": "Source of the active version (null with candidates only)"}
    )


class ProblemSchema(Schema):
    file = fields.String()
    line = fields.Integer()
    rule = fields.String(allow_none=True)
    message = fields.String()


class ReloadSchema(Schema):
    reload_id = fields.String()
    seq = fields.Integer(metadata={"description": "Its place in the audit's hash chain"})
    at = fields.String()
    requested_by = fields.String(metadata={"description": "startup, sighup, cli, or api:<key id>"})
    deployment = fields.Dict(
        metadata={
            "description": "Digests served from then on: active (per name), candidates, shadows (per name)"
        }
    )
    problems = fields.List(fields.Nested(ProblemSchema), metadata={"description": "Files refused"})
    changed = fields.Boolean(metadata={"description": "Whether the deployment differs from the one before"})
    kept = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "Rulesets whose file was refused: the last good version that keeps serving"},
    )


class ReloadListSchema(Schema):
    reloads = fields.List(fields.Nested(ReloadSchema))


class ErrorSchema(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "Stable error code (see the README)"})
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class HealthSchema(Schema):
    status = fields.String()
    rulesets = fields.Dict()
    ruleset_problems = fields.List(fields.Dict())
    database = fields.String()

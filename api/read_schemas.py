"""The read side of the API's contract: decision records, leads and their timelines, explanations,
rulesets, reloads and health, as marshmallow schemas (the decision contract is api/schemas.py).
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .schemas import (
    AssignmentSchema,
    DecisionSchema,
    QuestionSchema,
    RouteSchema,
    RulesetIdentitySchema,
    StrictSchema,
    always,
)


@always()
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
    request_id = fields.String(allow_none=True)
    input = fields.Dict(allow_none=True)
    facts = fields.Dict()
    decision = fields.Nested(DecisionSchema)


@always()
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


@always()
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
    overrides = fields.List(
        fields.Dict(), metadata={"description": "Reviewers' overrides of this decision (POST …/overrides)"}
    )


@always()
class TimelineSchema(Schema):
    items = fields.List(fields.Nested(TimelineItemSchema))
    next_before = fields.Integer(
        allow_none=True, metadata={"description": "Pass as ?before= for older entries"}
    )


class PageQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    before = fields.Integer(validate=validate.Range(min=0))


@always()
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


@always()
class QuestionsSchema(Schema):
    lead_id = fields.String()
    stage = fields.String()
    decision_id = fields.String()
    questions = fields.List(fields.Nested(QuestionSchema))


@always("email")  # a ruleset may name an owner without an email
class OwnerSchema(Schema):
    name = fields.String()
    email = fields.String()


@always()
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


@always()
class RulesetListSchema(Schema):
    rulesets = fields.List(fields.Nested(RulesetVersionSchema))


@always()
class RulesetDetailSchema(Schema):
    name = fields.String()
    active_version = fields.Integer(allow_none=True)
    shadow_version = fields.Integer(allow_none=True)
    versions = fields.List(fields.Nested(RulesetVersionSchema))
    source = fields.String(
        allow_none=True, metadata={"description": "Source of the active version (null with candidates only)"}
    )


@always()
class ProblemSchema(Schema):
    file = fields.String()
    line = fields.Integer()
    rule = fields.String(allow_none=True)
    message = fields.String()


@always("kept")
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


@always()
class ReloadListSchema(Schema):
    reloads = fields.List(fields.Nested(ReloadSchema))


@always("rulesets", "ruleset_problems", "database")
class HealthSchema(Schema):
    status = fields.String()
    rulesets = fields.Dict()
    ruleset_problems = fields.List(fields.Dict())
    database = fields.String()

"""The contract of the reviewers' questions: why not (a route, stage or quadrant) and overrides.

Same conventions as api/schemas.py, whose shared pieces these build on.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .schemas import RulesetIdentitySchema, StrictSchema

TARGETS = ("route", "stage", "quadrant")


class WhyNotQuerySchema(StrictSchema):
    """Exactly one of them (checked by the view, after the key: a document cannot say "one of")."""

    route = fields.String(validate=validate.Length(1, 100), metadata={"example": "sales_handoff"})
    stage = fields.String(validate=validate.Length(1, 100))
    quadrant = fields.String(validate=validate.Length(1, 100))


class WhyNotSchema(Schema):
    lead_id = fields.String()
    decision_id = fields.String()
    evaluated_at = fields.String()
    ruleset = fields.Nested(RulesetIdentitySchema)
    target = fields.Dict(metadata={"description": "{kind, value}: what was asked"})
    reached = fields.Boolean(metadata={"description": "true when the decision is already there"})
    decided = fields.Dict(metadata={"description": "route, stage, quadrant and scores of the decision"})
    rules = fields.List(
        fields.Dict(),
        metadata={
            "description": "Every rule that would have led there, nearest miss first: the conditions that "
            "held and the first that failed (value against threshold)"
        },
    )
    default = fields.String(allow_none=True)
    thresholds = fields.Dict(
        metadata={"description": "score -> each threshold that matters, with the distance"}
    )
    changes = fields.List(
        fields.Dict(),
        metadata={"description": "Answers or events that reach the target, each checked by deciding again"},
    )
    changes_text = fields.List(fields.String())
    erased_fields = fields.List(fields.String())
    text = fields.String(metadata={"description": "The same answer in plain words"})


class OverrideRequestSchema(StrictSchema):
    route = fields.String(
        validate=validate.Length(1, 100),
        metadata={
            "example": "sales_handoff",
            "description": "The route it should have had (route or stage, or both)",
        },
    )
    stage = fields.String(validate=validate.Length(1, 100))
    reason = fields.String(required=True, validate=validate.Length(1, 2000))


class OverrideSchema(Schema):
    override_id = fields.String()
    seq = fields.Integer()
    decision_id = fields.String()
    lead_id = fields.String()
    at = fields.String()
    reviewer = fields.String(allow_none=True)
    decided_route = fields.String()
    decided_stage = fields.String()
    expected_route = fields.String(allow_none=True)
    expected_stage = fields.String(allow_none=True)
    reason = fields.String()
    rules = fields.List(fields.String(), metadata={"description": "The rules that fired in the decision"})

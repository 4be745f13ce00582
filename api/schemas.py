"""The decision contract: the bodies and replies of POST /v1/decisions, /batch and /preview, and the
one error shape, as marshmallow schemas; the OpenAPI document comes from them. The reads (records,
leads, rulesets, reloads, health) are in api/read_schemas.py, insight and feedback beside them.

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


def always(*optional: str):
    """A reply schema whose fields are all always present (required in the document), but `optional`.

    Dumping never checks `required`; the document does, and tests/contract.py checks every reply the
    test suite gets against it, so a field marked here that a reply leaves out fails a test.
    """

    def mark(schema: type[Schema]) -> type[Schema]:
        for name, field in schema._declared_fields.items():
            field.required = name not in optional
        return schema

    return mark


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

    def handle_error(self, error, data, **kwargs):
        """An unknown field (a body field or query parameter: a typo, most often) names the known ones."""
        unknown = self.error_messages.get("unknown", "Unknown field.")
        known = ", ".join(sorted(f.data_key or name for name, f in self.load_fields.items()))
        if isinstance(error.messages, dict):
            for name, messages in error.messages.items():
                if messages == [unknown]:
                    error.messages[name] = [f"Unknown field; the known ones: {known}."]


class EventSchema(StrictSchema):
    type = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_]{0,63}$", error="must be an event type id (lower case, digits, _)"
        ),
        metadata={
            "description": "A standard event type, or one the deciding ruleset declares under `events` "
            "(the engine refuses others, listing the known ones).",
            "example": EVENT_TYPES[0],
        },
    )
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


@always()
class RulesetIdentitySchema(Schema):
    name = fields.String()
    version = fields.Integer()
    digest = fields.String(metadata={"description": "sha256 of the normalised ruleset source"})


@always()
class NextStepSchema(Schema):
    action = fields.String()
    text = fields.String()


@always()
class RouteSchema(Schema):
    id = fields.String()
    destination = fields.String(validate=validate.OneOf(DESTINATIONS))
    team = fields.String(allow_none=True)
    track = fields.String(allow_none=True)
    sla_minutes = fields.Integer(allow_none=True)
    due_at = fields.String(
        allow_none=True,
        metadata={"description": "When the hand-off must be answered; kept while the route stays the same"},
    )
    handed_off_at = fields.String(
        allow_none=True, metadata={"description": "When the lead was first handed off on this route"}
    )
    next_step = fields.Nested(NextStepSchema)


@always("item", "amount", "free_text")
class QuestionSchema(Schema):
    id = fields.String()
    text = fields.String()
    answers = fields.List(fields.String())
    item = fields.String()
    amount = fields.Boolean()
    free_text = fields.Boolean()


@always()
class ReasonSchema(Schema):
    rule = fields.String(metadata={"description": "Rule id; leadgate's own steps start with @"})
    description = fields.String()
    effects = fields.List(
        fields.Dict(), metadata={"description": "points, stage, funnel, route, … with applied"}
    )


@always()
class AssignmentSchema(Schema):
    team = fields.String()
    owner = fields.String(allow_none=True, metadata={"description": "null: the team's queue takes it"})
    name = fields.String(allow_none=True)
    basis = fields.String(validate=validate.OneOf(["lead_owner", "domain_owner", "round_robin", "none"]))
    reason = fields.String()
    hours = fields.Dict(
        metadata={
            "description": "When the team keeps its own business hours (teams.yaml): {team, timezone, "
            "ruleset_due_at}; route.due_at is then counted in the team's hours"
        }
    )


@always()
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


@always()
class PublicRouteSchema(Schema):
    destination = fields.String()
    due_at = fields.String(allow_none=True)
    next_step = fields.Nested(NextStepSchema)


@always()
class PublicDecisionSchema(Schema):
    """What a form key (a publishable key in a web page) gets: where the lead goes and what to ask next."""

    decision_id = fields.String()
    lead_id = fields.String(metadata={"description": "The id leadgate chose for a lead a form started"})
    lead_token = fields.String(metadata={"description": "Send it back to continue this lead"})
    lead_token_expires_at = fields.String(metadata={"description": "When lead_token expires"})
    route = fields.Nested(PublicRouteSchema)
    next_questions = fields.List(fields.Nested(QuestionSchema))
    evaluated_at = fields.String()


# POST /v1/decisions answers a server-side key with the whole decision and a form key with its public part.
DECISION_REPLY = {
    "oneOf": [{"$ref": "#/components/schemas/Decision"}, {"$ref": "#/components/schemas/PublicDecision"}]
}


@always()
class BatchResponseSchema(Schema):
    decisions = fields.List(fields.Nested(DecisionSchema))


# Headers, declared in the document like the bodies.
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "A retry with the same key and body returns the first decision and records nothing; "
    "the same key with another body is a 409 idempotency_conflict.",
}
DECISION_HEADERS = {
    "Location": {
        "description": "The audit record of the decision (GET /v1/decisions/{decision_id})",
        "required": True,
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "Present (true) when an Idempotency-Key retry returned the first decision",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "string"},
    }
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}}},
    503: RETRY_AFTER,
    429: RETRY_AFTER,
}


@always()
class ErrorSchema(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "Stable error code (see the README)"})
    message = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))

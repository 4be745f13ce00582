"""The feedback loop's contract: outcomes from sales, the SLA of hand-offs, and the reports.

Same conventions as api/schemas.py (the decision contract), whose shared pieces these build on.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from audit import outcomes
from engine import FactsError
from engine.facts import format_time, parse_time
from engine.vocabulary import OUTCOME_TYPES
from service.decide import now

from .schemas import DecisionSchema, StrictSchema, always


class OutcomeRequestSchema(StrictSchema):
    type = fields.String(
        required=True, validate=validate.OneOf(OUTCOME_TYPES), metadata={"example": "accepted"}
    )
    at = fields.String(metadata={"format": "date-time", "description": "When it happened (default: now)"})
    reason = fields.String(
        allow_none=True,
        metadata={"description": "rejected and lost: one of the ruleset's `outcomes` reasons"},
    )
    amount = fields.Float(
        allow_none=True, allow_nan=False, metadata={"description": "won: the deal's amount"}
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


@always()
class OutcomeSchema(Schema):
    outcome_id = fields.String()
    seq = fields.Integer(metadata={"description": "Its place in the audit's hash chain"})
    lead_id = fields.String()
    type = fields.String()
    at = fields.String()
    reason = fields.String(allow_none=True)
    amount = fields.Float(allow_none=True)
    note = fields.String(allow_none=True)
    reported_by = fields.String(allow_none=True)
    recorded_at = fields.String()
    source = fields.String()


@always()
class OutcomeReplySchema(Schema):
    outcome = fields.Nested(OutcomeSchema)
    decision = fields.Nested(DecisionSchema, metadata={"description": "The lead decided again with it"})


@always()
class OutcomeListSchema(Schema):
    lead_id = fields.String()
    outcomes = fields.List(fields.Nested(OutcomeSchema))


class Time(fields.String):
    """An ISO 8601 time, read by the one time parser and passed on in UTC (2026-11-23T10:00:00Z)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return format_time(parse_time(text, attr or "time"))
        except FactsError as exc:
            raise ValidationError(
                "must be an ISO 8601 time in the years 1 to 9999 UTC, e.g. 2026-11-23T10:00:00Z"
            ) from exc


# The overdue list in a reply: the most overdue first, `limit` of them (`overdue_total` counts all;
# `leadgate sla --escalate` acts on all of them, however many).
OVERDUE_LIMIT, OVERDUE_MOST = 100, 1000


class SlaQuerySchema(StrictSchema):
    at = Time(
        metadata={"format": "date-time", "description": "Overdue at this time (default: now)"},
    )
    team = fields.String()
    since = Time(
        metadata={
            "format": "date-time",
            "description": f"Team statistics of the hand-offs made at or after this time (default: "
            f"{outcomes.WINDOW_DAYS} days before `until`)",
        }
    )
    until = Time(
        metadata={
            "format": "date-time",
            "description": "…and at or before this time (default: `at`). Not before `since`.",
        }
    )
    limit = fields.Integer(
        load_default=OVERDUE_LIMIT,
        validate=validate.Range(1, OVERDUE_MOST),
        metadata={
            "description": f"Overdue hand-offs listed, the most overdue first (default {OVERDUE_LIMIT}, "
            f"at most {OVERDUE_MOST}); `overdue_total` counts them all"
        },
    )

    @validates_schema
    def _window(self, data, **kwargs):
        problem = outcomes.window_problem(data.get("at") or now(), data.get("since"), data.get("until"))
        if problem:
            raise ValidationError(problem[1], problem[0])


@always()
class OverdueSchema(Schema):
    lead_id = fields.String()
    route = fields.String()
    team = fields.String(allow_none=True)
    at = fields.String()
    due_at = fields.String()
    minutes_overdue = fields.Float()
    decision_id = fields.String()


@always()
class TeamSlaSchema(Schema):
    handoffs = fields.Integer()
    acted = fields.Integer()
    acted_in_time = fields.Integer()
    acted_late = fields.Integer()
    open = fields.Integer()
    overdue = fields.Integer()
    median_minutes_to_first_action = fields.Float(allow_none=True)


@always()
class SlaSchema(Schema):
    at = fields.String()
    since = fields.String(metadata={"description": "The team statistics' window: from this time…"})
    until = fields.String(metadata={"description": "…to this one, both included"})
    overdue = fields.List(
        fields.Nested(OverdueSchema),
        metadata={
            "description": "Open hand-offs past due and unanswered, however old, the most overdue first"
        },
    )
    overdue_total = fields.Integer(
        metadata={"description": "How many are overdue in all (the list holds `limit`)"}
    )
    teams = fields.Dict(keys=fields.String(), values=fields.Nested(TeamSlaSchema))


class ReportQuerySchema(StrictSchema):
    by = fields.String(
        validate=validate.OneOf(
            ["fit_band", "engagement_band", "route", "channel", "ruleset_version", "quadrant"]
        ),
        metadata={"description": "conversion only: the dimension (default fit_band)"},
    )
    ruleset = fields.String(metadata={"description": "Only leads decided by this ruleset"})
    since = Time(metadata={"format": "date-time"})
    until = Time(metadata={"format": "date-time"})


@always()
class ReportSchema(Schema):
    report = fields.String()
    leads = fields.Integer(metadata={"description": "Leads the report looked at"})
    data = fields.Dict(
        metadata={"description": "The report (its shape is documented per report in the README)"}
    )

"""POST /v1/decisions (and /batch, /preview), GET /v1/decisions/{id}: validate → evaluate → record → reply."""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, g, jsonify, request

from engine import UnknownRuleset
from service.decide import decide, decide_batch
from service.forms import LeadTokenRefused, LeadTokens, public_reply
from service.idempotency import once

from . import read_schemas, schemas
from .auth import requires
from .errors import ApiError
from .logs import decided, request_id
from .parsing import Blueprint
from .state import registry, trail

bp = Blueprint(
    "decisions", __name__, url_prefix="/v1", description="Decisions for forms, chatbots and imports"
)

ERRORS = (400, 401, 403, 409, 413, 415, 422, 503)


def ruleset_for(body: dict):
    pin = body.get("ruleset") or {}
    return registry().get(
        pin.get("name") or current_app.config["LEADGATE_DEFAULT_RULESET"], pin.get("version")
    )


def shadow_for(ruleset):
    """The shadow candidate of a live decision's ruleset (pinned candidates are not shadowed)."""
    reg = registry()
    return reg.shadow(ruleset.name) if reg.active_version(ruleset.name) == ruleset.version else None


REPLAYED = {"Idempotent-Replayed": "true"}


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters.")
    return key


def _documented(*statuses):
    """Declare an operation's error replies (with their headers), any other error in the one shape, and the key."""

    def decorate(view):
        for status in statuses:
            view = bp.alt_response(
                status,
                schema=schemas.ErrorSchema,
                description="Error",
                headers=schemas.ERROR_HEADERS.get(status),
            )(view)
        view = bp.alt_response("default", schema=schemas.ErrorSchema, description="Any other error")(view)
        return bp.doc(security=[{"bearerAuth": []}])(view)

    return decorate


def _server_side(body: dict) -> None:
    """A secret key names its lead (only a form key may leave lead_id out); lead tokens are for form keys."""
    body.pop("lead_token", None)
    if "lead_id" not in body:
        raise ApiError(
            422,
            "invalid_request",
            "The request body is not valid.",
            {"lead_id": ["Missing data for required field."]},
        )


def _skew() -> int:
    return current_app.config["LEADGATE_CLOCK_SKEW"]


@bp.post("/decisions")
@bp.served_directly  # a decision's view returns its Response: the wrappers would only pass it on
@bp.arguments(schemas.DecisionRequestSchema())
@bp.response(201, schemas.DECISION_REPLY, headers=schemas.DECISION_HEADERS)
@bp.doc(parameters=[schemas.IDEMPOTENCY_KEY])
@_documented(*ERRORS, 429)
@requires("decide", form=True)
def post_decision(body):
    """Decide for a lead and record it

    The facts are merged into what is stored for the lead (profile and answers replace, events add,
    an event id counts once); the decision is recorded before it is returned. With an
    Idempotency-Key header, a repeated request returns the first decision without recording again.

    A form key (publishable, in a web page) sends no lead_id to start a lead, then the lead_token of
    the reply to continue it; it gets only the public part of the decision.
    """
    if g.key.public:
        return _form_decision(body)
    _server_side(body)
    return _created(*_decide(body))


def _decide(body: dict) -> tuple[dict, bool]:
    """Decide and record for the key that called, server-side or form: (reply, replayed)."""
    ruleset = ruleset_for(body)
    return decide(
        ruleset,
        trail(),
        body,
        client=g.key.id,
        idempotency_key=idempotency_key(),
        shadow=shadow_for(ruleset),
        teams=registry().deployment.teams,
        clock_skew=_skew(),
        request_id=request_id(),
    )


def _created(reply: dict, replayed: bool = False):
    """The 201 reply, serialised once: what was recorded is what is sent (a form key's, its public part).

    A reply that carries the JSON text it was stored as (`body`) is sent as that text, not dumped again.
    """
    decided([reply["decision_id"]])
    stored = getattr(reply, "body", None)
    response = current_app.response_class(stored, mimetype="application/json") if stored else jsonify(reply)
    response.status_code = 201
    # url_for's answer, without its routing round trip (a few % of a decision's CPU)
    response.headers["Location"] = (
        f"{request.script_root}/v1/decisions/{quote(reply['decision_id'], safe='')}"
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _form_decision(body):
    """A form key's decision: a new lead, or one its lead token proves it started; the public reply."""
    if "ruleset" in body:
        raise ApiError(
            422,
            "invalid_request",
            "A form key cannot pin a ruleset.",
            {"ruleset": ["not allowed with a form key"]},
        )
    if request.headers.get("Idempotency-Key") is not None:
        # Every visitor of the page holds the same key: a replay would hand one visitor another's lead.
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Form keys cannot use Idempotency-Key; the lead token continues a lead.",
        )
    tokens = LeadTokens(trail().secrets.get("lead_token"), current_app.config["LEADGATE_LEAD_TOKEN_TTL"])
    try:
        lead_id = tokens.lead_for(body, g.key.id)
    except LeadTokenRefused as exc:
        raise ApiError(403, exc.code, str(exc), {exc.field: [str(exc)]}) from None
    request_body = {k: v for k, v in body.items() if k != "lead_token"} | {"lead_id": lead_id}
    reply, _ = _decide(request_body)  # no Idempotency-Key: refused above for form keys
    return _created(public_reply(reply, tokens.issue(lead_id, g.key.id)))


@bp.post("/decisions/batch")
@bp.arguments(schemas.BatchRequestSchema())
@bp.response(201, schemas.BatchResponseSchema)
@_documented(*ERRORS)
@requires("decide")
def post_batch(body):
    """Decide for several leads at once (imports, CRM sync): all recorded in one commit, or none

    With an Idempotency-Key header, a repeated batch returns the first reply without recording again.
    """
    items = body["items"]
    limit = current_app.config["LEADGATE_BATCH_LIMIT"]
    if len(items) > limit:
        raise ApiError(413, "batch_too_large", f"At most {limit} leads per batch; this one has {len(items)}.")
    rulesets = []
    for i, item in enumerate(items):
        try:
            rulesets.append(ruleset_for(item))
        except UnknownRuleset as exc:
            raise ApiError(422, exc.code, str(exc), {f"items[{i}].ruleset": [str(exc)]}) from exc
    shadows, teams = [shadow_for(r) for r in rulesets], registry().deployment.teams

    def run():
        decisions = decide_batch(
            rulesets,
            trail(),
            items,
            client=g.key.id,
            shadows=shadows,
            teams=teams,
            clock_skew=_skew(),
            request_id=request_id(),
        )
        return {"decisions": decisions}, 201

    # Wrong facts are a FactsError naming the item (`items[1].profile.employees`): the one handler renders it.
    reply, status, replayed = once(trail(), g.key.id, idempotency_key(), "decisions/batch", body, run)
    return reply, status, REPLAYED if replayed else {}


@bp.post("/preview")
@bp.arguments(schemas.DecisionRequestSchema())
@bp.response(200, schemas.DecisionSchema)
@_documented(*ERRORS)
@requires("decide")
def post_preview(body):
    """Evaluate without changing the lead

    Recorded as a preview (never as a routing decision): the lead's facts and stage stay as they are.
    """
    _server_side(body)
    reply, replayed = decide(
        ruleset_for(body),
        trail(),
        body,
        kind="preview",
        client=g.key.id,
        idempotency_key=idempotency_key(),
        clock_skew=_skew(),
        request_id=request_id(),
    )
    return reply, 200, REPLAYED if replayed else {}


@bp.get("/decisions/<decision_id>")
@bp.response(200, read_schemas.DecisionRecordSchema)
@_documented(401, 403, 404)
@requires("review")
def get_decision(decision_id):
    """The full audit record of a decision: input, facts evaluated, decision and reasons"""
    return trail().decision(decision_id)

"""Every error the API returns, in one JSON shape, mapped in one place.

    {"status": 422, "code": "invalid_facts", "message": "…", "errors": {"profile.employees": ["…"]}}

`code` is stable (scripts may branch on it; the README lists them); `errors` names fields by dotted
path, or query parameters and headers by name, and is always present ({} when no field is to blame). No client input produces a traceback: anything unexpected is a 500 `internal_error`, logged.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from audit import AuditError, NotFound, ReplayImpossible, StorageUnavailable
from engine import EngineError, EvaluationError, FactsError, RulesetError, UnknownRuleset
from service.decide import IdempotencyConflict, TooEarly

# status -> (code, message) for errors raised by Flask, werkzeug and webargs
HTTP_CODES = {
    400: ("malformed_request", "The request could not be read."),
    401: ("unauthorized", "A valid API key is required: Authorization: Bearer <key>."),
    403: ("forbidden", "This API key's scope does not allow this."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    408: ("request_timeout", "The request was not sent in time."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The request line (URL) is too long."),
    415: ("unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."),
    422: ("invalid_request", "The request body is not valid."),
    429: ("rate_limited", "Too many requests; retry later."),
    431: ("headers_too_large", "The request headers are too large."),
}
RETRY_AFTER_SECONDS = 2
# where webargs found a wrong argument -> how a message names it
LOCATIONS = {"json": "request body field", "query": "query parameter", "headers": "header"}


class ApiError(Exception):
    """An error a view raises on purpose."""

    def __init__(self, status: int, code: str, message: str, errors: dict | None = None, headers=None):
        self.status, self.code, self.message, self.errors, self.headers = (
            status,
            code,
            message,
            errors,
            headers,
        )
        super().__init__(message)


def error_response(status: int, code: str, message: str, errors: dict | None = None, headers=None):
    body = {"status": status, "code": code, "message": message, "errors": errors or {}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow nested messages as {"events[0].type": ["…"]}."""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "body": messages}
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":  # marshmallow's "the value itself is wrong" (e.g. not an object)
                path = prefix or "body"
            elif prefix in ("", "json", "query", "headers"):
                path = str(key)
            else:
                path = f"{prefix}.{key}"
            out.update(flatten(value, path))
    else:
        out[prefix or "body"] = [str(messages)]
    return out


def _http(exc: HTTPException):
    status = exc.code or 500
    code, message = HTTP_CODES.get(status, ("http_error", exc.description or "HTTP error"))
    errors = None
    data = getattr(exc, "data", None) or {}
    if data.get("messages"):
        messages = data["messages"]
        # webargs keys messages by location ("json", "query"): the field path is what matters.
        location = None
        if isinstance(messages, dict) and len(messages) == 1 and next(iter(messages)) in LOCATIONS:
            location, messages = next(iter(messages.items()))
        errors = flatten(messages)
        if location in ("query", "headers"):
            names = ", ".join(repr(name) for name in errors)
            what = LOCATIONS[location] + ("s" if len(errors) > 1 else "")
            message = f"The {what} {names} {'are' if len(errors) > 1 else 'is'} not valid."
    elif status == 413:
        message = f"The request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes."
        # The rest of the body is never read: the connection cannot carry another request.
        return error_response(status, code, message, None, {"Connection": "close"})
    elif status == 400 and exc.description:
        message = exc.description
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:
        headers = {"Allow": ", ".join(allowed)}
    return error_response(status, code, message, errors, headers)


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)

    app.register_error_handler(HTTPException, _http)

    @app.errorhandler(FactsError)
    def _facts(exc: FactsError):
        return error_response(
            422, exc.code, "The lead facts are not valid.", {k or "body": v for k, v in exc.errors.items()}
        )

    @app.errorhandler(UnknownRuleset)
    def _unknown_ruleset(exc: UnknownRuleset):
        return error_response(422, exc.code, str(exc), {"ruleset": [str(exc)]})

    @app.errorhandler(RulesetError)
    def _ruleset(exc: RulesetError):
        return error_response(
            422, exc.code, "The ruleset is not valid.", {"ruleset": [str(p) for p in exc.problems]}
        )

    @app.errorhandler(EvaluationError)
    def _evaluation(exc: EvaluationError):
        app.logger.exception("evaluation failed", exc_info=exc)
        return error_response(500, exc.code, "The decision could not be evaluated; nothing was recorded.")

    @app.errorhandler(EngineError)
    def _engine(exc: EngineError):
        return error_response(422, exc.code, str(exc))

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        return error_response(404, exc.code, str(exc))

    @app.errorhandler(StorageUnavailable)
    def _storage(exc: StorageUnavailable):
        app.logger.error("audit write failed: %s", exc)
        return error_response(
            503,
            exc.code,
            f"The audit trail cannot be written right now, so no decision was made. Retry shortly. ({exc})",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.errorhandler(ReplayImpossible)
    def _replay(exc: ReplayImpossible):
        return error_response(409, exc.code, str(exc))

    @app.errorhandler(AuditError)
    def _audit(exc: AuditError):
        return error_response(500, exc.code, str(exc))

    @app.errorhandler(IdempotencyConflict)
    def _idempotency(exc: IdempotencyConflict):
        return error_response(409, "idempotency_conflict", str(exc), {"Idempotency-Key": [str(exc)]})

    @app.errorhandler(TooEarly)
    def _too_early(exc: TooEarly):
        return error_response(409, "evaluation_time_too_early", str(exc), {"at": [str(exc)]})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unexpected error", exc_info=exc)
        return error_response(
            500, "internal_error", "Something went wrong on our side; nothing was recorded."
        )

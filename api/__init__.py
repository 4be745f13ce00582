"""leadgate's HTTP API: a Flask application factory over the engine and the audit trail.

The API holds no rules: each view validates its body against a marshmallow schema, hands it to
`service` (evaluate + record) and replies. Errors are rendered in one place (`errors`).
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from engine import Registry
from service.config import Config, load_config

API_VERSION = "1.0"


class _Flask(Flask):
    """Flask, asking once per hook or view whether it is a coroutine function: Flask asks for every
    call, about twenty times a request, and `inspect.iscoroutinefunction` is not free."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync: dict = {}

    def ensure_sync(self, func):
        found = self._sync.get(func)
        if found is None:
            found = self._sync[func] = super().ensure_sync(func)
        return found


def create_app(config: Config | None = None, **overrides) -> Flask:
    config = config or load_config(**overrides)
    app = _Flask(__name__)
    app.config.update(config.to_flask())
    app.config.update(
        MAX_CONTENT_LENGTH=config.MAX_BODY,
        API_TITLE="leadgate",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "info": {"description": "Lead-qualification decisions, each recorded in an audit trail."},
        },
    )
    app.json.sort_keys = False
    app.extensions["leadgate.config"] = config
    app.extensions["leadgate.registry"] = Registry()

    from . import (
        admin,
        cors,
        decisions,
        docs,
        errors,
        health,
        leads,
        logs,
        outcomes,
        parsing,
        reports,
        review,
        rulesets,
        schemas,
        state,
    )
    from .metrics import bp as metrics_bp
    from .overrides import bp as overrides_bp  # not `overrides`: the name of this function's settings

    class LeadgateApi(Api):
        ERROR_SCHEMA = schemas.ErrorSchema  # one error shape, in the document as in the replies

    api = LeadgateApi(app)
    app.extensions["leadgate.api"] = api
    # Named by POST /v1/decisions' oneOf reply (the whole decision, or a form key's public part).
    api.spec.components.schema("PublicDecision", schema=schemas.PublicDecisionSchema)
    for blueprint in (
        health.bp,
        decisions.bp,
        leads.bp,
        outcomes.bp,
        overrides_bp,
        reports.bp,
        rulesets.bp,
        admin.bp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.bp)
    app.register_blueprint(metrics_bp)  # GET /metrics, for admin keys (not in the document: not JSON)
    logs.declare(api.spec)
    logs.init_app(app)  # first: every request gets its id, its line and its metrics, however it ends
    app.before_request(parsing.refuse_nul_in_url)
    errors.init_app(app)  # after Api(): its own HTTP error handler is replaced by ours
    state.init_app(app)
    cors.init_app(app)
    review.init_app(app)
    return app

"""The review pages: server-rendered HTML at /review for sales and marketing ops, behind the review scope.

Sign in with an API key of review (or admin) scope. Every page reads the audit trail through the
library functions the JSON API and the CLI use (audit.queries, audit.why, audit.replay, audit.reports,
engine.cases…) and draws its charts as SVG on the server: no JavaScript, nothing from a CDN.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("review", __name__, url_prefix="/review")


def init_app(app: Flask) -> None:
    """Sessions, CSRF and the pages."""
    # The view modules add their routes to `bp` when imported; it must happen before registering.
    from . import access, coverage, decisions, deliveries, errors, format, funnel, leads, rulesets  # noqa: F401

    access.init_app(app)
    app.register_blueprint(bp)

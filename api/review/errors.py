"""Errors on the review pages are pages too: the JSON API's handlers answer everything else.

Blueprint handlers come before the app's for errors raised while serving a review page, including
the CSRF check and the sign-in guard.
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from audit import NotFound, StorageUnavailable

from ..errors import RETRY_AFTER_SECONDS, ApiError
from . import bp


def _page(status: int, title: str, message: str, headers=None):
    return (
        render_template("review/error.html", status=status, title=title, message=message),
        status,
        headers or {},
    )


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError):
    return _page(
        400,
        "This form could not be accepted",
        "It has expired or did not come from these pages. Go back, reload the page and send it again.",
    )


@bp.errorhandler(ApiError)
def refused(exc: ApiError):  # e.g. 429 for too many sign-in attempts, with its Retry-After
    return _page(
        exc.status, "Too many attempts" if exc.status == 429 else "Refused", exc.message, exc.headers
    )


@bp.errorhandler(NotFound)
def not_found(exc: NotFound):
    return _page(404, "Not found", str(exc))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return _page(exc.code or 500, exc.name, exc.description or "")


@bp.errorhandler(StorageUnavailable)
def storage(exc: StorageUnavailable):
    current_app.logger.error("review page without its database: %s", exc)
    return _page(
        503,
        "The audit database cannot be read right now",
        "Try again in a moment.",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    current_app.logger.exception("review page failed", exc_info=exc)
    return _page(500, "Something went wrong on our side", "The error was logged.")

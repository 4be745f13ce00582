"""API keys on requests: `Authorization: Bearer <key>`, checked before anything else is read.

Views say which scope they need with `requires`; the check itself runs as the JSON blueprints' first
before-request hook, so a request without a valid key gets 401 before its body is parsed, validated
or even read (no field errors, no outcome types, no schema hints for strangers). Then, for a form key,
its origin (403 from a page that is not its own) and the rate limits (api/limits.py).
"""

from __future__ import annotations

from flask import current_app, g, request

from audit.keys import authenticate

from . import limits
from .errors import ApiError
from .state import trail


def requires(scope: str, *, form: bool = False):
    """The view needs a key of this scope (admin keys may do everything); `form`: form keys too."""

    def decorate(view):
        view._leadgate_scope = scope
        view._leadgate_form = form
        return view

    return decorate


def check_key() -> None:
    """Before each API request: the key of the view's scope, and nothing read before it is checked."""
    req = request._get_current_object()  # a context lookup, resolved once
    view = current_app.view_functions.get(req.endpoint) if req.endpoint else None
    scope = getattr(view, "_leadgate_scope", None)
    if scope is None or req.method == "OPTIONS":
        return
    header = req.headers.get("Authorization", "")
    kind, _, text = header.partition(" ")
    if kind.lower() != "bearer" or not text.strip():
        raise ApiError(
            401,
            "unauthorized",
            "A valid API key is required: Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = authenticate(trail(), text.strip())
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "This API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if not (key.allows(scope) or (key.public and getattr(view, "_leadgate_form", False))):
        raise ApiError(403, "forbidden", f"This key has scope {key.scope}; this needs {scope}.")
    g.key = key
    if key.public:
        origin = req.headers.get("Origin")
        if origin is None or origin.lower() not in key.origins:
            raise ApiError(
                403,
                "origin_not_allowed",
                "This form key works only from the web pages it was created for (the Origin header).",
            )
        g.cors_origin = origin
    limits.check()

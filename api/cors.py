"""CORS for form keys: a browser page may call the API only from an origin its form key lists.

The origins are stored with each form key in the audit database, so a key created with the CLI works
at once and a revoked one stops at once; flask-cors takes a fixed list of origins when the app starts,
so this small module answers instead. Only the endpoint a form key may call speaks CORS:

- a preflight (OPTIONS with Access-Control-Request-Method) from an origin of an active form key is
  answered 204 with the allowed method and headers; from any other origin, 403 in the error shape;
- the real request is checked against its own key's origins in api/auth.py (403 `origin_not_allowed`)
  and its reply, errors included, names that origin in Access-Control-Allow-Origin.

Secret keys never get CORS headers: a browser on another site cannot read what they return.
"""

from __future__ import annotations

from flask import Flask, g, request

from audit.keys import form_origins

from .errors import ApiError
from .state import trail

FORM_PATHS = {"/v1/decisions"}
PREFLIGHT_MAX_AGE = 600


def init_app(app: Flask) -> None:
    app.before_request(_preflight)
    app.after_request(_allow_origin)


def _preflight():
    if request.method != "OPTIONS" or request.path not in FORM_PATHS:
        return None
    origin = request.headers.get("Origin")
    wanted = request.headers.get("Access-Control-Request-Method")
    if origin is None or wanted is None:
        return None  # not a CORS preflight: Flask's own OPTIONS reply
    if wanted != "POST" or origin.lower() not in form_origins(trail()):
        raise ApiError(
            403, "origin_not_allowed", "No form key may be used from this origin with this method."
        )
    return (
        "",
        204,
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE),
            "Vary": "Origin",
        },
    )


def _allow_origin(response):
    origin = g.get("cors_origin")
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-Id"
        response.vary.add("Origin")
    return response

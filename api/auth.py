"""API keys on requests: `Authorization: Bearer <key>`, checked against the audit database."""

from __future__ import annotations

from functools import wraps

from flask import g, request

from audit.keys import authenticate

from .errors import ApiError
from .state import trail


def requires(scope: str):
    """The view needs a key of this scope (admin keys may do everything)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
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
            if not key.allows(scope):
                raise ApiError(403, "forbidden", f"This key has scope {key.scope}; this needs {scope}.")
            g.key = key
            return view(*args, **kwargs)

        wrapper._leadgate_scope = scope
        return wrapper

    return decorate

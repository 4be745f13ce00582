"""Reading request bodies strictly: JSON only, no NaN or Infinity, bounded nesting and size.

webargs parses bodies for flask-smorest; this parser refuses what Python's json module would accept
but JSON does not (NaN, Infinity) and turns a recursion overflow from deeply nested input into a 400.
"""

from __future__ import annotations

import json

from flask import request
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, is_json_request

from .errors import ApiError

MAX_DEPTH = 32


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def _depth(value, limit: int) -> int:
    stack, deepest = [(value, 1)], 1
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def loads(data: bytes):
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError:
        raise ApiError(
            400, "malformed_json", f"The JSON body is nested more than {MAX_DEPTH} levels deep."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise ApiError(400, "malformed_json", f"The JSON body is nested more than {MAX_DEPTH} levels deep.")
    return value


class StrictParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 422

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return super()._raw_load_json(req)
        return loads(req.get_data(cache=True))


class Blueprint(_Blueprint):
    ARGUMENTS_PARSER = StrictParser()


def require_json() -> None:
    """Before each request: a body must be JSON (415 otherwise)."""
    if (
        request.method in ("POST", "PUT", "PATCH")
        and (request.content_length or request.mimetype)
        and not request.is_json
    ):
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )

"""Reading request bodies strictly: JSON only, no NaN or Infinity, bounded nesting and size.

webargs parses bodies for flask-smorest; this parser refuses what Python's json module would accept
but JSON does not (NaN, Infinity) or no store takes (a lone surrogate escaped as \\ud800, NUL as
\\u0000), and turns a recursion overflow from deeply nested input into a 400. A URL holding NUL
(%00) is refused too, before any route looks it up.
"""

from __future__ import annotations

import functools
import inspect
import json
import re

from flask import request
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge

from engine.values import NUL, SURROGATE, unstorable

from .auth import check_key
from .errors import ApiError

MAX_DEPTH = 32


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def _too_deep(value) -> None:
    """Refuse a body nested more than MAX_DEPTH levels (a 400, as JSON too deep to parse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(
                400, "malformed_json", f"The JSON body is nested more than {MAX_DEPTH} levels deep."
            )
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _unstorable(value) -> None:
    """Refuse text no store takes (engine.values.text_problem), whichever endpoint it is sent to: a
    lone surrogate is no Unicode text (400, malformed); NUL is valid JSON but no lead's data (422,
    naming the fields)."""
    problems = unstorable(value)
    if any(SURROGATE in found for found in problems.values()):
        raise ApiError(400, "malformed_json", f"The body cannot be taken: a string {SURROGATE}.")
    if problems:
        raise ApiError(422, "invalid_request", f"A string {NUL}.", problems)


# A lone surrogate or NUL can only come from an escape (\\uD800, \\u0000): UTF-8 text carries neither.
_ESCAPED = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


def loads(data: bytes):
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError:
        raise ApiError(
            400, "malformed_json", f"The JSON body is nested more than {MAX_DEPTH} levels deep."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None
    # Walked only when the text could be nested that deep, or hold what the walk looks for (_ESCAPED).
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH:
        _too_deep(value)
    if _ESCAPED.search(data):
        _unstorable(value)
    return value


def refuse_nul_in_url() -> None:
    """Before each request of the app: a path holding NUL (%00) names nothing that can exist (404),
    a query parameter holding one is refused (422); PostgreSQL refuses to look either up."""
    if "\x00" in request.path:
        raise ApiError(404, "not_found", "No such path: it holds a NUL character (%00).")
    if b"%00" in request.query_string:
        raise ApiError(422, "invalid_request", "A query parameter holds a NUL character (%00).")


def body(req) -> bytes:
    """The request body, or 413 when it is larger than the limit, also when it was streamed (chunked).

    A chunked body has no Content-Length to refuse up front; werkzeug stops reading at the limit and
    returns what it read, so a longer body would otherwise be parsed cut short (a misleading 400).
    """
    data = req.get_data(cache=True)
    limit = req.max_content_length
    # Without a Content-Length, read one byte past the limit from the server's own stream: is there more?
    if (
        req.content_length is None
        and limit is not None
        and len(data) >= limit
        and req.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge()
    return data


class StrictParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 422
    # A query parameter the endpoint does not know (`?sinse=`, a typo) is refused by name like an unknown
    # body field, not dropped: left out silently, it gave an answer to another question.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return super()._raw_load_json(req)
        return loads(body(req))


class Blueprint(_Blueprint):
    """A blueprint of the JSON API: the key checked first, strict argument parsing, bodies must be JSON."""

    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_request(check_key)  # before anything of the request is read
        self.before_request(require_json)

    def served_directly(self, documented):
        """Serve a view that builds its own Response without flask-smorest's and webargs' wrappers.

        Each of `arguments`, `response`, `alt_response` and `doc` wraps the view in a layer that runs
        on every request (for POST /v1/decisions, fourteen of them, and webargs' own), though for a
        view that returns a Response they only pass it on. Here the view's body is parsed by this
        blueprint's parser with the very schema object `arguments` documented, and the undecorated
        view is called with it; the document is built from `documented` (its `_apidoc` and
        docstring), so it does not change. Put it right under the route decorator.
        """
        (argument,) = documented._apidoc["arguments"]["parameters"]
        schema, location = argument["schema"], argument["in"]
        view = inspect.unwrap(documented)

        @functools.wraps(documented)
        def served(**view_args):
            return view(self.ARGUMENTS_PARSER.parse(schema, request, location=location), **view_args)

        return served


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

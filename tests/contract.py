"""The OpenAPI document is the contract: every reply the tests get is checked against /openapi.json.

An independent validator (openapi-core) checks each reply of the Flask test client against the
document the app serves: status declared for the operation, body schema with its required fields and
nullability, declared reply headers. Replies to requests outside the document (review pages, unknown
paths, a method a path does not have) are not checked here; tests/test_contract.py covers their shape.
"""

from __future__ import annotations

import json
import re

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
from openapi_core.testing import MockRequest, MockResponse

_documents: dict[str, OpenAPI] = {}


class _Request(WerkzeugOpenAPIRequest):
    """The request a reply answered, without its body: the test client has read it already, and a
    reply is checked against its operation, status and headers alone."""

    @property
    def body(self):
        return None


def document(app) -> OpenAPI:
    """The app's OpenAPI document, read by openapi-core (which checks it as a document) once per content."""
    found = app.extensions.get("tests.openapi")
    if found is None:
        spec = app.extensions["leadgate.api"].spec.to_dict()
        key = json.dumps(spec, sort_keys=True)
        if key not in _documents:
            _documents[key] = OpenAPI.from_dict(spec)
        found = app.extensions["tests.openapi"] = _documents[key]
    return found


def _operations(app) -> list[tuple[re.Pattern, str, dict]]:
    """(path pattern, METHOD, operation) of every operation in the app's document."""
    found = app.extensions.get("tests.operations")
    if found is None:
        spec = app.extensions["leadgate.api"].spec.to_dict()
        found = app.extensions["tests.operations"] = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"),
                method.upper(),
                operation,
            )
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if method != "parameters"
        ]
    return found


def problems(app, response) -> list[str]:
    """What in this reply breaks the document ([] when it conforms or is outside the document)."""
    request = response.request
    if not any(p.match(request.path) and m == request.method for p, m, _ in _operations(app)):
        return []  # a review page, the demo form, an unknown path or method: not in the document
    try:
        errors = list(
            document(app).iter_response_errors(_Request(request), WerkzeugOpenAPIResponse(response))
        )
    except (PathNotFound, OperationNotFound, ServerNotFound):
        return []
    out = []
    for error in errors:
        if isinstance(error, PathNotFound | OperationNotFound | ServerNotFound):
            return []
        detail = "; ".join(str(e) for e in getattr(error, "schema_errors", ()) or ()) or repr(
            error.__cause__ or ""
        )
        out.append(f"{request.method} {request.path} -> {response.status_code}: {error} {detail}".strip())
    return out


def readme_replies(text: str):
    """(method, path, status or None, headers, body) of every reply the README shows after a curl."""
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ curl"):
                i += 1
                continue
            command = [lines[i]]
            i += 1
            while i < len(lines) and lines[i][:1].isspace():
                command.append(lines[i])
                i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            if any(line.strip() for line in output):
                yield _reply(" ".join(command), output)


def _reply(command: str, output: list[str]):
    method = re.search(r"-X (\w+)", command)
    url = re.search(r"https?://[^/\s]+(/[^\s'\"]*)", command).group(1)
    status, headers = None, {}
    if output[0].startswith("HTTP/"):
        status = int(output[0].split()[1])
        end = output.index("")
        headers = dict(line.split(": ", 1) for line in output[1:end])
        output = output[end + 1 :]
    return (method.group(1) if method else "GET"), url, status, headers, json.loads("\n".join(output))


def readme_problems(app, method: str, url: str, status: int | None, headers: dict, body) -> list[str]:
    """What in one README reply breaks the document; without a shown status, the operation's 2xx (or an
    error's own status)."""
    path, _, query = url.partition("?")
    if status is None:
        if isinstance(body, dict) and {"status", "code"} <= set(body):
            status = body["status"]
        else:
            operation = next(o for p, m, o in _operations(app) if p.match(path) and m == method)
            status = int(next(s for s in operation["responses"] if s.startswith("2")))
    args = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    request = MockRequest("http://127.0.0.1:8000", method.lower(), path, args=args)
    reply = MockResponse(json.dumps(body).encode(), status_code=status, headers=headers)
    return [
        f"README {method} {url} -> {status}: {e}" for e in document(app).iter_response_errors(request, reply)
    ]

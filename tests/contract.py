"""The OpenAPI document is the contract: every reply the tests get is checked against /openapi.json.

An independent validator (openapi-core) checks each reply against the document the app serves: the
status declared for the operation, the body schema with its required fields and nullability, the
declared reply headers. Three sources of replies are checked: the Flask test client (hooked by the
autouse fixture in tests/conftest.py), the real server of tests/server.py, and the replies the README
shows (tests/test_contract.py). Replies to requests outside the document (review pages, unknown paths,
a method a path does not have) are not checked here; tests/test_contract.py covers their shape.
"""

from __future__ import annotations

import json
import re
import threading

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
from openapi_core.testing import MockRequest, MockResponse

OUTSIDE = (PathNotFound, OperationNotFound, ServerNotFound)
# Breaches found in replies of the real server (tests/server.py); the autouse fixture fails on them.
breaches: list[str] = []
_lock = threading.Lock()  # servers are called from many threads; validate one reply at a time


class Contract:
    """One OpenAPI document, read by openapi-core (which checks it as a document), and its operations."""

    def __init__(self, spec: dict):
        self.document = OpenAPI.from_dict(spec)
        self.operations = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"),
                method.upper(),
                operation,
            )
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if method != "parameters"
        ]

    def operation(self, method: str, path: str) -> dict | None:
        return next((o for p, m, o in self.operations if m == method and p.match(path)), None)

    def check(self, request, response, label: str) -> list[str]:
        with _lock:
            try:
                errors = list(self.document.iter_response_errors(request, response))
            except OUTSIDE:
                return []
        out = []
        for error in errors:
            if isinstance(error, OUTSIDE):
                return []
            detail = "; ".join(str(e) for e in getattr(error, "schema_errors", ()) or ())
            out.append(f"{label}: {error} {detail}".strip())
        return out


_contracts: dict[str, Contract] = {}


def contract_of(spec: dict) -> Contract:
    key = json.dumps(spec, sort_keys=True)
    with _lock:
        if key not in _contracts:
            _contracts[key] = Contract(spec)
        return _contracts[key]


def of_app(app) -> Contract:
    found = app.extensions.get("tests.contract")
    if found is None:
        found = app.extensions["tests.contract"] = contract_of(app.extensions["leadgate.api"].spec.to_dict())
    return found


class _Request(WerkzeugOpenAPIRequest):
    """The request a reply answered, without its body: the test client has read it already, and a
    reply is checked against its operation, status and headers alone."""

    @property
    def body(self):
        return None


def problems(app, response) -> list[str]:
    """What in this test-client reply breaks the app's document ([] when it conforms or is outside it)."""
    request, contract = response.request, of_app(app)
    if contract.operation(request.method, request.path) is None:
        return []  # a review page, the demo form, an unknown path or method: not in the document
    label = f"{request.method} {request.path} -> {response.status_code}"
    return contract.check(_Request(request), WerkzeugOpenAPIResponse(response), label)


def reply_problems(
    contract: Contract, method: str, url: str, status: int | None, headers: dict, body, source: str
) -> list[str]:
    """What in one reply (from a server or a document) breaks the contract; without a status, the
    operation's 2xx (or an error body's own status)."""
    path, _, query = url.partition("?")
    operation = contract.operation(method, path)
    if operation is None:
        return []
    if status is None:
        if isinstance(body, dict) and {"status", "code"} <= set(body):
            status = body["status"]
        else:
            status = int(next(s for s in operation["responses"] if s.startswith("2")))
    args = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    request = MockRequest("http://127.0.0.1:8000", method.lower(), path, args=args)
    content = "application/json" if body is not None else "text/plain"
    response = MockResponse(json.dumps(body).encode() if body is not None else b"", status, headers, content)
    return contract.check(request, response, f"{source} {method} {url} -> {status}")


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

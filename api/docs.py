"""Pages for people: the API reference at /docs (server-rendered from the OpenAPI document, no CDN, no
JS) and the example demo-request form at /demo/form (same origin as the API, so it can post to it)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_file

bp = Blueprint("docs", __name__)


@bp.get("/docs")
def docs():
    spec = current_app.extensions["leadgate.api"].spec.to_dict()
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append({"method": method.upper(), "path": path, **op})
    return render_template(
        "docs.html", spec=spec, operations=operations, schemas=spec["components"]["schemas"]
    )


@bp.get("/demo/form")
def demo_form():
    """The example form, with the review pages' security headers: it handles a key, so no other
    script, no framing, no other site to post to; its own inline script and style are allowed by hash."""
    form = Path(current_app.config["LEADGATE_EXAMPLES"]) / "form.html"
    if not form.is_file():
        abort(404)
    html = form.read_text(encoding="utf-8")
    response = send_file(form.resolve(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {_hashes(html, 'script')}; style-src {_hashes(html, 'style')}; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _hashes(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
    digests = [base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks]
    return " ".join(f"'sha256-{d}'" for d in digests) or "'none'"

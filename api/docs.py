"""Pages for people: the API reference at /docs (server-rendered from the OpenAPI document, no CDN, no
JS) and the example demo-request form at /demo/form (same origin as the API, so it can post to it)."""

from __future__ import annotations

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
    form = Path(current_app.config["LEADGATE_EXAMPLES"]) / "form.html"
    if not form.is_file():
        abort(404)
    return send_file(form.resolve(), mimetype="text/html")

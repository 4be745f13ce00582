"""A readable API reference at /docs, rendered on the server from the OpenAPI document (no CDN, no JS)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

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

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

"""Failed webhook deliveries (dead letters and those still being retried), and a retry button for admins."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, url_for

from audit import deliveries
from audit.deliveries import DeliveryError

from ..state import trail
from . import bp

RETRY_SCOPE = "admin"  # deliveries are an operator's business (see the product brief's table of callers)


@bp.get("/deliveries")
def failed_deliveries():
    rows = deliveries.failing(trail())
    for row in rows:
        row["attempt_log"] = deliveries.attempts(trail(), row["id"])
    return render_template("review/deliveries.html", rows=rows, may_retry=g.review_key.allows(RETRY_SCOPE))


@bp.post("/deliveries/<delivery_id>/retry")
def retry_delivery(delivery_id):
    if not g.review_key.allows(RETRY_SCOPE):
        abort(403, description="Retrying a delivery needs an admin key.")
    try:
        deliveries.retry(trail(), delivery_id)
    except DeliveryError as exc:
        abort(409, description=str(exc))
    return redirect(url_for("review.failed_deliveries", retried=delivery_id))

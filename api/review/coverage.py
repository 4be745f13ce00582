"""Production coverage (as `leadgate rulesets coverage`): each rule's firings over a window of recorded
decisions, the rules that never fired or fired for every lead, and the conditions never true."""

from __future__ import annotations

from flask import render_template, request

from engine import EngineError
from service import coverage as coverage_service

from ..state import registry, trail
from . import bp
from .params import Params

WINDOWS = ("7d", "30d", "90d", "365d")


@bp.get("/coverage")
def coverage():
    params = Params(request.args)
    window = params.text("since") or "30d"
    ruleset = params.text("ruleset")
    try:
        since = coverage_service.since_time(window)
    except EngineError:
        params.problems.append(f"“{window}” is not a window (30d, 12h, 2w) or a time.")
        window, since = "30d", coverage_service.since_time("30d")
    report = coverage_service.coverage(registry(), trail(), since, None, ruleset)
    return render_template(
        "review/coverage.html",
        report=report,
        window=window,
        windows=WINDOWS,
        ruleset=ruleset or "",
        names=registry().names(),
        problems=params.problems,
    )

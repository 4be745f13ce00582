"""Rulesets: every version served (as GET /v1/rulesets), whether its cases pass (as `leadgate rulesets
test`), how its shadow disagrees with the live decisions (as `leadgate rulesets shadow-report`), and
the source of any version the audit trail keeps, by digest."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template

from audit import NotFound, deployments
from engine.cases import cases_path, run_cases
from engine.files import CANDIDATES, expected_name

from ..rulesets import describe, role_of
from ..state import registry, trail
from . import bp


def _cases(compiled, role: str) -> tuple:
    """Run the version's cases file, found where `leadgate rulesets test` finds it: (report, its name
    within the rulesets directory, so that the page does not show the server's paths)."""
    candidate = role != "active"
    relative = cases_path(
        Path(CANDIDATES if candidate else ".") / expected_name(compiled.name, compiled.version, candidate)
    )
    directory = Path(current_app.config["LEADGATE_RULESETS"])
    return run_cases(compiled, directory / relative), relative.as_posix()


def _versions(name: str) -> list[dict]:
    reg = registry()
    out = []
    for compiled in reg.versions(name):
        role = role_of(reg, compiled)
        report, file = _cases(compiled, role)
        out.append({**describe(compiled, role), "cases": report, "cases_file": file})
    return out


@bp.get("/rulesets")
def rulesets():
    shadows = {}
    for entry in deployments.shadow_report(trail()):
        shadows.setdefault(entry["ruleset"]["name"], []).append(entry)
    return render_template(
        "review/rulesets.html",
        rulesets=[(name, _versions(name)) for name in registry().names()],
        shadows=shadows,
    )


@bp.get("/rulesets/<name>")
def ruleset(name):
    versions = _versions(name)
    if not versions:
        raise NotFound("ruleset", name)
    return render_template(
        "review/ruleset.html",
        name=name,
        versions=versions,
        shadows=deployments.shadow_report(trail(), name),
        fields=deployments.SHADOW_FIELDS,
    )


@bp.get("/sources/<digest>")
def source(digest):
    text = trail().ruleset_source(digest)
    served = [
        (c, role_of(registry(), c))
        for name in registry().names()
        for c in registry().versions(name)
        if c.digest == digest
    ]
    return render_template("review/source.html", digest=digest, lines=text.splitlines(), served=served)

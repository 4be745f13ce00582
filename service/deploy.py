"""Reloading rulesets without downtime: files → compiled → recorded in the audit → served everywhere.

Every trigger goes through `reload`: a process starting, SIGHUP to the server, `POST
/v1/admin/reload`, `leadgate rulesets reload`. It compiles the files; a file that fails keeps its
ruleset's last good version (its source comes from the audit, by digest), and the outcome is
recorded as a chained reload entry. Every worker compares, once per request, the latest reload with
the one it serves (one indexed row) and rebuilds from the database when it moved: all workers serve
the same versions without being signalled, and a worker started later rebuilds the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit import AuditTrail, StorageUnavailable, deployments
from engine import Deployment, Problem, Registry
from engine.destinations import load_destinations
from engine.files import DESTINATIONS, TEAMS, read_directory
from engine.teams import load_teams


@dataclass
class Served:
    """What one process serves: the reload it was built from (None before any was recorded)."""

    reload_id: str | None = None
    problems: list[dict] = field(default_factory=list)


def reload(
    registry: Registry, trail: AuditTrail, directory: Path, requested_by: str, only_if_changed: bool = False
) -> tuple[dict, list[Problem], dict[str, int]]:
    """Load the files, record the reload, serve it: (reload, problems, versions kept from before)."""
    deployment, problems, refused = read_directory(registry, Path(directory))
    kept = _keep_last_good(registry, trail, deployment, refused)
    sources = {
        c.digest: (c.identity, c.source) for c in [*deployment.active.values(), *deployment.candidates]
    }
    for file in (deployment.teams, deployment.destinations):
        if file is not None:
            sources[file.digest] = (file.identity, file.source)
    record = deployments.record_reload(
        trail,
        deployment.digests(),
        list(sources.values()),
        [p.to_dict() for p in sorted(problems)],
        requested_by,
        only_if_changed=only_if_changed,
    )
    registry.deploy(deployment)
    return record, problems, kept


def _keep_last_good(registry, trail, deployment: Deployment, refused: set[str]) -> dict[str, int]:
    latest = deployments.current(trail)
    if latest is None:
        return {}
    kept = {}
    if TEAMS in refused and latest["deployment"].get("teams"):
        deployment.teams = load_teams(
            trail.ruleset_source(latest["deployment"]["teams"]), "<last good teams>"
        )
        kept[TEAMS] = deployment.teams.version
    if DESTINATIONS in refused and latest["deployment"].get("destinations"):
        deployment.destinations = load_destinations(
            trail.ruleset_source(latest["deployment"]["destinations"]), "<last good destinations>"
        )
        kept[DESTINATIONS] = deployment.destinations.version
    for name in sorted(refused - set(deployment.active) - {TEAMS, DESTINATIONS}):
        digest = latest["deployment"]["active"].get(name)
        if digest is not None:
            deployment.active[name] = registry.compile(
                trail.ruleset_source(digest), f"<{name} {digest[:19]}>"
            )
            kept[name] = deployment.active[name].version
    return kept


def rebuild(registry: Registry, trail: AuditTrail, recorded: dict) -> Deployment:
    """The deployment a reload recorded, compiled from the sources the audit keeps by digest."""

    def compiled(digest):
        return registry.compile(trail.ruleset_source(digest), f"<stored {digest[:19]}>")

    candidates = {d: compiled(d) for d in recorded["candidates"]}
    return Deployment(
        active={name: compiled(d) for name, d in recorded["active"].items()},
        candidates=list(candidates.values()),
        shadows={name: candidates.get(d) or compiled(d) for name, d in recorded["shadows"].items()},
        teams=load_teams(trail.ruleset_source(recorded["teams"]), "<stored teams>")
        if recorded.get("teams")
        else None,
        destinations=stored_destinations(trail, recorded),
    )


def stored_destinations(trail: AuditTrail, recorded: dict):
    """The destinations a recorded deployment served (None: nobody is told)."""
    digest = recorded.get("destinations")
    return load_destinations(trail.ruleset_source(digest), "<stored destinations>") if digest else None


def sync(registry: Registry, trail: AuditTrail, served: Served) -> Served:
    """Serve the latest recorded reload if it is not what this process serves (else change nothing).

    When the database cannot be read, the process keeps serving what it has.
    """
    try:
        latest_id = deployments.current_id(trail)
        if latest_id is None or latest_id == served.reload_id:
            return served
        latest = deployments.current(trail)
        registry.deploy(rebuild(registry, trail, latest["deployment"]))
    except StorageUnavailable:
        return served
    return Served(latest["reload_id"], latest["problems"])

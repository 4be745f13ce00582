"""Per-process state of the app: the rulesets it serves and the audit database connection.

Rulesets are loaded in the app factory (before gunicorn forks its workers, with --preload) through
`deploy.reload`, which records what is served. On every request the process checks that it still
serves the latest recorded reload, so a reload made by another worker or by the CLI reaches all.
The SQLite connection must never cross a fork, so each process opens its own on first use, and
closes it with `close(app)` when it is done with the app.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from flask import Flask, current_app, g

from audit import AuditTrail, StorageUnavailable, deployments
from engine import Registry
from engine.files import load_directory
from service import deploy
from service.decide import open_trail

from . import limits

_lock = threading.RLock()


def init_app(app: Flask) -> None:
    """Load the rulesets: recorded as a reload when they differ from the latest one recorded."""
    config = app.extensions["leadgate.config"]
    try:
        opened = open_trail(config)
    except StorageUnavailable as exc:
        # Serve the files; the first request that can reach the database records them.
        app.logger.error("rulesets loaded without recording them: %s", exc)
        problems = load_directory(app.extensions["leadgate.registry"], Path(config.RULESETS))
        app.extensions["leadgate.served"] = deploy.Served(None, [p.to_dict() for p in problems])
        return
    try:
        reload_app(app, opened, "startup", only_if_changed=True)
    finally:
        opened.close()


def reload_app(app: Flask, opened: AuditTrail, requested_by: str, only_if_changed: bool = False):
    """Reload the app's rulesets from its files, recorded in `opened`: (reload, problems, kept)."""
    ext = app.extensions
    record, problems, kept = deploy.reload(
        ext["leadgate.registry"], opened, Path(ext["leadgate.config"].RULESETS), requested_by, only_if_changed
    )
    ext["leadgate.served"] = deploy.Served(record["reload_id"], record["problems"])
    return record, problems, kept


def registry() -> Registry:
    """The rulesets to serve this request with: brought up to date once per request.

    The latest reload's id is read without the lock (one indexed row, on a read connection): only a
    process that is behind takes it, to rebuild once, so the requests of a process never queue here."""
    app = current_app
    if not g.get("leadgate_synced"):
        if _behind(app):
            with _lock:
                served = app.extensions["leadgate.served"]
                if served.reload_id is None:  # loaded while the database was out of reach: record it now
                    with contextlib.suppress(StorageUnavailable):
                        reload_app(app, trail(), "startup", only_if_changed=True)
                else:
                    app.extensions["leadgate.served"] = deploy.sync(
                        app.extensions["leadgate.registry"], trail(), served
                    )
        g.leadgate_synced = True
    return app.extensions["leadgate.registry"]


def _behind(app: Flask) -> bool:
    """Whether the latest recorded reload may not be the one served (then `registry` syncs, locked)."""
    served_id = app.extensions["leadgate.served"].reload_id
    if served_id is None:
        return True
    try:
        latest = deployments.current_id(trail())
    except StorageUnavailable:
        return False  # the database cannot be read: keep serving what is served (as deploy.sync does)
    return latest is not None and latest != served_id


def served() -> deploy.Served:
    registry()
    return current_app.extensions["leadgate.served"]


def exclusive():
    """The lock that guards the served rulesets: take it before a write transaction that reloads them."""
    return _lock


def reload(requested_by: str):
    """Reload the files now (POST /v1/admin/reload): (reload, problems, kept)."""
    with _lock:
        result = reload_app(current_app, trail(), requested_by)
    g.leadgate_synced = True
    return result


def close(app: Flask) -> None:
    """Close this process's connections of `app` (audit trail, rate limits): a gunicorn worker's
    exit, a test's teardown."""
    opened = app.extensions.pop("leadgate.trail", None)
    if opened is not None and opened[0] == os.getpid():
        opened[1].close()
    limits.close(app)


def trail() -> AuditTrail:
    ext = current_app.extensions
    opened = ext.get("leadgate.trail")
    if opened is None or opened[0] != os.getpid():
        with _lock:
            opened = ext.get("leadgate.trail")
            if opened is None or opened[0] != os.getpid():
                opened = (os.getpid(), open_trail(ext["leadgate.config"]))
                ext["leadgate.trail"] = opened
    return opened[1]

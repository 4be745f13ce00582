"""Per-process state of the app: the compiled rulesets and the audit database connection.

Rulesets are compiled once in the app factory (before gunicorn forks its workers, with --preload).
The SQLite connection must never cross a fork, so each process opens its own on first use.
"""

from __future__ import annotations

import os
import threading

from flask import current_app

from audit import AuditTrail
from engine import Registry

from .service import open_trail

_lock = threading.Lock()


def registry() -> Registry:
    return current_app.extensions["leadgate.registry"]


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

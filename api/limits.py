"""Rate limits: decisions per minute per form key and per client address, sign-in attempts.

Checked right after the key (api/auth.py), before the body is read, with the `limits` library (the
engine of Flask-Limiter; Flask-Limiter's own hooks run before the key is known, and a form key's
limit needs the key). The counters are shared by every worker process (audit/ratelimits.py), so the
limit holds however requests spread over workers. Over the limit: 429 with Retry-After.
"""

from __future__ import annotations

import math
import os
import threading
import time

from flask import current_app, g, request
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from audit.backends import is_postgres
from audit.ratelimits import SQLiteStorage

from .errors import ApiError

_lock = threading.Lock()


def _storage(config):
    uri = config.RATE_LIMIT_STORAGE
    return storage_from_string(uri) if uri else SQLiteStorage(f"{local_base(config)}.limits")


def _limiter() -> FixedWindowRateLimiter:
    ext = current_app.extensions
    made = ext.get("leadgate.limiter")
    if made is None or made[0] != os.getpid():
        with _lock:  # one storage per process, whichever of its threads asks first
            made = ext.get("leadgate.limiter")
            if made is None or made[0] != os.getpid():
                made = (os.getpid(), FixedWindowRateLimiter(_storage(ext["leadgate.config"])))
                ext["leadgate.limiter"] = made
    return made[1]


def prepare(config) -> None:
    """Make the shared counters file before the server forks its workers.

    SQLite's switch of a new file to WAL does not wait for a busy file: two workers whose first
    limited requests came at once both tried it, and one got "database is locked", a 500. Made once
    here, in the master, the file is already in WAL mode with its table when any worker opens it.
    """
    if not config.RATE_LIMIT_STORAGE:
        storage = SQLiteStorage(f"{local_base(config)}.limits")
        storage.check()  # opens it: WAL, the table
        storage.close()


def local_base(config) -> str:
    """Where this machine's counters go by default: beside the SQLite file, or for a PostgreSQL trail
    beside the key file (each machine counts its own: LEADGATE_RATE_LIMIT_STORAGE shares them)."""
    if not is_postgres(config.DB):
        return config.DB
    return config.SECRET_FILE or os.path.join("var", "leadgate")


def close(app) -> None:
    """Close this process's rate-limit storage of `app`, if it holds a connection of its own."""
    made = app.extensions.pop("leadgate.limiter", None)
    if made is not None and made[0] == os.getpid():
        storage = made[1].storage
        if isinstance(storage, SQLiteStorage):
            storage.close()


def client_address() -> str:
    return request.remote_addr or "unknown"


def hit(what: str, per_minute: int, identifier: str, count: bool = True) -> None:
    """Count one request against `per_minute` for (what, identifier); 429 once it is used up.

    With count=False only check that some is left (what is counted later, e.g. a failed sign-in).
    """
    if per_minute <= 0:  # 0 turns the limit off
        return
    limiter, item = _limiter(), RateLimitItemPerMinute(per_minute)
    if limiter.hit(item, what, identifier) if count else limiter.test(item, what, identifier):
        return
    reset = limiter.get_window_stats(item, what, identifier).reset_time
    retry = max(1, math.ceil(reset - time.time()))
    raise ApiError(
        429,
        "rate_limited",
        f"Too many requests: at most {per_minute} {what.replace('_', ' ')} per minute. Retry in {retry} s.",
        headers={"Retry-After": str(retry)},
    )


def check() -> None:
    """After the key is known: a form key's decisions, per key and per client address."""
    key = g.key
    if key.public:
        config = current_app.extensions["leadgate.config"]
        hit("form_decisions", config.FORM_KEY_RATE, key.id)
        hit("decisions_from_address", config.ADDRESS_RATE, client_address())


def sign_in(key_text: str, failed: bool) -> None:
    """Review sign-in: failed attempts are counted per client address and per key id (whatever the
    secret); once either is used up, every attempt gets 429, right ones too, until the window ends."""
    config = current_app.extensions["leadgate.config"]
    hit("failed_sign_ins", config.SIGN_IN_RATE, client_address(), count=failed)
    parts = key_text.split("_")
    if len(parts) >= 3 and parts[0] == "lg":
        hit("failed_sign_ins_for_key", config.SIGN_IN_RATE, parts[1][:12], count=failed)

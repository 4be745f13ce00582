"""Configuration in one place: defaults, then LEADGATE_* environment variables, then explicit overrides.

The Flask app and the CLI read the same settings through `load_config`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Config:
    DB: str = "var/leadgate.db"  # LEADGATE_DB: the SQLite audit file, or a postgresql:// URL (docs/deploy.md)
    # LEADGATE_SECRET_FILE: the key file of signing and tokenising secrets (0600); empty: beside the
    # database as <DB>.key. Keep it out of the database's backups; LEADGATE_SECRET_<NAME> overrides one.
    SECRET_FILE: str = ""
    RULESETS: str = "rulesets"  # LEADGATE_RULESETS: directory of <name>.yaml rulesets
    DEFAULT_RULESET: str = "default"  # LEADGATE_DEFAULT_RULESET: used when a request names none
    HOST: str = "127.0.0.1"  # LEADGATE_HOST
    PORT: int = 8000  # LEADGATE_PORT
    WORKERS: int = 2  # LEADGATE_WORKERS: gunicorn worker processes
    DURABILITY: str = "full"  # LEADGATE_DURABILITY: full (survives power loss) or normal (survives a crash)
    PERSONAL_FIELDS: str = (
        "email,first_name,last_name,phone"  # LEADGATE_PERSONAL_FIELDS: never stored in clear
    )
    MAX_BODY: int = 1_048_576  # LEADGATE_MAX_BODY: largest request body in bytes (413 above)
    BATCH_LIMIT: int = 100  # LEADGATE_BATCH_LIMIT: leads per POST /v1/decisions/batch
    EXAMPLES: str = "examples"  # LEADGATE_EXAMPLES: directory whose form.html is served at /demo/form
    PERSONAL_DATA: str = "hash"  # LEADGATE_PERSONAL_DATA: hash (kept apart, erasable) or drop (not kept)
    # LEADGATE_SECURE_COOKIES: 1 sends the review pages' session cookie over HTTPS only; 0 also over plain
    # http, for `make run` and tests on 127.0.0.1 (never behind a public address).
    SECURE_COOKIES: int = 1
    # Webhook delivery (`leadgate deliver`): where the review pages are linked from chat messages, the
    # attempts before a dead letter, each attempt's timeout, the first backoff (doubled each attempt,
    # with jitter, at most an hour), deliveries in flight at once, and how often the outbox is polled.
    PUBLIC_URL: str = "http://127.0.0.1:8000"  # LEADGATE_PUBLIC_URL
    DELIVERY_ATTEMPTS: int = 12  # LEADGATE_DELIVERY_ATTEMPTS: about 1 to 2 hours of retries
    DELIVERY_TIMEOUT_MS: int = 5000  # LEADGATE_DELIVERY_TIMEOUT_MS
    DELIVERY_BACKOFF_MS: int = 2000  # LEADGATE_DELIVERY_BACKOFF_MS
    DELIVERY_CONCURRENCY: int = 64  # LEADGATE_DELIVERY_CONCURRENCY
    DELIVERY_POLL_MS: int = 50  # LEADGATE_DELIVERY_POLL_MS
    # LEADGATE_SESSION_IDLE_MINUTES: a review session unused this long ends on the server (sign in again)
    SESSION_IDLE_MINUTES: int = 30
    LEAD_TOKEN_TTL: int = 86_400  # LEADGATE_LEAD_TOKEN_TTL: seconds a form's lead token lets it continue
    CLOCK_SKEW: int = 300  # LEADGATE_CLOCK_SKEW: seconds an event may be dated after the evaluation time
    # Rate limits per minute (0: no limit): decisions per form key and per client address of form-key
    # calls, review sign-in attempts per address and per key id.
    FORM_KEY_RATE: int = 600  # LEADGATE_FORM_KEY_RATE
    ADDRESS_RATE: int = 60  # LEADGATE_ADDRESS_RATE
    SIGN_IN_RATE: int = 10  # LEADGATE_SIGN_IN_RATE
    # LEADGATE_RATE_LIMIT_STORAGE: where the counters live, shared by all workers; empty: <DB>.limits
    # (SQLite, one machine); any `limits` storage URI such as redis://host:6379 for several machines.
    RATE_LIMIT_STORAGE: str = ""
    # LEADGATE_REQUEST_DEADLINE: seconds a client has to send its whole request body; a slower one gets
    # 408 and its connection is closed, without ever holding an application thread.
    REQUEST_DEADLINE: int = 10
    # LEADGATE_LISTEN: how `leadgate serve`'s workers listen. `own`: each on a socket of its own on the
    # port (SO_REUSEPORT), the kernel spreading new connections over them; `shared`: one socket for all;
    # `auto`: `own` only where the kernel hands a closing socket's waiting connections to the others
    # (net.ipv4.tcp_migrate_req = 1), since a worker replaced on reload would otherwise reset them.
    LISTEN: str = "auto"

    def to_flask(self) -> dict:
        return {f"LEADGATE_{f.name}": getattr(self, f.name) for f in fields(self)}


def load_config(environ=None, **overrides) -> Config:
    """Defaults ← LEADGATE_<NAME> environment variables ← keyword overrides; wrong types fail here."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in fields(Config):
        raw = environ.get(f"LEADGATE_{f.name}")
        if raw is None:
            continue
        if f.type == "int" or f.type is int:
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise ValueError(f"LEADGATE_{f.name} must be a whole number, not {raw!r}") from None
        else:
            values[f.name] = raw
    values.update({k.upper(): v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in fields(Config)}
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    return replace(Config(), **values)

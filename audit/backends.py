"""Which store an audit location names, and the errors either store raises.

`LEADGATE_DB` is a SQLite file path (the embedded default) or a `postgresql://` URL (several machines
sharing one trail, audit/postgres.py). The audit modules write one SQL; the PostgreSQL connection
translates the little that differs, so nothing else here needs to know which store it talks to.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import psycopg

# A location starting "postgresql:" is never taken for a file name, even when the URL is mistyped:
# libpq then names the mistake, instead of a SQLite file appearing under a directory "postgresql:".
SCHEMES = ("postgresql:", "postgres:")

# What a failing store raises: callers that turn storage failures into StorageUnavailable catch these.
ERRORS = (sqlite3.Error, psycopg.Error)


def is_postgres(location: str | Path) -> bool:
    return str(location).startswith(SCHEMES)


def shown(location: str | Path) -> str:
    """The location as messages may print it: a URL's password replaced by ***."""
    text = str(location)
    return re.sub(r"^(\w+://[^/@:]*):[^/@]*@", r"\1:***@", text) if is_postgres(text) else text

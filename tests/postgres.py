"""A real PostgreSQL server for the tests: Debian's packages, a data directory in /tmp, a Unix socket.

`postgres_server` (session) runs initdb into a fresh directory and starts the server listening only on
a socket in that directory (no TCP port to clash with), stopped when the session ends. PostgreSQL
refuses to run as root: as root the directory is given to Debian's `postgres` user and the server runs
as that user. `pg_url` (per test) is a fresh database on it, dropped afterwards.

`make test` installs the packages where initdb is missing (Makefile, target `postgresql`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from audit import pgschema
from audit.backends import is_postgres
from audit.secrets import Secrets, default_path

USER = "leadgate"


def binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Server:
    """One PostgreSQL cluster in `root`, reachable at `url(dbname)`."""

    def __init__(self, root: Path):
        self.root, self.data, self.socket = root, root / "data", root / "socket"
        self.as_postgres = os.geteuid() == 0
        self._names = itertools.count(1)

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True, cwd=self.root)

    def start(self) -> None:
        self.socket.mkdir()
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket, "postgres")
        self._run(
            binary("initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C"
        )
        # fsync off: a test database need not survive a power cut, and the tests share two cores.
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.socket} -c fsync=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
        )
        self._run(
            binary("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", options, "start"
        )

    def stop(self) -> None:
        self._run(binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql:///{dbname}?host={self.socket}&user={USER}"

    def create(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def unreachable(url: str):
    """The database refuses new connections and drops those it has, as while its server is down."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    admin = url.replace(f"/{name}?", "/postgres?")

    def allow(yes: bool) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(yes).lower()}")
            if not yes:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                )

    allow(False)
    try:
        yield
    finally:
        allow(True)


def eventually(check, seconds: float = 30.0) -> bool:
    """Whether `check()` comes true within `seconds` (bounded: a test never waits longer)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture(scope="session")
def postgres_server():
    if binary("initdb") is None:
        pytest.fail("PostgreSQL is not installed: `make postgresql` installs Debian's packages")
    root = Path(tempfile.mkdtemp(prefix="leadgate-pg-"))
    server = Server(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def audit_db(request, tmp_path, monkeypatch):
    """An audit location on each backend in turn: a SQLite file, then a fresh PostgreSQL database (with
    LEADGATE_SECRET_FILE set, as a PostgreSQL deployment must, for the app, the CLI and servers)."""
    if request.param == "sqlite":
        return str(tmp_path / "audit.db")
    monkeypatch.setenv("LEADGATE_SECRET_FILE", str(tmp_path / "pg.key"))
    return request.getfixturevalue("pg_url")


def stored_bytes(trail) -> bytes:
    """Everything the store holds: a SQLite file and its write-ahead log as bytes on disk; on PostgreSQL,
    every row of every table as a dump or any reader of the database sees it (dead row versions wait
    for VACUUM: docs/deploy.md)."""
    if is_postgres(trail.path):
        tables = [
            r[0] for r in trail.db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return "\n".join(
            trail.db.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {t} t").fetchone()[0]
            for t in tables
        ).encode()
    files = [Path(trail.path), Path(f"{trail.path}-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def secrets_for(location) -> Secrets:
    """The key file a trail opened directly at `location` uses: LEADGATE_SECRET_FILE, else beside it."""
    return Secrets(os.environ.get("LEADGATE_SECRET_FILE") or default_path(location))


@pytest.fixture
def backend_app(make_app, audit_db):
    """The Flask app on the shipped rulesets and a fresh audit store of each backend."""
    from tests.conftest import RULESETS

    return make_app(db=audit_db, rulesets=str(RULESETS))


@pytest.fixture
def pg_url(postgres_server):
    """A fresh, empty PostgreSQL database for one test, as a LEADGATE_DB URL."""
    name = postgres_server.create()
    yield postgres_server.url(name)
    postgres_server.drop(name)


def old_schema(migration: str) -> tuple[list[str], dict[str, list[str]]]:
    """The PostgreSQL DDL (tables, then indexes) and each table's columns of the schema as it was
    after `migration`: to make a database as an older leadgate left it."""
    old = pgschema.scratch(migration)
    try:
        ddl = [*pgschema.tables(old).values(), *pgschema.indexes(old).values()]
        return ddl, {t: [c[0] for c in pgschema.columns(old, t)] for t in pgschema.tables(old)}
    finally:
        old.close()

"""Regression: m013 dropped the derived rows of decisions archived before it.

tests/data/v12_archived.db was recorded and archived by the code of commit 9fc7e8c (schema at
migration 12, before the views of m013), by tests/data/make_v12_archived.py: six leads handed off to
the account executives, then, as opportunities, taken by the account team (an assignment with no
hand-off, so its decision was archived) and moved through stages; the first two days are archived in
v12_archived.jsonl.zst. Its rows of stage_history, handoffs and assignments, read before migrating,
are what the views must still give; the lead stays with its owner.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from audit import AuditTrail, pgschema, postgres
from audit.codec import COMPRESSED
from audit.secrets import Secrets
from cli import main
from engine.teams import load_teams
from service.decide import decide
from tests.postgres import old_schema

DATA = "tests/data/"
NAMES = ("v12_archived.db", "v12_archived.db.key", "v12_archived.jsonl.zst")
COLUMNS = {
    "stage_history": "lead_id, at, from_stage, to_stage, decision_id",
    "handoffs": "lead_id, decision_id, route, destination, team, at, due_at, acted_at, acted_by, closed_at",
    "assignments": "lead_id, team, owner, basis, domain, period, at",
}
TEAMS = Path(DATA, "v12_archived.teams.yaml").read_text()  # as tests/data/make_v12_archived.py


def rows(path, table) -> list[tuple]:
    with sqlite3.connect(path) as db:
        got = db.execute(f"SELECT {COLUMNS[table]} FROM {table} ORDER BY id").fetchall()
    db.close()
    return got


@pytest.fixture
def migrated(tmp_path):
    for name in NAMES:
        shutil.copy(DATA + name, tmp_path / name)
    db = tmp_path / NAMES[0]
    before = {table: rows(db, table) for table in COLUMNS}
    with AuditTrail(db, secrets=Secrets(tmp_path / NAMES[1])):
        pass  # opening migrates
    return db, tmp_path / NAMES[2], before


def test_the_fixture_lost_decisions_to_an_archive(migrated):
    db, _, before = migrated
    with sqlite3.connect(db) as conn:
        archived = {r[0] for r in conn.execute("SELECT ref FROM archived")}
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    conn.close()
    assert "m013_derived_from_decisions" in names and "m012_archives" in names
    # What the fixture is for: rows of each kind whose decision is archived.
    assert any(r[4] in archived for r in before["stage_history"])
    assert len(before["assignments"]) == 12 and len(before["handoffs"]) == 21


@pytest.mark.parametrize("table", list(COLUMNS))
def test_every_derived_row_survives_the_migration(migrated, table):
    db, _, before = migrated
    assert rows(db, table) == before[table]


def test_verify_with_the_archive_proves_them(migrated):
    db, archive, _ = migrated
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "verify", "--db", str(db), "--archive", str(archive)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["audit", "verify", "--db", str(db)])
    assert result.exit_code == 0, result.output


def test_the_lead_stays_with_its_owner_and_verify_still_holds(migrated, registry):
    db, archive, before = migrated
    owners = {r[0]: r[2] for r in before["assignments"] if r[1] == "account-management"}
    teams = load_teams(TEAMS)
    with AuditTrail(db, secrets=Secrets(str(db) + ".key")) as trail:
        for lead_id, owner in owners.items():
            facts = {"lead_id": lead_id, "profile": {"country": "US"}}
            reply = decide(registry.get("default"), trail, facts, at="2026-10-04T12:00:00Z", teams=teams)[0]
            assert reply["assignment"]["owner"] == owner, reply["assignment"]
            assert reply["assignment"]["basis"] == "lead_owner"
    assert rows(db, "assignments") == before["assignments"]  # keeping the owner writes no row
    result = CliRunner().invoke(main, ["audit", "verify", "--db", str(db), "--archive", str(archive)])
    assert result.exit_code == 0, result.output


def test_on_postgresql_m013_keeps_them_too(pg_url, tmp_path):
    """The fixture's tables loaded into PostgreSQL as the code of m012 left them, then migrated by
    m013's PostgreSQL form: the same rows, and verify --archive holds."""
    fixture = tmp_path / NAMES[0]
    for name in NAMES:
        shutil.copy(DATA + name, tmp_path / name)
    before = {table: rows(fixture, table) for table in COLUMNS}
    ddl, columns = old_schema("m012_archives")
    names = pgschema.names()
    source = sqlite3.connect(fixture)
    try:
        with psycopg.connect(pg_url, autocommit=True) as pg:
            for sql in ddl:
                pg.execute(sql)
            for column in COMPRESSED:  # bytea since m011 (its PostgreSQL form)
                pg.execute(f"ALTER TABLE decisions ALTER COLUMN {column} TYPE bytea USING NULL")
            pg.execute("CREATE TABLE _leadgate_migrations (name text PRIMARY KEY, applied_at text NOT NULL)")
            for name in names[: names.index("m012_archives") + 1]:
                pg.execute("INSERT INTO _leadgate_migrations VALUES (%s, %s)", (name, "2026-10-05T00:00:00Z"))
            for table, cols in columns.items():
                marks = ", ".join(["%s"] * len(cols))
                for row in source.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid"):
                    pg.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", row)
    finally:
        source.close()
    with AuditTrail(pg_url, secrets=Secrets(tmp_path / NAMES[1])) as trail:
        postgres.advance_identities(trail.db)
        for table, cols in COLUMNS.items():
            assert [tuple(r) for r in trail.db.execute(f"SELECT {cols} FROM {table} ORDER BY id")] == before[
                table
            ]
    result = CliRunner().invoke(
        main,
        ["audit", "verify", "--db", pg_url, "--archive", str(tmp_path / NAMES[2])],
        env={"LEADGATE_SECRET_FILE": str(tmp_path / NAMES[1])},
    )
    assert result.exit_code == 0, result.output

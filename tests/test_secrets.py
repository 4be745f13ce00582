"""Secrets off the data file: a reader of the database alone can neither sign in nor reverse a token."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sqlite3
import stat

import pytest

from audit import AuditTrail
from audit.secrets import NAMES, Secrets, SecretsError, default_path
from service.config import load_config
from service.decide import open_trail


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_directory_and_key_file_are_private(tmp_path):
    db = tmp_path / "new" / "audit.db"
    trail = AuditTrail(db)
    try:
        trail.db.execute("CREATE TABLE IF NOT EXISTS t (x)")  # the WAL and SHM exist once written
    finally:
        trail.close()
    assert mode(db.parent) == 0o700
    assert mode(db) == 0o600
    for side in ("-wal", "-shm"):
        extra = db.with_name(db.name + side)
        if extra.exists():
            assert mode(extra) == 0o600, side
    assert mode(default_path(db)) == 0o600


def test_no_secret_is_in_the_database_file(tmp_path):
    db = tmp_path / "audit.db"
    trail = AuditTrail(db)
    try:
        token = trail.personal.token("email", "ana@acme.io")
        assert token.startswith("pii:")
        rows = trail.db.execute("SELECT key FROM meta").fetchall()
    finally:
        trail.close()
    assert not [k for (k,) in rows if "secret" in k]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*") if p.name != "audit.db.key")
    for value in json.loads(default_path(db).read_text()).values():
        assert value.encode() not in stored
        assert bytes.fromhex(value) not in stored


def test_an_old_database_has_its_secrets_moved_out_and_keeps_its_tokens(tmp_path):
    db = tmp_path / "old.db"
    AuditTrail(db).close()
    default_path(db).unlink()
    old_personal, old_session = "ab" * 32, "cd" * 32
    with (
        contextlib.closing(sqlite3.connect(db)) as conn,
        conn,
    ):  # what a file written before the key file holds
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('personal_secret', ?), ('session_secret', ?)",
            (old_personal, old_session),
        )
    trail = AuditTrail(db)
    try:
        assert trail.secrets.get("personal") == bytes.fromhex(old_personal)
        assert trail.secrets.get("session") == bytes.fromhex(old_session)
        assert trail.db.execute("SELECT count(*) FROM meta WHERE key LIKE '%secret%'").fetchone()[0] == 0
    finally:
        trail.close()
    kept = json.loads(default_path(db).read_text())
    assert kept["personal"] == old_personal and kept["session"] == old_session


def test_the_environment_overrides_the_key_file_and_short_values_are_refused(tmp_path):
    path = tmp_path / "k.key"
    assert Secrets(path, {"LEADGATE_SECRET_SESSION": "ef" * 32}).get("session") == bytes.fromhex("ef" * 32)
    assert Secrets(path, {}).get("session") != bytes.fromhex("ef" * 32)
    with pytest.raises(SecretsError, match="at least 32"):
        Secrets(path, {"LEADGATE_SECRET_SESSION": "short"}).get("session")


def test_the_configured_key_file_is_used(tmp_path):
    key_file = tmp_path / "elsewhere" / "leadgate.key"
    config = load_config({}, db=str(tmp_path / "data" / "audit.db"), secret_file=str(key_file))
    trail = open_trail(config)
    trail.close()
    assert key_file.exists() and not default_path(config.DB).exists()
    assert set(json.loads(key_file.read_text())) == set(NAMES)


def test_an_unreadable_key_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.key"
    path.write_text("not json")
    with pytest.raises(SecretsError, match="cannot be read"):
        Secrets(path)


def _values(path: str, out) -> None:
    out.put(Secrets(path).get("session").hex())


def test_processes_starting_at_once_share_one_set_of_secrets(tmp_path):
    path = str(tmp_path / "race.key")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_values, args=(path, out)) for _ in range(6)]
    for p in procs:
        p.start()
    values = {out.get(timeout=30) for _ in procs}
    for p in procs:
        p.join()
    assert len(values) == 1


def test_rotating_the_session_secret_changes_it(tmp_path):
    path = tmp_path / "r.key"
    before = Secrets(path).get("session")
    Secrets(path).rotate("session")
    assert Secrets(path).get("session") != before


def test_an_in_memory_database_writes_no_key_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trail = AuditTrail(":memory:")
    try:
        assert len(trail.secrets.get("session")) == 32
    finally:
        trail.close()
    assert list(tmp_path.iterdir()) == []

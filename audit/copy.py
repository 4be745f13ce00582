"""Moving a trail to another store (`leadgate audit copy --to postgresql://…`): every row of every table,
copied as it is, the chain verified before on the source and after on the target.

The copy reads the source in one read transaction (a snapshot: writes made meanwhile are not in it,
so stop the writers first) and writes the target in one transaction: an empty target gets all of it or
nothing. Rows keep their ids, sequence numbers and hashes, so the chain and any checkpoint signed on
the source hold on the target. Personal-data tokens are made with the key file's secret: the target
is opened with the source's key file, which every machine serving the target then uses.
"""

from __future__ import annotations

import contextlib

from . import chain, pgschema, postgres
from .errors import AuditError
from .trail import AuditTrail

BATCH = 1000


class CopyRefused(AuditError):
    """The source does not verify, or the target is not empty, or the two disagree after the copy."""


def tables() -> list[str]:
    """Every audit table, parents before the tables that refer to them."""
    scratch = pgschema.scratch()
    try:
        return list(pgschema.tables(scratch))
    finally:
        scratch.close()


def copy(source: AuditTrail, target: AuditTrail) -> dict:
    """Copy `source` into the empty `target`; returns {rows: {table: n}, head: {seq, hash}}."""
    problems = source.verify()
    if problems:
        raise CopyRefused(f"the source does not verify ({len(problems)} problem(s)): {problems[0]}")
    names = tables()
    occupied = [t for t in names if _count(target, t)]
    if occupied:
        raise CopyRefused(f"the target is not empty: {', '.join(occupied)} already hold rows")
    rows: dict[str, int] = {}
    with source._lock, _snapshot(source.db), target._transaction() as db:
        for table in names:
            rows[table] = _copy_table(source, db, table)
        if isinstance(db, postgres.Database):
            postgres.advance_identities(db)
    problems = target.verify()
    if problems:
        raise CopyRefused(f"the copy does not verify ({len(problems)} problem(s)): {problems[0]}")
    head, copied = _head(source), _head(target)
    if head != copied or {t: _count(target, t) for t in names} != rows:
        raise CopyRefused(f"the copy differs from the source: head {copied} against {head}")
    return {"rows": rows, "head": head}


@contextlib.contextmanager
def _snapshot(db):
    """A read snapshot of the source that stops none of its writers: a deferred BEGIN on SQLite; on
    PostgreSQL, whose BEGIN here takes the write lock of every machine, a read-only one without it."""
    if isinstance(db, postgres.Database):
        with db.snapshot():
            yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def _copy_table(source: AuditTrail, db, table: str) -> int:
    order = "" if isinstance(source.db, postgres.Database) else " ORDER BY rowid"  # as they were written
    cursor = source.db.execute(f"SELECT * FROM {table}{order}")
    columns = [d[0] for d in cursor.description]
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    copied = 0
    while batch := cursor.fetchmany(BATCH):
        if table == "chain":  # hashes as the target keeps them (audit.chain.stored_hash)
            batch = [
                (*r[:4], *(chain.stored_hash(db, chain.hex_of(h)) for h in r[4:7]), *r[7:]) for r in batch
            ]
        db.conn.executemany(sql, batch)
        copied += len(batch)
    return copied


def _count(trail: AuditTrail, table: str) -> int:
    return trail._read(f"SELECT count(*) AS n FROM {table}")[0]["n"]


def _head(trail: AuditTrail) -> dict | None:
    rows = trail._read("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1")
    return {**rows[0], "hash": chain.hex_of(rows[0]["hash"])} if rows else None

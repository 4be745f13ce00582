"""Row writers shared by the trail's write transactions: ruleset sources by digest, shadow results.

The hot path (a decision: its row, chain link, lead, events, hand-off, assignment) writes with plain
prepared statements: sqlite-utils' `insert` and `upsert` introspect the table and open savepoints on
every call, which measured at 21 of the 33 statements of a decision. The schema and the migrations
stay with sqlite-utils.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(t: datetime) -> str:
    """A stored time: UTC with microseconds and a Z."""
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _encoder(sort_keys: bool):
    """json's C encoder, built once: `json.dumps` builds a JSONEncoder and a C encoder on every call
    (~1 µs, and a decision encodes about fifteen documents). No circular-reference check
    (`check_circular=False`): what is stored is parsed JSON or built from it, never cyclic."""
    return json.encoder.c_make_encoder(
        None,
        json.JSONEncoder().default,
        json.encoder.c_encode_basestring,
        None,
        ":",
        ",",
        sort_keys,
        False,
        True,
    )


_DUMPS, _CANONICAL = _encoder(False), _encoder(True)


def dumps(value) -> str:
    """Compact JSON, non-ASCII kept (what `json.dumps(value, ensure_ascii=False, separators=(",",
    ":"))` gives)."""
    return "".join(_DUMPS(value, 0))


def canonical(value) -> str:
    """Canonical JSON: `dumps` with sorted keys (what the hash chain hashes)."""
    return "".join(_CANONICAL(value, 0))


@cache
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


@cache
def _upsert_sql(table: str, columns: tuple[str, ...], key: str) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    return f"{_insert_sql(table, columns)} ON CONFLICT ({key}) DO UPDATE SET {updates}"


def insert(db, table: str, row: dict) -> None:
    """INSERT one row (table and column names are ours, never the caller's)."""
    db.execute(_insert_sql(table, tuple(row)), tuple(row.values()))


def upsert(db, table: str, row: dict, key: str) -> None:
    """Insert the row, or update the columns it names where `key` already exists."""
    db.execute(_upsert_sql(table, tuple(row), key), tuple(row.values()))


def store_source(db, identity: dict, source: str, at: str, sample: str | None = None) -> tuple:
    """Keep a ruleset's source by digest (once), so its decisions stay replayable, with a sample
    reply (audit.codec's dictionary): the first one given, set once (a reload stores the source
    without one, its first decision gives it) and never changed after, since frames depend on it.
    Returns (source, sample, samples) as stored (`samples`: audit.codec's second dictionary)."""
    return db.execute(
        "INSERT INTO rulesets (digest, name, version, source, first_seen_at, sample) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (digest) DO UPDATE SET sample = coalesce(rulesets.sample, excluded.sample) "
        "RETURNING source, sample, samples",
        (identity["digest"], identity["name"], identity["version"], source, at, sample),
    ).fetchall()[0]


def record_shadow(db, decision_id: str, live: dict, shadow_identity: dict, source: str, result) -> None:
    """Store a shadow candidate's decision (or its error) beside the live decision, in its transaction."""
    store_source(db, shadow_identity, source, live["evaluated_at"])
    row = {
        "decision_id": decision_id,
        "evaluated_at": live["evaluated_at"],
        "live_digest": live["ruleset"]["digest"],
        "ruleset_name": shadow_identity["name"],
        "ruleset_version": shadow_identity["version"],
        "ruleset_digest": shadow_identity["digest"],
    }
    if isinstance(result, dict):
        row.update(
            stage=result["stage"],
            route=result["route"]["id"],
            quadrant=result["quadrant"],
            fit=result["scores"].get("fit"),
            engagement=result["scores"].get("engagement"),
            decision=dumps(result),
        )
    else:
        row["error"] = str(result)
    insert(db, "shadow_decisions", row)


def keep_personal(db, lead_id: str, kept) -> None:
    """Keep the raw values behind tokens of an outcome's note (mode hash), in the caller's
    transaction (a decision keeps its lead's in the lead's row: audit.recording)."""
    insert_many(
        db,
        "INSERT OR REPLACE INTO personal_notes (token, lead_id, field, value)",
        # one row per token: PostgreSQL's upsert refuses a statement that names a row twice
        list({token: (token, lead_id, field, value) for token, field, value in kept}.values()),
    )


ROWS_PER_STATEMENT = 1000  # well under SQLite's limit of 32,766 bound values for any of our tables


def insert_many(db, head: str, rows: list[tuple]) -> None:
    """`head` (INSERT … INTO table (columns)) for all `rows` as one statement per thousand rows:
    executemany would run the statement once per row."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = "(" + ", ".join("?" * len(chunk[0])) + ")"
        db.execute(f"{head} VALUES {', '.join([values] * len(chunk))}", [v for row in chunk for v in row])

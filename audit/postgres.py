"""The audit trail on PostgreSQL: a pooled connection that speaks the audit modules' SQL.

The audit modules write plain SQL in SQLite's dialect through `db.execute(sql, params)`; this module
is the one place that knows PostgreSQL. Each statement text is translated once (cached):

- `?` placeholders become psycopg's; parameters are bound client-side, so a parameter whose type only
  its value tells (`? IS NULL`, `SELECT ?, id`) needs no cast;
- `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`, `INSERT OR REPLACE` an upsert on the primary key;
- `a IS ?` / `a IS NOT ?` become `IS [NOT] DISTINCT FROM`; `json_each(?)` a set of JSON array elements;
- named parameters (`:lead`, given a dict) become psycopg's `%(lead)s`;
- SQLite's JSON builders become PostgreSQL's: `json_group_array(x)` `json_agg` ('[]' when no row, as
  SQLite), `json_group_object(k, v)` `json_object_agg` ('{}'), `json_array` `json_build_array`,
  `json(x)` a cast; JSON comes back as its text, as SQLite gives it;
- a subquery in FROM or JOIN without a name gets one (PostgreSQL before 16 requires it);
- `PRAGMA` statements (SQLite's connection settings and WAL housekeeping) do nothing;
- `BEGIN IMMEDIATE` is SQLite's one writer at a time: here a transaction that first takes one
  transaction-scoped advisory lock. Every write transaction of every process on every machine queues on
  it, so the hash chain, the outbox order, round-robin counts and idempotency checks see exactly what
  they see on SQLite: the writes before theirs, and none in flight.

Connections come from a psycopg pool (autocommit, checked before use, so a restarted server is
reconnected). A connection that cannot be had or is lost raises StorageUnavailable; a transaction it
was in is rolled back by the server, so nothing is half-written.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from functools import lru_cache

import psycopg
from psycopg import ClientCursor
from psycopg.adapt import Loader
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool

from .errors import StorageUnavailable

WRITE_LOCK = 0x6C6561646761  # "leadga": the advisory lock every write transaction takes first
DELIVER_LOCK = 0x6C6561646465  # "leadde": held by the one `leadgate deliver` of all machines
POOL_TIMEOUT_S = 5.0  # waiting for a connection (the server down or every connection busy)
CHECK_AFTER_IDLE_S = 1.0  # a connection idle longer is checked with a round trip before it is lent
LOCK_TIMEOUT_MS = 30_000  # waiting for the write lock, as SQLite's busy timeout
# durability full: a commit returns once the server has flushed it; normal: once it is in the server's
# memory (a crash of the server may lose the last commits, never half of one).
DURABILITY = {"full": "on", "normal": "off"}
BEGIN, COMMIT, ROLLBACK = "BEGIN", "COMMIT", "ROLLBACK"


class NumberLoader(Loader):
    """numeric as SQLite gives it: an int when whole (count-like sums), else a float; never a Decimal."""

    def load(self, data) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


class Database:
    """A pool of connections to one PostgreSQL database, used like the SQLite connection it replaces.

    Safe to share between threads: a thread in a transaction keeps its connection until it ends.
    """

    def __init__(self, url: str, durability: str = "full", max_size: int = 4):
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}")
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StorageUnavailable(f"the audit database URL is not valid: {exc}") from None
        options = f"-c synchronous_commit={DURABILITY[durability]} -c lock_timeout={LOCK_TIMEOUT_MS}"
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=POOL_TIMEOUT_S,
            num_workers=1,
            open=False,
            check=_check,
            configure=_configure,
            kwargs={
                "autocommit": True,
                "cursor_factory": ClientCursor,
                "options": options,
                "connect_timeout": 5,
            },
        )
        self._local = threading.local()
        try:
            self.pool.open(wait=True, timeout=POOL_TIMEOUT_S)
        except psycopg.Error as exc:
            self.pool.close()
            raise StorageUnavailable(f"the audit database cannot be reached: {exc}") from exc

    @property
    def conn(self) -> Database:
        return self  # the audit modules call db.conn.executemany, as on sqlite3

    def close(self) -> None:
        self.pool.close()

    def execute(self, sql: str, params=()):
        statement = translate(sql)
        if statement == BEGIN:
            return self._begin()
        if statement in (COMMIT, ROLLBACK):
            return self._end(statement)
        with self._connection() as conn:
            cursor = conn.cursor()
            if statement is not None:
                cursor.execute(statement, _values(params))
            return cursor

    def executemany(self, sql: str, rows) -> None:
        with self._connection() as conn:
            conn.cursor().executemany(translate(sql), [_values(r) for r in rows])

    def commit(self) -> None:
        self._end(COMMIT)

    def rollback(self) -> None:
        if getattr(self._local, "conn", None) is not None:
            self._end(ROLLBACK)

    @contextlib.contextmanager
    def _connection(self):
        """The thread's transaction connection, or one from the pool for a single statement."""
        pinned = getattr(self._local, "conn", None)
        try:
            if pinned is not None:
                yield pinned
            else:
                with self.pool.connection() as conn:
                    yield conn
                    _returned(conn)
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"the audit database cannot be used: {exc}") from exc

    @contextlib.contextmanager
    def snapshot(self):
        """This thread's statements read one moment of the database (REPEATABLE READ, read only)
        without the write lock a BEGIN takes here: a long read (audit/copy.py) stops no writer.
        The moment is taken by the first statement: the SELECT, now."""
        self._pin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1")
        try:
            yield
        finally:
            self._end(ROLLBACK)  # it wrote nothing

    def _begin(self):
        return self._pin(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")  # one round trip

    def _pin(self, begin: str):
        """A connection of the pool kept by this thread for its transaction, begun with `begin`."""
        try:
            conn = self.pool.getconn()
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"the audit database cannot be reached: {exc}") from exc
        self._local.conn = conn
        try:
            return conn.execute(begin)
        except BaseException:
            self._end(ROLLBACK)
            raise

    def _end(self, statement: str):
        conn, self._local.conn = self._local.conn, None
        try:
            if statement == COMMIT:
                try:
                    return conn.execute(COMMIT)
                except psycopg.OperationalError as exc:
                    raise StorageUnavailable(f"the audit database cannot be written: {exc}") from exc
            with contextlib.suppress(psycopg.Error):  # a lost connection has rolled back already
                conn.execute(ROLLBACK)
        finally:
            _returned(conn)
            self.pool.putconn(conn)


def advance_identities(db: Database) -> None:
    """After rows were loaded with their own ids (audit/copy.py): each identity column continues after
    the largest id, as SQLite's rowid would."""
    for table, column in db.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall():
        db.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce(max({column}), 0) + 1, false) "
            f"FROM {table}"
        )


_held: dict[int, tuple[str, psycopg.Connection]] = {}  # lock key -> (url, connection holding it)


def exclusive(url: str, key: int) -> bool:
    """Take session advisory lock `key` for the rest of this process (released when it ends, even
    killed: the server sees the connection close); False when another process on any machine holds it."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"the audit database cannot be reached: {exc}") from exc
    try:
        taken = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
    except psycopg.Error as exc:
        conn.close()
        raise StorageUnavailable(f"the audit database cannot be used: {exc}") from exc
    if taken:
        _held[key] = (url, conn)
        return True
    conn.close()
    return False


def still_holds(key: int) -> bool:
    """Whether this process still holds lock `key` of `exclusive`. A restart or failover of the server,
    an idle-connection reaper or a network fault closes the session and frees its lock, which another
    machine may then take: a lost lock is taken again if free, else False."""
    url, conn = _held[key]
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        conn.close()
        del _held[key]
    return exclusive(url, key)


def _returned(conn: psycopg.Connection) -> None:
    conn._leadgate_used = time.monotonic()


def _check(conn: psycopg.Connection) -> None:
    """Make sure a connection still works before it is lent, unless it worked a moment ago: a round trip
    per statement would cost more than the statement (a server restarted within that moment costs one
    request its connection, answered 503, and the pool replaces it)."""
    if time.monotonic() - getattr(conn, "_leadgate_used", 0.0) > CHECK_AFTER_IDLE_S:
        ConnectionPool.check_connection(conn)


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", NumberLoader)
    conn.adapters.register_loader("json", TextLoader)  # JSON as its text, as SQLite's JSON functions give it


def _values(params):
    # SQLite stores True as 1: so do the integer columns here, and the hashes over them agree.
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


# -- the dialect -------------------------------------------------------------------------------------

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {}  # filled by audit.pgschema from the schema it creates
_IS = re.compile(r"\bIS( NOT)? (%s|'[^']*')", re.IGNORECASE)
_OR = re.compile(r"^\s*INSERT OR (IGNORE|REPLACE) INTO (\w+) \(([^)]*)\)", re.IGNORECASE)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
# SQLite JSON function -> its PostgreSQL form, `{}` standing for the call's arguments
_JSON = {
    "json_group_array": "coalesce(json_agg({}), '[]')",
    "json_group_object": "coalesce(json_object_agg({}), '{{}}')",
    "json_array": "json_build_array({})",
    "json": "CAST({} AS json)",
}
_CALL = re.compile(r"\b(" + "|".join(sorted(_JSON, key=len, reverse=True)) + r")\(", re.IGNORECASE)
_DERIVED = re.compile(r"\b(FROM|JOIN)\s*\(\s*SELECT\b", re.IGNORECASE)
_NAMED_AFTER = re.compile(
    r"\s*(AS\b|(?!(WHERE|LEFT|JOIN|INNER|CROSS|ON|ORDER|GROUP|LIMIT|UNION)\b)[A-Za-z_])", re.IGNORECASE
)


def _closing(sql: str, start: int) -> int:
    """The index of the parenthesis closing the one at `start` (the audit modules' SQL has no
    parentheses inside string literals where these rewrites apply)."""
    depth = 0
    for i in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses in {sql!r}")


def _functions(sql: str) -> str:
    """SQLite's JSON builders (_JSON) as PostgreSQL's, nested calls included."""
    out, at = [], 0
    while m := _CALL.search(sql, at):
        end = _closing(sql, m.end() - 1)
        out.append(sql[at : m.start()])
        out.append(_JSON[m.group(1).lower()].format(_functions(sql[m.end() : end])))
        at = end + 1
    return "".join(out) + sql[at:]


def _derived_names(sql: str) -> str:
    """A name (`AS _qN`) for each subquery in FROM or JOIN that has none."""
    out, at, n = [], 0, 0
    while m := _DERIVED.search(sql, at):
        paren = sql.index("(", m.start())
        end = _closing(sql, paren)
        out.append(sql[at : paren + 1] + _derived_names(sql[paren + 1 : end]) + ")")
        at = end + 1
        if not _NAMED_AFTER.match(sql, at):
            n += 1
            out.append(f" AS _q{n}")
    return "".join(out) + sql[at:]


# Bounded: a multi-row INSERT (audit.rows.insert_many) has one text per row count, up to a thousand a
# table, and each kept forever held ~25 MiB per worker for the events alone.
@lru_cache(maxsize=512)
def translate(sql: str) -> str | None:
    """The PostgreSQL form of one statement of the audit modules (None: nothing to run)."""
    head = sql.lstrip().upper()
    if head.startswith("PRAGMA"):
        return None
    if head.startswith("BEGIN"):
        return BEGIN
    if head.rstrip(" ;") in (COMMIT, "END", ROLLBACK):
        return ROLLBACK if head.startswith(ROLLBACK) else COMMIT
    out = sql.replace("%", "%%").replace("?", "%s")
    out = _NAMED.sub(r"%(\1)s", out)
    out = _derived_names(_functions(out))
    out = _IS.sub(lambda m: f"IS {'' if m.group(1) else 'NOT '}DISTINCT FROM {m.group(2)}", out)
    out = re.sub(r"json_each\(%s\)", "json_array_elements_text(CAST(%s AS json)) AS j(value)", out)
    conflict = _OR.match(out)
    if conflict:
        verb, table, columns = conflict.groups()
        out = "INSERT INTO" + out[out.upper().index(" INTO") + 5 :]
        if verb.upper() == "IGNORE":
            out += " ON CONFLICT DO NOTHING"
        else:
            key = PRIMARY_KEYS[table]
            names = [c.strip() for c in columns.split(",")]
            updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in key)
            out += f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    return out

"""Backups that are proven before they are trusted, and restores that check before they replace.

`backup` copies the live file with SQLite's online backup API (one step: a consistent snapshot,
taken while the workers keep writing; WAL readers do not block writers), then opens the copy and
checks it the way a restore would: `PRAGMA integrity_check`, the hash chain and everything derived
from it, and a checkpoint signed on the live file just before the copy began, which the copy must
match (so every decision acknowledged before the backup is in it). It says what the copy holds, and
leaves a checkpoint of the copy's head beside it (`<DEST>.checkpoint`), which `restore` checks.

The key file is not in the copy (nothing that signs or tokenises lives in the database): without
it a restored file still verifies, but lead tokens, review sessions and checkpoints signed before
cannot be checked and kept personal values cannot be matched to their tokens. It is copied, 0600,
only where asked (`key_to`): keep it in another place than the database's backups.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

from .backends import is_postgres
from .errors import AuditError
from .secrets import Secrets
from .trail import AuditTrail

# SQLite's online backup copies a file; a PostgreSQL trail is backed up by the server's own tools.
POSTGRES = (
    "backup and restore copy a SQLite file; a PostgreSQL trail is backed up with pg_dump or base "
    "backups with WAL archiving (docs/deploy.md), and `leadgate audit copy` moves a SQLite backup into it"
)


class BackupError(AuditError):
    """A backup or restore that cannot be made, or a copy that does not verify."""


def _copy(source: sqlite3.Connection, dest: Path) -> None:
    """SQLite's online backup of `source` into a new file at `dest` (0600), synced to disk."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    target = sqlite3.connect(str(dest))
    try:
        source.backup(target)  # pages=-1: one step, one snapshot
    finally:
        target.close()
    with open(dest, "rb+") as f:
        os.fsync(f.fileno())


def _checked(path: Path, secrets: Secrets, statements=(), source_digest=None) -> dict:
    """Open a copy and check it: (summary of what it holds), or BackupError naming every problem."""
    with contextlib.closing(sqlite3.connect(str(path))) as raw:
        integrity = [row[0] for row in raw.execute("PRAGMA integrity_check").fetchall()]
    if integrity != ["ok"]:
        raise BackupError(f"{path} fails PRAGMA integrity_check: {'; '.join(integrity[:5])}")
    with AuditTrail(path, secrets=secrets) as copy:
        problems = copy.verify(statements, None, source_digest)
        if problems:
            raise BackupError(f"{path} does not verify: " + "; ".join(problems[:10]))
        summary = holds(copy)
        summary["checkpoint"] = copy.checkpoint()
    return summary


def holds(trail: AuditTrail) -> dict:
    """What a trail holds: decisions, leads, links, the head and the newest record, its size."""
    one = trail._read(
        "SELECT (SELECT count(*) FROM decisions WHERE kind = 'decision') AS decisions, "
        "(SELECT count(*) FROM decisions WHERE kind = 'preview') AS previews, "
        "(SELECT count(*) FROM leads) AS leads, (SELECT count(*) FROM outcomes) AS outcomes, "
        "(SELECT count(*) FROM rulesets) AS ruleset_sources, (SELECT count(*) FROM chain) AS links, "
        "(SELECT max(seq) FROM chain) AS head_seq, (SELECT max(recorded_at) FROM decisions) AS newest"
    )[0]
    return {**one, "bytes": os.path.getsize(trail.path)}


def backup(trail: AuditTrail, dest: str | Path, source_digest=None, key_to: str | Path | None = None) -> dict:
    """Copy the live trail to `dest` (which must not exist), verified; returns what the copy holds."""
    if is_postgres(trail.path):
        raise BackupError(POSTGRES)
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} exists: a backup never overwrites a file")
    before = trail.checkpoint()  # every decision acknowledged until now must be in the copy
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        with trail._lock:  # the trail's connection is shared by threads: none uses it meanwhile
            _copy(trail.db.conn, partial)
        summary = _checked(partial, trail.secrets, [("before the backup", before)], source_digest)
        os.replace(partial, dest)
    except (OSError, sqlite3.Error) as exc:
        raise BackupError(f"the backup {dest} cannot be written: {exc}") from exc
    finally:
        _remove_partial(partial)
    _write_private(Path(f"{dest}.checkpoint"), json.dumps(summary["checkpoint"], sort_keys=True) + "\n")
    summary["covers_checkpoint"] = before["seq"]
    if key_to is not None:
        if trail.secrets.path is None or not trail.secrets.path.exists():
            raise BackupError("this trail has no key file to copy (its secrets come from the environment)")
        _copy_private(trail.secrets.path, Path(key_to))
        summary["key_file"] = str(key_to)
    return summary


def restore(
    source: str | Path,
    target: str | Path,
    key_path: str | Path,
    *,
    force: bool = False,
    source_digest=None,
    key_from: str | Path | None = None,
) -> dict:
    """Bring `target` up from the backup `source`, checked first; refuses to replace an existing file
    unless `force` (stop the service first: its workers hold the old file open). The copy is checked
    with the key file at `key_path`, first copied there from `key_from` when given."""
    if is_postgres(target):
        raise BackupError(POSTGRES)
    source, target, key_path = Path(source), Path(target), Path(key_path)
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: restoring would replace it (stop the service, then --force)")
    if key_from is not None and Path(key_from).resolve() != key_path.resolve():
        if key_path.exists() and key_path.read_bytes() != Path(key_from).read_bytes() and not force:
            raise BackupError(f"{key_path} exists and differs from {key_from}: --force replaces it")
        key_path.unlink(missing_ok=True)
        _copy_private(Path(key_from), key_path)
    if not key_path.exists():
        raise BackupError(
            f"no key file at {key_path}: restore it with the backup (--key-file), or the restored service "
            "cannot check lead tokens, sessions, checkpoints or personal values"
        )
    secrets = Secrets(key_path)
    statements = []
    stamp = Path(f"{source}.checkpoint")
    if stamp.exists():
        statements = [
            (stamp.name, json.loads(line)) for line in stamp.read_text().splitlines() if line.strip()
        ]
    partial = target.with_name(f".{target.name}.restoring")
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as raw:
            _copy(raw, partial)
        summary = _checked(partial, secrets, statements, source_digest)
        for suffix in ("-wal", "-shm"):  # an old log must never be applied to the restored file
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        raise BackupError(f"{source} cannot be restored to {target}: {exc}") from exc
    finally:
        _remove_partial(partial)
    summary["key_file"] = str(key_path)
    return summary


def _remove_partial(partial: Path) -> None:
    """The copy being checked, and what opening it made beside it (its data is in the file), whether
    or not it passed: -wal and -shm, and the write lock's file (audit.writelock)."""
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _copy_private(source: Path, dest: Path) -> None:
    if dest.exists():
        raise BackupError(f"{dest} exists: a key file is never overwritten")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as f:
        shutil.copyfileobj(f, out)
        out.flush()
        os.fsync(out.fileno())

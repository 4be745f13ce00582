"""Retention: old decisions moved to a compressed archive, with the chain still proving every one.

`archive` writes the decisions recorded before a time (zstandard-compressed JSON lines: each row as
stored, every column, with its shadow result and the ruleset sources it names) and removes them from
the live file. Kept live, because something still points at them: each lead's latest decision, those
a hand-off or a reviewer's override refers to.

The chain links stay in the live file (a few hundred bytes each: the proof). The archive itself is a
chained entry (`archives`) holding the digest of the archived range, [seq, decision id, lead id,
payload hash] of every archived link in order, and the `archived` table lists them. So:

- `audit verify` alone proves that exactly the listed decisions are gone, each where its link says,
  and that the list matches the digest the chain holds; the derived rows of their leads need the
  decisions themselves, so they are checked only with the archive;
- `audit verify --archive FILE` also proves the file: each row hashes to its link's payload hash,
  the rows make the chained digest, the sources have their digests, and every derived row of the
  leads is rebuilt from archived and live decisions together.

Personal data: an archive holds what the decisions hold, tokens, never the values (they stay in the
live file's `personal` table). Erasing a lead removes its values there, so its archived tokens can
no longer be matched to anyone: erasure reaches archived decisions without rewriting archives.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import zstandard

from . import chain, compact
from .chain import Break, canonical
from .codec import codec_for
from .errors import AuditError
from .rows import insert, now_iso

FORMAT = 1
# Decisions something still points at stay live, and those the views read (m013: a stage change, an
# assignment, the close of a hand-off); everything else recorded before the time may go.
_CANDIDATES = (
    "SELECT * FROM decisions WHERE recorded_at < ? "
    "AND id NOT IN (SELECT last_decision_id FROM leads WHERE last_decision_id IS NOT NULL) "
    "AND id NOT IN (SELECT decision_id FROM handoffs) AND id NOT IN (SELECT decision_id FROM overrides) "
    "AND id NOT IN (SELECT decision_id FROM stage_history) AND basis IS NULL "
    "AND id NOT IN (SELECT closed_by FROM handoffs WHERE closed_by IS NOT NULL) "
    "ORDER BY seq"
)


class ArchiveError(AuditError):
    """An archive that cannot be made or read."""


def _digest(items: list[list]) -> str:
    """The digest of an archived range: [seq, id, lead id, payload hash] of each link, in order."""
    return hashlib.sha256(canonical(items).encode()).hexdigest()


def _dicts(cursor):
    names = [d[0] for d in cursor.description]
    return (dict(zip(names, row, strict=True)) for row in cursor)


def _holders(db, before: str) -> set[int]:
    """Seqs of the candidates a decision staying live takes its profile and answers from (`$parts`,
    audit.compact): they stay live too."""
    codec, seqs = codec_for(db), set()
    rows = db.execute(
        f"SELECT seq, facts, ruleset_digest FROM decisions WHERE lead_id IN (SELECT lead_id FROM ({_CANDIDATES})) "
        f"AND id NOT IN (SELECT id FROM ({_CANDIDATES}))",
        (before, before),
    )
    for _, facts, digest in rows:
        seqs.add(json.loads(codec.unpack(facts, digest)).get("$parts"))
    return seqs - {None}


def archive(trail, before: str, to: str | Path) -> dict:
    """Archive the decisions recorded before `before` to the file `to` (which must not exist)."""
    to = Path(to)
    if to.exists():
        raise ArchiveError(f"{to} exists: an archive is never overwritten")
    archive_id, items, digests = "arc_" + uuid.uuid4().hex, [], set()
    partial = to.with_name(f".{to.name}.partial")
    with trail._lock:
        try:
            to.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return _archive(trail, before, to, partial, archive_id, items, digests)
        except OSError as exc:
            raise ArchiveError(f"the archive {to} cannot be written: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)


def _archive(trail, before: str, to: Path, partial: Path, archive_id: str, items: list, digests: set) -> dict:
    db = trail.db
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, zstandard.ZstdCompressor(level=10).stream_writer(raw) as out:

        def line(value) -> None:
            out.write((json.dumps(value, ensure_ascii=False, sort_keys=True) + "\n").encode())

        line({"leadgate_archive": FORMAT, "id": archive_id, "before": before, "created_at": now_iso()})
        holders = _holders(db, before)
        for row in _dicts(db.execute(_CANDIDATES, (before,))):
            if row["seq"] in holders:
                continue
            link = db.execute("SELECT ref, payload_hash FROM chain WHERE seq = ?", (row["seq"],)).fetchone()
            if link is None or link[0] != row["id"]:
                raise ArchiveError(f"decision {row['id']} has no link in the chain: run `audit verify`")
            items.append([row["seq"], row["id"], row["lead_id"], chain.hex_of(link[1])])
            digests.add(row["ruleset_digest"])
            # The documents as text (the hash covers their text), and the facts rebuilt from the events
            # they refer to, so the archive replays without the live file.
            text = codec_for(db).text_row(row)
            line({"decision": text, "facts": compact.facts_of(db, row, text["facts"])})
            shadows = db.execute("SELECT * FROM shadow_decisions WHERE decision_id = ?", (row["id"],))
            for shadow in _dicts(shadows):
                digests.add(shadow["ruleset_digest"])
                line({"shadow": shadow})
        if not items:
            raise ArchiveError(f"no decision recorded before {before} can be archived")
        for digest in sorted(digests - {None}):
            for source in _dicts(db.execute("SELECT * FROM rulesets WHERE digest = ?", (digest,))):
                line({"ruleset": source})
        line({"count": len(items), "digest": _digest(items)})
        out.flush(zstandard.FLUSH_FRAME)
        raw.flush()
        os.fsync(raw.fileno())
    ids = json.dumps([item[1] for item in items])
    with trail._transaction() as db:
        # Decisions never change; what points at them may have, since they were read.
        still = db.execute(
            f"SELECT count(*) FROM ({_CANDIDATES}) WHERE id IN (SELECT value FROM json_each(?))",
            (before, ids),
        ).fetchone()[0]
        if still != len(items) or _holders(db, before) & {item[0] for item in items}:
            raise ArchiveError("decisions changed while they were being archived: run it again")
        head = {
            "id": archive_id,
            "at": now_iso(),
            "before": before,
            "file": to.name,
            "count": len(items),
            "first_seq": items[0][0],
            "last_seq": items[-1][0],
            "digest": _digest(items),
        }
        chain.append_entry(db, "archive", head)
        for seq, ref, lead_id, _ in items:
            insert(db, "archived", {"ref": ref, "seq": seq, "lead_id": lead_id, "archive_id": archive_id})
        db.execute(
            "DELETE FROM shadow_decisions WHERE decision_id IN (SELECT value FROM json_each(?))", (ids,)
        )
        db.execute("DELETE FROM decisions WHERE id IN (SELECT value FROM json_each(?))", (ids,))
        kept = db.execute("SELECT count(*) FROM decisions WHERE recorded_at < ?", (before,)).fetchone()[0]
    os.replace(partial, to)
    # The archived rows' pages are freed: fold the log in (VACUUM then gives the space back to the disk).
    trail.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "id": archive_id,
        "count": len(items),
        "bytes": to.stat().st_size,
        "ruleset_sources": len(digests - {None}),
        "kept": kept,
    }


def read(path: str | Path) -> dict:
    """An archive file: {header, decisions, shadows, rulesets, trailer}; ArchiveError if unreadable."""
    found = {"header": None, "decisions": [], "shadows": [], "rulesets": [], "trailer": None}
    try:
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
            text = stream.read().decode()
        for number, line in enumerate(text.splitlines(), 1):
            value = json.loads(line)
            if number == 1:
                found["header"] = value
            elif "decision" in value:
                found["decisions"].append(value["decision"])
            elif "shadow" in value:
                found["shadows"].append(value["shadow"])
            elif "ruleset" in value:
                found["rulesets"].append(value["ruleset"])
            else:
                found["trailer"] = value
    except (OSError, ValueError, zstandard.ZstdError) as exc:
        raise ArchiveError(f"{path} is not a readable leadgate archive: {exc}") from exc
    if not isinstance(found["header"], dict) or found["header"].get("leadgate_archive") != FORMAT:
        raise ArchiveError(f"{path} is not a leadgate archive (format {FORMAT})")
    return found


class Archived:
    """What verify learns of archived decisions: problems, the refs that may be gone, the leads whose
    derived rows cannot be rebuilt (no archive given), and the archived rows it was given."""

    def __init__(self):
        self.breaks: list[Break] = []
        self.refs: set[str] = set()
        self.unseen_leads: set[str] = set()
        self.rows: list[dict] = []


def verify(db, files=(), source_digest=None) -> Archived:
    """Check the live file's archived ranges against their chained digests, and each archive file."""
    found = Archived()
    chained = {r["id"]: r for r in _dicts(db.execute("SELECT * FROM archives ORDER BY seq"))}
    listed: dict[str, list[list]] = {archive_id: [] for archive_id in chained}
    for row in _dicts(
        db.execute(
            "SELECT a.archive_id, a.seq, a.ref, a.lead_id, c.ref AS link_ref, c.payload_hash "
            "FROM archived a LEFT JOIN chain c ON c.seq = a.seq ORDER BY a.seq"
        )
    ):
        if row["link_ref"] != row["ref"]:
            found.breaks.append(Break(row["seq"], row["ref"], "an archived decision no link records"))
        listed.setdefault(row["archive_id"], []).append(
            [row["seq"], row["ref"], row["lead_id"], chain.hex_of(row["payload_hash"])]
        )
        found.refs.add(row["ref"])
    for archive_id, items in listed.items():
        head = chained.get(archive_id)
        if head is None:
            found.breaks.append(
                Break(
                    None, archive_id, "decisions listed as archived by an archive the chain does not record"
                )
            )
        elif len(items) != head["count"] or _digest(items) != head["digest"]:
            found.breaks.append(
                Break(
                    head["seq"],
                    archive_id,
                    "the list of its archived decisions no longer matches its chained digest",
                )
            )
    still = db.execute("SELECT id, seq FROM decisions WHERE id IN (SELECT ref FROM archived)").fetchall()
    found.breaks += [Break(seq, ref, "archived, yet still in the live file") for ref, seq in still]
    given = set()
    for path in files:
        given.add(_verify_file(db, path, chained, listed, source_digest, found))
    found.unseen_leads = {
        item[2] for archive_id, items in listed.items() if archive_id not in given for item in items
    }
    return found


def _verify_file(db, path, chained, listed, source_digest, found: Archived) -> str | None:
    name = Path(path).name
    try:
        content = read(path)
    except ArchiveError as exc:
        found.breaks.append(Break(None, name, str(exc)))
        return None
    archive_id = content["header"].get("id")
    head = chained.get(archive_id)
    if head is None:
        found.breaks.append(Break(None, name, f"archive {archive_id} is not recorded in this trail's chain"))
        return None
    items = []
    for row in content["decisions"]:
        link = db.execute(
            "SELECT ref, payload_hash, payload_format FROM chain WHERE seq = ?", (row.get("seq"),)
        ).fetchone()
        kind = row.get("kind") if row.get("kind") in ("decision", "preview") else "decision"
        payload = chain.payload_hash(kind, row, link[2] if link else None)
        if link is None or link[0] != row.get("id") or payload != chain.hex_of(link[1]):
            found.breaks.append(
                Break(row.get("seq"), row.get("id"), f"{name}: the archived decision was edited")
            )
        items.append([row.get("seq"), row.get("id"), row.get("lead_id"), payload])
    if _digest(items) != head["digest"] or items != listed.get(archive_id):
        found.breaks.append(
            Break(
                head["seq"], archive_id, f"{name}: its decisions are not the archived range the chain records"
            )
        )
    known = {r["digest"] for r in content["rulesets"]}
    for source in content["rulesets"]:
        if source_digest is not None and source_digest(source["source"]) != source["digest"]:
            found.breaks.append(Break(None, source["digest"], f"{name}: a ruleset source was edited"))
    live = {r[0] for r in db.execute("SELECT digest FROM rulesets")}
    for row in content["decisions"]:
        if row.get("ruleset_digest") not in known | live:
            found.breaks.append(
                Break(row.get("seq"), row.get("id"), f"{name}: the ruleset source it names is missing")
            )
    found.rows += content["decisions"]
    return archive_id


def listing(trail) -> list[dict]:
    """The archives recorded in this trail, oldest first."""
    return trail._read("SELECT id, at, before, file, count, first_seq, last_seq FROM archives ORDER BY seq")

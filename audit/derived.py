"""What verify recomputes: every table derived from chained entries, rebuilt from them and compared.

The chain proves the chained rows (decisions, outcomes, erasures, reloads, key changes). The tables
that change what a lead or a key means are not chained themselves; they are a function of the chained
rows, so verify rebuilds them the way the write path does and names every difference:

- `leads` (stage, last decision, ruleset, channel, profile, answers, the seq of its open hand-off)
  from the lead's decisions and any later erasure; `events` from the facts of the decisions that
  first carried them;
  `stage_history` (a view over the decisions' chained stages since m013, compared all the same)
  from the sequence of stages; `handoffs` from routes with an SLA and the outcomes
  that acted on them; `assignments` from the assignment each decision replied with (both views over
  columns of the decisions outside the chain since m013: these columns are what is compared);
- `api_keys` from the latest chained snapshot of each key;
- `personal`: each kept value must still be what its token (an HMAC under the key file's secret) was
  made from;
- `rulesets`: each stored source must still have the digest decisions name (the digest function is
  the engine's, passed in by the caller: the audit package does not parse rulesets).
"""

from __future__ import annotations

import heapq
import json

from .chain import Break
from .codec import codec_for
from .compact import event_of, expanded, held, intact, summary
from .leads import event_key, lead_row
from .personal import PREFIX
from .rows import dumps


def erased_profile(profile: dict, fields) -> dict:
    """A profile after an erasure: personal fields and every tokenised value gone."""
    return {
        k: v
        for k, v in profile.items()
        if k not in fields and not (isinstance(v, str) and v.startswith(PREFIX))
    }


def _rows(db, sql: str, params=()):
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


class _Lead:
    def __init__(self):
        self.lead: dict | None = None
        self.events: dict[str, dict] = {}
        self.history: list[tuple] = []
        self.handoffs: list[dict] = []
        self.assignments: list[tuple] = []
        self.open_seq: int | None = None  # the seq of the decision that opened the open hand-off
        self.problems: list[tuple[str, str]] = []  # (decision id, message)
        self.parts: dict[
            int, tuple[str, str]
        ] = {}  # seq -> (id, its profile and answers as text) of a holder


def _linked(table: str, where: str) -> str:
    """The rows of `table` that a link of the chain records (an unlinked row is verify's to name)."""
    return f"SELECT d.* FROM {table} d JOIN chain c ON c.ref = d.id WHERE {where} ORDER BY d.seq"


def rebuild(db, personal_fields, archived=()) -> dict[str, _Lead]:
    """Every lead's derived rows, replayed from its chained decisions, outcomes and erasures (and the
    `archived` decision rows read from archive files, checked against the chain by audit/archive.py)."""
    stream = heapq.merge(
        ((r["seq"], "decision", r) for r in _rows(db, _linked("decisions", "d.kind = 'decision'"))),
        (
            (r["seq"], "decision", r)
            for r in sorted(archived, key=lambda r: r["seq"])
            if r["kind"] == "decision"
        ),
        ((r["seq"], "outcome", r) for r in _rows(db, _linked("outcomes", "c.kind = 'outcome'"))),
        ((r["seq"], "erasure", r) for r in _rows(db, _linked("erasures", "c.kind = 'erasure'"))),
        key=lambda item: item[0],
    )
    leads: dict[str, _Lead] = {}
    codec = codec_for(db)
    for _, kind, row in stream:
        state = leads.setdefault(row["lead_id"], _Lead())
        if kind == "decision":
            _decided(state, codec.text_row(row))
        elif kind == "outcome":
            for handoff in state.handoffs:
                if (
                    handoff["acted_at"] is None
                    and handoff["closed_at"] is None
                    and handoff["at"] <= row["at"]
                ):
                    handoff.update(acted_at=row["at"], acted_by=row["type"])
        elif state.lead is not None:
            profile = erased_profile(json.loads(state.lead["profile"]), personal_fields)
            state.lead.update(profile=dumps(profile), updated_at=row["at"])
    return leads


def _decided(state: _Lead, row: dict) -> None:
    doc, decision = json.loads(row["facts"]), json.loads(row["decision"])
    # Facts stored by reference (audit.compact) are rebuilt from the chained `$new` lists of the
    # lead's decisions so far, never from `events` (which is what they prove).
    facts, holder = doc, None
    if "$facts" in doc:
        stored = [event_of(k, e["type"], e["at"], e["properties"]) for k, e in state.events.items()]
        holder, parts = state.parts.get(doc.get("$parts"), (None, "{}"))
        facts = expanded(doc, stored, json.loads(parts))
    if "$parts" not in doc:
        state.parts[row["seq"]] = (row["id"], dumps(held(doc)))
    if not intact(doc, facts):
        where = f" (profile and answers of {holder or 'a decision that is gone'})" if "$parts" in doc else ""
        state.problems.append(
            (row["id"], f"the facts it was evaluated with differ from those it refers to{where}")
        )
    if row.get("summary") != summary(decision):
        state.problems.append((row["id"], "its summary differs from its reply (decisions.summary)"))
    at, before = row["recorded_at"], state.lead["stage"] if state.lead else None
    state.lead = {
        "created_at": state.lead["created_at"] if state.lead else at,
        **lead_row(row["lead_id"], facts, decision, row["id"], at, row["channel"]),
    }
    for e in facts.get("events", []):
        state.events.setdefault(
            event_key(e),
            {
                "type": e["type"],
                "at": e["at"],
                "properties": dumps(e.get("properties") or {}),
                "first_seen_at": at,
                "decision_id": row["id"],
            },
        )
    if before != decision["stage"]:
        state.history.append((at, before, decision["stage"], row["id"]))
    route, evaluated = decision["route"], decision["evaluated_at"]
    current = next((h for h in reversed(state.handoffs) if h["closed_at"] is None), None)
    if current is None or current["route"] != route["id"]:
        if current is not None:
            current["closed_at"] = evaluated
        state.open_seq = row["seq"] if route.get("due_at") else None
        if route.get("due_at"):
            state.handoffs.append(
                {
                    "decision_id": row["id"],
                    "route": route["id"],
                    "destination": route["destination"],
                    "team": route.get("team"),
                    "at": evaluated,
                    "due_at": route["due_at"],
                    "acted_at": None,
                    "acted_by": None,
                    "closed_at": None,
                }
            )
    state.lead["handoff_seq"] = state.open_seq  # the lead's row carries it (the open_handoffs view)
    assigned = decision.get("assignment")
    if assigned and assigned["basis"] != "lead_owner":  # keeping the lead's owner writes no row
        state.assignments.append(
            (assigned["team"], assigned["owner"], assigned["basis"], evaluated, row["id"])
        )


def verify(db, personal_fields, archived=(), unseen=frozenset()) -> list[Break]:
    """Every derived row that differs from what the chained entries say, named by lead and entry.

    `unseen`: leads with archived decisions whose archive was not given; their rows are not compared."""
    breaks: list[Break] = []
    leads = {k: v for k, v in rebuild(db, personal_fields, archived).items() if k not in unseen}
    seq_of = dict(db.execute("SELECT id, seq FROM decisions").fetchall())

    def named(decision_id, message):
        return Break(seq_of.get(decision_id), decision_id, message)

    stored_leads = {r["lead_id"]: r for r in _rows(db, "SELECT * FROM leads") if r["lead_id"] not in unseen}
    for lead_id in sorted(set(stored_leads) | {k for k, v in leads.items() if v.lead}):
        want, have = (leads.get(lead_id) or _Lead()).lead, stored_leads.get(lead_id)
        if have is None:
            breaks.append(named(want["last_decision_id"], f"lead {lead_id} is gone from leads (deleted)"))
        elif want is None:
            breaks.append(Break(None, lead_id, f"lead {lead_id} has no decision behind it (inserted)"))
        else:
            for column, value in want.items():
                if have.get(column) != value:
                    breaks.append(
                        named(
                            want["last_decision_id"],
                            f"leads.{column} of {lead_id} is {have.get(column)!r}, its entries say {value!r}",
                        )
                    )
    breaks += [named(ref, message) for state in leads.values() for ref, message in state.problems]
    breaks += _events(db, leads, named, unseen)
    breaks += _lists(db, leads, named, unseen)
    breaks += _keys(db)
    return breaks


def _events(db, leads, named, unseen) -> list[Break]:
    breaks = []
    stored: dict[tuple, dict] = {
        (r.pop("lead_id"), r.pop("event_id")): r
        for r in _rows(db, "SELECT * FROM events")
        if r["lead_id"] not in unseen
    }
    wanted = {(lead_id, k): e for lead_id, state in leads.items() for k, e in state.events.items()}
    for key in sorted(set(stored) | set(wanted)):
        lead_id, event_id = key
        want, have = wanted.get(key), stored.get(key)
        if have is None:
            breaks.append(named(want["decision_id"], f"event {event_id} of {lead_id} is gone (deleted)"))
        elif want is None:
            breaks.append(
                Break(None, lead_id, f"event {event_id} of {lead_id}: no decision carried it (inserted)")
            )
        elif have != want:
            changed = ", ".join(c for c in want if have.get(c) != want[c])
            breaks.append(named(want["decision_id"], f"event {event_id} of {lead_id} was edited ({changed})"))
    return breaks


# table -> (the stored rows' columns compared, in the order written, and where its lead's list is kept)
LISTS = {
    "stage_history": ("at, from_stage, to_stage, decision_id", "history"),
    "handoffs": (
        "decision_id, route, destination, team, at, due_at, acted_at, acted_by, closed_at",
        "handoffs",
    ),
    "assignments": ("team, owner, basis, at", "assignments"),
}


def _lists(db, leads, named, unseen) -> list[Break]:
    """stage_history, handoffs and assignments: per lead, in order, as the entries produced them."""
    breaks = []
    for table, (columns, attribute) in LISTS.items():
        stored: dict[str, list] = {}
        for row in db.execute(f"SELECT lead_id, {columns} FROM {table} ORDER BY id"):
            if row[0] not in unseen:
                stored.setdefault(row[0], []).append(tuple(row[1:]))
        for lead_id in sorted(set(stored) | set(leads)):
            # (compared values, the decision that produced them)
            want = [_compared(item, table) for item in getattr(leads.get(lead_id) or _Lead(), attribute)]
            have = stored.get(lead_id, [])
            if have == [w for w, _ in want]:
                continue
            for i in range(max(len(have), len(want))):
                where = f"{table} of {lead_id}, row {i + 1}"
                if i >= len(have):
                    breaks.append(named(want[i][1], f"{where} is gone (deleted)"))
                elif i >= len(want):
                    breaks.append(Break(None, lead_id, f"{where} has no entry behind it (inserted)"))
                elif have[i] != want[i][0]:
                    breaks.append(named(want[i][1], f"{where} is {have[i]}, its entries say {want[i][0]}"))
    return breaks


def _compared(item, table: str) -> tuple[tuple, str]:
    if table == "stage_history":
        return item, item[3]
    if table == "handoffs":
        return tuple(item.values()), item["decision_id"]
    return item[:4], item[4]


def _keys(db) -> list[Break]:
    breaks = []
    latest: dict[str, tuple[int, str, str]] = {}
    for seq, event_id, key_id, snapshot in db.execute(
        "SELECT seq, id, key_id, snapshot FROM key_events ORDER BY seq"
    ):
        latest[key_id] = (seq, event_id, snapshot)
    stored = {r["id"]: r for r in _rows(db, "SELECT * FROM api_keys")}
    for key_id in sorted(set(stored) | set(latest)):
        if key_id not in latest:
            breaks.append(Break(None, key_id, f"key {key_id} has no chained creation (inserted)"))
            continue
        seq, event_id, snapshot = latest[key_id]
        if key_id not in stored:
            breaks.append(Break(seq, event_id, f"key {key_id} is gone from api_keys (deleted)"))
            continue
        want, have = json.loads(snapshot), stored[key_id]
        # A column added after the snapshot reads as NULL in it (a migration that fills a new column
        # with something else must chain a fresh snapshot of every key: `chain.snapshot`).
        changed = ", ".join(
            f"{c} is {have.get(c)!r}, chained {want.get(c)!r}"
            for c in sorted(set(want) | set(have))
            if have.get(c) != want.get(c)
        )
        if changed:
            breaks.append(Break(seq, event_id, f"key {key_id} was changed outside the trail: {changed}"))
    return breaks


def sources(db, digest_of) -> list[Break]:
    """Every stored ruleset source whose content no longer has its digest (decisions replay it)."""
    return [
        Break(
            None, digest, f"the source of ruleset {name} v{version} was edited: it no longer has its digest"
        )
        for digest, name, version, source in db.execute("SELECT digest, name, version, source FROM rulesets")
        if digest_of(source) != digest
    ]


def personal_values(db, personal) -> list[Break]:
    """Every kept personal value that is not what its token was made from (edited after the fact)."""
    return [
        Break(
            None,
            lead_id,
            f"a personal value of {lead_id} ({field}) was edited: it no longer matches its token",
        )
        for token, lead_id, field, value in db.execute("SELECT token, lead_id, field, value FROM personal")
        if personal.token(field, str(value)) != token
    ]

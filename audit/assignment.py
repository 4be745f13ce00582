"""Assigning a hand-off to a person: the lead's owner, its company's owner, then weighted round robin.

Runs inside the decision's write transaction (BEGIN IMMEDIATE), so concurrent requests from every
worker see each other's assignments: the counts stay fair and the caps hold. Round robin picks the
available member under their cap with the fewest assignments this period per unit of weight (on a
tie the heavier, then the first in the file), so a member of weight 2 gets two leads for every one of
a member of weight 1.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the audit stores what the engine's teams file says; it does not load it
    from engine.teams import Teams

ASSIGNED = ("sales", "qualification")  # destinations where a person takes the lead
# The lead's owner, the company's owner and this period's counts per member, as columns of one
# SELECT: on their own (OWNERS) or read with the lead under the write lock (audit.unit). They read the
# two tables under the view `assignments` (audit.views) each on its own index: through the view,
# SQLite built a temporary index over its rows on every read (a third of the time, under the lock).
_LATEST = """(SELECT owner FROM (
     SELECT owner, seq AS id FROM decisions WHERE {column} = :{param} AND team = :team AND basis IS NOT NULL
       AND owner IS NOT NULL
     UNION ALL
     SELECT owner, id FROM assignments_before WHERE {column} = :{param} AND team = :team AND owner IS NOT NULL) AS made
   ORDER BY id DESC LIMIT 1)"""
OWNER_COLUMNS = f"""
  {_LATEST.format(column="lead_id", param="lead")},
  {_LATEST.format(column="domain", param="domain")},
  (SELECT json_group_object(owner, n) FROM (SELECT owner, sum(n) AS n FROM (
     SELECT owner, count(*) AS n FROM decisions WHERE team = :team AND period = :period
       AND basis IS NOT NULL AND owner IS NOT NULL GROUP BY owner
     UNION ALL
     SELECT owner, count(*) FROM assignments_before WHERE team = :team AND period = :period
       AND owner IS NOT NULL GROUP BY owner) AS made
   GROUP BY owner) AS counted)
"""
OWNERS = f"SELECT {OWNER_COLUMNS}"


def period_of(at: str, period: str) -> str:
    day = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.date().isoformat()


def wanted(teams: Teams, lead_id: str, decision: dict, domain: str | None) -> dict | None:
    """What the assignment of a decision reads (OWNER_COLUMNS' parameters); None where none applies."""
    route = decision["route"]
    members = teams.teams.get(route.get("team") or "")
    if not decision["is_lead"] or route["destination"] not in ASSIGNED or not members:
        return None
    return {
        "lead": lead_id,
        "team": route["team"],
        "domain": domain if domain and domain not in teams.personal_domains else None,
        "period": period_of(decision["evaluated_at"], teams.period),
    }


def assign(
    db,
    teams: Teams,
    lead_id: str,
    decision: dict,
    domain: str | None,
    pending: dict[str, list[dict]],
    read: tuple[dict, tuple] | None = None,
) -> dict | None:
    """The assignment for a decision; None where none applies. It is stored in the decision's own row
    when the decision is recorded (audit.recording, the `assignments` view): until then it waits in
    `pending` (lead id -> its assignments made in this transaction, in order), which the next
    assignment in the same transaction counts too. `read`: (parameters, values) of OWNER_COLUMNS as
    read already in this transaction, used when the parameters are this assignment's."""
    params = wanted(teams, lead_id, decision, domain)
    if params is None:
        return None
    team, domain, period = params["team"], params["domain"], params["period"]
    members = teams.teams[team]
    by_id = {m.id: m for m in members}
    # One statement (or none, read with the lead): the lead's owner, the company's owner and this
    # period's counts per member.
    values = read[1] if read is not None and read[0] == params else db.execute(OWNERS, params).fetchone()
    lead_owner, domain_owner, counted = values
    counts = json.loads(counted)
    for lead, made in pending.items():  # made in this transaction, not recorded yet
        for m in made:
            if m["team"] != team or m["owner"] is None:
                continue
            lead_owner = m["owner"] if lead == lead_id else lead_owner
            domain_owner = m["owner"] if domain and m["domain"] == domain else domain_owner
            if m["period"] == period:
                counts[m["owner"]] = counts.get(m["owner"], 0) + 1

    def available(owner):
        member = by_id.get(owner) if owner else None
        return member if member is not None and member.available else None

    current = available(lead_owner)
    if current is not None:
        return _reply(team, current, "lead_owner", "already owns this lead")
    company = available(domain_owner) if domain else None
    if company is not None:
        choice = _reply(team, company, "domain_owner", f"owns the company {domain}")
    else:
        eligible = [m for m in members if m.available and (m.cap is None or counts.get(m.id, 0) < m.cap)]
        if not eligible:
            choice = {
                "team": team,
                "owner": None,
                "name": None,
                "basis": "none",
                "reason": "every member is away or at their cap: the team's queue takes it",
            }
        else:
            member = min(eligible, key=lambda m: (counts.get(m.id, 0) / m.weight, -m.weight))
            n = counts.get(member.id, 0) + 1
            cap = f" of {member.cap}" if member.cap is not None else ""
            choice = _reply(
                team,
                member,
                "round_robin",
                f"round robin: lead {n}{cap} this {teams.period}, weight {member.weight:g}",
            )
    pending.setdefault(lead_id, []).append(
        {"team": team, "owner": choice["owner"], "domain": domain, "period": period}
    )
    return choice


def _reply(team: str, member, basis: str, reason: str) -> dict:
    return {"team": team, "owner": member.id, "name": member.name, "basis": basis, "reason": reason}


def counts(trail, team: str, period: str) -> dict[str, int]:
    return {
        r["owner"]: r["n"]
        for r in trail._read(
            "SELECT owner, count(*) AS n FROM assignments WHERE team = ? AND period = ? AND owner IS NOT NULL GROUP BY owner",
            (team, period),
        )
    }

"""Assigning a hand-off to a person: the lead's owner, its company's owner, then weighted round robin.

Runs inside the decision's write transaction (BEGIN IMMEDIATE), so concurrent requests from every
worker see each other's assignments: the counts stay fair and the caps hold. Round robin picks the
available member under their cap with the fewest assignments this period per unit of weight (on a
tie the heavier, then the first in the file), so a member of weight 2 gets two leads for every one of
a member of weight 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .rows import insert, now_iso

if TYPE_CHECKING:  # the audit stores what the engine's teams file says; it does not load it
    from engine.teams import Teams

ASSIGNED = ("sales", "qualification")  # destinations where a person takes the lead


def period_of(at: str, period: str) -> str:
    day = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.date().isoformat()


def assign(db, teams: Teams, lead_id: str, decision: dict, domain: str | None) -> dict | None:
    """The assignment for a decision, recorded in the caller's transaction; None where none applies."""
    route = decision["route"]
    members = teams.teams.get(route.get("team") or "")
    if not decision["is_lead"] or route["destination"] not in ASSIGNED or not members:
        return None
    team, at = route["team"], decision["evaluated_at"]
    period = period_of(at, teams.period)
    by_id = {m.id: m for m in members}

    def owner_of(where: str, value: str):
        row = db.execute(
            f"SELECT owner FROM assignments WHERE {where} = ? AND team = ? AND owner IS NOT NULL ORDER BY id DESC LIMIT 1",
            (value, team),
        ).fetchone()
        member = by_id.get(row[0]) if row else None
        return member if member is not None and member.available else None

    current = owner_of("lead_id", lead_id)
    if current is not None:
        return _reply(team, current, "lead_owner", "already owns this lead")
    domain = domain if domain and domain not in teams.personal_domains else None
    company = owner_of("domain", domain) if domain else None
    if company is not None:
        choice = _reply(team, company, "domain_owner", f"owns the company {domain}")
    else:
        counts = dict(
            db.execute(
                "SELECT owner, count(*) FROM assignments WHERE team = ? AND period = ? GROUP BY owner",
                (team, period),
            ).fetchall()
        )
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
    insert(
        db,
        "assignments",
        {
            "lead_id": lead_id,
            "team": team,
            "owner": choice["owner"],
            "basis": choice["basis"],
            "domain": domain,
            "period": period,
            "at": at,
            "recorded_at": now_iso(),
        },
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

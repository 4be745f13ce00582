"""Who takes a hand-off: the members of each team, their weights, caps and availability.

`rulesets/teams.yaml` sits beside the rulesets and changes the same way (a pull request, a new
`version`, a reload). Loaded strictly, with every problem named by file and line:

    version: 3
    period: day                  # caps count per day (UTC) or week
    personal_domains: [gmail.com]  # never treated as one company when matching owners by domain
    teams:
      account-executives:
        - {id: sam, name: Sam Okafor, weight: 2, cap: 20}
        - {id: lee, name: Lee Chen}                 # weight 1, no cap
        - {id: kim, name: Kim Ito, available: false}  # on leave: gets no new leads
      sdr-london:                  # a team with business hours of its own, in its own time zone
        hours: {timezone: Europe/London, days: [mon, tue, wed, thu, fri], start: "08:30", end: "17:00"}
        members:
          - {id: tom, name: Tom Berg}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .compiler import digest_of
from .errors import RulesetError
from .hours import DAYS, BusinessHours, zone_problem
from .hours import parse as parse_hours
from .schema import suggest
from .sidefile import SideFile

FILE = "teams.yaml"
PERIODS = ("day", "week")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_MEMBER_KEYS = ("id", "name", "weight", "cap", "available")
_TOP_KEYS = ("version", "period", "personal_domains", "teams")


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    weight: float
    cap: int | None
    available: bool


@dataclass(frozen=True)
class Teams:
    version: int
    period: str
    personal_domains: frozenset[str]
    teams: dict[str, tuple[Member, ...]]
    digest: str
    source: str
    hours: dict[str, BusinessHours] = field(default_factory=dict)  # teams that keep their own hours

    @property
    def identity(self) -> dict:
        return {"name": "@teams", "version": self.version, "digest": self.digest}


def load_teams(text: str, file: str = FILE) -> Teams:
    side = SideFile(text, file, _TOP_KEYS, "teams.yaml is a mapping with version, period and teams")
    data, problems, problem, version = side.data, side.problems, side.problem, side.version
    period = data.get("period", "day")
    if period not in PERIODS:
        problem(("period",), f"period must be one of {', '.join(PERIODS)}")
    domains = data.get("personal_domains") or []
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        problem(("personal_domains",), "personal_domains is a list of email domains")
        domains = []
    teams: dict[str, tuple[Member, ...]] = {}
    raw_teams = data.get("teams")
    if not isinstance(raw_teams, dict) or not raw_teams:
        problem(("teams",), "teams maps each team (as routes name it) to its members")
        raw_teams = {}
    hours: dict[str, BusinessHours] = {}
    for team, members in raw_teams.items():
        path = ("teams", team)
        if isinstance(members, dict):  # {hours, members}: a team that keeps its own business hours
            for key in members:
                if key not in ("hours", "members"):
                    problem(path + (key,), f"unknown key {key!r}" + suggest(key, ("hours", "members")))
            if "hours" in members:
                found = _hours(members["hours"], path + ("hours",), problem)
                if found is not None:
                    hours[team] = found
            members, path = members.get("members"), path + ("members",)
        if not isinstance(members, list) or not members:
            problem(path, f"team {team!r} needs a list of members")
            continue
        seen, out = set(), []
        for i, m in enumerate(members):
            member = _member(m, path + (i,), problem)
            if member is None:
                continue
            if member.id in seen:
                problem(path + (i,), f"member {member.id!r} appears twice in {team}")
            seen.add(member.id)
            out.append(member)
        teams[team] = tuple(out)
    if problems:
        raise RulesetError(problems)
    return Teams(version, period, frozenset(d.lower() for d in domains), teams, digest_of(data), text, hours)


_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _hours(spec, path, problem) -> BusinessHours | None:
    """A team's own business hours: {timezone, days, start, end}, checked like the ruleset's."""
    if not isinstance(spec, dict) or not isinstance(spec.get("timezone"), str):
        problem(
            path,
            'hours is {timezone, days, start, end}, e.g. {timezone: Europe/London, start: "09:00", end: "17:30"}',
        )
        return None
    bad = False
    for key in spec:
        if key not in ("timezone", "days", "start", "end"):
            problem(
                path + (key,), f"unknown key {key!r}" + suggest(key, ("timezone", "days", "start", "end"))
            )
            bad = True
    zone = zone_problem(spec["timezone"])
    if zone:
        problem(path + ("timezone",), zone)
        bad = True
    for key in ("start", "end"):
        if not isinstance(spec.get(key), str) or not _TIME.match(spec[key]):
            problem(path + (key,), f'{key} is a time of day in quotes, such as "09:00"')
            bad = True
    days = spec.get("days", list(DAYS[:5]))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        problem(path + ("days",), f"days is a list of {', '.join(DAYS)}")
        bad = True
    if not bad and spec["start"] >= spec["end"]:
        problem(path + ("end",), "business hours must end after they start")
        bad = True
    return None if bad else parse_hours(spec)


def _member(m, path, problem) -> Member | None:
    if not isinstance(m, dict):
        problem(path, "a member is a mapping: {id, name, weight, cap, available}")
        return None
    for key in m:
        if key not in _MEMBER_KEYS:
            problem(path + (key,), f"unknown key {key!r}" + suggest(key, _MEMBER_KEYS))
    mid = m.get("id")
    if not isinstance(mid, str) or not _ID.match(mid):
        problem(path + ("id",), "a member id is lower case letters, digits, . _ and -")
        return None
    weight = m.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        problem(path + ("weight",), "weight must be a number above 0")
        return None
    cap = m.get("cap")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        problem(path + ("cap",), "cap must be a whole number of leads per period")
        return None
    available = m.get("available", True)
    if not isinstance(available, bool):
        problem(path + ("available",), "available is true or false")
        return None
    return Member(mid, str(m.get("name") or mid), float(weight), cap, available)


def read_teams(directory: Path) -> Teams | None:
    """The teams file of a rulesets directory; None when there is none (no assignment then)."""
    path = Path(directory) / FILE
    return load_teams(path.read_text("utf-8"), str(path)) if path.exists() else None

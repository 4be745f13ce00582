"""Business hours for SLAs: a hand-off due in 30 business minutes at 17:50 on a Friday is due Monday.

Declared once per ruleset (`business_hours: {timezone, days, start, end}`) and used by the routes
that say `business_hours: true`; a team in teams.yaml may keep hours of its own, which then count
its hand-offs instead. Time zones come from the IANA database (zoneinfo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    timezone: str
    days: tuple[int, ...]  # 0 = Monday
    start: time
    end: time

    def add(self, moment: datetime, minutes: int) -> datetime:
        """`moment` plus `minutes` counted only inside business hours (an aware datetime back)."""
        zone = ZoneInfo(self.timezone)
        now = moment.astimezone(zone)
        left = timedelta(minutes=minutes)
        while True:
            opens = datetime.combine(now.date(), self.start, zone)
            closes = datetime.combine(now.date(), self.end, zone)
            if now.weekday() not in self.days or now >= closes:
                now = datetime.combine(now.date() + timedelta(days=1), self.start, zone)
                continue
            now = max(now, opens)
            if now + left <= closes:
                return now + left
            left -= closes - now
            now = closes


def parse(spec: dict) -> BusinessHours:
    """From a structurally valid `business_hours` mapping (checks.py reports a bad time zone)."""
    days = spec.get("days") or list(DAYS[:5])
    return BusinessHours(
        spec["timezone"],
        tuple(sorted(DAYS.index(d) for d in days)),
        time.fromisoformat(spec["start"]),
        time.fromisoformat(spec["end"]),
    )


def zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (
        ValueError,
        KeyError,
        OSError,
    ):  # zoneinfo raises ZoneInfoNotFoundError (a KeyError) or ValueError
        return f"unknown time zone {name!r} (an IANA name such as Europe/Berlin or America/New_York)"
    return None

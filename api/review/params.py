"""Reading the pages' query strings: empty fields are no filter, bad values are said, never guessed."""

from __future__ import annotations

from datetime import date, timedelta


class Params:
    """The query string of one page: the values kept for the form, and what could not be read."""

    def __init__(self, args):
        self.args = args
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        return (self.args.get(name) or "").strip() or None

    def whole(self, name: str, label: str) -> int | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            self.problems.append(f"{label} must be a whole number, not “{raw}”.")
            return None

    def day(self, name: str, label: str, end: bool = False) -> str | None:
        """A date field as the ISO time it bounds: its midnight, or the next midnight for an end date."""
        raw = self.text(name)
        if raw is None:
            return None
        try:
            day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
        except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
            self.problems.append(f"{label} must be a date (YYYY-MM-DD), not “{raw}”.")
            return None
        return f"{day}T00:00:00Z"

    def form(self, *names: str) -> dict:
        """The given fields as typed, for re-filling the form."""
        return {name: self.args.get(name, "") for name in names}

"""Times: the one parser and formatter of ISO 8601 times (UTC, "Z") for the whole application."""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import FactsError

DAY = 86400.0


def parse_time(value, field: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text (a naive time is taken as UTC)."""
    if isinstance(value, str):
        try:  # the common case, "…Z" or an offset; a lower-case "z" needs the replacement below
            dt = datetime.fromisoformat(value)
        except ValueError:
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise FactsError({field: [f"{value!r} is not an ISO 8601 time"]}) from None
    elif isinstance(value, datetime):
        dt = value
    else:
        raise FactsError({field: ["must be an ISO 8601 time"]})
    if dt.tzinfo is UTC:
        return dt
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        raise FactsError({field: [f"{value!r} is outside the years 1 to 9999 in UTC"]}) from None


def seconds(value, field: str) -> float:
    """parse_time(value, field).timestamp(), the common "…Z" text read without the general path's checks."""
    if type(value) is str and value[-1:] == "Z":
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if dt.tzinfo is UTC:
                return dt.timestamp()
    return parse_time(value, field).timestamp()


def format_time(dt: datetime) -> str:
    """ISO 8601 in UTC with "Z", to the second, or to the microsecond when it has any."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    # A naive time's isoformat writes the same digits about three times faster than an aware one's
    # (which formats its offset only for it to be cut off), and leaves out microseconds that are 0.
    return dt.replace(tzinfo=None).isoformat() + "Z"

"""Personal data: kept out of decisions, chains and exports, including what people type in free text.

LEADGATE_PERSONAL_FIELDS names what is personal, comma-separated:

- `email` or `profile.email`: a profile field;
- `answers.phone`: a qualification answer, by id;
- `events.email`: an event property, in every event that has it;
- `outcomes.note`: the note of a reported outcome.

A named value is replaced whole by a token, an HMAC of the value under the key file's personal-data
secret. Every other string of the profile, the answers, the event properties and outcome notes is
searched for email addresses and phone numbers, and each one found is replaced in place by its token
("call me on pii:3f…"). With mode `hash` the raw value is kept once, in the `personal` table, so
later decisions and replays see it until the lead is erased; with mode `drop` it is not kept at all
(a named value is removed, a found one stays a token). Erasing a lead deletes its `personal` rows:
the chained records hold only tokens, so the chain still verifies and nothing raw remains.
"""

from __future__ import annotations

import hmac
import re

MODES = ("hash", "drop")
PREFIX = "pii:"
TOKEN = re.compile(r"pii:[0-9a-f]{40}")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A phone number: a leading + or at least two separators between digit groups, 8 to 15 digits. A plain
# run of digits (an amount, an id) and a date are not phone numbers.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{6,}\d(?!\w)")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# What a string needs before the patterns can find anything in it: an @, or the eight digits (`\d`,
# which str.isdigit counts too) that a phone number has at least; most strings have neither.
EIGHT_DIGITS = re.compile(r"(?:\D*\d){8}")
SECTIONS = ("profile", "answers", "events", "outcomes")
_DROPPED = object()  # a named value mode drop removes


def _phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    separators = sum(c in " ().-" for c in candidate.strip())
    return 8 <= digits <= 15 and (candidate.startswith("+") or separators >= 2) and not DATE.search(candidate)


def parse_fields(names) -> dict[str, tuple[str, ...]]:
    """{section: names} from `email`, `profile.email`, `answers.phone`, `events.email`, `outcomes.note`."""
    out: dict[str, list[str]] = {s: [] for s in SECTIONS}
    for name in names:
        section, dot, field = name.partition(".")
        if not dot:
            section, field = "profile", name
        if section not in SECTIONS or not field or (section == "outcomes" and field != "note"):
            raise ValueError(
                f"personal field {name!r}: use NAME or profile.NAME, answers.ID, events.PROPERTY or outcomes.note"
            )
        out[section].append(field)
    return {s: tuple(v) for s, v in out.items()}


class Personal:
    def __init__(self, secret: bytes, fields: tuple[str, ...], mode: str):
        if mode not in MODES:
            raise ValueError(f"personal data mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.secret, self.mode = secret, mode
        self.named = parse_fields(fields)
        self.fields = self.named["profile"]  # the profile fields an erasure removes

    def token(self, field: str, value: str) -> str:
        return PREFIX + hmac.digest(self.secret, f"{field}\x00{value}".encode(), "sha256").hex()[:40]

    def _whole(self, field: str, value, kept: list):
        """A named value as its token (and kept), or None when mode drop removes it."""
        if isinstance(value, str) and TOKEN.fullmatch(value):
            return value
        if self.mode == "drop":
            return None
        token = self.token(field, str(value))
        kept.append((token, field, value))
        return token

    def _scan(self, value, kept: list):
        """`value` with every email address and phone number in its strings replaced by its token."""
        if isinstance(value, dict):
            return {k: self._scan(v, kept) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scan(v, kept) for v in value]
        if not isinstance(value, str) or ("@" not in value and not EIGHT_DIGITS.match(value)):
            return value

        def replace(kind):
            def sub(match):
                found = match.group(0)
                if kind == "phone" and not _phone(found):
                    return found
                token = self.token(kind, found)
                if self.mode == "hash":
                    kept.append((token, kind, found))
                return token

            return sub

        return PHONE.sub(replace("phone"), EMAIL.sub(replace("email"), value))

    def _section(self, values, named: tuple[str, ...], section: str, kept: list, memo: dict | None = None):
        if not isinstance(values, dict):
            return values
        out = {}
        for key, value in values.items():
            # A string seen already in this section and key (a request's values are in its merged
            # facts): its result and what it kept, without scanning or hashing it again.
            seen = (section, key, value) if memo is not None and isinstance(value, str) else None
            if seen is not None and seen in memo:
                value, found = memo[seen]
                kept.extend(found)
            else:
                start = len(kept)
                if key in named and value is not None:
                    value = self._whole(key if section == "profile" else f"{section}.{key}", value, kept)
                    value = _DROPPED if value is None else value
                else:
                    value = self._scan(value, kept)
                if seen is not None:
                    memo[seen] = value, kept[start:]
            if value is not _DROPPED:
                out[key] = value
        return out

    def found_in(self, text: str) -> bool:
        """Whether an email address or a phone number stands in clear in `text`."""
        return bool(EMAIL.search(text)) or any(_phone(m.group(0)) for m in PHONE.finditer(text))

    def protect(self, profile: dict | None) -> tuple[dict | None, list[tuple[str, str, str]]]:
        """The profile with personal fields tokenised (or dropped), and (token, field, value) to keep."""
        kept: list = []
        return (self._section(profile, self.named["profile"], "profile", kept) if profile else profile), kept

    def protect_facts(self, facts: dict, memo: dict | None = None) -> tuple[dict, list[tuple[str, str, str]]]:
        """Facts (or a request) with the profile, answers and event properties protected. Calls
        given the same `memo` (a dict) protect each string once (the result is the same)."""
        kept: list = []
        out = dict(facts)
        for section in ("profile", "answers"):
            if section in out:
                out[section] = self._section(out[section], self.named[section], section, kept, memo)
        if isinstance(out.get("events"), list):
            out["events"] = [
                {
                    **e,
                    "properties": self._section(e["properties"], self.named["events"], "events", kept, memo),
                }
                if isinstance(e, dict) and isinstance(e.get("properties"), dict)
                else e
                for e in out["events"]
            ]
        return out, kept

    def protect_note(self, note: str | None) -> tuple[str | None, list[tuple[str, str, str]]]:
        kept: list = []
        if note is None:
            return None, kept
        if "note" in self.named["outcomes"]:
            return self._whole("outcomes.note", note, kept), kept
        return self._scan(note, kept), kept

    def reveal(self, profile: dict, values: dict[str, str]) -> dict:
        """Tokens replaced by the raw values still kept; a token whose value was erased is left out."""
        out = {}
        for key, value in profile.items():
            if isinstance(value, str) and TOKEN.fullmatch(value):
                if value in values:
                    out[key] = values[value]
            else:
                out[key] = self.reveal_text(value, values)
        return out

    def reveal_text(self, value, values: dict[str, str]):
        """Tokens inside strings (and lists and objects of them) replaced by the values still kept."""
        if isinstance(value, dict):
            return {k: self.reveal_text(v, values) for k, v in value.items()}
        if isinstance(value, list):
            return [self.reveal_text(v, values) for v in value]
        if isinstance(value, str) and PREFIX in value:
            return TOKEN.sub(lambda m: str(values.get(m.group(0), m.group(0))), value)
        return value

    def reveal_facts(self, facts: dict, values: dict[str, str]) -> dict:
        """Stored facts as they were sent, as far as the kept values allow."""
        out = dict(facts)
        if isinstance(out.get("profile"), dict):
            out["profile"] = self.reveal(out["profile"], values)
        for section in ("answers", "events"):
            if section in out:
                out[section] = self.reveal_text(out[section], values)
        return out

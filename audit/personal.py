"""Personal data: kept out of decisions, chains and exports.

Configured personal profile fields (email, names, phone…) are replaced by tokens, an HMAC of the
value under the key file's personal-data secret, everywhere a decision is stored. With mode `hash` the raw
value is kept once, in the `personal` table, so later decisions and replays can use it until the lead
is erased; with mode `drop` it is not kept at all. Erasing a lead deletes its `personal` rows: the
decisions keep their tokens, so the chain still verifies.
"""

from __future__ import annotations

import hashlib
import hmac

MODES = ("hash", "drop")
PREFIX = "pii:"


class Personal:
    def __init__(self, secret: bytes, fields: tuple[str, ...], mode: str):
        if mode not in MODES:
            raise ValueError(f"personal data mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.secret, self.fields, self.mode = secret, tuple(fields), mode

    def token(self, field: str, value: str) -> str:
        digest = hmac.new(self.secret, f"{field}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest[:40]

    def protect(self, profile: dict | None) -> tuple[dict | None, list[tuple[str, str, str]]]:
        """The profile with personal fields tokenised (or dropped), and (token, field, value) to keep."""
        if not profile:
            return profile, []
        out, kept = dict(profile), []
        for field in self.fields:
            value = out.get(field)
            if value is None or (isinstance(value, str) and value.startswith(PREFIX)):
                continue
            if self.mode == "drop":
                del out[field]
                continue
            token = self.token(field, str(value))
            out[field] = token
            kept.append((token, field, value))
        return out, kept

    def reveal(self, profile: dict, values: dict[str, str]) -> dict:
        """Tokens replaced by the raw values still kept; a token whose value was erased is left out."""
        out = {}
        for key, value in profile.items():
            if isinstance(value, str) and value.startswith(PREFIX):
                if value in values:
                    out[key] = values[value]
            else:
                out[key] = value
        return out

"""Publishable (form) keys: the lead token that proves a browser started a lead, and the public reply.

A form key lives in a web page, so whoever reads the page holds it. Such a key never names a lead on
its own: without a token it always starts a new lead under an id leadgate picks, and the reply carries
a `lead_token` — signed with the key file's `lead_token` secret (never stored in the database), bound
to that lead id and that key id, expiring after LEADGATE_LEAD_TOKEN_TTL seconds. Follow-up calls
present the token. Anything else (no token with a lead id, an expired, forged or other key's token) is
refused with one reply that never depends on whether the lead exists, so ids cannot be probed.

The reply is the public part of the decision: what the page shows next, nothing a competitor could
mine (no scores, reasons, facts, stage or assignment).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.facts import format_time

SALT = "leadgate.lead_token"
NEW_LEAD_PREFIX = "web-"


class LeadTokenRefused(Exception):
    """A form key asked for a lead it cannot prove it started."""

    code = "invalid_lead_token"

    def __init__(self, message: str, field: str = "lead_token"):
        self.field = field
        super().__init__(message)


REFUSED = (
    "A form key continues only the leads it started: send the lead_token of the first reply "
    "(it may have expired; then start a new lead without lead_id)."
)


class LeadTokens:
    """Signs and checks lead tokens with a secret from the key file."""

    def __init__(self, secret: bytes, ttl_seconds: int):
        self.ttl = ttl_seconds
        self._signer = URLSafeTimedSerializer(secret, salt=SALT)

    def issue(self, lead_id: str, key_id: str) -> dict:
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl)
        return {
            "lead_token": self._signer.dumps([lead_id, key_id]),
            "lead_token_expires_at": format_time(expires.replace(microsecond=0)),
        }

    def lead_for(self, body: dict, key_id: str) -> str:
        """The lead id a form key's request is for: a fresh one, or the one its token proves.

        Raises LeadTokenRefused for every other case, with the same message whatever the lead.
        """
        token, lead_id = body.get("lead_token"), body.get("lead_id")
        if token is None:
            if lead_id is not None:
                raise LeadTokenRefused(REFUSED)
            return NEW_LEAD_PREFIX + secrets.token_hex(12)
        try:
            signed = self._signer.loads(token, max_age=self.ttl)
        except (SignatureExpired, BadSignature):
            raise LeadTokenRefused(REFUSED) from None
        if (
            not isinstance(signed, list)
            or len(signed) != 2
            or signed[1] != key_id
            or (lead_id is not None and lead_id != signed[0])
        ):
            raise LeadTokenRefused(REFUSED)
        return signed[0]


def public_reply(reply: dict, token: dict) -> dict:
    """What a web page may see of a decision: where the lead goes next and what to ask."""
    route = reply.get("route") or {}
    return {
        "decision_id": reply["decision_id"],
        "lead_id": reply["lead_id"],
        **token,
        "route": {
            "destination": route.get("destination"),
            "due_at": route.get("due_at"),
            "next_step": route.get("next_step"),
        },
        "next_questions": reply.get("next_questions", []),
        "evaluated_at": reply.get("evaluated_at"),
    }

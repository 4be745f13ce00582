"""The audit trail's exception hierarchy: one root, structured fields."""

from __future__ import annotations


class AuditError(Exception):
    """Root of every error the audit trail raises on purpose."""

    code = "audit_error"


class NotFound(AuditError):
    code = "not_found"

    def __init__(self, what: str, key: str):
        self.what, self.key = what, key
        super().__init__(f"no {what} {key!r}")


class StorageUnavailable(AuditError):
    """The database cannot be written (disk full, read-only file, locked too long): nothing was stored."""

    code = "storage_unavailable"


class ReplayImpossible(AuditError):
    code = "replay_impossible"

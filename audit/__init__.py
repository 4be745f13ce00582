"""leadgate's audit trail: every decision in one SQLite file, explained, replayable and tamper-evident.

The only package that touches SQLite (through sqlite-utils).
"""

from . import (
    archive,
    assignment,
    checkpoints,
    deliveries,
    deployments,
    gauges,
    idempotency,
    outbox,
    outcomes,
    overrides,
    reports,
)
from .errors import AuditError, NotFound, ReplayImpossible, StorageUnavailable
from .leads import merge_facts
from .trail import AuditTrail

__all__ = [
    "archive",
    "AuditError",
    "AuditTrail",
    "assignment",
    "checkpoints",
    "NotFound",
    "ReplayImpossible",
    "StorageUnavailable",
    "deliveries",
    "deployments",
    "gauges",
    "idempotency",
    "outbox",
    "merge_facts",
    "outcomes",
    "overrides",
    "reports",
]

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
from .recording import Reply
from .state import LeadState
from .trail import AuditTrail
from .unit import UnitOfWork

__all__ = [
    "archive",
    "AuditError",
    "AuditTrail",
    "LeadState",
    "Reply",
    "UnitOfWork",
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

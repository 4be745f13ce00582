"""The root of what the shared operations refuse: the API maps each kind to an HTTP status once."""

from __future__ import annotations


class ServiceError(Exception):
    """Something a caller asked of `service/` that it refuses (not a storage or engine failure)."""

"""The key file: the secrets that sign and tokenise, kept apart from the data they protect.

The audit database, its backups and its exports are read by more people than should sign in, so no
secret lives in it. Each named secret comes from `LEADGATE_SECRET_<NAME>` in the environment (hex or
any text of 32 characters or more) or from the key file (JSON, created 0600 in a 0700 directory on first
use, with a fresh random value for every name it lacks). A reader of the database alone can neither
sign a session, nor forge a lead token or checkpoint, nor reverse a personal-data token.

Databases from before the key file kept two secrets in their `meta` table; `adopt` moves them here
(the personal-data secret must survive the move, or every stored token would change).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets as _random
from pathlib import Path

from .backends import is_postgres
from .errors import AuditError

NAMES = ("session", "personal", "checkpoint", "lead_token")
MIN_ENV_LENGTH = 32


class SecretsError(AuditError):
    """The key file cannot be read or written, or an environment secret is too short."""


def default_path(db_path: str | Path) -> Path | None:
    """Where the key file lives when LEADGATE_SECRET_FILE names none: beside the database, never in it.

    An in-memory database (tests, `create_app(db=":memory:")`) has no key file: its secrets live in
    this process's memory, as short-lived as it, shared by every trail the process opens. A PostgreSQL
    trail has no file beside it: its key file is named (the same file on every machine).
    """
    if is_postgres(db_path):
        raise SecretsError(
            "a PostgreSQL audit trail needs LEADGATE_SECRET_FILE: the same key file on every machine"
        )
    return None if str(db_path) == ":memory:" else Path(f"{db_path}.key")


_IN_MEMORY: dict[str, str] = {}  # the secrets of in-memory databases, made on first use


class Secrets:
    """Named secrets from the environment or the key file at `path`."""

    def __init__(self, path: str | Path | None, environ=None):
        self.path = None if path is None else Path(path)
        self.environ = os.environ if environ is None else environ
        self._values = self._load()
        self._stamp = self._mtime()

    def get(self, name: str) -> bytes:
        if name not in NAMES:
            raise KeyError(name)
        raw = self.environ.get(f"LEADGATE_SECRET_{name.upper()}")
        if raw:
            if len(raw) < MIN_ENV_LENGTH:
                raise SecretsError(
                    f"LEADGATE_SECRET_{name.upper()} must be at least {MIN_ENV_LENGTH} characters"
                )
            with contextlib.suppress(ValueError):
                return bytes.fromhex(raw)
            return raw.encode()
        stamp = self._mtime()
        if stamp != self._stamp:  # rotated by another process (`leadgate keys rotate-secret`): read it again
            self._values, self._stamp = self._load(), stamp
        return bytes.fromhex(self._values[name])

    def _mtime(self) -> int | None:
        if self.path is None:
            return None
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def adopt(self, name: str, hex_value: str) -> None:
        """Keep `hex_value` as the secret `name` (moving a secret out of an old database)."""
        if self.path is None:
            _IN_MEMORY[name] = hex_value
            self._values = dict(_IN_MEMORY)
            return
        with self._locked():
            self._values = {**self._read(), name: hex_value}
            self._write(self._values)

    def rotate(self, name: str) -> None:
        """A new random value for `name`: what it signed no longer verifies (for sessions: everyone signs in again)."""
        self.adopt(name, _random.token_hex(32))

    def webhook(self, destination: str) -> bytes:
        """The signing secret of a webhook destination that names no environment variable.

        Kept in the key file as `webhook.<destination>`, created on first use (the receiver is given it
        with `leadgate deliveries secret`)."""
        name = f"webhook.{destination}"
        if not isinstance(self._values.get(name), str):
            if self.path is None:
                _IN_MEMORY.setdefault(name, _random.token_hex(32))
                self._values = dict(_IN_MEMORY)
            else:
                with self._locked():
                    values = self._read()
                    if not isinstance(values.get(name), str):
                        values[name] = _random.token_hex(32)
                        self._write(values)
                    self._values = {**self._values, **values}
        return bytes.fromhex(self._values[name])

    def _load(self) -> dict[str, str]:
        if self.path is None:
            for n in NAMES:
                _IN_MEMORY.setdefault(n, _random.token_hex(32))
            return dict(_IN_MEMORY)
        values = self._read()
        if all(isinstance(values.get(n), str) for n in NAMES):
            return values
        # Several processes may start at once (gunicorn workers, the CLI): one creates, all read its values.
        with self._locked():
            values = self._read()
            missing = [n for n in NAMES if not isinstance(values.get(n), str)]
            if missing:
                values.update({n: _random.token_hex(32) for n in missing})
                self._write(values)
        return values

    def _read(self) -> dict:
        try:
            values = json.loads(self.path.read_text())
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
            return values
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SecretsError(f"the key file {self.path} cannot be read: {exc}") from exc

    @contextlib.contextmanager
    def _locked(self):
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SecretsError(f"the key file {self.path} cannot be written: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, values: dict[str, str]) -> None:
        """Replace the key file atomically, 0600 from its first byte."""
        try:
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(values, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise SecretsError(f"the key file {self.path} cannot be written: {exc}") from exc

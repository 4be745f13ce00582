"""The version lock: a ruleset's content never changes without a new version, checked on the project itself.

`rulesets/versions.lock` lists every shipped (name, version) with the digest of its content, one line
each, append-only:

    default 3 sha256:…

A shipped file whose version is locked with another digest changed without a new version; a file whose
version is not locked yet needs `leadgate rulesets lock` (and the lock committed with it). `make test`
checks it (tests/test_versions_lock.py), so the rule holds without a pull-request workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import RulesetError, digest_of
from engine.files import all_files
from engine.yamlsource import load

from .errors import ServiceError

LOCK = "versions.lock"
UPDATE = ".venv/bin/leadgate rulesets lock"
HEADER = f"""\
# Every shipped ruleset version and the digest of its content: name, version, digest, one per line.
# A ruleset's content never changes without a new version: `make test` fails when a shipped file's
# content differs from the digest locked for its version. Raise its `version:`, then run
# `{UPDATE}`, which appends the new version here. Lines are never changed or removed.
"""


class LockError(ServiceError):
    """The lock refuses an update (a locked version whose content changed)."""


@dataclass(frozen=True)
class Shipped:
    path: Path
    name: str
    version: int
    digest: str


def read(directory: Path) -> dict[tuple[str, int], str]:
    """(name, version) -> digest, from the lock file (empty when there is none)."""
    path = Path(directory) / LOCK
    locked: dict[tuple[str, int], str] = {}
    if not path.exists():
        return locked
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].startswith("sha256:"):
            raise LockError(f"{path}:{number}: expected `name version sha256:…`, got {raw!r}")
        locked[(parts[0], int(parts[1]))] = parts[2]
    return locked


def shipped(directory: Path) -> list[Shipped]:
    """Every ruleset file of the directory (active and candidates) with its name, version and digest.

    A file that does not load is left to `rulesets validate`, which names its problems."""
    out = []
    for path, _ in all_files(Path(directory)):
        try:
            data = load(path.read_text("utf-8"), str(path)).data
        except RulesetError:
            continue
        if (
            isinstance(data, dict)
            and isinstance(data.get("version"), int)
            and isinstance(data.get("name"), str)
        ):
            out.append(Shipped(path, data["name"], data["version"], digest_of(data)))
    return out


def problems(directory: Path) -> list[str]:
    """What breaks the rule, each saying how to fix it; [] when every shipped file is locked as it is."""
    locked = read(directory)
    out = []
    for item in shipped(directory):
        digest = locked.get((item.name, item.version))
        if digest == item.digest:
            continue
        following = _next(locked, item.name)
        if digest is not None:
            out.append(
                f"{item.path}: {item.name} v{item.version} changed without a new version (locked as {digest}, "
                f"now {item.digest}): raise its `version:` to {following}, then run `{UPDATE}`"
            )
        elif item.version < following:
            out.append(
                f"{item.path}: {item.name} v{item.version} was never shipped and is below the versions in "
                f"{LOCK}: make it version {following}, then run `{UPDATE}`"
            )
        else:
            out.append(
                f"{item.path}: {item.name} v{item.version} is not in {Path(directory) / LOCK}: "
                f"run `{UPDATE}` and commit the lock with it"
            )
    return out


def update(directory: Path) -> list[Shipped]:
    """Append every shipped version not locked yet; LockError (and nothing written) when a locked one changed."""
    locked = read(directory)
    added, refused = [], []
    for item in shipped(directory):
        digest = locked.get((item.name, item.version))
        if digest is None:
            added.append(item)
            locked[(item.name, item.version)] = item.digest
        elif digest != item.digest:
            refused.append(
                f"{item.path}: {item.name} v{item.version} is locked with other content ({digest}): "
                f"raise its `version:` to {_next(locked, item.name)}"
            )
    if refused:
        raise LockError("; ".join(refused))
    if added:
        path = Path(directory) / LOCK
        text = path.read_text("utf-8") if path.exists() else HEADER
        lines = [f"{i.name} {i.version} {i.digest}" for i in added]
        path.write_text(text + ("" if text.endswith("\n") else "\n") + "\n".join(lines) + "\n", "utf-8")
    return added


def _next(locked: dict[tuple[str, int], str], name: str) -> int:
    return max((v for n, v in locked if n == name), default=0) + 1

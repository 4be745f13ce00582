"""Ruleset files as they were at a git ref (a branch, a tag, a commit): for version checks and diffs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import click


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise click.UsageError("--base needs git on PATH") from None


def source_at(ref: str, path: Path) -> str | None:
    """The text of `path` at `ref`; None when the file did not exist there."""
    path = path.resolve()
    top = _git(path.parent, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise click.UsageError(f"{path} is not in a git repository, so --base cannot be read")
    if _git(path.parent, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        raise click.UsageError(f"unknown git ref {ref!r}")
    relative = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    shown = _git(path.parent, "show", f"{ref}:{relative}")
    return shown.stdout if shown.returncode == 0 else None

"""The floors hold: engine → audit → service → api → cli/wsgi, each importing only floors below it,
and only audit/ touches storage (no SQL, no connection, no private name of audit/ anywhere else).

Walks the syntax tree of every module of service/, api/, cli/, engine/ and wsgi.py; each rule is
also tried on a small module written to break it, so a rule that can no longer fail is noticed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERED = ("engine", "service", "api", "cli")
STORAGE = ("sqlite3", "sqlite_utils", "psycopg")
RULE_ENGINE = ("durable", "durable_rules", "durable_rules_engine")
# What a floor may not import: the floors above it, and the web framework below api/.
ABOVE = {
    "engine": ("flask", "flask_smorest", "marshmallow", "audit", "service", "api", "cli", "wsgi"),
    "service": ("flask", "flask_smorest", "api", "cli", "wsgi"),
    "api": ("cli", "wsgi"),
    "cli": ("wsgi",),
    "wsgi": (),
}
# What only audit/ may reach on a trail: its connection, its SQL, its private helpers.
STORAGE_ATTRIBUTES = {"db", "conn", "execute", "executemany", "executescript", "cursor"}
SQL = re.compile(
    r"\bSELECT\b[\s\S]+?\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b|\bCREATE\s+(?:TABLE|INDEX|VIEW)\b|\bPRAGMA\s+\w+"
)


def modules() -> list[Path]:
    found = [p for floor in LAYERED for p in sorted((ROOT / floor).rglob("*.py"))]
    return [*found, ROOT / "wsgi.py"]


def floor_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def imported(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import, absolute (relative imports stay inside the floor)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return out


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def trail_like(node: ast.AST) -> bool:
    """An expression that names the audit trail: `trail`, `self.trail`, `trail()`, `app.audit`…"""
    text = ast.unparse(node).lower()
    return "trail" in text or "audit" in text


def problems(floor: str, source: str, where: str = "<test>") -> list[str]:
    tree = ast.parse(source)
    found = []
    for line, module, names in imported(tree):
        top = module.split(".")[0]
        if top in STORAGE:
            found.append(f"{where}:{line}: imports {module}: only audit/ touches storage")
        if top in RULE_ENGINE and floor != "engine":
            found.append(f"{where}:{line}: imports {module}: only engine/ uses durable_rules")
        if top in ABOVE[floor]:
            found.append(f"{where}:{line}: {floor}/ imports {module}, a floor above it")
        if top == "audit":
            hidden = [n for n in [*module.split(".")[1:], *names] if private(n)]
            if hidden:
                found.append(f"{where}:{line}: imports audit's private {', '.join(hidden)}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if floor == "engine":
                continue  # engine/ imports no audit: it holds no trail (its CEL programs `execute`)
            if node.attr in STORAGE_ATTRIBUTES and trail_like(node.value):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}: storage reached past audit/")
            elif (
                private(node.attr)
                and trail_like(node.value)
                or node.attr in ("_read", "_transaction", "_uow")
            ):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}: a private name of audit/")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"{where}:{node.lineno}: SQL in a string: {node.value[:60]!r}")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_stays_on_its_floor(path):
    assert problems(floor_of(path), path.read_text(), str(path.relative_to(ROOT))) == []


def test_every_floor_is_walked():
    floors = {floor_of(p) for p in modules()}
    assert floors == {*LAYERED, "wsgi"}
    assert len(modules()) > 60  # a moved package would silently leave its modules unchecked


@pytest.mark.parametrize(
    ("floor", "source", "expected"),
    [
        ("service", "import sqlite3", "only audit/ touches storage"),
        ("api", "from sqlite_utils import Database", "only audit/ touches storage"),
        ("service", "from durable.lang import ruleset", "only engine/ uses durable_rules"),
        ("engine", "import flask", "a floor above it"),
        ("engine", "from audit import AuditTrail", "a floor above it"),
        ("engine", "from service.decide import decide", "a floor above it"),
        ("service", "from flask import current_app", "a floor above it"),
        ("service", "from api.errors import ApiError", "a floor above it"),
        ("service", "from cli import main", "a floor above it"),
        ("service", "from audit.trail import _private_helper", "audit's private _private_helper"),
        ("api", "from audit._secret import x", "audit's private _secret"),
        ("service", "trail.db.execute('x')", "storage reached past audit/"),
        ("api", "rows = trail()._read('x')", "a private name of audit/"),
        ("cli", "self.trail._lock.acquire()", "a private name of audit/"),
        ("service", "with trail._transaction() as db: pass", "a private name of audit/"),
        ("service", "q = 'SELECT stage FROM leads WHERE lead_id = ?'", "SQL in a string"),
        ("api", "q = 'INSERT OR IGNORE INTO events VALUES (?)'", "SQL in a string"),
        ("cli", "q = 'UPDATE leads SET stage = ?'", "SQL in a string"),
        ("service", "q = 'DELETE FROM personal'", "SQL in a string"),
    ],
)
def test_each_rule_catches_what_it_names(floor, source, expected):
    assert any(expected in p for p in problems(floor, source)), problems(floor, source)


def test_what_the_floors_may_do_passes():
    allowed = [
        ("engine", "from durable.lang import ruleset\nprogram.execute(context)"),
        ("service", "from audit import AuditTrail\nwith trail.deciding(lead_id) as uow: uow.record()"),
        ("api", "from service.decide import decide\ntext = 'Select the rows you want from the list'"),
    ]
    for floor, source in allowed:
        assert problems(floor, source) == []

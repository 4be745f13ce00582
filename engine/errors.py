"""The engine's exception hierarchy: one root, structured fields, no bare messages.

The API maps these onto HTTP errors in one place (api/errors.py); the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""

    code = "engine_error"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a ruleset file, pinned to where a person can fix it."""

    file: str
    line: int
    rule: str | None
    message: str
    column: int = 0  # 0 when only the line is known

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")
        return f"{where}: [{self.rule}] {self.message}" if self.rule else f"{where}: {self.message}"

    def to_dict(self) -> dict:
        out = {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message}
        if self.column:
            out["column"] = self.column
        return out


class RulesetError(EngineError):
    """A ruleset that cannot be loaded: every problem found, not only the first."""

    code = "invalid_ruleset"

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownRuleset(EngineError):
    code = "unknown_ruleset"

    def __init__(self, name: str, version: int | None = None, known: list[str] | None = None):
        self.name, self.version, self.known = name, version, known or []
        what = f"{name} version {version}" if version is not None else name
        super().__init__(
            f"no ruleset {what} is loaded" + (f" (loaded: {', '.join(self.known)})" if self.known else "")
        )


class FactsError(EngineError):
    """Lead facts the engine refuses: each entry names the field (dotted path) and what is wrong."""

    code = "invalid_facts"

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(errors.items())))


class EvaluationError(EngineError):
    """The engine failed while evaluating: no decision is produced."""

    code = "evaluation_failed"

    def __init__(self, message: str, ruleset: str | None = None, rule: str | None = None):
        self.ruleset, self.rule = ruleset, rule
        super().__init__(message)

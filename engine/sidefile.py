"""The opening every side file of a deployment shares (teams.yaml, destinations.yaml): a YAML mapping
of known keys with a version, and problems collected with their line, raised together at the end."""

from __future__ import annotations

from .errors import Problem, RulesetError
from .schema import suggest
from .yamlsource import load


class SideFile:
    def __init__(self, text: str, file: str, top_keys: tuple[str, ...], shape: str):
        self.file, self.doc, self.problems = file, load(text, file), []
        self.data = self.doc.data
        if not isinstance(self.data, dict):
            raise RulesetError([Problem(file, 1, None, shape)])
        for key in self.data:
            if key not in top_keys:
                self.problem((key,), f"unknown key {key!r}" + suggest(key, top_keys))
        self.version = self.data.get("version")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            self.problem(("version",), "version must be a whole number from 1 (raise it with every change)")

    def problem(self, path, message: str) -> None:
        self.problems.append(Problem(self.file, self.doc.line(path), None, message))

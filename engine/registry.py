"""Rulesets loaded side by side: every version of every ruleset, compiled once, found by name.

A durable_rules ruleset cannot be unregistered (each create leaks a little C memory), so compiled
rulesets are cached by digest: loading the same source again, or replaying a stored one, reuses it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .compiler import compile_source, digest_of
from .errors import Problem, RulesetError, UnknownRuleset
from .runtime import CompiledRuleset
from .yamlsource import load


class Registry:
    def __init__(self):
        self._by_digest: dict[str, CompiledRuleset] = {}
        self._versions: dict[str, dict[int, CompiledRuleset]] = {}
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()

    def compile(self, text: str, file: str = "<ruleset>") -> CompiledRuleset:
        """The compiled ruleset for this source, reusing an earlier compile of the same digest."""
        digest = digest_of(load(text, file).data)
        with self._lock:
            found = self._by_digest.get(digest)
        if found is not None:
            return found
        compiled = compile_source(text, file)
        with self._lock:
            return self._by_digest.setdefault(digest, compiled)

    def add(self, compiled: CompiledRuleset, active: bool = True) -> None:
        with self._lock:
            self._versions.setdefault(compiled.name, {})[compiled.version] = compiled
            if active:
                self._active[compiled.name] = compiled.version

    def load_file(self, path: Path) -> CompiledRuleset:
        compiled = self.compile(path.read_text("utf-8"), str(path))
        if compiled.name != path.name.removesuffix(".yaml"):
            raise RulesetError(
                [
                    Problem(
                        str(path),
                        1,
                        None,
                        f"the file of ruleset {compiled.name!r} must be named {compiled.name}.yaml",
                    )
                ]
            )
        return compiled

    def load_directory(self, directory: Path) -> list[Problem]:
        """Load every rulesets/<name>.yaml; the problems of those that failed (the others still load)."""
        problems: list[Problem] = []
        for path in ruleset_files(directory):
            try:
                self.add(self.load_file(path))
            except RulesetError as exc:
                problems.extend(exc.problems)
        return problems

    def get(self, name: str, version: int | None = None) -> CompiledRuleset:
        with self._lock:
            versions = self._versions.get(name)
            if not versions:
                raise UnknownRuleset(name, version, sorted(self._versions))
            wanted = self._active[name] if version is None else version
            if wanted not in versions:
                raise UnknownRuleset(name, version, [f"{name} v{v}" for v in sorted(versions)])
            return versions[wanted]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def versions(self, name: str) -> list[CompiledRuleset]:
        with self._lock:
            return [v for _, v in sorted(self._versions.get(name, {}).items())]

    def active_version(self, name: str) -> int:
        return self.get(name).version


def ruleset_files(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.yaml") if not p.name.endswith(".cases.yaml"))

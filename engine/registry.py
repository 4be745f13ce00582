"""Rulesets loaded side by side: the active version of each ruleset, its candidates and shadows.

A durable_rules ruleset cannot be unregistered (each create leaks a little C memory), so compiled
rulesets are cached by digest: loading the same source again, reloading an unchanged file, or
replaying a stored one reuses it. What is served is a `Deployment`, swapped whole under a lock, so
a reload never leaves a request half in one deployment and half in the next.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .compiler import compile_source, digest_of
from .destinations import Destinations
from .errors import UnknownRuleset
from .runtime import CompiledRuleset
from .teams import Teams
from .yamlsource import load


@dataclass
class Deployment:
    """What a process serves: one active version per name, candidates (pinnable), shadows."""

    active: dict[str, CompiledRuleset] = field(default_factory=dict)
    candidates: list[CompiledRuleset] = field(default_factory=list)
    shadows: dict[str, CompiledRuleset] = field(default_factory=dict)  # name -> candidate run beside it
    teams: Teams | None = None  # who takes hand-offs (rulesets/teams.yaml)
    destinations: Destinations | None = None  # who is told (rulesets/destinations.yaml)

    def digests(self) -> dict:
        """The deployment as data: what the audit records and what every worker rebuilds from."""
        return {
            "active": {name: c.digest for name, c in sorted(self.active.items())},
            "candidates": sorted(c.digest for c in self.candidates),
            "shadows": {name: c.digest for name, c in sorted(self.shadows.items())},
            "teams": self.teams.digest if self.teams else None,
            "destinations": self.destinations.digest if self.destinations else None,
        }

    def versions(self) -> dict[str, dict[int, CompiledRuleset]]:
        out: dict[str, dict[int, CompiledRuleset]] = {}
        for compiled in [*self.candidates, *self.active.values()]:
            out.setdefault(compiled.name, {})[compiled.version] = compiled
        return out


class Registry:
    def __init__(self):
        self._by_digest: dict[str, CompiledRuleset] = {}
        self._digest_of_text: dict[str, str] = {}  # a replay meets the same stored source again and again
        self._deployment = Deployment()
        self._versions: dict[str, dict[int, CompiledRuleset]] = {}
        self._lock = threading.Lock()

    def compile(self, text: str, file: str = "<ruleset>") -> CompiledRuleset:
        """The compiled ruleset for this source, reusing an earlier compile of the same digest."""
        with self._lock:
            digest = self._digest_of_text.get(text)
        if digest is None:  # parsing the YAML costs ~30 ms: once per distinct text
            digest = digest_of(load(text, file).data)
        with self._lock:
            self._digest_of_text[text] = digest
            found = self._by_digest.get(digest)
        if found is not None:
            return found
        compiled = compile_source(text, file)
        with self._lock:
            return self._by_digest.setdefault(digest, compiled)

    def deploy(self, deployment: Deployment) -> None:
        """Serve this deployment from now on (the previous one stays cached by digest)."""
        versions = deployment.versions()
        with self._lock:
            self._deployment, self._versions = deployment, versions

    @property
    def deployment(self) -> Deployment:
        with self._lock:
            return self._deployment

    def get(self, name: str, version: int | None = None) -> CompiledRuleset:
        with self._lock:
            versions = self._versions.get(name)
            if not versions:
                raise UnknownRuleset(name, version, sorted(self._versions))
            active = self._deployment.active.get(name)
            if version is None:
                if active is None:  # only candidates of this name: they must be pinned
                    raise UnknownRuleset(name, None, [f"{name} v{v}" for v in sorted(versions)])
                return active
            if version not in versions:
                raise UnknownRuleset(name, version, [f"{name} v{v}" for v in sorted(versions)])
            return versions[version]

    def shadow(self, name: str) -> CompiledRuleset | None:
        """The candidate every live decision of `name` is also evaluated under, if one is named."""
        with self._lock:
            return self._deployment.shadows.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def versions(self, name: str) -> list[CompiledRuleset]:
        with self._lock:
            return [v for _, v in sorted(self._versions.get(name, {}).items())]

    def active_version(self, name: str) -> int | None:
        with self._lock:
            active = self._deployment.active.get(name)
        return active.version if active else None

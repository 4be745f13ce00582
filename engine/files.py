"""The files of a rulesets directory: what is active, what is a candidate, what runs in shadow.

    rulesets/<name>.yaml                         the active version of each ruleset
    rulesets/<name>.cases.yaml                   its example cases
    rulesets/candidates/<name>.v<N>.yaml         a candidate version, loaded beside it (pin it to use it)
    rulesets/candidates/<name>.v<N>.cases.yaml   the candidate's cases
    rulesets/candidates/shadows.yaml             `<name>: <N>`: evaluate every live decision of <name>
                                                 under candidate v<N> too (stored, never returned)
    rulesets/teams.yaml                          the members of each team who take hand-offs
    rulesets/destinations.yaml                   the webhooks told of hand-offs, stage changes, outcomes

All of it goes through pull requests like any ruleset change.
"""

from __future__ import annotations

from pathlib import Path

from .destinations import FILE as DESTINATIONS_FILE
from .destinations import read_destinations
from .errors import Problem, RulesetError
from .registry import Deployment, Registry
from .runtime import CompiledRuleset
from .teams import FILE as TEAMS_FILE
from .teams import read_teams
from .yamlsource import load

CANDIDATES = "candidates"
TEAMS = "@teams"  # how a refused teams file is named among refused rulesets
DESTINATIONS = "@destinations"  # and a refused destinations file
SHADOWS = "shadows.yaml"


def ruleset_files(directory: Path) -> list[Path]:
    """The active ruleset files of a directory (not their cases, not the teams or destinations file)."""
    return sorted(
        p
        for p in Path(directory).glob("*.yaml")
        if not p.name.endswith(".cases.yaml") and p.name not in (TEAMS_FILE, DESTINATIONS_FILE)
    )


def candidate_files(directory: Path) -> list[Path]:
    return [p for p in ruleset_files(Path(directory) / CANDIDATES) if p.name != SHADOWS]


def all_files(directory: Path) -> list[tuple[Path, bool]]:
    """(path, is_candidate) for every ruleset file, active ones first."""
    return [(p, False) for p in ruleset_files(directory)] + [(p, True) for p in candidate_files(directory)]


def expected_name(name: str, version: int, candidate: bool) -> str:
    return f"{name}.v{version}.yaml" if candidate else f"{name}.yaml"


def naming_problem(path: Path, name: str, version: int, candidate: bool) -> Problem | None:
    expected = expected_name(name, version, candidate)
    if path.name == expected:
        return None
    what = "candidate" if candidate else "ruleset"
    return Problem(str(path), 1, None, f"the file of {what} {name!r} v{version} must be named {expected}")


def load_file(registry: Registry, path: Path, candidate: bool = False) -> CompiledRuleset:
    """Compile one file; an active ruleset is `<name>.yaml`, a candidate `<name>.v<version>.yaml`."""
    compiled = registry.compile(path.read_text("utf-8"), str(path))
    problem = naming_problem(path, compiled.name, compiled.version, candidate)
    if problem is not None:
        raise RulesetError([problem])
    return compiled


def read_directory(registry: Registry, directory: Path) -> tuple[Deployment, list[Problem], set[str]]:
    """Compile every file: (what loaded, the problems of what did not, the names of refused files).

    A refused file's name is reported so that the caller can keep serving that ruleset's last good
    version; a name with no file at all is simply no longer served.
    """
    deployment, problems, refused = Deployment(), [], set()
    for path, candidate in all_files(directory):
        try:
            compiled = load_file(registry, path, candidate)
        except RulesetError as exc:
            problems.extend(exc.problems)
            refused.add(path.name.split(".", 1)[0])
            continue
        if candidate:
            deployment.candidates.append(compiled)
        else:
            deployment.active[compiled.name] = compiled
    try:
        deployment.teams = read_teams(Path(directory))
    except RulesetError as exc:
        problems.extend(exc.problems)
        refused.add(TEAMS)
    try:
        deployment.destinations = read_destinations(Path(directory))
    except RulesetError as exc:
        problems.extend(exc.problems)
        refused.add(DESTINATIONS)
    problems += _clashes(deployment)
    problems += _read_shadows(Path(directory) / CANDIDATES / SHADOWS, deployment)
    return deployment, problems, refused


def load_directory(registry: Registry, directory: Path) -> list[Problem]:
    """Read a rulesets directory and serve what loaded; the problems of what did not."""
    deployment, problems, _ = read_directory(registry, Path(directory))
    registry.deploy(deployment)
    return problems


def _clashes(deployment: Deployment) -> list[Problem]:
    """A candidate must be a version of its own: same name and version as another file is a mistake."""
    problems, seen = [], {(c.name, c.version): c for c in deployment.active.values()}
    for candidate in list(deployment.candidates):
        other = seen.get((candidate.name, candidate.version))
        if other is not None and other.digest != candidate.digest:
            message = (
                f"version {candidate.version} of {candidate.name} is already {other.file}: raise the version"
            )
            problems.append(Problem(candidate.file, 1, None, message))
            deployment.candidates.remove(candidate)
        elif other is not None:
            deployment.candidates.remove(candidate)  # the same ruleset twice: it is simply active
        else:
            seen[(candidate.name, candidate.version)] = candidate
    return problems


def _read_shadows(path: Path, deployment: Deployment) -> list[Problem]:
    if not path.exists():
        return []
    file = str(path)
    try:
        doc = load(path.read_text("utf-8"), file)
    except RulesetError as exc:
        return exc.problems
    if not isinstance(doc.data, dict):
        return [
            Problem(file, 1, None, "shadows.yaml maps a ruleset name to a candidate version: `default: 2`")
        ]
    problems = []
    candidates = {(c.name, c.version): c for c in deployment.candidates}
    for name, version in doc.data.items():
        line = doc.line((name,))
        if name not in deployment.active:
            problems.append(Problem(file, line, None, f"no active ruleset {name!r} to shadow"))
        elif not isinstance(version, int) or isinstance(version, bool):
            problems.append(
                Problem(file, line, None, f"the shadow of {name} is a version number, not {version!r}")
            )
        elif (name, version) not in candidates:
            known = sorted(v for n, v in candidates if n == name)
            problems.append(
                Problem(
                    file,
                    line,
                    None,
                    f"no candidate {name} v{version} in {CANDIDATES}/ (candidates of {name}: {known or 'none'})",
                )
            )
        else:
            deployment.shadows[name] = candidates[(name, version)]
    return problems

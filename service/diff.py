"""Decision diff on history: what a ruleset change would do to the leads already decided.

Both versions re-decide the same facts at the same time (by default each lead's snapshot decision:
the one that handed it off, or its latest when sales reported nothing; its facts, its previous stage,
its evaluation time), on every core, and the differences are summed up as a Markdown report fit for
a pull-request comment, with how the leads whose route changes actually ended.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine import EngineError, compile_source

FIELDS = ("stage", "route", "quadrant")
CHUNK = 500

# Set in the parent before the worker processes fork, so they inherit them instead of receiving them.
_pair: tuple = ()  # (base, head) compiled rulesets
_leads: list = []  # (lead_id, facts, at, ending)
_samples = 5


def summary(decision: dict) -> dict:
    return {
        "stage": decision["stage"],
        "route": decision["route"]["id"],
        "quadrant": decision["quadrant"],
        "scores": decision["scores"],
        "fired": [r["rule"] for r in decision["reasons"] if not r["rule"].startswith("@")],
    }


def _compile(base_source: str, head_source: str) -> None:
    global _pair
    _pair = (compile_source(base_source, "<base>"), compile_source(head_source, "<head>"))


def _decide_range(bounds: tuple[int, int]) -> Diff:
    """Decide _leads[start:stop] under both versions: a partial Diff for the parent to merge."""
    part = Diff(_pair[0].identity, _pair[1].identity)
    for lead_id, facts, at, ending in _leads[bounds[0] : bounds[1]]:
        results = []
        for ruleset in _pair:
            try:
                results.append(summary(ruleset.evaluate(facts, at).decision))
            except EngineError as exc:
                results.append(f"{type(exc).__name__}: {exc}")
        part.add(lead_id, *results, _samples, ending or ended(facts))
    return part


ENDINGS = ("won", "lost", "rejected", "open")


def ended(facts: dict) -> str:
    """How a lead ended, by what sales reported in its facts: won, lost, rejected, or still open."""
    reported = {o.get("type") for o in facts.get("outcomes") or [] if isinstance(o, dict)}
    return next((e for e in ENDINGS[:3] if e in reported), "open")


@dataclass
class Diff:
    base: dict  # identity of each side
    head: dict
    leads: int = 0
    seconds: float = 0.0
    workers: int = 1
    changed: dict[str, Counter] = field(default_factory=lambda: {f: Counter() for f in FIELDS})
    any_changed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    score_shifts: dict[str, list[float]] = field(default_factory=dict)
    rules: dict[str, list[int]] = field(default_factory=dict)  # rule -> [fired in base, fired in head]
    samples: list[dict] = field(default_factory=list)
    # route from → to -> how those leads ended (won, lost, rejected, open), where sales reported
    endings: dict[tuple[str, str], Counter] = field(default_factory=dict)
    written: tuple = field(
        default_factory=lambda: ([], [])
    )  # the rules each version's file writes (for coverage)

    def merge(self, part: Diff, max_samples: int) -> None:
        self.leads += part.leads
        self.any_changed += part.any_changed
        for name in FIELDS:
            self.changed[name].update(part.changed[name])
        self.errors += part.errors
        for score, shifts in part.score_shifts.items():
            self.score_shifts.setdefault(score, []).extend(shifts)
        for rule, (before, after) in part.rules.items():
            counts = self.rules.setdefault(rule, [0, 0])
            counts[0] += before
            counts[1] += after
        self.samples += part.samples[: max_samples - len(self.samples)]
        for pair, counts in part.endings.items():
            self.endings.setdefault(pair, Counter()).update(counts)

    def changed_count(self, name: str) -> int:
        return sum(self.changed[name].values())

    def percent(self, count: int) -> float:
        return 100 * count / self.leads if self.leads else 0.0

    def add(self, lead_id: str, base, head, max_samples: int, ending: str = "open") -> None:
        self.leads += 1
        if isinstance(base, str) or isinstance(head, str):
            self.errors.append((lead_id, base if isinstance(base, str) else head))
            return
        differs = False
        for name in FIELDS:
            if base[name] != head[name]:
                self.changed[name][(base[name], head[name])] += 1
                differs = True
        for score in sorted(set(base["scores"]) | set(head["scores"])):
            shift = round((head["scores"].get(score) or 0) - (base["scores"].get(score) or 0), 2)
            self.score_shifts.setdefault(score, []).append(shift)
        fired_base, fired_head = set(base["fired"]), set(head["fired"])
        for rule in fired_base | fired_head:
            counts = self.rules.setdefault(rule, [0, 0])
            counts[0] += rule in fired_base
            counts[1] += rule in fired_head
        if base["route"] != head["route"]:
            self.endings.setdefault((base["route"], head["route"]), Counter())[ending] += 1
        if differs:
            self.any_changed += 1
            if len(self.samples) < max_samples:
                self.samples.append(
                    {
                        "lead_id": lead_id,
                        **{name: (base[name], head[name]) for name in FIELDS},
                        "newly_fired": sorted(fired_head - fired_base),
                        "stopped_firing": sorted(fired_base - fired_head),
                    }
                )


def run(
    base_source: str,
    head_source: str,
    leads: Iterable[tuple[str, dict, str]],
    workers: int | None = None,
    max_samples: int = 5,
) -> Diff:
    """Re-decide every (lead_id, facts, at, ending) under both sources; `workers` processes (default: every
    core). `ending` is how the lead went (won, lost, rejected, open), or None to read it from the facts."""
    global _leads, _samples
    workers = workers or multiprocessing.cpu_count()
    _compile(base_source, head_source)
    diff = Diff(_pair[0].identity, _pair[1].identity, workers=workers)
    diff.written = tuple([r.id for r in c.model.rules if not r.generated] for c in _pair)
    started = time.perf_counter()
    _leads, _samples = list(leads), max_samples
    try:
        ranges = [(i, min(i + CHUNK, len(_leads))) for i in range(0, len(_leads), CHUNK)]
        if workers == 1:
            parts = map(_decide_range, ranges)
            for part in parts:
                diff.merge(part, max_samples)
        else:
            # fork: the children inherit the compiled pair and the leads; only partial results travel.
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_decide_range, ranges):
                    diff.merge(part, max_samples)
    finally:
        _leads = []
    diff.seconds = time.perf_counter() - started
    return diff


def coverage_section(diff: Diff) -> list[str]:
    """Rules that never fire, or fire for every lead, on these leads under each version (dead or blunt rules)."""
    evaluated = diff.leads - len(diff.errors)
    if not evaluated:
        return []
    out = [
        "",
        f"### Rule coverage on these {evaluated:,} leads",
        "",
        "| | base | head |",
        "| --- | --- | --- |",
    ]
    for label, test in (("never fire", lambda n: n == 0), ("fire for every lead", lambda n: n == evaluated)):
        cells = []
        for side, rules in enumerate(diff.written):
            hits = [r for r in rules if test(diff.rules.get(r, [0, 0])[side])]
            cells.append(", ".join(f"`{r}`" for r in hits) or "none")
        out.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return out


def markdown(diff: Diff, base_label: str, head_label: str, source_label: str) -> str:
    """The report, for a pull-request comment."""
    b, h = diff.base, diff.head
    lines = [
        f"## Decision diff: {b['name']} v{b['version']} ({base_label}) → {h['name']} v{h['version']} ({head_label})",
        "",
        f"Re-decided **{diff.leads:,}** leads from {source_label} under both versions "
        f"({diff.seconds:.1f} s on {diff.workers} processes). "
        f"**{diff.any_changed:,}** ({diff.percent(diff.any_changed):.1f}%) change stage, route or quadrant.",
        "",
        "| what | leads changed | share |",
        "| --- | ---: | ---: |",
    ]
    for name in FIELDS:
        count = diff.changed_count(name)
        lines.append(f"| {name} | {count:,} | {diff.percent(count):.1f}% |")
    if diff.errors:
        lines.append(
            f"| could not be evaluated | {len(diff.errors):,} | {diff.percent(len(diff.errors)):.1f}% |"
        )
    for name in FIELDS:
        if diff.changed[name]:
            lines += [
                "",
                f"### {name.capitalize()}: from → to",
                "",
                "| from | to | leads |",
                "| --- | --- | ---: |",
            ]
            for (old, new), count in diff.changed[name].most_common():
                lines.append(f"| {old} | {new} | {count:,} |")
    if diff.score_shifts:
        lines += [
            "",
            "### Score shifts",
            "",
            "| score | leads moved | mean shift | smallest | largest |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for score, shifts in diff.score_shifts.items():
            moved = sum(1 for s in shifts if s)
            mean = sum(shifts) / len(shifts)
            lines.append(f"| {score} | {moved:,} | {mean:+.2f} | {min(shifts):+.2f} | {max(shifts):+.2f} |")
    if any(sum(c[e] for e in ENDINGS[:3]) for c in diff.endings.values()):
        lines += [
            "",
            "### How the leads whose route changes actually ended",
            "",
            "| from | to | leads | won | lost | rejected | no outcome yet |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for (old, new), c in sorted(diff.endings.items(), key=lambda kv: -sum(kv[1].values())):
            lines.append(
                f"| {old} | {new} | {sum(c.values()):,} | {c['won']:,} | {c['lost']:,} | {c['rejected']:,} | {c['open']:,} |"
            )
    different = {r: c for r, c in diff.rules.items() if c[0] != c[1]}
    if different:
        lines += ["", "### Rules that fire differently", "", "| rule | fired before | fired after | change |"]
        lines.append("| --- | ---: | ---: | ---: |")
        for rule, (before, after) in sorted(
            different.items(), key=lambda kv: (-abs(kv[1][1] - kv[1][0]), kv[0])
        ):
            lines.append(f"| `{rule}` | {before:,} | {after:,} | {after - before:+,} |")
    lines += coverage_section(diff)
    if diff.samples:
        lines += ["", "### Sample leads that change", ""]
        for s in diff.samples:
            moves = ", ".join(f"{n} {s[n][0]} → {s[n][1]}" for n in FIELDS if s[n][0] != s[n][1])
            lines.append(f"- `{s['lead_id']}`: {moves}")
            if s["newly_fired"]:
                lines.append(f"  - newly fired: {', '.join(f'`{r}`' for r in s['newly_fired'])}")
            if s["stopped_firing"]:
                lines.append(f"  - stopped firing: {', '.join(f'`{r}`' for r in s['stopped_firing'])}")
    if diff.errors:
        lines += ["", "### Leads the new version cannot evaluate", ""]
        lines += [f"- `{lead}`: {message}" for lead, message in diff.errors[:5]]
    return "\n".join(lines) + "\n"

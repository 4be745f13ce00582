"""Layers: the order in which rules may fire so that forward chaining with totals is safe.

A rule that reads a score total runs after every rule that adds to that score (and after the total
is taken); a rule that reads a slot runs after every rule that sets it, unless it sets that slot too.
Nodes that wait on each other in a circle have no order: each circle is reported in words.
"""

from __future__ import annotations

from .errors import Problem
from .model import Ruleset


def stratify(nodes: dict[str, tuple[set[str], set[str]]]) -> tuple[dict[str, int], list[list[str]]]:
    """Layer of every node from (reads, writes); the circles of nodes that wait on each other, if any."""
    writers: dict[str, set[str]] = {}
    for node, (_, writes) in nodes.items():
        for kind in writes:
            writers.setdefault(kind, set()).add(node)
    preds: dict[str, set[str]] = {n: set() for n in nodes}
    for node, (reads, writes) in nodes.items():
        for kind in reads - writes:
            preds[node] |= writers.get(kind, set()) - {node}
    layer: dict[str, int] = {}
    remaining = dict(preds)
    while remaining:
        ready = [n for n, p in remaining.items() if p <= layer.keys()]
        if not ready:
            return layer, _circles({n: p & remaining.keys() for n, p in remaining.items()})
        for n in ready:
            layer[n] = 1 + max((layer[p] for p in remaining[n]), default=-1)
            del remaining[n]
    return layer, []


def _circles(preds: dict[str, set[str]]) -> list[list[str]]:
    """One circle per group of nodes that wait on each other (nodes only waiting on a circle excluded).

    Each circle is given in the order its results flow: every node feeds the next, the last the first.
    """
    circles, done = [], set()
    for start in sorted(preds):
        if start in done:
            continue
        # Walk predecessors until a node repeats: every node left here waits on something, so it must.
        path, seen, node = [], {}, start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = min(preds[node])
        circle = path[seen[node] :][::-1]
        done |= set(path)
        if not set(circle) & {n for c in circles for n in c}:
            circles.append(circle)
    return circles


def describe_node(node: str) -> str:
    if node == "@matrix":
        return "@matrix (fit and quadrant)"
    if node.startswith("@tally:"):
        return f"the {node.split(':', 1)[1]} total"
    return node


def _kind_words(kind: str) -> str:
    section, _, name = kind.partition(":")
    if name.startswith("qual:"):
        return f"qualification {name[5:]}"
    if name.startswith("tag:"):
        return f"tag {name[4:]}"
    return name


def circle_problems(circles: list[list[str]], nodes, model: Ruleset, file: str, line_of) -> list[Problem]:
    """One problem per circle, in words: who sets what the next one reads, and what to change."""
    out: list[Problem] = []
    by_id = {r.id: r for r in model.rules}
    for circle in circles:
        steps = []
        for i, node in enumerate(circle):
            if node.startswith("@tally:"):
                continue
            after = circle[(i + 1) % len(circle)]
            if after.startswith("@tally:"):
                name = after.split(":", 1)[1]
                reader = describe_node(circle[(i + 2) % len(circle)])
                steps.append(
                    f"{describe_node(node)} adds {name} points to the {name} total, which {reader} reads"
                )
                continue
            kinds = sorted((nodes[after][0] - nodes[after][1]) & nodes[node][1])
            steps.append(
                f"{describe_node(node)} sets {_kind_words(kinds[0])}, which {describe_node(after)} reads"
            )
        rules = [n for n in circle if n in by_id]
        first = min((by_id[r] for r in rules), key=lambda r: r.path) if rules else model.rules[0]
        out.append(
            Problem(
                file,
                line_of(first.path),
                first.id,
                "these depend on each other's results in a circle, so no order works: "
                + "; ".join(steps)
                + ". Break the circle by changing "
                + (f"one of these rules: {', '.join(rules)}" if len(rules) > 1 else f"rule {rules[0]}"),
            )
        )
    return out

"""Safe YAML loading that remembers the line of every value.

Ruleset files are written by people, so the loader is strict where YAML is forgiving:
YAML 1.2 booleans (`yes`, `no`, `on`, `off` stay strings: they are answers), no tags, no anchors or
aliases (no alias bombs), no duplicate keys. Every error names file and line.
"""

from __future__ import annotations

import re

import yaml

from .errors import Problem, RulesetError

MAX_SOURCE_BYTES = 1_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64  # a ruleset nests a dozen levels; PyYAML's composer recurses and would overflow the stack


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core booleans and a bound on nesting."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_STANDARD_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}


class Located:
    """The parsed document plus a line for every path inside it."""

    def __init__(self, data, lines: dict[tuple, int], file: str):
        self.data, self.lines, self.file = data, lines, file

    def line(self, path) -> int:
        """Line of the value at `path`, or of its nearest enclosing value."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def load(text: str, file: str) -> Located:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise RulesetError([Problem(file, 1, None, f"file is larger than {MAX_SOURCE_BYTES} bytes")])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise RulesetError(
            [Problem(file, line, None, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")]
        ) from None
    finally:
        loader.dispose()
    if root is None:
        raise RulesetError([Problem(file, 1, None, "the file is empty")])
    lines: dict[tuple, int] = {}
    problems: list[Problem] = []
    seen: set[int] = set()
    data = _build(root, (), lines, problems, file, loader, seen)
    if problems:
        raise RulesetError(problems)
    return Located(data, lines, file)


def _build(node, path, lines, problems, file, loader, seen):
    lines[path] = node.start_mark.line + 1
    # The composer hands an alias back as the very node it names: meeting a node twice means `*`.
    if id(node) in seen:
        problems.append(Problem(file, lines[path], None, "anchors and aliases (&, *) are not allowed"))
        return None
    seen.add(id(node))
    if len(seen) > MAX_NODES:
        problems.append(Problem(file, lines[path], None, f"more than {MAX_NODES} values"))
        return None
    if node.tag not in _STANDARD_TAGS:
        problems.append(Problem(file, lines[path], None, f"tag {node.tag} is not allowed"))
        return None
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    Problem(
                        file, key_node.start_mark.line + 1, None, "keys must be plain text (no merge keys)"
                    )
                )
                continue
            key = str(loader.construct_scalar(key_node))
            if key in out:
                problems.append(
                    Problem(file, key_node.start_mark.line + 1, None, f"key {key!r} appears twice")
                )
                continue
            out[key] = _build(value_node, path + (key,), lines, problems, file, loader, seen)
            lines[path + (key,)] = key_node.start_mark.line + 1  # people look for the key, not its value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, problems, file, loader, seen) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)

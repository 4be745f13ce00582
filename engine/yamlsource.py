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


def plain_yaml_error(exc: yaml.YAMLError, text: str):
    """PyYAML's parser words ('expected <block end>…') turned into what to fix, with the line's text;
    and the place to show: where the unclosed thing opened, when the parser only noticed later."""
    problem = str(getattr(exc, "problem", None) or exc)
    context = str(getattr(exc, "context", None) or "")
    mark = getattr(exc, "problem_mark", None)
    opened = getattr(exc, "context_mark", None)
    if opened is not None and (
        "could not find expected ':'" in problem or "<stream end>" in problem or "end of stream" in problem
    ):
        mark = opened
    if "'\\t'" in problem or "'\t'" in problem:
        what = "a tab is used for indentation: YAML indents with spaces only"
    elif "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else "this character"
        what = f'text cannot start with {char!r} unless it is quoted: write it in quotes ("…")'
    elif "expected <block end>" in problem and "<scalar>" in problem:
        what = (
            "text continues after a closing quote: if the text itself holds a quote, put the whole text in "
            "the other kind of quotes (\"it's\") or double the single quote ('it''s')"
        )
    elif "expected <block end>" in problem or "expected '-' indicator" in problem:
        what = (
            "this line is indented differently from the lines above it at the same level: keys of one "
            "mapping and items of one list must start in exactly the same column"
        )
    elif "mapping values are not allowed here" in problem:
        what = (
            "a second ': ' on one line: put text that holds ': ' in quotes (\"…\"), or start the new key "
            "on a line of its own"
        )
    elif "could not find expected ':'" in problem:
        what = "a line has no ':' after its key (or a quoted text above is not closed)"
    elif "flow mapping" in context:
        what = (
            "a {…} mapping is not written right: separate its entries with ',' and close it with '}'; "
            "quote values that hold ': ', ',' or '#'"
        )
    elif "flow sequence" in context:
        what = (
            "a […] list is not written right: separate its items with ',' and close it with ']'; "
            "quote items that hold ': ', ',' or '#'"
        )
    elif "quoted scalar" in context:
        what = "a quote is opened but never closed"
    else:
        what = f"{context + ': ' if context else ''}{problem}"
    line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
    return f"not valid YAML: {what}" + (f" — the line reads {line.strip()!r}" if line.strip() else ""), mark


class Located:
    """The parsed document plus a line for every path inside it."""

    def __init__(self, data, lines: dict[tuple, tuple[int, int]], file: str):
        self.data, self.lines, self.file = data, lines, file

    def _place(self, path) -> tuple[int, int]:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, (1, 0))

    def line(self, path) -> int:
        """Line of the value at `path`, or of its nearest enclosing value."""
        return self._place(path)[0]

    def column(self, path) -> int:
        """Column (from 1) where that value, or its key, starts."""
        return self._place(path)[1]


def load(text: str, file: str) -> Located:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise RulesetError([Problem(file, 1, None, f"file is larger than {MAX_SOURCE_BYTES} bytes")])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        message, mark = plain_yaml_error(exc, text)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 0)
        raise RulesetError([Problem(file, line, None, message, column)]) from None
    finally:
        loader.dispose()
    if root is None:
        raise RulesetError([Problem(file, 1, None, "the file is empty")])
    lines: dict[tuple, tuple[int, int]] = {}
    problems: list[Problem] = []
    seen: set[int] = set()
    data = _build(root, (), lines, problems, file, loader, seen)
    if problems:
        raise RulesetError(problems)
    return Located(data, lines, file)


def _build(node, path, lines, problems, file, loader, seen):
    lines[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    # The composer hands an alias back as the very node it names: meeting a node twice means `*`.
    if id(node) in seen:
        problems.append(Problem(file, lines[path][0], None, "anchors and aliases (&, *) are not allowed"))
        return None
    seen.add(id(node))
    if len(seen) > MAX_NODES:
        problems.append(Problem(file, lines[path][0], None, f"more than {MAX_NODES} values"))
        return None
    if node.tag not in _STANDARD_TAGS:
        problems.append(Problem(file, lines[path][0], None, f"tag {node.tag} is not allowed"))
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
            # people look for the key, not its value
            lines[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, problems, file, loader, seen) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)

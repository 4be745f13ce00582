"""Regular expressions of `matches` tests, run with RE2: linear time on any text a caller sends.

Python's `re` backtracks, so a pattern such as (a+)+$ could take exponential time on text a caller
chooses. RE2 (google-re2) guarantees time linear in the text for every pattern it accepts; what it
does not accept — backreferences and lookaround, the features that need backtracking — is refused
when the ruleset is validated, with a message saying what to write instead.
"""

from __future__ import annotations

from functools import lru_cache

import re2

_UNSUPPORTED = (
    ("(?=", "lookahead (?=…)"),
    ("(?!", "negative lookahead (?!…)"),
    ("(?<=", "lookbehind (?<=…)"),
    ("(?<!", "negative lookbehind (?<!…)"),
    ("(?P=", "a backreference (?P=name)"),
    ("(?(", "a conditional group (?(1)…)"),
)


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False  # `matches` ignores case, as documented
    options.log_errors = False
    return options


@lru_cache(maxsize=4096)
def compiled(pattern: str):
    """The compiled, case-insensitive pattern; re2.error when RE2 refuses it (see regex_problem)."""
    return re2.compile(pattern, _options())


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used in a ruleset, in words a ruleset owner can act on; None if it can."""
    try:
        compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        feature = next((name for token, name in _UNSUPPORTED if token in pattern), None)
        if feature is None and "invalid escape sequence: \\" in reason and reason[-1:].isdigit():
            feature = f"a backreference {reason.rsplit(' ', 1)[1]}"
        if feature:
            return (
                f"regular expression {pattern!r} uses {feature}, which leadgate does not run (it can take "
                "exponential time on long text); test the parts separately with `all:` / `not:` instead"
            )
        return f"regular expression {pattern!r} does not compile: {reason.split(': ', 1)[0]}"
    return None


def search(pattern: str, text: str) -> bool:
    # Searched as UTF-8 bytes (the pattern is compiled as UTF-8 either way): the same match or none,
    # without the wrapper turning byte offsets back into character offsets, which no caller reads.
    return compiled(pattern).search(text.encode()) is not None

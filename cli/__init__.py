"""The `leadgate` command: a thin layer over library calls (engine, audit, app).

Each command parses its options, calls one library function and prints the result; exit codes are 0
for success, 1 when what was checked failed, 2 for usage errors. One module per command group.
"""

from __future__ import annotations

from pathlib import Path

import click

from service.config import load_config


def rulesets_dir(value: str | None) -> Path:
    return Path(value or load_config().RULESETS)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """leadgate: lead-qualification decisions from rulesets, with an audit trail."""


from . import audit, decisions, keys, outcomes, production, reports, rulesets  # noqa: E402,F401 - register the command groups

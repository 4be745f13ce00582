"""The `leadgate` command: a thin layer over library calls (engine, audit, app).

Each command parses its options, calls one library function and prints the result; exit codes are 0
for success, 1 when what was checked failed, 2 for usage errors. One module per command group.
"""

from __future__ import annotations

from pathlib import Path

import click

from audit import AuditTrail
from service.config import Config, load_config
from service.decide import open_trail


def rulesets_dir(value: str | None) -> Path:
    return Path(value or load_config().RULESETS)


def command_trail(config: Config) -> AuditTrail:
    """The audit trail for the running command, closed when the command ends, however it ends."""
    trail = open_trail(config)
    click.get_current_context().call_on_close(trail.close)
    return trail


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """leadgate: lead-qualification decisions from rulesets, with an audit trail."""


from . import audit, decisions, deliveries, keys, outcomes, production, reports, rulesets  # noqa: E402,F401 - register the command groups

"""The `leadgate` command: a thin layer over library calls (engine, audit, app).

Each command parses its options, calls one library function and prints the result; exit codes are 0
for success, 1 when what was checked failed, 2 for usage errors. One module per command group. An error
of the library (any package's root exception) is handled once, by the `leadgate` group: `error: <message>`
on stderr and exit status 1, whichever command raised it.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from audit import AuditError, AuditTrail
from engine import EngineError
from service.config import Config, load_config
from service.decide import open_trail
from service.errors import ServiceError

# The packages' exception roots: every failure a command can name is one of these.
FAILURES = (EngineError, AuditError, ServiceError)

# Terminal control and bidi formatting characters: a lead id or company name holding ESC, BEL or U+202E
# must not drive the terminal nor reorder the line. Shown as \u001b etc. instead.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def echo(text="", **kwargs) -> None:
    """click.echo with control characters escaped: everything the CLI prints from the trail goes here."""
    click.echo(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text)), **kwargs)


class Time(click.ParamType):
    """A time option, read by the one time parser (engine.facts.parse_time) and passed on in UTC."""

    name = "time"

    def convert(self, value, param, ctx):
        from engine import FactsError
        from engine.facts import format_time, parse_time

        try:
            return format_time(parse_time(value, param.name if param else "time"))
        except FactsError as exc:
            self.fail(f"{value!r} is not an ISO 8601 time in the years 1 to 9999 UTC ({exc})", param, ctx)


TIME = Time()


def rulesets_dir(value: str | None) -> Path:
    return Path(value or load_config().RULESETS)


def command_trail(config: Config) -> AuditTrail:
    """The audit trail for the running command, closed when the command ends, however it ends."""
    trail = open_trail(config)
    click.get_current_context().call_on_close(trail.close)
    return trail


class _Leadgate(click.Group):
    """The one CLI error handler: a library error ends any command with `error: …` and status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FAILURES as exc:
            echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Leadgate, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """leadgate: lead-qualification decisions from rulesets, with an audit trail."""


from . import audit, decisions, deliveries, keys, operate, outcomes, production, reports, rulesets  # noqa: E402,F401 - register the command groups

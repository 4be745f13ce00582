"""Who is told about what: the webhook destinations of `rulesets/destinations.yaml`.

It sits beside the rulesets and teams.yaml and changes the same way (a pull request that raises
`version`, a reload). A destination never holds its signing secret: `secret_env` names the
environment variable that does, or, without it, the key file keeps one under `webhook.<id>`. An
address that is a secret itself (a Slack incoming webhook's) comes from the variable `url_env` names.

    version: 1
    destinations:
      sales-crm:
        url: https://crm.example.com/hooks/leadgate
        secret_env: LEADGATE_WEBHOOK_SALES_CRM_SECRET
        events: [lead.handed_off, outcome.recorded]
      sales-chat:
        url_env: LEADGATE_WEBHOOK_SALES_CHAT_URL  # a Slack webhook's address is itself a secret
        format: slack                       # or json (the default): the plain event
        events: [lead.handed_off, sla.breached]
        teams: [account-executives]         # optional filters: rulesets, routes, teams
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .compiler import digest_of
from .errors import RulesetError
from .schema import suggest
from .sidefile import SideFile

FILE = "destinations.yaml"
EVENT_KINDS = (
    "lead.handed_off",
    "lead.stage_changed",
    "lead.disqualified",
    "sla.breached",
    "outcome.recorded",
)
FORMATS = ("json", "slack")
FILTERS = ("rulesets", "routes", "teams")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENV = re.compile(r"^LEADGATE_WEBHOOK_[A-Z0-9_]{1,64}$")
_KEYS = ("url", "url_env", "secret_env", "format", "events", *FILTERS)
_TOP_KEYS = ("version", "destinations")


@dataclass(frozen=True)
class Destination:
    id: str
    url: str | None  # None: read from the variable url_env names, when sending
    url_env: str | None
    secret_env: str | None
    format: str
    events: frozenset[str]
    rulesets: frozenset[str]
    routes: frozenset[str]
    teams: frozenset[str]

    def wants(self, event: dict) -> bool:
        """Whether this destination subscribed to `event` ({type, ruleset, route, team, ...})."""
        return (
            event["type"] in self.events
            and (not self.rulesets or event.get("ruleset") in self.rulesets)
            and (not self.routes or event.get("route") in self.routes)
            and (not self.teams or event.get("team") in self.teams)
        )


@dataclass(frozen=True)
class Destinations:
    version: int
    destinations: dict[str, Destination]
    digest: str
    source: str

    @property
    def identity(self) -> dict:
        return {"name": "@destinations", "version": self.version, "digest": self.digest}


def load_destinations(text: str, file: str = FILE) -> Destinations:
    side = SideFile(text, file, _TOP_KEYS, "destinations.yaml is a mapping with version and destinations")
    data, problems, problem, version = side.data, side.problems, side.problem, side.version
    raw = data.get("destinations")
    if not isinstance(raw, dict):
        problem(("destinations",), "destinations maps each destination's id to its url and events")
        raw = {}
    out = {}
    for did, spec in raw.items():
        before = len(problems)
        found = _destination(did, spec, ("destinations", did), problem)
        if found is not None and len(problems) == before:
            out[did] = found
    if problems:
        raise RulesetError(problems)
    return Destinations(version, out, digest_of(data), text)


def _destination(did, spec, path, problem) -> Destination | None:
    if not isinstance(did, str) or not _ID.match(did):
        problem(path, "a destination id is lower case letters, digits, _ and -")
        return None
    if not isinstance(spec, dict):
        problem(path, f"destination {did!r} is a mapping: {{url, events, secret_env, format, ...}}")
        return None
    for key in spec:
        if key not in _KEYS:
            problem(path + (key,), f"unknown key {key!r}" + suggest(key, _KEYS))
    url, url_env = spec.get("url"), spec.get("url_env")
    if (url is None) == (url_env is None):
        problem(path, f"destination {did!r} needs either url or url_env (the variable holding the address)")
    elif url is not None:
        message = url_problem(url)
        if message:
            problem(path + ("url",), message)
    for key in ("url_env", "secret_env"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or not _ENV.match(value)):
            problem(
                path + (key,),
                f"{key} names an environment variable LEADGATE_WEBHOOK_<NAME> (the value itself never goes here)",
            )
    secret_env = spec.get("secret_env")
    fmt = spec.get("format", "json")
    if fmt not in FORMATS:
        problem(path + ("format",), f"format must be one of {', '.join(FORMATS)}")
    events = spec.get("events")
    if not isinstance(events, list) or not events:
        problem(path + ("events",), f"events lists what to send: {', '.join(EVENT_KINDS)}")
        events = []
    for i, kind in enumerate(events):
        if kind not in EVENT_KINDS:
            problem(path + ("events", i), f"unknown event {kind!r}" + suggest(kind, EVENT_KINDS))
    filters = {}
    for name in FILTERS:
        value = spec.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problem(path + (name,), f"{name} is a list of names")
            value = []
        filters[name] = frozenset(value)
    return Destination(did, url, url_env, secret_env, fmt, frozenset(events), **filters)


def url_problem(url) -> str | None:
    """What is wrong with a destination's address (never repeating it: it may be a secret), or None."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return "url must be an http:// or https:// address"
    if parts.password or parts.username:
        return "url must not hold credentials: sign with a secret instead"
    return None


def read_destinations(directory: Path) -> Destinations | None:
    """The destinations file of a rulesets directory; None when there is none (nobody is told)."""
    path = Path(directory) / FILE
    return load_destinations(path.read_text("utf-8"), str(path)) if path.exists() else None

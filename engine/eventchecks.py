"""A lead's events checked against a ruleset: each event's type, time, id and properties, and their
canonical order (by time, then as sent), for engine.facts and the merge of checked facts."""

from __future__ import annotations

import json

from .errors import FactsError
from .model import Ruleset
from .schema import suggest
from .times import format_time, parse_time
from .values import MAX_EVENTS, MAX_PROPERTIES, PROPERTY, Errors, check_value
from .vocabulary import BOOLEAN, NUMBER, STRING

_EVENT_KEYS = frozenset({"id", "type", "at", "properties"})


def check_events(raw, errors: Errors, model: Ruleset, sent: list | None = None) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add("events", "must be a list")
        return []
    if len(raw) > MAX_EVENTS:
        errors.add("events", f"at most {MAX_EVENTS} events per lead")
        return []
    seen: set[str] = set()
    out = []
    for i, event in enumerate(raw):
        field = f"events[{i}]"
        if not isinstance(event, dict):
            errors.add(field, "must be an object")
            continue
        if not _EVENT_KEYS.issuperset(event):
            for key in sorted(set(event) - _EVENT_KEYS):
                errors.add(
                    f"{field}.{key}", "unknown field" + suggest(key, ["id", "type", "at", "properties"])
                )
        etype = event.get("type")
        if not isinstance(etype, str) or etype not in model.event_types:
            declared = model.declared_event_types
            errors.add(
                f"{field}.type",
                f"{etype!r} is not an event type of ruleset {model.name}"
                + suggest(str(etype), model.event_types)
                + (f" (its own: {', '.join(declared)}; or a standard one)" if declared else ""),
            )
            continue
        declared_props = model.event_types[etype].properties
        try:
            at = format_time(parse_time(event.get("at"), f"{field}.at"))
        except FactsError as exc:
            for k, v in exc.errors.items():
                for m in v:
                    errors.add(k, m)
            continue
        eid = event.get("id")
        if eid is not None and (not isinstance(eid, str) or not eid or len(eid) > 200):
            errors.add(f"{field}.id", "must be text of 1 to 200 characters")
            continue
        props = event.get("properties") or {}
        if not isinstance(props, dict) or len(props) > MAX_PROPERTIES:
            errors.add(f"{field}.properties", f"must be an object of at most {MAX_PROPERTIES} values")
            continue
        clean = {}
        for key, value in props.items():
            pfield = f"{field}.properties.{key}"
            if not isinstance(key, str) or not PROPERTY.fullmatch(key):
                errors.add(pfield, "property names are lower case letters, digits and _")
            elif declared_props is not None:  # a ruleset's own event: its properties are typed
                if key not in declared_props:
                    errors.add(
                        pfield,
                        f"{etype} has no property {key!r}"
                        + suggest(key, declared_props)
                        + f" (its properties: {', '.join(declared_props) or 'none'})",
                    )
                elif value is not None:
                    clean[key] = check_value(value, declared_props[key], pfield, errors)
            elif isinstance(value, bool | str):
                clean[key] = check_value(
                    value, BOOLEAN if isinstance(value, bool) else STRING, pfield, errors
                )
            elif isinstance(value, int | float):
                clean[key] = check_value(value, NUMBER, pfield, errors)
            elif value is not None:
                errors.add(pfield, "must be text, a number or true/false")
        if eid is not None:
            if eid in seen:
                if sent is not None:
                    sent.append(None)
                continue  # the same event sent twice counts once
            seen.add(eid)
        item = {"type": etype, "at": at}
        if eid is not None:
            item["id"] = eid
        if clean:
            item["properties"] = clean
        out.append(item)
        if sent is not None:
            sent.append(item)
    return in_order(out)


def in_order(events: list[dict]) -> list[dict]:
    """Events in canonical order: by time, id and type, as sent among equals (a stable sort); only
    events alike in all three have their properties compared. Each event's key is computed once."""
    keys = [event_time(e) for e in events]
    if len(set(keys)) < len(keys):
        # Stable, so events alike in their whole order keep the order they came in, as they would
        # sorted by time first and then by the whole order.
        return sorted(events, key=event_order)
    return [events[i] for i in sorted(range(len(keys)), key=keys.__getitem__)]


def event_time(event: dict):
    return event["at"], event.get("id", ""), event["type"]


def event_order(event: dict):
    props = event.get("properties")
    return event["at"], event.get("id", ""), event["type"], json.dumps(props, sort_keys=True) if props else ""

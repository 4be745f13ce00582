"""A request's checked facts merged into a lead's stored facts, without checking the whole again.

A decision evaluates what is stored for the lead updated by what the request sends (profile fields
and answers replace, null removes, events add and an event id counts once; the stored stage,
outcomes and open hand-off stay). The request's facts are checked once by `normalise`; the stored
ones are the canonical facts of the lead's last decision, checked then. `merge_checked` puts the two
together into what `normalise(merge_facts(stored, sent))` gives (a test compares them), checking
only what the ruleset could refuse of the stored facts: their names, types, allowed answers, stage
and outcome reasons, as another ruleset or version may have decided the lead. When any of that
does not fit, or for facts that are not canonical, it returns None and the caller checks the merged
whole as before, so a problem is named exactly as it always was.
"""

from __future__ import annotations

from .errors import FactsError
from .eventchecks import in_order
from .facts import (
    CheckedFacts,
    _answers,
    _handoff,
    _outcomes,
    _section,
    checked_facts,
)
from .model import Ruleset
from .values import MAX_EVENTS, Errors, check_value
from .vocabulary import DERIVED_PROFILE_FIELDS

_EMPTY = {"profile": {}, "answers": {}, "events": []}


def merge_checked(model: Ruleset, stored: dict | None, sent: dict, checked: CheckedFacts, event_key):
    """The facts to evaluate, as CheckedFacts of `model`; None when the stored facts need the full check.

    `sent` is the request's facts as sent, `checked` what `normalise(model, sent)` returned, and
    `event_key(event)` the key under which the trail counts an event sent without an id once.
    """
    stored = stored or _EMPTY
    errors = Errors()
    profile = _section(stored.get("profile"), "profile", model.profile_fields, errors, DERIVED_PROFILE_FIELDS)
    answers = _answers(stored.get("answers"), model, errors)
    outcomes = _outcomes(stored.get("outcomes"), model, errors)
    handoff = _handoff(stored.get("handoff"), errors)
    previous = stored.get("previous_stage") or checked.get("previous_stage")
    events = _stored_events(model, stored.get("events") or [])
    if errors or events is None or (previous is not None and previous not in {s.id for s in model.stages}):
        return None
    keys = {e["id"] for e in events}
    for raw, clean in zip(sent.get("events") or [], checked.sent, strict=True):
        key = event_key(raw)
        if key in keys:  # known already, or sent twice (`clean` is None then)
            continue
        keys.add(key)
        item = {"type": clean["type"], "at": clean["at"], "id": key}
        if "properties" in clean:
            item["properties"] = clean["properties"]
        events.append(item)
    if len(events) > MAX_EVENTS:
        raise FactsError({"events": [f"at most {MAX_EVENTS} events per lead"]})
    events = in_order(events)
    out = {
        "lead_id": checked["lead_id"],
        "channel": sent.get("channel") or stored.get("channel"),
        "profile": _replaced(profile, sent.get("profile"), checked["profile"]),
        "answers": _replaced(answers, sent.get("answers"), checked["answers"]),
        "events": events,
    }
    return checked_facts(out, model, previous, outcomes, handoff)


def _replaced(stored: dict, sent: dict | None, checked: dict) -> dict:
    """Stored values updated by the sent ones (checked); a null sent removes one."""
    values = dict(stored)
    for key in sent or ():
        if key in checked:
            values[key] = checked[key]
        else:  # null
            values.pop(key, None)
    return values


def _stored_events(model: Ruleset, stored: list) -> list[dict] | None:
    """Stored events in canonical form (type, at, id, properties), or None if one does not fit this
    ruleset: an event type it does not know, or a property its own event type does not declare as such."""
    out = []
    errors = Errors()
    for event in stored:
        etype, props = event.get("type"), event.get("properties")
        spec = model.event_types.get(etype) if isinstance(etype, str) else None
        if spec is None or not isinstance(event.get("id"), str) or not isinstance(event.get("at"), str):
            return None
        item = {"type": etype, "at": event["at"], "id": event["id"]}
        if props:
            declared = spec.properties
            if declared is not None:
                for key, value in props.items():
                    if key not in declared or check_value(value, declared[key], "", errors) != value:
                        return None
            item["properties"] = props
        out.append(item)
    return out

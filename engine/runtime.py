"""Evaluating a compiled ruleset: lead facts + evaluation time in, a decision out.

durable_rules is driven through its C module directly, not through `durable.lang`'s Host:
- the Host's background timer threads steal in-flight actions of other sessions (a measured race);
  without a Host there are no such threads at all;
- one session per compiled ruleset, reused (at most 1,024 live sessions per ruleset; each holds
  ~515 KiB): after an evaluation every fact it holds is retracted and the session must be empty, no
  fact and no action pending; otherwise, and after any failure, its state is deleted and the next
  evaluation starts a fresh session. A tally action always runs, so `delete_state` never meets a
  session without actions (which crashes the process);
- one lock per compiled ruleset serialises its sessions (the GIL serialises them anyway);
- an exception in an action abandons the chain and fails the evaluation instead of being swallowed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime

try:
    import durable_rules_engine as dre
except ImportError as exc:
    if "PyEval_CallObject" not in str(exc):
        raise
    raise ImportError(  # built on Python 3.13 without the define it needs: say how to build it
        f"{exc}. durable-rules must be built with CC='gcc -DPyEval_CallObject=PyObject_CallObject' "
        "on Python 3.13: see the README's Quick start"
    ) from exc

from . import computed
from .actions import Run
from .compiler import Handler, Plan
from .decision import decision
from .errors import EngineError, EvaluationError
from .facts import CheckedFacts, normalise
from .features import AGGREGATES, EventAggregates, compute_feature, email_domain, event_ages, text_test
from .model import Ruleset
from .times import parse_time

_sessions = itertools.count(1)
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
_string = json.encoder.encode_basestring  # a str as _encode writes it
# The start of an event fact as _encode writes it; inside JSON text a quote in a value is escaped, so
# only event facts themselves match.
_EVENT_FACT = re.compile(r'\{"id": "e(\d+)", "t": "ev"')


@dataclass
class Evaluation:
    """What one evaluation used and produced: the canonical facts and the decision."""

    facts: dict
    decision: dict


class CompiledRuleset:
    """One version of one ruleset, registered with durable_rules and ready to evaluate."""

    def __init__(self, model: Ruleset, plan: Plan, source: str, digest: str, file: str, engine_name: str):
        self.model, self.plan, self.source, self.digest, self.file = model, plan, source, digest, file
        self.engine_name = engine_name
        self._lock = threading.Lock()
        self._sid = str(next(_sessions))
        self._aggregates = EventAggregates(plan.features)
        self._closing = ("", "")  # (session id, the tally and matrix facts as JSON for it)
        self._handle = dre.create_ruleset(engine_name, json.dumps(plan.definition, ensure_ascii=False))
        # What actions assert and retract slot and score facts with: fact text in, this ruleset's session.
        self._fact_functions = (
            functools.partial(dre.assert_fact, self._handle),
            functools.partial(dre.retract_fact, self._handle),
        )

    name = property(lambda self: self.model.name)
    version = property(lambda self: self.model.version)

    @property
    def identity(self) -> dict:
        return {"name": self.model.name, "version": self.model.version, "digest": self.digest}

    def normalise(self, facts: dict) -> CheckedFacts:
        """The one check of lead facts for this ruleset; what it returns `evaluate` does not check again."""
        return normalise(self.model, facts)

    def evaluate(self, facts: dict, at: datetime | str) -> Evaluation:
        """The decision for these facts at this time. Pure: same inputs, same decision.

        Facts are checked first (FactsError), unless they are this ruleset's own `normalise` result."""
        if type(facts) is not CheckedFacts or facts.model is not self.model:
            facts = normalise(self.model, facts)
        at = parse_time(at, "at")
        run = Run(self.model, self.plan, facts, at)
        with self._lock:
            sid = self._sid
            run.bind(sid, *self._fact_functions)
            state = None
            clean = False
            try:
                initial, held = self._initial_facts(run, facts, at, sid)
                _, state = dre.assert_facts(self._handle, initial)
                started = dre.start_action_for_state(self._handle, state)
                message = started[1] if started else None
                while message:
                    self._dispatch(run, message)
                    message = dre.complete_and_start_action(self._handle, state)
                clean = self._clear(run, held)
            except EngineError:
                self._abandon(state)
                raise
            except Exception as exc:
                self._abandon(state)
                raise EvaluationError(f"evaluation failed: {exc}", self.model.name, run.current_rule) from exc
            finally:
                if not clean:
                    dre.delete_state(self._handle, sid)
                    self._sid = str(next(_sessions))
        return Evaluation(facts, decision(run, self.identity))

    def _clear(self, run: Run, held: str) -> bool:
        """Retract every fact the session holds so that the next evaluation reuses it: creating and
        deleting a session costs about as much as all the matching. True only when the session is
        then empty (no fact, no action pending); otherwise the caller deletes it. The decision is made
        by now: a failure here only costs the session."""
        try:
            dre.retract_facts(self._handle, "[" + ",".join([held, *run.held()]) + "]")
            pending = dre.start_action(self._handle)
            if pending:
                self._abandon(pending[-1])
                return False
            return dre.get_facts(self._handle, run.sid) == "[]"
        except Exception:  # noqa: BLE001 - any failure: the session is deleted, never reused
            return False

    def _abandon(self, state) -> None:
        if state is not None:
            with contextlib.suppress(Exception):  # nothing was in flight
                dre.abandon_action(self._handle, state)

    def _dispatch(self, run: Run, message: str) -> None:
        # The message is {"<rule name>": <matched facts>}; rule names hold no quotes, and only rules
        # that matched events need the facts decoded (the lead fact itself is never read back).
        name = message[2 : message.index('"', 2)]
        handler: Handler = self.plan.handlers[name]
        run.current_rule = handler.name
        kind = handler.kind
        if kind == "rule":
            aliases = handler.event_aliases
            if not aliases:
                run.fire(handler, None)
            elif len(aliases) == 1 and (found := _EVENT_FACT.findall(message)):
                # One event per match: its index is all that is needed (its age is the run's), and the
                # event facts are our own text, found without decoding the rest of the message.
                run.fire(handler, [(int(i),) for i in found])
            elif handler.per_event or handler.name not in run.fired:  # else nothing to decode for
                payload = json.loads(message)[name]
                combos = payload if isinstance(payload, list) else [payload]
                run.fire(handler, [tuple(int(c[a]["id"][1:]) for a in aliases) for c in combos])
        elif kind == "tally":
            run.tally(handler.scores)
        else:
            run.matrix()
        run.current_rule = None

    @staticmethod
    def _event_sections(props: dict, fields, tests) -> dict:
        """An event fact's properties as rules read them: text (p) and numbers (n), and the results of
        text tests on them (g)."""
        extra: dict[str, dict] = {}
        for section, name in fields:
            value = props.get(name)
            if value is None or (section == "n") != (
                isinstance(value, int | float) and not isinstance(value, bool)
            ):
                continue
            extra.setdefault(section, {})[name] = value
        for name, prop, op, values in tests:
            value = props.get(prop)
            if isinstance(value, str):
                extra.setdefault("g", {})[name] = text_test(op, values, value)
        return extra

    def _initial_facts(self, run: Run, facts: dict, at: datetime, sid: str) -> tuple[str, str]:
        """Every fact the session starts with, as one JSON array; and those not mirroring a slot."""
        plan = self.plan
        profile = dict(facts["profile"])
        domain = email_domain(profile.get("email"))
        if domain:
            profile["email_domain"] = domain
        answers, events = facts["answers"], facts["events"]
        ages = run.ages = event_ages(events, at)
        lead = {"id": "lead", "t": "lead", "sid": sid}
        values, details = computed.evaluate(self.model.computed, profile, answers, at)
        run.computed(details)
        names = plan.lead_names  # lists are matched through features, never as values
        sections = {
            "p": {n: v for n in names["p"] if (v := profile.get(n)) is not None and not isinstance(v, list)},
            # Text answers and amounts live under different keys, so "5" never compares as 5.
            "a": {n: v for n in names["a"] if isinstance(v := answers.get(n), str)},
            "an": {
                n: v
                for n in names["an"]
                if (v := answers.get(n)) is not None and not isinstance(v, str | list)
            },
            "v": {n: v for n in names["v"] if (v := values.get(n)) is not None and not isinstance(v, list)},
        }
        lead.update((k, v) for k, v in sections.items() if v)
        if plan.uses_channel and facts["channel"] is not None:
            lead["c"] = facts["channel"]
        features = {}
        # Without outcomes or a hand-off, what sales reported and overdue hand-offs have no value.
        skip = ("outcome",) * (not facts.get("outcomes")) + ("overdue",) * (not facts.get("handoff"))
        aggregates = self._aggregates.values(events, ages)
        for feature in plan.features:
            kind = feature.kind
            if kind in AGGREGATES:
                value = aggregates[feature.name]
            elif kind in skip:
                continue
            else:
                value = compute_feature(feature, facts, profile, ages, at, values)
            if value is not None:
                features[feature.name] = value
        if features:
            lead["f"] = features
        parts = [_encode(lead)]
        event_types, fields, tests = plan.event_types, plan.event_fields, plan.event_features
        for i, (event, age) in enumerate(zip(events, ages, strict=True)):
            etype = event["type"]
            if etype not in event_types:
                continue
            props = event.get("properties")
            extra = self._event_sections(props, fields, tests) if props else None
            if extra:
                parts.append(
                    _encode({"id": f"e{i}", "t": "ev", "sid": sid, "type": etype, "age": age, **extra})
                )
            else:  # what _encode writes for it (ages are floats), and what _EVENT_FACT finds
                parts.append(
                    f'{{"id": "e{i}", "t": "ev", "sid": "{sid}", "type": {_string(etype)}, "age": {age!r}}}'
                )
        if self._closing[0] != sid:  # the tally and matrix facts change only with the session
            closing = [
                {"id": f"tally:{key}", "t": "tally", "sid": sid, "score": key} for key in plan.tally_keys
            ]
            closing.append({"id": "matrix", "t": "matrix", "sid": sid})
            self._closing = (sid, _encode(closing)[1:-1])
        parts.append(self._closing[1])
        held = ", ".join(parts)  # as _encode writes the items of a list
        texts = [held]
        texts.extend(run.slot_fact(slot, sid) for slot in plan.slot_facts)
        return "[" + ",".join(texts) + "]", held

"""Event conditions: `event:` with `where` and `within_days`, and the aggregates `count` and `days_since`.

A mixin of the Lowering (conditions.py). An event condition joins one event fact in durable_rules; its
text tests (starts_with, contains, matches, domains) are computed in Python on each event fact
(g.<name>), as durable_rules has no such tests. Aggregates and "no such event" are features of the
lead fact, computed by features.py with the same `where` semantics. The ruleset's own event types
declare typed properties, so tests on them are checked against the declaration.
"""

from __future__ import annotations

import json

from .expressions import (
    _ORDER_OPS,
    TEXT_OPS,
    Alternative,
    _article,
    _conj,
    _given,
    _hint,
    _is_number,
)
from .vocabulary import NUMBER, STRING


class EventConditions:
    """The event part of a Lowering: needs self.model, self._problem, self._test, self._text_test,
    self._feature, self._single and self.event_features."""

    def _aggregate(self, kind: str, spec: dict, path: tuple):
        types = self._event_types(spec["event"], path + ("event",), allow_any=True)
        where = self._where_spec(spec.get("where") or {}, path + ("where",), self._declared_properties(types))
        excluded = ()
        if "except" in spec:
            if types != ("any",):
                self._problem(path + ("except",), "except needs `event: any` (every type but these)")
            excluded = self._event_types(spec["except"], path + ("except",))
        feature = self._feature(kind, (types, where, spec.get("within_days"), excluded))
        ops = {k: v for k, v in spec.items() if k not in ("event", "where", "within_days", "except")}
        if not ops:
            self._problem(path, f"{kind} needs a comparison (gte, lt, eq, … or exists)")
            return ("ex", "f." + feature.name)
        return self._test("f." + feature.name, ops, NUMBER, path, kind)

    def _event_types(self, value, path, allow_any=False) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else list(value)
        if allow_any and names == ["any"]:
            return ("any",)
        known = self.model.event_types
        for name in names:
            if name not in known:
                declared = self.model.declared_event_types
                self._problem(
                    path,
                    f"unknown event type {name!r}"
                    + _hint(name, known)
                    + (
                        f" (declared in this ruleset: {', '.join(declared)})"
                        if declared
                        else " (declare it under `events` to add it)"
                    ),
                )
        return tuple(sorted(names))

    def _declared_properties(self, types: tuple[str, ...]) -> dict[str, str] | None:
        """The typed properties the events of `types` can carry; None when any of them takes any property."""
        out: dict[str, str] = {}
        for name in types:
            etype = self.model.event_types.get(name)
            if etype is None or not etype.declared:
                return None
            for prop, ptype in etype.properties.items():
                out.setdefault(prop, ptype)
        return out

    def _where_spec(self, where: dict, path, declared=None) -> tuple:
        """Event property tests as data, for Python aggregates; checked like pattern tests.

        Named lists are resolved here, so the Python twin (features.where_matches) needs no ruleset."""
        spec = []
        for prop, test in where.items():
            self._event_property_expr(prop, test, path + (prop,), declared)
            ops = dict(test) if isinstance(test, dict) else {"eq": test}
            for op in ("in_list", "not_in_list", "in_domain_list", "not_in_domain_list"):
                if op in ops:
                    values = list(self.model.lists.get(ops.pop(op)) or [])
                    ops[op.removesuffix("_list")] = values  # in, not_in, in_domain, not_in_domain
            spec.append((prop, json.dumps(ops, sort_keys=True)))
        return tuple(sorted(spec))

    def _event_property_expr(self, prop, test, path, declared=None):
        ops = dict(test) if isinstance(test, dict) else {"eq": test}
        exprs = []
        if declared is not None and prop not in declared:
            self._problem(
                path,
                f"the event has no property {prop!r}"
                + _hint(prop, declared)
                + f" (its properties: {', '.join(declared) or 'none'}; declare more under events)",
            )
            return None
        ptype = declared.get(prop) if declared else None
        if "exists" in ops:
            # A property is text or true/false (under p.) or a number (under n.): either one is "given".
            exprs.append(_given(bool(ops.pop("exists")), ["p." + prop, "n." + prop]))
        for op in ("in_list", "not_in_list"):
            if op in ops:
                values = self.model.lists.get(ops[op])
                if values is None:
                    self._problem(
                        path + (op,), f"unknown list {ops[op]!r}" + _hint(ops[op], self.model.lists)
                    )
                    return None
                del ops[op]
                ops["in" if op == "in_list" else "not_in"] = list(values)
        for op in [o for o in ops if o in TEXT_OPS]:
            if ptype not in (None, STRING):
                self._problem(path + (op,), f"property {prop} is {_article(ptype)}: `{op}` needs text")
                return None
            test = self._text_test(op, ops.pop(op), path + (op,))
            if test is None:
                return None
            name = self._event_feature(prop, test)
            exprs.append(("cmp", "eq", "g." + name, not op.startswith("not_")))
        if ops:
            if ptype is not None:  # a declared property: its type decides, so a wrong value is reported
                ftype = ptype
            elif any(op in _ORDER_OPS for op in ops) or all(
                _is_number(v)
                for op, v in ops.items()
                if op in ("eq", "ne", "in", "not_in")
                for v in (v if isinstance(v, list) else [v])
            ):
                ftype = NUMBER
            else:
                ftype = STRING
            expr = self._test(
                ("n." if ftype == NUMBER else "p.") + prop, ops, ftype, path, f"property {prop}"
            )
            if expr is None:
                return None
            exprs.append(expr)
        return _conj(exprs) if exprs else None

    def _event_feature(self, prop: str, test: tuple) -> str:
        """A text test on an event property, computed in Python on each event fact (g.<name>)."""
        key = (prop, *test)
        if key not in self.event_features:
            self.event_features[key] = f"g{len(self.event_features) + 1}"
        return self.event_features[key]

    def _event(self, cond: dict, path: tuple, negated: bool) -> list[Alternative]:
        etype = cond["event"]
        declared = self._declared_properties(self._event_types(etype, path + ("event",)))
        if negated:
            # "no such event" is a count of zero: durable's negation is unreliable on late facts.
            feature = self._feature(
                "count",
                (
                    (etype,),
                    self._where_spec(cond.get("where") or {}, path + ("where",), declared),
                    cond.get("within_days"),
                    (),
                ),
            )
            return self._single("lead", ("cmp", "eq", "f." + feature.name, 0), False)
        exprs = [("cmp", "eq", "type", etype)]
        for prop, test in (cond.get("where") or {}).items():
            e = self._event_property_expr(prop, test, path + ("where", prop), declared)
            if e is not None:
                exprs.append(e)
        if cond.get("within_days") is not None:
            exprs.append(("cmp", "lte", "age", cond["within_days"]))
        return [Alternative({"event:0": [_conj(exprs)]})]

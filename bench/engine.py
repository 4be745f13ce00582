"""Decisions per second on one core for the default ruleset, against a plain-Python floor of the same logic.

What it measures: `CompiledRuleset.evaluate` (what the API calls: input validation and normalisation,
Python-computed features, durable_rules matching and forward chaining through its C module in the
ruleset's one session, cleared after every lead, and the full decision with every reason) for
`rulesets/default.yaml`, over a seeded, generated mix of leads: varied profiles (in and outside the
market, free-mail and competitor addresses, students, test submissions), events of every type with
ages from minutes to 200 days, chatbot answers (text and amounts), a previous stage for returning
leads, and for some of them what sales reported (accepted, rejected, opportunity, won, lost…) or an
open hand-off, on time or overdue; so the mix holds not-a-lead, disqualified, lead, MQL, SQL,
recycled, accepted, opportunity and customer, and every route. It prints

- decisions/s on one core (wall clock), decisions per CPU-second, mean, p50, p99, p99.9 and max
  latency of single evaluations;
- the same for `evaluate` given facts already checked (`CompiledRuleset.normalise` returns
  `CheckedFacts`, which `evaluate` does not check again: the check-once path), and how often both
  paths decide alike (they must, on every lead);
- the same for two plain-Python evaluations of the same logic, written by hand, in the same run:
  `plain_decide` builds the same decision document with every reason (like for like), and
  `plain_outcome` computes only the outcome (stage, status reason, route, scores, quadrant, ready,
  funnel, qualification, tags, next questions): the floor. The ratio engine/floor is printed for both;
  the target is checked against the outcome-only floor, the lower of the two;
- how often each floor agrees with the engine on the generated mix (those fields, plus the set of
  rules that fired for `plain_decide`), so the floors are known to do the same work;
- RSS before the timed run, every `--checkpoint` evaluations, and after it: memory must stay flat
  over 100,000 evaluations (a leaked durable_rules session holds ~515 KiB);

then PASS/MISS against the targets: at least 5,000 decisions/s on one core with full reasons, engine
within 35x of the floor, RSS flat (at most 2 MiB of growth after the first checkpoint), and both
floors agreeing with the engine on at least 99% of the leads. Timing is never asserted: the exit
status is 0 whatever the figures.

How it measures: the process pins itself to one CPU (`os.sched_setaffinity`; the least busy one over
half a second unless `--cpu` names one, `--no-pin` to skip), generates the leads, evaluates each of
them once with every path (warm-up and the agreement check), then times `--evaluations` calls of each
path cycling over the same leads, with `time.perf_counter` around every call. The floors get the same
raw lead facts and evaluation time; they do not validate input (the engine does: its cost is shown
apart, as "normalise() alone"). The garbage collector stays on, as in the service. `--profile` adds
5,000 engine evaluations with each part of the path timed in place (the check, the initial facts,
every durable_rules call, every action, clearing the session, the decision document), then a cProfile
of 5,000 more: the top functions by their own time. `--against TREE` compares with the engine of
another checkout (a `git worktree add` of the base commit) in the same process: whole passes over the
leads alternated between the two, the CPU clock around each, for raw and for checked facts, and how
many decisions differ (0 is the only right answer), and the service's path for a returning lead (the
check of what was sent, the merge into stored facts, the evaluation); both sides meet the same load.

Run from the repository root (under a minute with the defaults):

    .venv/bin/python bench/engine.py [--leads N] [--evaluations N] [--checkpoint N] [--seed S]
                                     [--cpu N | --no-pin] [--profile] [--against TREE [--rounds N]]

Other CPU-heavy work on the machine skews the figures: the load average is printed before and after,
and the share of the pinned core the benchmark got during each timed phase ("CPU share"); re-run on
a quiet machine when it is well below 1. On a machine whose CPUs are hyper-threads of one core, a
busy sibling slows the pinned one without showing in its CPU share.
"""

# ruff: noqa: E402 - sys.path is fixed before the other imports
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is named engine.py: run as a script, its directory is sys.path[0] and `import engine` would
# import this file instead of the engine package. Put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import cProfile
import gc
import io
import os
import pstats
import re
import time
from array import array
from collections import Counter
from datetime import datetime, timedelta

from bench.leads import AT, generate
from engine import compile_source
from engine.facts import normalise

RULESET = ROOT / "rulesets" / "default.yaml"
TARGET_RATE = 5000.0
TARGET_RATIO = 35.0
FLAT_MIB = 2.0
PAGE = os.sysconf("SC_PAGE_SIZE")

# -- The floor: the default ruleset's logic written by hand in plain Python ------------------------
#
# Every condition, point, cap, decay, ordering and "first one wins" of rulesets/default.yaml (version
# FLOOR_FOR below) is written out here. Only prose and route/question descriptors (descriptions, texts, teams, SLAs) are
# read once from the parsed ruleset, outside the timed loop, to build the same decision.

FLOOR_FOR = ("default", 3)  # the ruleset and version this floor was written from
SERVED = frozenset(
    [
        "US",
        "CA",
        "GB",
        "IE",
        "DE",
        "FR",
        "NL",
        "BE",
        "LU",
        "AT",
        "CH",
        "SE",
        "DK",
        "NO",
        "FI",
        "ES",
        "PT",
        "IT",
    ]
)
CORE = frozenset(["US", "CA", "GB", "DE", "FR", "NL"])
TARGET_INDUSTRIES = frozenset(["software", "saas", "fintech", "ecommerce", "retail", "healthcare", "media"])
FREE_MAIL = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "163.com",
    ]
)
COMPETITORS = frozenset(["rivalytics.com", "datacompete.io", "insightrival.com"])
BUYING = frozenset(["marketing", "sales", "revenue_operations", "operations", "analytics", "finance"])
INTEREST = frozenset(
    [
        "content_download",
        "webinar_registered",
        "webinar_attended",
        "free_trial",
        "info_request",
        "demo_request",
        "application",
        "contact_sales",
        "pricing_page_view",
    ]
)
RANK = {"recycled": -1, "lead": 0, "mql": 1, "sql": 2, "accepted": 3, "opportunity": 4, "customer": 5}
VERDICTS = ("not_a_lead", "disqualified")
FUNNEL = {"tofu": 0, "mofu": 1, "bofu": 2}
HALF_LIFE = 30.0
_TEST_COMPANY = re.compile(r"^\s*(test|asdf|qwerty|none|n/?a|xxx+)\s*$", re.I)
_TEST_EMAIL = re.compile(r"^(test|asdf|qwerty)[0-9]*@", re.I)
_STUDENT_TITLE = re.compile(r"\b(student|intern)\b", re.I)
_SENIOR_TITLE = re.compile(r"\b(head of|chief|vp|vice president|director|founder|owner)\b", re.I)
# Engagement rules in file order: (rule, event type, content test, points, per event, cap, decay,
# funnel, ready, need met). Content test: True = whitepaper, False = other content, None = any.
ENGAGEMENT = (
    ("eng-email-open", "email_open", None, 1, True, 5, True, None, False, False),
    ("eng-email-click", "email_click", None, 3, True, 12, True, None, False, False),
    ("eng-page-view", "page_view", None, 1, True, 10, True, None, False, False),
    ("eng-pricing-page", "pricing_page_view", None, 10, True, 20, True, "bofu", False, False),
    ("eng-whitepaper", "content_download", True, 10, True, 20, True, "tofu", False, False),
    ("eng-other-content", "content_download", False, 6, True, 18, True, "tofu", False, False),
    ("eng-webinar-registered", "webinar_registered", None, 5, True, 10, True, "tofu", False, False),
    ("eng-webinar-attended", "webinar_attended", None, 12, True, 24, True, "tofu", False, False),
    ("eng-social-follow", "social_follow", None, 2, False, None, True, None, False, False),
    ("eng-free-trial", "free_trial", None, 25, False, None, True, "mofu", False, True),
    ("eng-info-request", "info_request", None, 20, False, None, True, "mofu", False, True),
    ("eng-demo-request", "demo_request", None, 30, False, None, True, "bofu", True, True),
    ("eng-application", "application", None, 30, False, None, True, "bofu", True, False),
    ("eng-contact-sales", "contact_sales", None, 30, False, None, True, "bofu", True, False),
    ("eng-unsubscribe", "unsubscribe", None, -15, False, None, False, None, False, False),
    ("eng-email-bounce", "email_bounce", None, -10, False, None, False, None, False, False),
    ("eng-careers-page", "careers_page_view", None, -5, True, 15, True, None, False, False),
)
# Answers to questions, in the order of the questions: (question, item, met, unmet, amount at least).
ANSWER_RULES = (
    ("need", "need", ("yes",), ("no",), None),
    ("timeline", "timeline", ("now", "this_quarter"), ("this_year", "later", "none"), None),
    ("budget", "budget", ("yes",), ("no",), 10000),
    ("authority", "authority", ("decision_maker",), ("user",), None),
)
ACCEPTED = frozenset(["accepted", "contacted", "meeting_held"])  # outcomes that mean sales took it


def _sales_feedback(facts: dict, last_event: float | None, now: float) -> tuple[set, str | None, bool]:
    """The outcome types sales reported; the latest one, unless an event came after it (the lead
    re-engaged); and whether the lead's open hand-off is overdue."""
    outcomes = facts.get("outcomes")
    kinds, latest = set(), None
    if outcomes:
        ordered = sorted(outcomes, key=lambda o: (o["at"], o.get("id", ""), o["type"]))
        kinds = {o["type"] for o in ordered}
        last = ordered[-1]
        if last_event is None or last_event <= datetime.fromisoformat(last["at"]).timestamp():
            latest = last["type"]
    handoff = facts.get("handoff")
    overdue = handoff is not None and datetime.fromisoformat(handoff["due_at"]).timestamp() < now
    return kinds, latest, overdue


def _r2(x: float) -> float:
    r = round(x + 0.0, 2)
    return 0.0 if r == 0 else r


def _iso_out(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z").replace(".000000Z", "Z")


class Floor:
    """The static tables the floor needs, taken once from the parsed ruleset (prose and descriptors)."""

    def __init__(self, model):
        self.identity = None
        self.text = {r.id: r.description for r in model.rules}
        for question, item, *_ in ANSWER_RULES:  # generated rules: the engine words them itself
            self.text.setdefault(f"answer-{question}-met", f"{item} is met")
            self.text.setdefault(f"answer-{question}-unmet", f"{item} is unmet")
        self.routes = model.routes
        self.questions = [(q.id, q.item, q.auto, q.to_dict()) for q in model.questions]


def plain_decide(floor: Floor, facts: dict, at_text: str) -> dict:
    """The decision of rulesets/default.yaml for these facts at this time, without a rules engine."""
    at = datetime.fromisoformat(at_text)
    now = at.timestamp()
    profile = facts.get("profile") or {}
    answers = facts.get("answers") or {}
    text = floor.text
    reasons: list[dict] = []

    def fired(rule: str, *effects) -> None:
        reasons.append({"rule": rule, "description": text[rule], "effects": list(effects)})

    # One pass over the events, oldest first: ages in days, and where each type (and content) is.
    events = sorted(facts.get("events") or (), key=lambda e: (e["at"], e.get("id", "")))
    ages: list[float] = []
    by_type: dict[str, list[int]] = {}
    whitepapers, other_content = [], []
    last_event = None
    for i, e in enumerate(events):
        last_event = datetime.fromisoformat(e["at"]).timestamp()
        ages.append(max(0.0, round((now - last_event) / 86400.0, 4)))
        etype = e["type"]
        by_type.setdefault(etype, []).append(i)
        if etype == "content_download":
            content = (e.get("properties") or {}).get("content")
            if content is not None:  # a missing property matches neither rule
                (whitepapers if content == "whitepaper" else other_content).append(i)

    qual = {"budget": "unknown", "authority": "unknown", "need": "unknown", "timeline": "unknown"}
    qual_by: dict[str, str] = {}

    def qualify(rule: str, item: str, status: str) -> dict:
        effect = {"type": "qualification", "item": item, "value": status}
        if qual[item] == "unknown":
            qual[item], qual_by[item] = status, rule
            effect["applied"] = True
        else:
            effect.update(applied=False, note=f"kept {qual[item]!r} set by {qual_by[item]}")
        return effect

    previous = facts.get("previous_stage")
    state = {"stage": previous if previous in RANK else "lead", "reason": None, "ready": False}
    done: set[str] = set()  # rules that fire once and already did
    interest = any(t in by_type for t in INTEREST)
    days_since = min(ages) if ages else None

    def verdict(rule: str, kind: str, reason: str) -> None:
        current = state["stage"]
        effect = {"type": "stage", "from": current, "to": kind, "reason": reason}
        if current == "disqualified" or (kind == "not_a_lead" and current == kind):
            effect.update(applied=False, note=f"already {current}")
        else:
            state["stage"], state["reason"] = kind, reason
            effect["applied"] = True
        fired(rule, effect)

    def move(target: str, recycle: str | None = None) -> dict:
        current = state["stage"]
        effect = {"type": "stage", "from": current, "to": target}
        if recycle:
            effect["reason"] = recycle
        if current in VERDICTS:
            effect.update(applied=False, note=f"the lead is {current}")
        elif target == current:
            effect.update(applied=False, note=f"already {current}")
        elif recycle is None and RANK[target] < RANK[current]:
            effect.update(applied=False, note=f"stages only move forward: already {current}")
        else:
            state["stage"] = target
            effect["applied"] = True
        return effect

    def ready(rule: str) -> dict:
        if state["ready"]:
            return {"type": "ready", "value": True, "applied": False, "note": "already set"}
        state["ready"] = True
        return {"type": "ready", "value": True, "applied": True}

    tags: list[str] = []

    def stage_rule(rule: str, target: str, recycle: str | None = None, tag: str | None = None) -> None:
        """A rule that moves the stage; the rules that read the stage and also write it chain on it
        at once (the engine puts them before later layers): recycling, then SQL once its layer is reached."""
        effects = [move(target, recycle)]
        if rule == "sql":
            effects.append(ready(rule))
        if tag:
            if tag not in tags:
                tags.append(tag)
            effects.append({"type": "tag", "value": tag})
        fired(rule, *effects)
        if not effects[0].get("applied"):
            return
        if (
            "recycle-gone-cold" not in done
            and state["stage"] in ("mql", "sql")
            and days_since is not None
            and days_since >= 90
        ):
            done.add("recycle-gone-cold")
            stage_rule("recycle-gone-cold", "recycled", "No activity for 90 days")
        elif sql_open[0] and "sql" not in done and sql_ready():
            done.add("sql")
            stage_rule("sql", "sql")

    def sql_ready() -> bool:
        return (
            state["stage"] == "mql"
            and qual["budget"] == "met"
            and (answers.get("talk_to_sales") == "yes" or any_sales_event)
        )

    sql_open = [False]  # the SQL rule's layer has not been reached yet
    any_sales_event = "contact_sales" in by_type or "demo_request" in by_type

    # Layer 0, in priority then file order. Answers first: they win over inferences.
    for question, item, met, unmet, least in ANSWER_RULES:
        value = answers.get(question)
        if value is None:
            continue
        if isinstance(value, str):
            status = "met" if value in met else "unmet" if value in unmet else None
        else:
            status = None if least is None else "met" if value >= least else "unmet"
        if status:
            fired(f"answer-{question}-{status}", qualify(f"answer-{question}-{status}", item, status))
    email = profile.get("email")
    domain = email.rsplit("@", 1)[1].strip().casefold() if isinstance(email, str) and "@" in email else None
    company, title, seniority = profile.get("company"), profile.get("job_title"), profile.get("seniority")
    if (isinstance(company, str) and _TEST_COMPANY.search(company)) or (
        isinstance(email, str) and _TEST_EMAIL.search(email)
    ):
        verdict("test-submission", "disqualified", "Looks like a test or spam submission")
    if domain in COMPETITORS:
        verdict("competitor", "disqualified", "Works for a competitor")
    if seniority == "student" or (isinstance(title, str) and _STUDENT_TITLE.search(title)):
        verdict("student", "disqualified", "Student")
    if any(ages[i] <= 60 for i in whitepapers) and any(
        ages[i] <= 60 for i in by_type.get("pricing_page_view", ())
    ):
        stage_rule("mql-whitepaper-and-pricing", "mql")
    if domain in FREE_MAIL:
        verdict("personal-email", "disqualified", "Personal email address")
    if (
        "recycle-gone-cold" not in done
        and state["stage"] in ("mql", "sql")
        and days_since is not None
        and days_since >= 90
    ):
        done.add("recycle-gone-cold")
        stage_rule("recycle-gone-cold", "recycled", "No activity for 90 days")
    kinds, latest, overdue = _sales_feedback(facts, last_event, now)
    if kinds & ACCEPTED:
        stage_rule("sales-accepted", "accepted")
    if "opportunity" in kinds:
        stage_rule("opportunity-open", "opportunity")
    if "won" in kinds:
        stage_rule("won-customer", "customer", tag="customer")
    if latest == "rejected":
        stage_rule("sales-rejected", "recycled", "Sales rejected the hand-off")
    if latest == "lost":
        stage_rule("deal-lost", "recycled", "The deal was lost")
    country = profile.get("country")
    if country is not None and country not in SERVED:
        verdict("outside-market", "not_a_lead", "Outside our target market")
    if not interest:
        verdict("no-interest", "not_a_lead", "No sign of interest yet")

    fit_points: list[float] = []

    def fit(rule: str, points: float, *more) -> None:
        fit_points.append(points)
        fired(rule, *more, {"type": "points", "score": "fit", "points": float(points)})

    if profile.get("industry") in TARGET_INDUSTRIES:
        fit("fit-target-industry", 15)
    employees = profile.get("employees")
    if employees is not None:
        if 50 <= employees <= 5000:
            fit("fit-company-size-sweet-spot", 20)
        if 10 <= employees < 50:
            fit("fit-company-size-small", 10)
        if employees < 10:
            fit("fit-company-too-small", -15)
        if employees > 5000:
            tags.append("enterprise")
            fit("fit-enterprise", 10, {"type": "tag", "value": "enterprise"})
    revenue = profile.get("annual_revenue")
    if revenue is not None and revenue >= 10_000_000:
        fit("fit-revenue", 10)
    if country in CORE:
        fit("fit-core-country", 10)
    if seniority in ("c_level", "vp"):
        fit("fit-senior-executive", 20, qualify("fit-senior-executive", "authority", "met"))
    elif seniority == "director":
        fit("fit-director", 15)
    elif seniority == "manager":
        fit("fit-manager", 8)
    if seniority is None and isinstance(title, str) and _SENIOR_TITLE.search(title):
        fit("fit-senior-title", 12)
    if profile.get("department") in BUYING:
        fit("fit-buying-department", 10)
    stack = profile.get("tech_stack")
    if stack:
        folded = {s.casefold() for s in stack}
        if "salesforce" in folded or "hubspot" in folded:
            fit("fit-crm-stack", 10)
    if revenue is not None and revenue >= 50_000_000:
        fired("budget-from-revenue", qualify("budget-from-revenue", "budget", "met"))

    funnel = "tofu"
    engagement: list[float] = []
    for rule, etype, content, pts, per_event, cap, decay, position, makes_ready, need in ENGAGEMENT:
        matched = by_type.get(etype) if content is None else whitepapers if content else other_content
        if not matched:
            continue
        effects = []
        if position is not None:
            effect = {"type": "funnel", "from": funnel, "to": position}
            if FUNNEL[position] > FUNNEL[funnel]:
                funnel = position
                effect["applied"] = True
            else:
                effect.update(applied=False, note=f"already {funnel}")
            effects.append(effect)
        if need:
            effects.append(qualify(rule, "need", "met"))
        if makes_ready:
            effects.append(ready(rule))
        effect = {"type": "points", "score": "engagement"}
        if per_event:
            detail, total = [], 0.0
            for i in matched:
                got = _r2(pts * 0.5 ** (ages[i] / HALF_LIFE) if decay else pts)
                total += got
                detail.append({"type": etype, "at": events[i]["at"], "age_days": ages[i], "points": got})
            effect["events"] = detail
        else:
            i = min(matched, key=lambda k: (ages[k], k))  # the freshest match counts
            total = pts * 0.5 ** (ages[i] / HALF_LIFE) if decay else pts
            if decay:
                effect["events"] = [{"type": etype, "at": events[i]["at"], "age_days": ages[i]}]
        total = _r2(total)
        if cap is not None and abs(total) > cap:
            effect["capped_from"] = total
            total = _r2(cap if total > 0 else -cap)
        effect["points"] = total
        engagement.append(total)
        effects.append(effect)
        fired(rule, *effects)
    if answers.get("talk_to_sales") == "yes":
        fired("ready-talk-to-sales", ready("ready-talk-to-sales"))

    # Layer 1: totals kept within 0..100, then the SQL rule on the stage reached so far.
    totals, grades = {}, {}
    for name, points, scale in (
        ("fit", fit_points, (("A", 75), ("B", 50), ("C", 25), ("D", 0))),
        ("engagement", engagement, (("hot", 60), ("warm", 30), ("cold", 0))),
    ):
        total = _r2(sum(points))
        if total > 100 or total < 0:
            bound = 100 if total > 100 else 0
            reasons.append(
                {
                    "rule": f"@limit.{name}",
                    "description": f"{name.capitalize()} stays {'at most' if bound else 'at least'} {bound}",
                    "effects": [{"type": "points", "score": name, "points": _r2(bound - total)}],
                }
            )
            total = float(bound)
        totals[name] = total
        grades[name] = next((g for g, lowest in scale if total >= lowest), scale[-1][0])
    sql_open[0] = True
    if sql_ready():
        done.add("sql")
        stage_rule("sql", "sql")

    # Layer 2: the matrix (fit x readiness) first, then the MQL-by-score rule and what chains on it.
    fit_good = totals["fit"] >= 50
    quadrant = f"{'good' if fit_good else 'poor'}_fit_{'ready' if state['ready'] else 'not_ready'}"
    reasons.append(
        {
            "rule": "@matrix",
            "description": f"Fit {totals['fit']:g} is {'at least' if fit_good else 'below'} 50",
            "effects": [
                {"type": "fit", "value": "good" if fit_good else "poor"},
                {"type": "quadrant", "value": quadrant},
            ],
        }
    )
    if totals["engagement"] >= 40 and totals["fit"] >= 40:
        stage_rule("mql-score", "mql")
    asked: list[str] = []
    if funnel == "bofu" and not state["ready"]:
        asked.append("talk_to_sales")
        fired("ask-talk-to-sales", {"type": "ask", "question": "talk_to_sales"})

    # Layer 3: routing by stage, sales feedback, quadrant and funnel; the first rule wins, verdicts are
    # never routed.
    stage = state["stage"]
    is_lead = stage not in VERDICTS
    route_id = None
    routing = (
        ("route-account-team", stage in ("opportunity", "customer"), "account_management", None),
        ("route-rejected-or-lost", latest in ("rejected", "lost"), "recycled_nurture", None),
        ("route-recycled", stage == "recycled" and not state["ready"], "recycled_nurture", None),
        ("route-escalate-overdue", overdue and quadrant == "good_fit_ready", "sales_escalation", None),
        ("route-sales", quadrant == "good_fit_ready", "sales_handoff", None),
        ("route-bring-in-authority", quadrant == "poor_fit_ready", "bring_in_authority", "authority"),
        (
            "route-qualification-team",
            quadrant == "good_fit_not_ready" and funnel in ("mofu", "bofu"),
            "sdr_qualification",
            None,
        ),
        ("route-nurture-accelerate", quadrant == "good_fit_not_ready", "nurture_accelerate", None),
    )
    for rule, holds, route, question in routing:
        if not holds:
            continue
        effect = {"type": "route", "route": route}
        if not is_lead:
            effect.update(applied=False, note=f"the lead is {stage}")
        elif route_id is None:
            route_id = route
            effect["applied"] = True
        else:
            effect.update(applied=False, note=f"kept {route_id!r}")
        effects = [effect]
        if question:
            if question not in asked:
                asked.append(question)
            effects.append({"type": "ask", "question": question})
        fired(rule, *effects)

    if not is_lead:
        route_id = "disqualified" if stage == "disqualified" else "not_a_lead"
    elif route_id is None:
        route_id = "nurture_low_touch"
        reasons.append(
            {
                "rule": "@default-route",
                "description": "No routing rule placed the lead",
                "effects": [{"type": "route", "route": route_id, "applied": True}],
            }
        )
    route = floor.routes[route_id]
    questions = []
    if is_lead:
        for qid, item, auto, as_dict in floor.questions:
            if qid in answers:
                continue
            if (auto and item is not None and qual[item] == "unknown") or qid in asked:
                questions.append(dict(as_dict))
    sla = route.sla_minutes if is_lead else None
    return {
        "lead_id": facts["lead_id"],
        "ruleset": floor.identity,
        "is_lead": is_lead,
        "stage": stage,
        "status_reason": state["reason"],
        "funnel": funnel,
        "scores": totals,
        "grades": grades,
        "fit": "good" if fit_good else "poor",
        "ready": state["ready"],
        "quadrant": quadrant,
        "qualification": dict(qual),
        "tags": sorted(tags),
        "route": {
            "id": route.id,
            "destination": route.destination,
            "team": route.team,
            "track": route.track,
            "sla_minutes": sla,
            "due_at": _iso_out(at + timedelta(minutes=sla)) if sla else None,
            "handed_off_at": _iso_out(at) if sla else None,
            "next_step": dict(route.next_step_when_answered or {**route.next_step, "action": "none"})
            if route.next_step["action"] == "ask_questions" and not questions
            else dict(route.next_step),
        },
        "next_questions": questions,
        "reasons": reasons,
        "evaluated_at": _iso_out(at),
    }


# The same logic once more, as tight as plain Python gets: the outcome only (stage, status reason,
# route, scores, quadrant, ready, funnel, qualification, tags, next questions), no reasons and no
# decision document. This is the lowest floor, and the one the 35x target is checked against.

# Engagement by event key (content downloads split by content): rule index in file order, points,
# per event, cap, decay, funnel position, makes ready, need met.
_ENG_BY_KEY = {
    (etype if content is None else "whitepaper" if content else "other_content"): (
        k,
        pts,
        per_event,
        cap,
        decay,
        FUNNEL[position] if position else -1,
        makes_ready,
        need,
    )
    for k, (_, etype, content, pts, per_event, cap, decay, position, makes_ready, need) in enumerate(
        ENGAGEMENT
    )
}
_POSITIONS = ("tofu", "mofu", "bofu")
_QUESTIONS = (("need", "need"), ("timeline", "timeline"), ("budget", "budget"), ("authority", "authority"))


def plain_outcome(facts: dict, at_text: str) -> dict:
    """The outcome of rulesets/default.yaml for these facts at this time: the bare logic."""
    now = datetime.fromisoformat(at_text).timestamp()
    profile = facts.get("profile") or {}
    answers = facts.get("answers") or {}

    # Events: per engagement rule, the sum of rounded decayed points (per event) or the freshest age.
    sums: dict[int, float] = {}  # per-event rules: the sum of each event's rounded decayed points
    freshest: dict[int, float] = {}  # once-per-lead rules: the age of the freshest matching event
    position = 0
    ready = need = interest = sales = False
    whitepaper_60 = pricing_60 = False
    days_since = last_event = None
    for event in facts.get("events") or ():
        when = datetime.fromisoformat(event["at"]).timestamp()
        if last_event is None or when > last_event:
            last_event = when
        age = max(0.0, round((now - when) / 86400.0, 4))
        if days_since is None or age < days_since:
            days_since = age
        key = etype = event["type"]
        if etype in INTEREST:
            interest = True
        if etype == "content_download":
            content = (event.get("properties") or {}).get("content")
            if content is None:
                continue
            key = "whitepaper" if content == "whitepaper" else "other_content"
            if key == "whitepaper" and age <= 60:
                whitepaper_60 = True
        elif etype == "pricing_page_view" and age <= 60:
            pricing_60 = True
        elif etype == "contact_sales" or etype == "demo_request":
            sales = True
        k, pts, per_event, _, decay, pos, makes_ready, met = _ENG_BY_KEY[key]
        if per_event:
            sums[k] = sums.get(k, 0.0) + _r2(pts * 0.5 ** (age / HALF_LIFE) if decay else pts)
        elif k not in freshest or age < freshest[k]:
            freshest[k] = age
        if pos > position:
            position = pos
        ready = ready or makes_ready
        need = need or met
    engagement = 0.0
    for k, total in sums.items():
        cap = ENGAGEMENT[k][5]
        total = _r2(total)
        if cap is not None and abs(total) > cap:
            total = _r2(cap if total > 0 else -cap)
        engagement += total
    for k, age in freshest.items():
        pts, decay = ENGAGEMENT[k][3], ENGAGEMENT[k][6]
        engagement += _r2(pts * 0.5 ** (age / HALF_LIFE) if decay else pts)
    funnel = _POSITIONS[position]

    # Qualification: answers first, then inferences; the first to settle an item keeps it.
    qual = {"budget": "unknown", "authority": "unknown", "need": "unknown", "timeline": "unknown"}
    for question, item, met, unmet, least in ANSWER_RULES:
        value = answers.get(question)
        if isinstance(value, str):
            if value in met:
                qual[item] = "met"
            elif value in unmet:
                qual[item] = "unmet"
        elif value is not None and least is not None:
            qual[item] = "met" if value >= least else "unmet"
    talk = answers.get("talk_to_sales") == "yes"
    ready = ready or talk

    # Fit.
    email = profile.get("email")
    domain = email.rsplit("@", 1)[1].strip().casefold() if isinstance(email, str) and "@" in email else None
    company, title, seniority = profile.get("company"), profile.get("job_title"), profile.get("seniority")
    country, employees = profile.get("country"), profile.get("employees")
    revenue = profile.get("annual_revenue")
    fit = 15.0 if profile.get("industry") in TARGET_INDUSTRIES else 0.0
    tags = []
    if employees is not None:
        if employees > 5000:
            fit += 10
            tags.append("enterprise")
        elif employees >= 50:
            fit += 20
        elif employees >= 10:
            fit += 10
        else:
            fit -= 15
    if revenue is not None and revenue >= 10_000_000:
        fit += 10
        if revenue >= 50_000_000 and qual["budget"] == "unknown":
            qual["budget"] = "met"
    if country in CORE:
        fit += 10
    if seniority in ("c_level", "vp"):
        fit += 20
        if qual["authority"] == "unknown":
            qual["authority"] = "met"
    elif seniority == "director":
        fit += 15
    elif seniority == "manager":
        fit += 8
    elif seniority is None and isinstance(title, str) and _SENIOR_TITLE.search(title):
        fit += 12
    if profile.get("department") in BUYING:
        fit += 10
    stack = profile.get("tech_stack")
    if stack and not {"salesforce", "hubspot"}.isdisjoint(s.casefold() for s in stack):
        fit += 10
    if need and qual["need"] == "unknown":
        qual["need"] = "met"
    fit = min(100.0, max(0.0, _r2(fit)))
    engagement = min(100.0, max(0.0, _r2(engagement)))

    # Stage: disqualification wins (first reason by priority), then not-a-lead; else the funnel.
    previous = facts.get("previous_stage")
    stage = previous if previous in RANK else "lead"
    reason = None
    stale = days_since is not None and days_since >= 90
    recycled = False
    kinds, latest, overdue = _sales_feedback(facts, last_event, now)
    if "won" in kinds:
        tags.append("customer")
    if (isinstance(company, str) and _TEST_COMPANY.search(company)) or (
        isinstance(email, str) and _TEST_EMAIL.search(email)
    ):
        reason = "Looks like a test or spam submission"
    elif domain in COMPETITORS:
        reason = "Works for a competitor"
    elif seniority == "student" or (isinstance(title, str) and _STUDENT_TITLE.search(title)):
        reason = "Student"
    elif domain in FREE_MAIL:
        reason = "Personal email address"
    if reason:
        stage = "disqualified"
    else:
        if whitepaper_60 and pricing_60 and RANK[stage] < RANK["mql"]:
            stage = "mql"
        if stale and stage in ("mql", "sql"):
            stage, recycled = "recycled", True
        if kinds & ACCEPTED and RANK[stage] < RANK["accepted"]:
            stage = "accepted"
        if "opportunity" in kinds and RANK[stage] < RANK["opportunity"]:
            stage = "opportunity"
        if "won" in kinds and RANK[stage] < RANK["customer"]:
            stage = "customer"
        if latest in ("rejected", "lost"):
            stage = "recycled"  # sales rejected the hand-off, or the deal was lost
        if country is not None and country not in SERVED:
            stage, reason = "not_a_lead", "Outside our target market"
        elif not interest:
            stage, reason = "not_a_lead", "No sign of interest yet"
    sql_done = False
    if stage == "mql" and qual["budget"] == "met" and (talk or sales):
        stage, ready, sql_done = "sql", True, True
        if stale and not recycled:
            stage, recycled = "recycled", True
    good = fit >= 50
    quadrant = f"{'good' if good else 'poor'}_fit_{'ready' if ready else 'not_ready'}"
    if engagement >= 40 and fit >= 40 and stage not in VERDICTS and RANK[stage] < RANK["mql"]:
        stage = "mql"  # and what chains on it at once: recycling, or the SQL rule
        if stale and not recycled:
            stage = "recycled"
        elif not sql_done and qual["budget"] == "met" and (talk or sales):
            stage, ready = "sql", True
    asked = ["talk_to_sales"] if funnel == "bofu" and not ready else []
    if quadrant == "poor_fit_ready":
        asked.append("authority")  # by route-bring-in-authority, whichever route wins

    is_lead = stage not in VERDICTS
    if not is_lead:
        route = stage
    elif stage in ("opportunity", "customer"):
        route = "account_management"
    elif latest in ("rejected", "lost") or (stage == "recycled" and not ready):
        route = "recycled_nurture"
    elif overdue and quadrant == "good_fit_ready":
        route = "sales_escalation"
    elif quadrant == "good_fit_ready":
        route = "sales_handoff"
    elif quadrant == "poor_fit_ready":
        route = "bring_in_authority"
    elif quadrant == "good_fit_not_ready":
        route = "sdr_qualification" if funnel != "tofu" else "nurture_accelerate"
    else:
        route = "nurture_low_touch"
    questions = []
    if is_lead:
        questions = [
            q for q, item in _QUESTIONS if q not in answers and (qual[item] == "unknown" or q in asked)
        ]
        if "talk_to_sales" in asked and "talk_to_sales" not in answers:
            questions.append("talk_to_sales")
    return {
        "stage": stage,
        "status_reason": reason,
        "route": route,
        "scores": {"fit": fit, "engagement": engagement},
        "quadrant": quadrant,
        "ready": ready,
        "funnel": funnel,
        "qualification": qual,
        "tags": sorted(tags),
        "next_questions": questions,
    }


# -- Agreement between the engine and the floor ---------------------------------------------------

FIELDS = ("stage", "status_reason", "route", "scores", "quadrant", "ready", "funnel", "qualification")
FIELDS += ("tags", "next_questions", "rules fired")


def _view(decision: dict) -> dict:
    return {
        "stage": decision["stage"],
        "status_reason": decision["status_reason"],
        "route": decision["route"]["id"],
        "scores": decision["scores"],
        "quadrant": decision["quadrant"],
        "ready": decision["ready"],
        "funnel": decision["funnel"],
        "qualification": decision["qualification"],
        "tags": decision["tags"],
        "next_questions": [q["id"] for q in decision["next_questions"]],
        "rules fired": sorted({r["rule"] for r in decision["reasons"] if not r["rule"].startswith("@")}),
    }


# -- Measuring ------------------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def _cpu_idle() -> dict[int, int]:
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                out[int(parts[0][3:])] = int(parts[4]) + int(parts[5])
    return out


def pin(cpu: int | None) -> str:
    """Pin this process to one CPU (the least busy over half a second unless one is named)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (os.sched_setaffinity is not available here)"
    allowed = sorted(os.sched_getaffinity(0))
    how = "named with --cpu"
    if cpu is None:
        before = _cpu_idle()
        time.sleep(0.5)
        after = _cpu_idle()
        cpu = max(allowed, key=lambda c: (after.get(c, 0) - before.get(c, 0), c))
        how = "the least busy over 0.5 s"
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu} of {allowed} ({how}) with os.sched_setaffinity"


def percentile(ordered, p: float) -> float:
    """Nearest-rank percentile of a sorted sequence."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def timed(name: str, call, leads: list[dict], n: int, checkpoint: int | None = None) -> dict:
    """n calls of call(lead), cycling over the leads; each call timed; RSS at every checkpoint."""
    lat = array("d", bytes(8 * n))  # allocated before the first RSS reading
    marks: list[tuple[int, float]] = []
    size = len(leads)
    load1 = os.getloadavg()[0]
    rss0 = rss_mib()
    clock = time.perf_counter
    cpu0, t0 = time.process_time(), clock()
    for i in range(n):
        lead = leads[i % size]
        start = clock()
        call(lead)
        lat[i] = clock() - start
        if checkpoint and (i + 1) % checkpoint == 0:
            marks.append((i + 1, rss_mib()))
    elapsed, cpu = clock() - t0, time.process_time() - cpu0
    rss1 = rss_mib()  # before sorting the latencies (a list of floats of its own)
    ordered = sorted(lat)
    us = 1e6
    return {
        "name": name,
        "n": n,
        "rate": n / elapsed,
        "cpu_rate": n / cpu if cpu else float("nan"),
        "share": cpu / elapsed,
        "mean": elapsed / n * us,
        "p50": percentile(ordered, 50) * us,
        "p99": percentile(ordered, 99) * us,
        "p999": percentile(ordered, 99.9) * us,
        "max": ordered[-1] * us,
        "rss0": rss0,
        "rss1": rss1,
        "marks": marks,
        "load1": load1,
    }


def table(rows: list[dict]) -> str:
    head = (
        f"{'path':<34} {'calls':>7} {'decisions/s':>11} {'per CPU-s':>9} {'mean µs':>8} {'p50 µs':>7} "
        f"{'p99 µs':>7} {'p99.9 µs':>8} {'max µs':>8} {'CPU share':>9} {'load1':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<34} {r['n']:>7} {r['rate']:>11,.0f} {r['cpu_rate']:>9,.0f} {r['mean']:>8.1f} "
            f"{r['p50']:>7.1f} {r['p99']:>7.1f} {r['p999']:>8.1f} {r['max']:>8.0f} {r['share']:>9.2f} "
            f"{r['load1']:>5.2f}"
        )
    return "\n".join(lines)


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _profile(compiled, leads: list[dict], n: int) -> None:
    """Where the engine path spends its time: each part timed in place, then cProfile's top functions.

    The parts are measured by wrapping the engine's own steps (the check, the initial facts, every
    durable_rules call, every action, clearing the session, the decision document) with a clock while
    `evaluate` runs as usual; cProfile's cumulative times are not used (Python 3.12+ loses some frames).
    """
    from engine import runtime

    spent: Counter = Counter()
    calls: Counter = Counter()
    clock = time.perf_counter

    def timing(label, function):
        def wrapper(*args, **kwargs):
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += clock() - start
                calls[label] += 1

        return wrapper

    class TimedC:
        """durable_rules' C module, each call timed under its own name."""

        def __getattr__(self, name):
            return timing(f"C {name}", getattr(real_dre, name))

    real_dre = runtime.dre
    patched = [
        (runtime, "normalise", timing("check", runtime.normalise)),
        (runtime, "decision", timing("decision", runtime.decision)),
        (runtime, "dre", TimedC()),
        (compiled, "_initial_facts", timing("initial", compiled._initial_facts)),
        (compiled, "_dispatch", timing("actions", compiled._dispatch)),
        (compiled, "_clear", timing("clear", compiled._clear)),
        (
            compiled,
            "_fact_functions",  # the slot and score facts actions assert and retract
            tuple(
                timing(f"C {n}", f)
                for n, f in zip(("assert_fact", "retract_fact"), compiled._fact_functions, strict=True)
            ),
        ),
    ]
    saved = [(obj, name, obj.__dict__.get(name)) for obj, name, _ in patched]
    for obj, name, value in patched:
        setattr(obj, name, value)
    try:
        start = clock()
        for i in range(n):
            compiled.evaluate(leads[i % len(leads)], AT)
        total = clock() - start
    finally:
        for obj, name, value in saved:
            if value is None:
                delattr(obj, name)
            else:
                setattr(obj, name, value)
    c_in = {  # C calls made inside a timed Python step are counted there, and shown apart as well
        "actions": spent["C assert_fact"] + spent["C retract_fact"],
        "clear": spent["C retract_facts"] + spent["C start_action"] + spent["C get_facts"],
    }
    c_loop = spent["C start_action_for_state"] + spent["C complete_and_start_action"]
    parts = [
        ("the check (normalise): validation and canonical facts", spent["check"]),
        ("initial facts: features, event ages, one JSON array", spent["initial"]),
        ("durable_rules: asserting the initial facts (C)", spent["C assert_facts"]),
        (
            f"actions in Python ({calls['actions'] / n:.1f} per evaluation, slot facts included)",
            spent["actions"],
        ),
        ("durable_rules: taking the next action (C)", c_loop),
        ("clearing the session for the next evaluation", spent["clear"]),
        ("the decision document", spent["decision"]),
    ]
    rest = total - sum(seconds for _, seconds in parts)
    parts.append(("the rest of evaluate (the lock, the run's state, timing wrappers)", rest))
    c_total = sum(v for k, v in spent.items() if k.startswith("C "))
    print(f"where the time goes, {n} engine evaluations timed in place ({total / n * 1e6:.0f} µs each):")
    for label, seconds in parts:
        print(f"  {label:<74} {seconds / n * 1e6:>6.1f} µs {seconds / total:>5.0%}")
    print(
        f"  of all the above, durable_rules C calls: {c_total / n * 1e6:.1f} µs ({c_total / total:.0%}; "
        f"{c_in['actions'] / n * 1e6:.1f} µs of them in actions, {c_in['clear'] / n * 1e6:.1f} µs in clearing)"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(n):
        compiled.evaluate(leads[i % len(leads)], AT)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    print(f"cProfile of {n} more evaluations, top functions by own time:")
    print("\n".join(line for line in lines[start:] if line.strip()))


def _other_engine(tree: str):
    """The engine package of another checkout (a copy of the base commit, say), imported as
    `engine_against` beside this one: its modules import each other relatively, so none is shared."""
    import importlib
    import importlib.util

    folder = Path(tree).resolve() / "engine"
    spec = importlib.util.spec_from_file_location(
        "engine_against", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or not (folder / "__init__.py").is_file():
        raise SystemExit(f"--against: no engine package in {tree}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["engine_against"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("engine_against.compiler").compile_source


def _against(tree: str, compiled, leads: list[dict], rounds: int) -> None:
    """This engine and another checkout's in one process, the same leads, whole passes alternated (and
    their order swapped every round) with the process's CPU clock around each pass: on a shared machine
    both meet the same load, so their ratio holds where separate runs minutes apart differ by 10%.
    Three paths: raw facts (the check included); facts checked before; and the engine's part of a
    decision in the service for a returning lead: the check of what was sent, its merge into the
    stored facts of the lead's last decision (here another generated lead's), the evaluation."""
    import importlib

    from audit.leads import event_key  # how the service keys an event sent without an id

    other = _other_engine(tree)(RULESET.read_text("utf-8"), str(RULESET))
    merges = {"this tree": importlib.import_module("engine.merging").merge_checked}
    merges[tree] = importlib.import_module("engine_against.merging").merge_checked
    sides = {"this tree": compiled, tree: other}
    stored = [compiled.evaluate(lead, AT).facts for lead in leads]
    stored = stored[1:] + stored[:1]

    def served(name):
        c, merge = sides[name], merges[name]

        def decide(i):
            checked = c.normalise(leads[i])
            return c.evaluate(merge(c.model, stored[i], leads[i], checked, event_key), AT)

        return decide

    def on(name, facts):
        evaluate = sides[name].evaluate
        return lambda i: evaluate(facts[i], AT)

    paths = {
        "raw facts": {name: on(name, leads) for name in sides},
        "checked facts": {name: on(name, [c.normalise(lead) for lead in leads]) for name, c in sides.items()},
        "merged, served": {name: served(name) for name in sides},
    }
    indexes = range(len(leads))
    for label, by_side in paths.items():
        mine, theirs = by_side["this tree"], by_side[tree]
        differ = sum(mine(i).decision != theirs(i).decision for i in indexes)
        spent = dict.fromkeys(sides, 0.0)
        for r in range(rounds):
            for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
                call = by_side[name]
                start = time.process_time()
                for i in indexes:
                    call(i)
                spent[name] += time.process_time() - start
        n = rounds * len(leads)
        a, b = spent["this tree"], spent[tree]
        print(
            f"  {label:<14} this tree {a / n * 1e6:6.1f} µs CPU ({n / a:,.0f}/CPU-s); {tree}: "
            f"{b / n * 1e6:6.1f} µs ({n / b:,.0f}/CPU-s); ratio {a / b:.3f}; "
            f"decisions differing: {differ} of {len(leads)}"
        )


def _agreement(leads: list[dict], engine_views: list[dict], floor, fields) -> tuple[int, Counter, tuple]:
    """How many leads a floor decides exactly as the engine on these fields; which fields differ."""
    agree, mismatches, example = 0, Counter(), None
    for lead, engine_view in zip(leads, engine_views, strict=True):
        floor_view = floor(lead)
        wrong = [f for f in fields if engine_view[f] != floor_view[f]]
        mismatches.update(wrong)
        if not wrong:
            agree += 1
        elif example is None:
            example = (lead["lead_id"], {f: (engine_view[f], floor_view[f]) for f in wrong})
    return agree, mismatches, example


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000, help="distinct generated leads (default 10000)")
    parser.add_argument(
        "--evaluations", type=int, default=100_000, help="timed evaluations per path (default 100000)"
    )
    parser.add_argument("--checkpoint", type=int, default=20_000, help="RSS every N evaluations (20000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated leads (default 1)")
    parser.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: least busy)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument("--profile", action="store_true", help="also profile 5000 engine evaluations")
    parser.add_argument(
        "--against",
        metavar="TREE",
        help="also compare with the engine of another checkout (e.g. a worktree of the base commit) "
        "in this process, passes over the leads alternated: CPU per decision of both and their ratio",
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="passes over the leads per side for --against (6)"
    )
    args = parser.parse_args(argv)
    for name in ("leads", "evaluations", "checkpoint", "rounds"):
        if not 1 <= getattr(args, name) <= 10_000_000:
            parser.error(f"--{name} must be between 1 and 10000000")

    print(f"machine: {os.cpu_count()} CPUs; load average {_loadavg()}; Python {sys.version.split()[0]}")
    print("process: " + ("not pinned (--no-pin)" if args.no_pin else pin(args.cpu)))
    rss_start = rss_mib()
    compiled = compile_source(RULESET.read_text("utf-8"), str(RULESET))
    floor = Floor(compiled.model)
    floor.identity = compiled.identity
    print(
        f"ruleset: {compiled.name} v{compiled.version} ({compiled.digest[:19]}…), "
        f"{len(compiled.plan.definition)} durable_rules rules; evaluation time {AT}"
    )
    if (compiled.name, compiled.version) != FLOOR_FOR:
        print(
            f"WARNING: the floors were written from {FLOOR_FOR[0]} v{FLOOR_FOR[1]}, this is v{compiled.version}: "
            "the agreement below says whether they still decide alike"
        )
    t0 = time.perf_counter()
    leads = generate(args.leads, args.seed, compiled.model)
    n_leads = len(leads)
    events = sum(len(lead["events"]) for lead in leads) / n_leads
    print(
        f"generated {n_leads} leads (seed {args.seed}, {events:.1f} events per lead) "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    # Warm-up and agreement: every lead once through every path (untimed).
    engine_views = [_view(compiled.evaluate(lead, AT).decision) for lead in leads]
    stages = Counter(v["stage"] for v in engine_views)
    routes = Counter(v["route"] for v in engine_views)
    fired = sum(len(v["rules fired"]) for v in engine_views) / n_leads
    print()
    print(f"the mix (engine decisions for the {n_leads} leads; {fired:.1f} rules fire per lead):")
    print("  stages: " + ", ".join(f"{k} {v / n_leads:.1%}" for k, v in stages.most_common()))
    print("  routes: " + ", ".join(f"{k} {v / n_leads:.1%}" for k, v in routes.most_common()))
    floors = (
        ("full decision", lambda f: _view(plain_decide(floor, f, AT)), FIELDS),
        ("outcome only", lambda f: plain_outcome(f, AT), FIELDS[:-1]),
    )
    agreement = {}
    for name, call, fields in floors:
        agree, mismatches, example = _agreement(leads, engine_views, call, fields)
        agreement[name] = agree / n_leads
        print(
            f"floor ({name}) vs engine: identical for {agree} of {n_leads} leads ({agree / n_leads:.2%}) "
            f"on {', '.join(fields)}"
        )
        for f in fields:
            if mismatches[f]:
                print(f"    {f}: differs for {mismatches[f]} leads")
        if example:
            print(f"    first difference: {example[0]}: (engine, floor) {example[1]}")

    same = sum(
        compiled.evaluate(compiled.normalise(lead), AT).decision == compiled.evaluate(lead, AT).decision
        for lead in leads
    )
    print(
        f"facts checked once (normalise, then evaluate the CheckedFacts) vs evaluate checking them: "
        f"identical decisions for {same} of {n_leads} leads ({same / n_leads:.2%})"
    )
    del engine_views  # what stays in memory from here on: the ruleset and the generated leads
    gc.collect()
    n = args.evaluations
    print()
    print(f"timing {n} evaluations per path (load {_loadavg()}) …", flush=True)
    engine_row = timed(
        "engine (CompiledRuleset.evaluate)", lambda f: compiled.evaluate(f, AT), leads, n, args.checkpoint
    )
    full_row = timed("floor: full decision + reasons", lambda f: plain_decide(floor, f, AT), leads, n)
    bare_row = timed("floor: outcome only", lambda f: plain_outcome(f, AT), leads, n)
    model = compiled.model
    norm_row = timed("engine's normalise() alone", lambda f: normalise(model, f), leads, min(n, n_leads))
    checked = [compiled.normalise(lead) for lead in leads]
    checked_row = timed("engine, facts checked before", lambda f: compiled.evaluate(f, AT), checked, n)
    print()
    print(table([engine_row, full_row, bare_row, norm_row, checked_row]))
    ratio = engine_row["mean"] / bare_row["mean"]
    like = engine_row["mean"] / full_row["mean"]
    print(
        f"ratio engine/floor (mean time per decision): {ratio:.1f}x against the outcome-only floor "
        f"({engine_row['p50'] / bare_row['p50']:.1f}x at p50); {like:.1f}x against the floor that builds "
        "the same decision with reasons"
    )
    print(
        f"input validation (normalise, in the engine path, not in the floors) is "
        f"{norm_row['mean']:.0f} µs, {norm_row['mean'] / engine_row['mean']:.0%} of the engine's time"
    )
    print()
    print(f"RSS (MiB): {rss_start:.1f} at start; {engine_row['rss0']:.1f} before the timed engine run")
    for count, rss in engine_row["marks"]:
        print(f"  after {count:>7} evaluations: {rss:.1f}")
    print(f"  after the timed engine run: {engine_row['rss1']:.1f}")
    base = engine_row["marks"][0][1] if engine_row["marks"] else engine_row["rss0"]
    growth = engine_row["rss1"] - base
    since = f"after {engine_row['marks'][0][0]} evaluations" if engine_row["marks"] else "before the run"
    print(
        f"  growth from {since} to the end: {growth:+.2f} MiB; over the whole timed run "
        f"{engine_row['rss1'] - engine_row['rss0']:+.2f} MiB"
    )
    if args.profile:
        print()
        _profile(compiled, leads, 5000)
    if args.against:
        print()
        print(
            f"against {args.against}, {args.rounds} alternated passes over the {n_leads} leads (load {_loadavg()}):"
        )
        _against(args.against, compiled, leads, args.rounds)

    print()
    share = engine_row["share"]
    if share < 0.9:
        print(
            f"NOTE: the engine phase got {share:.0%} of its core (other processes were running); "
            f"per CPU-second it made {engine_row['cpu_rate']:,.0f} decisions. Re-run on a quiet machine."
        )
    checks = [
        (
            f"decisions/s on one core >= {TARGET_RATE:,.0f} (with full reasons)",
            f"{engine_row['rate']:,.0f}",
            engine_row["rate"] >= TARGET_RATE,
        ),
        (
            f"engine within {TARGET_RATIO:.0f}x of the plain-Python floor (outcome only)",
            f"{ratio:.1f}x",
            ratio <= TARGET_RATIO,
        ),
        (
            f"RSS flat over 100,000 evaluations (<= {FLAT_MIB:.0f} MiB growth after the first checkpoint)",
            f"{growth:+.2f} MiB over {n:,}" + ("" if n >= 100_000 else " (too few evaluations to tell)"),
            growth <= FLAT_MIB and n >= 100_000,
        ),
        (
            "both floors agree with the engine on >= 99% of leads (so the ratio is fair)",
            " / ".join(f"{v:.2%}" for v in agreement.values()),
            min(agreement.values()) >= 0.99,
        ),
    ]
    print("targets:")
    for label, value, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {label}: {value}")
    print(f"load average after the run: {_loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

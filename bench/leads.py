"""A realistic, seeded mix of generated leads for the default ruleset, shared by the benchmarks.

Varied profiles (in and outside the market, free-mail and competitor addresses, students, test
submissions), events of every type with ages from minutes to 200 days, chatbot answers (text and
amounts), a previous stage for returning leads and, given the ruleset, what sales reported.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

AT = "2026-11-24T09:00:00Z"  # fixed evaluation time: the same decisions on every run


_COUNTRIES = ["US"] * 30 + ["GB"] * 10 + ["DE"] * 10 + ["FR"] * 6 + ["CA"] * 6 + ["NL"] * 4
_COUNTRIES += ["ES", "IT", "SE", "CH", "IE", "BE", "DK", "NO", "AT", "PT", "FI", "LU"]
_COUNTRIES += ["BR", "IN", "JP", "AU", "MX", "ZA", "SG", "PL"]  # outside the served market
_INDUSTRIES = ["software", "saas", "fintech", "ecommerce", "retail", "healthcare", "media"]
_INDUSTRIES += ["manufacturing", "education", "logistics", "government", "consulting", "energy"]
SENIORITIES = ["c_level", "vp", "director", "director", "manager", "manager", "manager"]
SENIORITIES += ["individual", "individual", "individual"]
_TITLES = ["Head of Growth", "Chief Data Officer", "VP Marketing", "Marketing Manager", "Data Analyst"]
_TITLES += ["Founder", "Sales Operations Lead", "BI Developer", "Owner", "Vice President, Sales"]
_DEPARTMENTS = ["marketing", "sales", "revenue_operations", "operations", "analytics", "finance"]
_DEPARTMENTS += ["engineering", "hr", "it", "product"]
_STACK = ["salesforce", "hubspot", "snowflake", "bigquery", "tableau", "looker", "segment", "marketo"]
_FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "gmx.de", "icloud.com", "proton.me"]
_COMPETITORS = ["rivalytics.com", "datacompete.io", "insightrival.com"]
_FIRST = ["ana", "ben", "chloe", "david", "emma", "farid", "greta", "hugo", "ines", "jonas", "kai"]
_LAST = ["lopez", "okafor", "schmidt", "martin", "rossi", "nowak", "smith", "dubois", "jensen"]
_WORDS = ["acme", "globex", "initech", "umbrella", "hooli", "vandelay", "stark", "wayne", "tyrell"]
_WORDS += ["cyberdyne", "soylent", "wonka", "oscorp", "aperture", "massive", "nakatomi"]
_LOW_INTENT = ["page_view", "page_view", "email_open", "email_open", "email_click", "social_follow"]
_LOW_INTENT += ["careers_page_view", "unsubscribe", "email_bounce"]
EVENT_MIX = [
    ("page_view", 20),
    ("email_open", 14),
    ("email_click", 8),
    ("content_download", 12),
    ("pricing_page_view", 8),
    ("webinar_registered", 5),
    ("webinar_attended", 3),
    ("social_follow", 3),
    ("free_trial", 4),
    ("info_request", 3),
    ("demo_request", 4),
    ("contact_sales", 2),
    ("application", 1),
    ("unsubscribe", 1),
    ("email_bounce", 1),
    ("careers_page_view", 2),
]
_HOT_EVENTS = ["pricing_page_view", "pricing_page_view", "content_download", "demo_request", "contact_sales"]
_HOT_EVENTS += ["free_trial", "info_request", "webinar_attended", "application"]
CONTENT = ["whitepaper", "whitepaper", "ebook", "case_study", "report"]
_PATHS = ["/", "/product", "/blog/attribution", "/integrations", "/about"]
CHANNELS = ["demo_form", "contact_form", "content_form", "chatbot", "webinar_form", "import"]
ANSWERS = {
    "budget": ["yes", "no", "unknown", 5000, 25000, 120000],
    "authority": ["decision_maker", "influencer", "user"],
    "need": ["yes", "no", "We need one place for our revenue reporting."],
    "timeline": ["now", "this_quarter", "this_year", "later", "none"],
    "talk_to_sales": ["yes", "no"],
}
_STORIES = [  # what sales reported about a lead, oldest first
    ["accepted"],
    ["contacted"],
    ["accepted", "meeting_held"],
    ["accepted", "opportunity"],
    ["contacted", "meeting_held", "opportunity"],
    ["accepted", "opportunity", "won"],
    ["rejected"],
    ["accepted", "rejected"],
    ["accepted", "opportunity", "lost"],
    ["contacted", "lost"],
]
_ARCHETYPES = [("browser", 26), ("engaged", 30), ("hot", 14), ("stale", 10), ("returning", 12), ("junk", 8)]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def event(rng: random.Random, lead_id: str, k: int, kind: str, now: datetime, days: tuple) -> dict:
    event = {
        "type": kind,
        "at": iso(now - timedelta(days=rng.uniform(*days), seconds=rng.randrange(3600))),
        "id": f"{lead_id}-e{k}",
    }
    if kind == "content_download":
        event["properties"] = {"content": rng.choice(CONTENT)}
    elif kind == "page_view" and rng.random() < 0.5:
        event["properties"] = {"path": rng.choice(_PATHS)}
    return event


def _feedback(rng: random.Random, lead: dict, now: datetime, reasons: dict) -> None:
    """What sales reported about a returning lead (outcomes), or its open hand-off, if any."""
    stage = lead.get("previous_stage")
    if stage in ("sql", "accepted", "opportunity") and rng.random() < 0.6:
        story = rng.choice(_STORIES)
        days = sorted((rng.uniform(0, 40) for _ in story), reverse=True)
        outcomes = []
        for k, (otype, day) in enumerate(zip(story, days, strict=True)):
            if otype in ("rejected", "lost") and not reasons.get(otype):
                continue  # the ruleset declares no reasons for it
            outcome = {"type": otype, "at": iso(now - timedelta(days=day)), "id": f"{lead['lead_id']}-o{k}"}
            if otype in ("rejected", "lost"):
                outcome["reason"] = rng.choice(reasons[otype])
            elif otype == "won" and rng.random() < 0.5:
                outcome["amount"] = rng.choice([12_000, 48_000, 150_000])
            outcomes.append(outcome)
        if outcomes:
            lead["outcomes"] = outcomes
    elif stage in ("mql", "sql") and rng.random() < 0.3:
        handed = now - timedelta(hours=rng.choice([0.2, 3, 20, 50]))  # some answered in time, some not
        lead["handoff"] = {
            "route": "sales_handoff",
            "at": iso(handed),
            "due_at": iso(handed + timedelta(minutes=30)),
        }


def make_lead(
    rng: random.Random, i: int, now: datetime, reasons: dict | None = None, lead_id: str | None = None
) -> dict:
    """One lead as a form, a chatbot or an import sends it, shaped by a random archetype.

    With `reasons` (the ruleset's outcome reasons; None for a ruleset without sales feedback) a
    returning lead may carry outcomes reported by sales, or its open hand-off.
    """
    lead_id = lead_id or f"L-{i:06d}"
    kinds, weights = zip(*_ARCHETYPES, strict=True)
    archetype = rng.choices(kinds, weights)[0]
    hot = archetype == "hot"  # hot leads take the head of the lists: core countries, target industries…
    first, last, word = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_WORDS)
    domain = f"{word}{rng.randrange(1000)}.{rng.choice(['com', 'io', 'de', 'co.uk'])}"
    if not hot and rng.random() < 0.06:
        domain = rng.choice(_FREE_MAIL)
    profile: dict = {
        "email": f"{first}.{last}@{domain}",
        "first_name": first.title(),
        "last_name": last.title(),
        "company": f"{word.title()} {rng.choice(['Inc', 'GmbH', 'Ltd', 'SAS', 'BV', 'Labs'])}",
        "country": rng.choice(_COUNTRIES[:66] if hot else _COUNTRIES),
        "industry": rng.choice(_INDUSTRIES[:7] if hot and rng.random() < 0.8 else _INDUSTRIES),
        "employees": rng.randint(50, 5000) if hot else int(rng.lognormvariate(4.5, 1.9)) + 1,
        "department": rng.choice(_DEPARTMENTS[:6] if hot else _DEPARTMENTS),
    }
    if rng.random() < 0.03:
        del profile["country"]  # an unknown country is not "outside the market"
    if rng.random() < 0.8:
        profile["seniority"] = rng.choice(SENIORITIES[:4] if hot else SENIORITIES)
    if rng.random() < 0.6:
        profile["job_title"] = rng.choice(_TITLES)
    if rng.random() < (0.7 if hot else 0.35):
        profile["annual_revenue"] = rng.choice([500_000, 2_000_000, 15_000_000, 80_000_000, 400_000_000])
    if rng.random() < 0.5:
        profile["tech_stack"] = rng.sample(_STACK, rng.randint(1, 4))
    if rng.random() < 0.3:
        profile["phone"] = f"+1 555 {rng.randrange(10**7):07d}"
    if archetype == "junk":
        roll = rng.randrange(5)
        if roll == 0:
            profile["email"] = f"{first}@{rng.choice(_COMPETITORS)}"
        elif roll == 1:
            profile["seniority"] = "student"
        elif roll == 2:
            profile["job_title"] = rng.choice(["Marketing Intern", "Student", "PhD student"])
        elif roll == 3:
            profile["company"] = rng.choice(["test", "asdf", " N/A ", "xxxx", "none"])
        else:
            profile["email"] = f"test{rng.randrange(99)}@{domain}"

    types, tweights = zip(*EVENT_MIX, strict=True)
    days = (0, 75)
    if archetype == "browser":
        n = rng.randint(0, 5)
        kinds_ = [rng.choice(_LOW_INTENT) for _ in range(n)]
        if rng.random() < 0.35:
            kinds_.append(rng.choice(["content_download", "webinar_registered"]))
    elif hot:
        kinds_ = rng.sample(_HOT_EVENTS, rng.randint(2, 5)) + rng.choices(
            types, tweights, k=rng.randint(1, 7)
        )
        days = (0, 30)
    else:
        kinds_ = rng.choices(types, tweights, k=rng.randint(1, 10))
        if archetype == "stale":
            days = (90, 200)
    events = [event(rng, lead_id, k, kind, now, days) for k, kind in enumerate(kinds_)]
    rng.shuffle(events)  # callers send events in any order

    lead: dict = {"lead_id": lead_id, "channel": rng.choice(CHANNELS), "profile": profile, "events": events}
    if rng.random() < (0.6 if hot else 0.25):
        keys = rng.sample(sorted(ANSWERS), rng.randint(1, 4))
        lead["answers"] = {k: rng.choice(ANSWERS[k]) for k in keys}
    if archetype == "stale":
        lead["previous_stage"] = rng.choice(["lead", "mql", "mql", "sql", "sql"])
    elif archetype == "returning":
        lead["previous_stage"] = rng.choice(["lead", "mql", "sql", "accepted", "opportunity", "recycled"])
    if reasons is not None and archetype in ("returning", "stale"):
        _feedback(rng, lead, now, reasons)
    return lead


def generate(n: int, seed: int, model=None) -> list[dict]:
    """n leads; with the ruleset's model, sales feedback too when the ruleset declares outcomes."""
    rng = random.Random(seed)
    now = datetime.fromisoformat(AT)
    reasons = getattr(model, "outcome_reasons", None)
    reasons = {k: sorted(v) for k, v in reasons.items()} if reasons is not None else None
    return [make_lead(rng, i, now, reasons) for i in range(n)]

"""The standard lead vocabulary every ruleset understands (product brief, "Lead vocabulary").

A ruleset may declare more profile fields and answers under `fields:`; callers may rely on these.
"""

from __future__ import annotations

STRING, NUMBER, BOOLEAN, LIST, DATE = "string", "number", "boolean", "list", "date"

PROFILE_FIELDS: dict[str, str] = {
    "email": STRING,
    "first_name": STRING,
    "last_name": STRING,
    "phone": STRING,
    "company": STRING,
    "website": STRING,
    "country": STRING,
    "region": STRING,
    "industry": STRING,
    "employees": NUMBER,
    "annual_revenue": NUMBER,
    "household_income": NUMBER,
    "job_title": STRING,
    "seniority": STRING,
    "department": STRING,
    "tech_stack": LIST,
    "pets": LIST,
}

# Derived by the engine from the profile, so rules can match them; callers never send them.
DERIVED_PROFILE_FIELDS: dict[str, str] = {
    "email_domain": STRING,
}

SENIORITIES = ("c_level", "vp", "director", "manager", "individual", "student")

EVENT_TYPES = (
    "email_open",
    "email_click",
    "page_view",
    "pricing_page_view",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "social_follow",
    "free_trial",
    "info_request",
    "demo_request",
    "application",
    "contact_sales",
    "unsubscribe",
    "email_bounce",
    "careers_page_view",
)

# What sales reports back about a lead (POST /v1/leads/{id}/outcomes); rejected and lost carry a reason
# from the ruleset's `outcomes` lists, won an amount.
OUTCOME_TYPES = ("accepted", "rejected", "contacted", "meeting_held", "opportunity", "won", "lost")
OUTCOMES_WITH_REASON = ("rejected", "lost")

ANSWER_FIELDS: dict[str, str] = {
    "budget": STRING,  # yes / no / unknown, or an amount (a number)
    "authority": STRING,
    "need": STRING,
    "timeline": STRING,
    "talk_to_sales": STRING,
}

FUNNEL_POSITIONS = ("tofu", "mofu", "bofu")
DESTINATIONS = ("nurture", "qualification", "sales", "disqualified")
QUADRANTS = ("good_fit_ready", "good_fit_not_ready", "poor_fit_ready", "poor_fit_not_ready")
QUALIFICATION_STATUSES = ("met", "unmet", "unknown")

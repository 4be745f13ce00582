#!/usr/bin/env python3
"""A terminal chatbot that qualifies a lead through the leadgate API, one question at a time.

    python examples/chatbot.py --url http://127.0.0.1:8000 --key KEY [--lead-id ID] [--profile JSON]

It needs only the standard library (any Python 3.11+) and a key of scope `decide`
(`leadgate keys create --name chatbot --scope decide`); the key may also come from LEADGATE_KEY.

The conversation: a greeting, the contact details the --profile JSON does not already give (email,
company, country), then a first decision (channel "chatbot", with the visit that opened the chat as
an event, --event). After that it asks the lead's open qualification questions (the decision's
`next_questions`) one by one, sending one answer per call, until the route hands the lead to sales
or nothing is left to ask. Answers are read from standard input line by line, so a pipe can drive it;
end of input ends the chat politely.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

TIMEOUT_SECONDS = 30
MAX_TEXT = 2000  # the API refuses longer text values
EVENT_TYPES = (
    "page_view",
    "pricing_page_view",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "free_trial",
    "info_request",
    "demo_request",
    "application",
    "contact_sales",
)

# The contact details the chatbot asks for when --profile does not give them: (field, question, check).
CONTACT_QUESTIONS = (
    ("email", "What is your work email?", "email"),
    ("company", "Which company are you with?", "text"),
    ("country", "Which country are you in? (two-letter code, e.g. US, DE, FR)", "country"),
)


class ApiError(Exception):
    """An error reply of the API: {"status", "code", "message", "errors"}."""

    def __init__(self, status: int, code: str, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or {}


class Unreachable(Exception):
    """The API could not be reached at all."""


class Api:
    def __init__(self, url: str, key: str):
        self.url, self.key = url.rstrip("/"), key

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            exc.close()
            try:
                error = json.loads(raw)
            except ValueError:
                error = None
            if not isinstance(error, dict):
                error = {"message": raw.decode("utf-8", "replace")[:200] or exc.reason}
            raise ApiError(
                exc.code,
                error.get("code", "http_error"),
                error.get("message", str(exc.reason)),
                error.get("errors"),
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the API at {self.url}: {reason}") from None

    def decide(self, body: dict) -> dict:
        return self.call("POST", "/v1/decisions", body)

    def questions(self, lead_id: str) -> dict:
        return self.call("GET", f"/v1/leads/{urllib.parse.quote(lead_id, safe='')}/questions")


class Chat:
    """Prints as the bot, reads the visitor's lines; EOF raises EOFError."""

    def __init__(self, stdin=None, stdout=None):
        self.stdin, self.stdout = stdin or sys.stdin, stdout or sys.stdout
        # Typed lines are echoed when the input is not a terminal, so a piped session reads as a dialogue.
        self.echo = not _isatty(self.stdin)

    def say(self, text: str) -> None:
        self.stdout.write(f"bot> {text}\n")
        self.stdout.flush()

    def note(self, text: str) -> None:
        self.stdout.write(f"     {text}\n")
        self.stdout.flush()

    def hear(self) -> str:
        self.stdout.write("you> ")
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            self.stdout.write("\n")
            raise EOFError
        line = line.rstrip("\r\n")
        if self.echo:
            self.stdout.write(line + "\n")
            self.stdout.flush()
        return line.strip()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- answers, checked before they are sent ---------------------------------------------------------


def _normal(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def parse_amount(text: str) -> float | int | None:
    """'25000', '25,000', '$25 000', '25k' -> a number; anything else -> None."""
    cleaned = re.sub(r"[\s,_]", "", text.strip()).lstrip("$€£")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", cleaned)
    if not match:
        return None
    value = float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(value) if value.is_integer() else value


def check_answer(question: dict, text: str):
    """The answer to send for `text`, or raise ValueError with what is allowed."""
    allowed = question.get("answers") or []
    amount, free_text = question.get("amount", False), question.get("free_text", False)
    if not text:
        raise ValueError("Please type an answer.")
    for answer in allowed:
        if _normal(text) == _normal(answer):
            return answer
    if amount:
        value = parse_amount(text)
        if value is not None:
            return value
    if free_text or not allowed:
        if len(text) > MAX_TEXT:
            raise ValueError(f"Please keep it under {MAX_TEXT} characters.")
        return text
    raise ValueError("Please answer " + _choices(question) + ".")


def _choices(question: dict) -> str:
    allowed = list(question.get("answers") or [])
    extra = []
    if question.get("amount"):
        extra.append("an amount")
    if question.get("free_text"):
        extra.append("in your own words")
    parts = allowed + extra
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def check_contact(kind: str, text: str) -> str:
    if not text:
        raise ValueError("Please type an answer.")
    if len(text) > MAX_TEXT:
        raise ValueError(f"Please keep it under {MAX_TEXT} characters.")
    if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise ValueError("That does not look like an email address (name@company.com).")
    if kind == "country":
        if not re.fullmatch(r"[A-Za-z]{2}", text):
            raise ValueError("Please give the two-letter country code (US, GB, DE, ...).")
        return text.upper()
    return text


def ask(chat: Chat, text: str, check) -> object:
    chat.say(text)
    while True:
        typed = chat.hear()
        try:
            return check(typed)
        except ValueError as exc:
            chat.say(str(exc))


# -- the conversation --------------------------------------------------------------------------------


def report_error(chat: Chat, exc: ApiError) -> None:
    exc.reported = True
    chat.say(f"Sorry, the API refused that: {exc.message} ({exc.status} {exc.code})")
    for field, messages in sorted(exc.errors.items()):
        for message in messages if isinstance(messages, list) else [messages]:
            chat.note(f"{field}: {message}")


def when(due_at: str | None) -> str | None:
    if not due_at:
        return None
    try:
        moment = datetime.fromisoformat(due_at.replace("Z", "+00:00"))
    except ValueError:
        return due_at
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def status_line(decision: dict) -> str:
    route = decision["route"]
    return (
        f"-> route {route['id']} ({route['destination']}); stage {decision['stage']}, {decision['quadrant']}"
    )


def finish(chat: Chat, decision: dict) -> None:
    """The closing words for a lead with nothing left to ask, or handed off."""
    route = decision["route"]
    step = route["next_step"]
    destination = route["destination"]
    if destination == "sales":
        chat.say(f"Handed off to sales (team {route['team'] or 'sales'}). {step['text']}")
        due = when(route.get("due_at"))
        if due:
            chat.say(f"Someone will be in touch by {due} (within {route['sla_minutes']} minutes).")
    elif destination == "qualification":
        chat.say(f"With the qualification team (team {route['team']}). {step['text']}")
        due = when(route.get("due_at"))
        if due:
            chat.say(f"They will contact you by {due}.")
    elif destination == "nurture":
        chat.say(f"Parked in nurture (track {route['track'] or 'default'}). {step['text']}")
    else:
        chat.say(f"Closed: {destination} ({decision.get('status_reason') or route['id']}). {step['text']}")
    chat.say(f"Your reference: {decision['lead_id']}. Goodbye!")


def first_decision(
    chat: Chat, api: Api, args, lead_id: str, profile: dict, asked: set, resumed: bool
) -> dict:
    """Post what is known of the lead; re-ask a contact detail the API refuses."""
    while True:
        body = {"lead_id": lead_id, "channel": "chatbot"}
        if profile:
            body["profile"] = profile
        if args.event != "none" and not resumed:
            body["events"] = [
                {
                    "type": args.event,
                    "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "id": f"chat-{secrets.token_hex(8)}",
                }
            ]
        if args.ruleset:
            body["ruleset"] = {"name": args.ruleset}
        try:
            return api.decide(body)
        except ApiError as exc:
            report_error(chat, exc)
            refused = {f.split(".", 1)[1] for f in exc.errors if f.startswith("profile.")}
            if exc.status != 422 or not refused or not refused <= asked:
                raise
            for name, text, kind in CONTACT_QUESTIONS:
                if name in refused:
                    profile[name] = ask(chat, text, lambda typed, kind=kind: check_contact(kind, typed))


def converse(chat: Chat, api: Api, args) -> int:
    """The whole chat; returns the exit status (0: handed off, parked, or the visitor left)."""
    chat.say("Hi! I'm the leadgate demo assistant. A few quick questions and I'll find the right next step.")
    lead_id = args.lead_id or f"chat-{secrets.token_hex(6)}"
    profile = dict(args.profile or {})
    resumed = False
    try:  # also checks the key and the address before the visitor types anything
        known = api.questions(lead_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
    else:
        resumed = True
        chat.say(f"Welcome back! Picking up lead {lead_id} (stage {known['stage']}).")
    asked: set[str] = set()
    decision = None
    try:
        if not resumed:
            for name, text, kind in CONTACT_QUESTIONS:
                if not profile.get(name):
                    profile[name] = ask(chat, text, lambda typed, kind=kind: check_contact(kind, typed))
                    asked.add(name)
        decision = first_decision(chat, api, args, lead_id, profile, asked, resumed)
        chat.note(status_line(decision))
        answered: set[str] = set()
        while True:
            questions = [q for q in decision["next_questions"] if q["id"] not in answered]
            if decision["route"]["destination"] == "sales" or not questions:
                finish(chat, decision)
                return 0
            question = questions[0]
            answer = ask(
                chat,
                f"{question['text']} ({_choices(question)})",
                lambda typed, q=question: check_answer(q, typed),
            )
            body = {"lead_id": lead_id, "answers": {question["id"]: answer}, "channel": "chatbot"}
            if args.ruleset:
                body["ruleset"] = {"name": args.ruleset}
            try:
                decision = api.decide(body)
            except ApiError as exc:
                report_error(chat, exc)
                if exc.status == 422 and f"answers.{question['id']}" in exc.errors:
                    continue  # the same question again
                raise
            answered.add(question["id"])
            chat.note(status_line(decision))
    except EOFError:
        if decision is None:
            chat.say("Bye for now! Nothing was sent.")
        else:
            chat.say(f"Bye for now! To pick up where we left off: --lead-id {lead_id}")
        return 0


def _profile(text: str) -> dict:
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of profile fields")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Qualify a lead through the leadgate API, one question at a time.",
        epilog="Create a key with: leadgate keys create --name chatbot --scope decide",
    )
    parser.add_argument("--url", default=os.environ.get("LEADGATE_URL", "http://127.0.0.1:8000"))
    parser.add_argument(
        "--key", default=os.environ.get("LEADGATE_KEY"), help="API key (default: $LEADGATE_KEY)"
    )
    parser.add_argument("--lead-id", help="continue this lead, or start it under this id")
    parser.add_argument(
        "--profile",
        type=_profile,
        help='what is already known, as JSON or @file, e.g. \'{"industry": "software", "employees": 200}\'',
    )
    parser.add_argument(
        "--event",
        default="pricing_page_view",
        choices=(*EVENT_TYPES, "none"),
        help="the visit that opened the chat, sent with the first decision (default: pricing_page_view)",
    )
    parser.add_argument("--ruleset", help="ruleset name (default: the server's)")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("an API key is needed: --key KEY or LEADGATE_KEY (leadgate keys create --scope decide)")
    return args


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stdin):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = parse_args(argv)
    chat = Chat()
    try:
        return converse(chat, Api(args.url, args.key), args)
    except ApiError as exc:
        if not getattr(exc, "reported", False):
            report_error(chat, exc)
        if exc.status in (401, 403):
            chat.say("Please check the API key: leadgate keys create --name chatbot --scope decide")
        elif exc.status >= 500:
            chat.say("The service has a problem; please try again later.")
        else:
            chat.say("I can't continue with this; please check what the API said above.")
        return 1
    except Unreachable as exc:
        chat.say(f"Sorry, {exc}.")
        return 1
    except KeyboardInterrupt:
        chat.stdout.write("\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())

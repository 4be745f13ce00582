"""The examples keep working: the terminal chatbot against a real server, the demo form against the API.

The chatbot runs as a subprocess, driven through its standard input by a test that reads each prompt
and answers the question it names; the form is checked through Flask's test client: its fields, the
values it offers and the bodies its script builds are posted to the API, which must accept them.
(A browser test of the form's script will come with Selenium.)
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from api.state import trail
from audit import AuditTrail
from audit.keys import create
from engine.vocabulary import PROFILE_FIELDS, SENIORITIES
from engine.yamlsource import load as load_yaml
from tests.server import ROOT, Server

CHATBOT = ROOT / "examples" / "chatbot.py"
FORM = ROOT / "examples" / "form.html"
RULESETS = ROOT / "rulesets"

GOOD_FIT = {"industry": "software", "employees": 200, "department": "marketing"}


# -- the chatbot, against `leadgate serve` -----------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("examples") / "examples.db"
    with Server(db, workers=1) as running:
        with AuditTrail(db) as audit:
            running.decide_key = create(audit, "chatbot", "decide")[1]  # what the chatbot is given
        yield running


@pytest.fixture(scope="module")
def questions(server):
    """The active default ruleset's questions, as the server has them: {text: id}."""
    status, detail, _ = server.request("GET", "/v1/rulesets/default")
    assert status == 200, detail
    active = next(v for v in detail["versions"] if v["active"])
    return {q["text"]: q["id"] for q in active["questions"]}


CONTACT = {"work email": "email", "which company": "company", "which country": "country"}


def run_chatbot(server, questions: dict, *args, plan: dict, stop_after: int | None = None, key=None):
    """Run examples/chatbot.py, answering each prompt from `plan` ({question id or contact field: answer,
    or a list of answers tried in turn}); after `stop_after` answered questions, end the input.

    Returns (exit status, transcript, ids of the questions answered)."""
    plan = {k: list(v) if isinstance(v, list) else [v] for k, v in plan.items()}
    command = [sys.executable, "-I", str(CHATBOT), "--url", f"http://127.0.0.1:{server.port}"]
    command += ["--key", key or server.decide_key, *args]
    answered: list[str] = []
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        watchdog = threading.Timer(30, proc.kill)
        watchdog.start()
        try:
            transcript, current = "", None
            while char := proc.stdout.read(1):
                transcript += char
                if not transcript.endswith("you> "):
                    continue
                for line in transcript.splitlines()[-4:]:  # which question is this prompt for?
                    said = line.removeprefix("bot> ")
                    current = next((qid for text, qid in questions.items() if said.startswith(text)), current)
                    current = next((f for words, f in CONTACT.items() if words in said.lower()), current)
                assert current in plan, f"no answer planned for {current!r}:\n{transcript}"
                is_question = current in questions.values()
                leaving = stop_after is not None and len(answered) >= stop_after
                if is_question and current not in answered and leaving:
                    proc.stdin.close()
                    continue
                answer = plan[current].pop(0) if len(plan[current]) > 1 else plan[current][0]
                if is_question and current not in answered:
                    answered.append(current)
                proc.stdin.write(answer + "\n")
                proc.stdin.flush()
        finally:
            watchdog.cancel()
        errors = proc.stderr.read()
        status = proc.wait()
    assert not errors, errors
    return status, transcript, answered


def test_a_good_fit_lead_is_handed_off_and_every_answer_is_in_the_audit(server, questions):
    plan = {
        "email": "ana@acme.io",
        "company": "Acme",
        "country": "us",
        "need": "yes",
        "timeline": ["soon", "now"],  # refused by the chatbot itself, then a valid answer
        "budget": ["plenty", "yes"],
        "authority": "decision maker",
        "talk_to_sales": "yes",
    }
    # First visit: two questions, then the visitor leaves (end of input).
    status, first, answered_first = run_chatbot(
        server,
        questions,
        "--lead-id",
        "chat-good",
        "--profile",
        json.dumps(GOOD_FIT),
        plan=plan,
        stop_after=2,
    )
    assert status == 0, first
    assert "Bye for now! To pick up where we left off: --lead-id chat-good" in first
    assert "Handed off" not in first and len(answered_first) == 2
    if "timeline" in answered_first:
        assert "bot> Please answer now, this_quarter, this_year, later or none." in first

    # Second visit: picks the lead up, asks only what is still open, and hands off.
    status, second, answered_second = run_chatbot(server, questions, "--lead-id", "chat-good", plan=plan)
    assert status == 0, second
    assert "Welcome back! Picking up lead chat-good" in second and "work email" not in second
    assert not set(answered_first) & set(answered_second)

    _, lead, _ = server.request("GET", "/v1/leads/chat-good")
    route = lead["latest_decision"]["route"]
    assert route["destination"] == "sales"
    assert f"bot> Handed off to sales (team {route['team']}). {route['next_step']['text']}" in second
    due = datetime.fromisoformat(route["due_at"].replace("Z", "+00:00")).astimezone(UTC)
    assert f"by {due:%Y-%m-%d %H:%M} UTC (within {route['sla_minutes']} minutes)" in second
    assert second.rstrip().endswith("bot> Your reference: chat-good. Goodbye!")

    answered = answered_first + answered_second
    assert set(lead["facts"]["answers"]) == set(answered)
    assert lead["facts"]["answers"]["authority"] == "decision_maker"
    assert lead["facts"]["profile"]["industry"] == "software" and lead["facts"]["profile"]["country"] == "US"

    status, timeline, _ = server.request("GET", "/v1/leads/chat-good/decisions")
    assert status == 200
    items = timeline["items"]  # newest first: one decision per visit start, one per valid answer
    assert len(items) == 2 + len(answered)
    assert {item["channel"] for item in items} == {"chatbot"}
    assert items[0]["destination"] == "sales" and items[-1]["destination"] != "sales"
    _, opening, _ = server.request("GET", f"/v1/decisions/{items[-1]['decision_id']}")
    assert opening["input"]["events"][0]["type"] == "pricing_page_view"
    assert opening["client"] is not None


def test_a_lead_with_poor_answers_is_parked_in_nurture(server, questions):
    plan = {
        "email": "li@smallco.es",
        "company": "SmallCo",
        "country": "ES",
        "need": "no",
        "timeline": "later",
        "budget": "500",  # an amount
        "authority": "user",
        "talk_to_sales": "no",
    }
    status, transcript, answered = run_chatbot(server, questions, "--lead-id", "chat-poor", plan=plan)
    assert status == 0, transcript
    assert "Handed off" not in transcript

    _, lead, _ = server.request("GET", "/v1/leads/chat-poor")
    route = lead["latest_decision"]["route"]
    assert route["destination"] == "nurture" and lead["latest_decision"]["next_questions"] == []
    assert f"bot> Parked in nurture (track {route['track']}). {route['next_step']['text']}" in transcript
    assert lead["facts"]["answers"] == {qid: (500 if qid == "budget" else plan[qid]) for qid in answered}
    _, timeline, _ = server.request("GET", "/v1/leads/chat-poor/decisions")
    assert len(timeline["items"]) == 1 + len(answered)


def test_end_of_input_before_the_first_decision_sends_nothing(server, questions):
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(CHATBOT),
            "--url",
            f"http://127.0.0.1:{server.port}",
            "--lead-id",
            "chat-eof",
        ],
        input="ana@acme.io\n",
        capture_output=True,
        text=True,
        timeout=30,
        env={"LEADGATE_KEY": server.decide_key, "PATH": "/usr/bin:/bin"},  # the key from the environment
    )
    assert result.returncode == 0, result.stderr
    assert "you> ana@acme.io\nbot> Which company are you with?" in result.stdout
    assert result.stdout.rstrip().endswith("bot> Bye for now! Nothing was sent.")
    assert server.request("GET", "/v1/leads/chat-eof")[0] == 404


def test_api_errors_are_shown_with_their_fields(server):
    def chatbot(*args, key):
        return subprocess.run(
            [
                sys.executable,
                "-I",
                str(CHATBOT),
                "--url",
                f"http://127.0.0.1:{server.port}",
                "--key",
                key,
                *args,
            ],
            input="",
            capture_output=True,
            text=True,
            timeout=30,
        )

    unknown = chatbot(key="lg_000000000000_not-a-key")
    assert unknown.returncode == 1
    assert "This API key is unknown or revoked. (401 unauthorized)" in unknown.stdout
    assert "leadgate keys create --name chatbot --scope decide" in unknown.stdout

    profile = {"email": "ana@acme.io", "company": "Acme", "country": "US", "employees": "lots"}
    refused = chatbot("--lead-id", "chat-422", "--profile", json.dumps(profile), key=server.decide_key)
    assert refused.returncode == 1
    assert "The lead facts are not valid. (422 invalid_facts)" in refused.stdout
    assert "     profile.employees: must be a number, not str" in refused.stdout

    unreachable = chatbot("--url", "http://127.0.0.1:9", key=server.decide_key)
    assert unreachable.returncode == 1 and "cannot reach the API at http://127.0.0.1:9" in unreachable.stdout


def test_the_chatbot_needs_only_the_standard_library():
    tree = ast.parse(CHATBOT.read_text())
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    modules |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert modules - {"__future__"} <= sys.stdlib_module_names, modules - sys.stdlib_module_names


# -- the demo form, through the Flask test client ---------------------------------------------------


class Page(HTMLParser):
    """What the form page holds: the lead form's fields and options, error slots, script, links."""

    def __init__(self, html: str):
        super().__init__()
        self.fields: dict[str, dict] = {}
        self.error_slots: set[str] = set()
        self.external: list[str] = []
        self.script = ""
        self.viewport = False
        self._in_form = self._in_script = False
        self._select = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href", "action"):
            if a.get(name) and not a[name].startswith(("#", "/")):
                self.external.append(a[name])
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = True
        if tag == "form" and a.get("id") == "lead-form":
            self._in_form = True
        if tag == "script":
            self._in_script = True
        if "data-error-for" in a:
            self.error_slots.add(a["data-error-for"])
        if self._in_form and tag in ("input", "select") and a.get("name"):
            self.fields[a["name"]] = {"tag": tag, "type": a.get("type"), "options": []}
            self._select = a["name"] if tag == "select" else None
        if tag == "option" and self._select:
            self.fields[self._select]["options"].append(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        if tag == "script":
            self._in_script = False
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._in_script:
            self.script += data


@pytest.fixture
def app(make_app, tmp_path):
    return make_app(db=str(tmp_path / "form.db"), rulesets=str(RULESETS), examples=str(ROOT / "examples"))


@pytest.fixture
def client(app):
    """Posts as the page does: a publishable form key for the page's origin (the test client's)."""
    with app.app_context():
        key = create(trail(), "form", "form", ["http://localhost"])[1]
        client_secret = create(trail(), "crm", "decide")[1]
    client = app.test_client()
    client.post_json = lambda url, body, key=key: client.post(
        url, json=body, headers={"Authorization": f"Bearer {key}", "Origin": "http://localhost"}
    )
    client.key, client.secret = key, client_secret
    return client


@pytest.fixture
def page(client):
    response = client.get("/demo/form")
    html = response.get_data(as_text=True)
    response.close()  # send_file streams the file: close it
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert html == FORM.read_text()
    return Page(html)


PROFILE = ["email", "first_name", "last_name", "company", "country", "industry", "employees", "seniority"]
PROFILE += ["job_title", "department"]


def test_the_page_is_self_contained_and_mobile_ready(page):
    assert page.external == [], "the demo page loads nothing from elsewhere"
    assert page.viewport
    assert "@media" in FORM.read_text() and "max-width" in FORM.read_text()


def test_the_form_fields_are_profile_fields_with_values_the_ruleset_knows(page):
    assert sorted(page.fields) == sorted(PROFILE)
    assert set(page.fields) <= set(PROFILE_FIELDS)
    assert page.fields["employees"]["type"] == "number" and page.fields["email"]["type"] == "email"
    assert set(page.fields["seniority"]["options"]) - {""} == set(SENIORITIES)
    source = RULESETS / "default.yaml"
    lists = load_yaml(source.read_text(), str(source)).data.get("lists", {})  # YAML 1.2: NO is Norway
    for field, listed in (
        ("country", "served_countries"),
        ("industry", "target_industries"),
        ("department", "buying_departments"),
    ):
        assert set(lists.get(listed, [])) <= set(page.fields[field]["options"]), field
    # every field has a place for the API's per-field error, named as the API names it
    assert {f"profile.{name}" for name in PROFILE} <= page.error_slots


def form_body(page, lead_id: str, **chosen) -> dict:
    """The body the page's script builds from the form: filled fields only, numbers as numbers."""
    sample = {"email": "ana@acme.io", "first_name": "Ana", "last_name": "Silva", "company": "Acme"}
    sample |= {"job_title": "VP Marketing", "employees": 200}
    profile = {}
    for name, field in page.fields.items():
        options = [o for o in field["options"] if o]
        profile[name] = chosen.get(name, options[0] if options else sample[name])
    return {
        "channel": "demo_form",
        "profile": profile,
        "events": [
            {
                "type": "demo_request",
                "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "id": "form-0123456789abcdef",
            }
        ],
    }


def test_the_script_posts_decisions_with_a_key_from_session_storage(page):
    script = page.script
    assert 'var DECISIONS = "/v1/decisions"' in script
    assert '"Authorization": "Bearer " + key' in script and '"Content-Type": "application/json"' in script
    assert "sessionStorage" in script and "localStorage" not in script
    for word in ("lead_id", "channel", "profile", "events", "answers", '"demo_request"', "toISOString"):
        assert word in script, word
    for word in ("next_step", "next_questions", "book_meeting", "ask_questions", "thank_you"):
        assert word in script, word
    assert '"answers." + q.id' in script and "data-error-for" in script  # where 422 field errors go
    assert "leadgate keys create --name form --scope form --origin http://127.0.0.1:8000" in FORM.read_text()
    assert "lead_token" in script and "lead_id:" not in script  # leadgate picks the id; the token continues


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_script_is_valid_javascript(page, tmp_path):
    source = tmp_path / "form.js"
    source.write_text(page.script)
    result = subprocess.run(["node", "--check", str(source)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_a_body_built_from_the_form_is_accepted(client, page):
    body = form_body(
        page, "web-good", country="US", industry="software", seniority="vp", department="marketing"
    )
    response = client.post_json("/v1/decisions", body)
    assert response.status_code == 201, response.json
    assert response.json["route"]["next_step"]["action"] == "book_meeting"
    assert response.json["route"]["due_at"]

    # every option each select offers is a value the API takes
    for name, field in page.fields.items():
        for option in [o for o in field["options"] if o]:
            body = {**form_body(page, "web-options", **{name: option}), "lead_id": "web-options"}
            preview = client.post_json("/v1/preview", body, key=client.secret)
            assert preview.status_code == 200, (name, option, preview.json)


def test_the_follow_up_answers_loop_until_there_is_nothing_to_ask(client, page):
    body = form_body(page, "web-poor", country="ES", industry="other", seniority="individual")
    body["profile"]["employees"] = 3
    decision = client.post_json("/v1/decisions", body).json
    assert decision["route"]["next_step"]["action"] == "ask_questions" and decision["next_questions"]
    rounds = 0
    while decision["route"]["next_step"]["action"] == "ask_questions" and decision["next_questions"]:
        # as the questions form does: the select's answer, or an amount where one is allowed
        answers = {
            q["id"]: 25000 if q.get("amount") else q["answers"][0] if q.get("answers") else "we need reports"
            for q in decision["next_questions"]
        }
        response = client.post_json(
            "/v1/decisions",
            {"lead_token": decision["lead_token"], "channel": "demo_form", "answers": answers},
        )
        assert response.status_code == 201, response.json
        decision, rounds = response.json, rounds + 1
        assert rounds < 10
    assert rounds >= 1


def test_errors_come_back_where_the_page_shows_them(client, page):
    bad = form_body(page, "web-bad")
    bad["profile"]["employees"] = "lots"
    response = client.post_json("/v1/decisions", bad)
    assert response.status_code == 422
    assert set(response.json["errors"]) <= page.error_slots  # shown next to the field

    token = client.post_json("/v1/decisions", form_body(page, "web-bad")).json["lead_token"]
    response = client.post_json(
        "/v1/decisions", {"lead_token": token, "channel": "demo_form", "answers": {"timeline": "maybe"}}
    )
    assert response.status_code == 422 and list(response.json["errors"]) == ["answers.timeline"]

    response = client.post_json("/v1/decisions", form_body(page, "web-bad"), key="lg_000000000000_wrong")
    assert response.status_code == 401 and response.json["message"]  # shown under the key field

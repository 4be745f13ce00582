"""Record tests/data/v12_archived.db with leadgate as of commit 9fc7e8c (before m013): leads handed
off, assigned and moved through stages over three days, the first two days archived.

    git worktree add /tmp/old 9fc7e8c && cd /tmp/old && PYTHONPATH=. python /path/to/this OUT_DIR
"""

import sys
from pathlib import Path

from audit import AuditTrail, archive
from audit.secrets import Secrets
from engine import Registry
from engine.files import load_directory
from engine.teams import load_teams
from service.decide import decide
from service.outcomes import report_outcome

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
db = out / "v12_archived.db"
registry = Registry()
assert not load_directory(registry, Path("rulesets"))
default = registry.get("default")
teams = load_teams((Path(__file__).parent / "v12_archived.teams.yaml").read_text())


def cold(i):
    return {"lead_id": f"A-{i}", "profile": {"email": f"p{i}@company{i % 3}.com", "country": "US"}}


def hot(i, day):
    return {
        "lead_id": f"A-{i}",
        "profile": {
            "email": f"p{i}@company{i % 3}.com",
            "country": "US",
            "industry": "software",
            "employees": 200,
            "seniority": "vp",
        },
        "events": [{"type": "demo_request", "at": f"2026-10-0{day}T09:00:00Z", "id": f"d{i}-{day}"}],
    }


with AuditTrail(db, durability="normal", secrets=Secrets(out / "v12_archived.db.key")) as trail:
    for i in range(6):
        decide(default, trail, cold(i), at="2026-10-01T10:00:00Z", teams=teams)
        decide(default, trail, hot(i, 1), at="2026-10-01T12:00:00Z", teams=teams)
        decide(
            default, trail, cold(i) | {"answers": {"budget": "no"}}, at="2026-10-01T14:00:00Z", teams=teams
        )
    for i in range(6):
        if i % 2:
            report_outcome(default, trail, f"A-{i}", {"type": "contacted"}, at="2026-10-02T10:00:00Z")
        decide(default, trail, hot(i, 2), at="2026-10-02T12:00:00Z", teams=teams)
        decide(default, trail, cold(i), at="2026-10-02T13:00:00Z", teams=teams)
    for i in range(6):  # an opportunity: the account team takes the lead (no SLA, so no hand-off)
        report_outcome(default, trail, f"A-{i}", {"type": "opportunity"}, at="2026-10-02T14:00:00Z")
        decide(default, trail, cold(i), at="2026-10-02T15:00:00Z", teams=teams)
        decide(default, trail, cold(i), at="2026-10-02T16:00:00Z", teams=teams)
    for i in range(6):
        decide(default, trail, hot(i, 3), at="2026-10-03T12:00:00Z", teams=teams)
    before = trail._read("SELECT max(recorded_at) AS t FROM decisions WHERE evaluated_at < '2026-10-03'")[0][
        "t"
    ]
with AuditTrail(db, secrets=Secrets(out / "v12_archived.db.key")) as trail:
    print(archive.archive(trail, before + "0", out / "v12_archived.jsonl.zst"))

"""The deliverer as a process: SIGKILL mid-flight, one per database, the example receiver, and the
whole path through the real server; no secret in its logs or the audit file."""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from audit import AuditTrail, deliveries
from service import deploy
from service.config import load_config
from service.deliver import Deliverer
from tests.postgres import stored_bytes
from tests.receiver import (
    ENV,
    KEY,
    SECRET,
    Receiver,
    drain,
    event_ids,
    hand_off,
    webhook_world,
    write_rulesets,
)
from tests.server import LEADGATE, ROOT
from tests.test_api import LEAD

world_fixture = pytest.fixture(name="world")(webhook_world)

world_fixture = pytest.fixture(name="world")(webhook_world)

# -- the deliverer as a process ------------------------------------------------------------------


def _deliverer_process(db: str, log: Path, **env) -> subprocess.Popen:
    environ = {
        **os.environ,
        **ENV,
        "LEADGATE_DB": str(db),
        "LEADGATE_DELIVERY_BACKOFF_MS": "50",
        "LEADGATE_DELIVERY_POLL_MS": "20",
        **env,
    }
    with open(log, "ab") as out:
        return subprocess.Popen([str(LEADGATE), "deliver"], env=environ, stdout=out, stderr=out)


@pytest.mark.slow
def test_sigkill_mid_flight_loses_nothing_and_redelivers_under_the_same_id(world, registry, tmp_path):
    trail, _, receiver = world
    receiver.delay = 2.0  # the deliverer is killed while it waits for the answer
    receiver.start()
    for i in range(3):
        hand_off(registry, trail, f"L-kill-{i}")
    expected = event_ids(trail)
    log = tmp_path / "deliver.log"
    proc = _deliverer_process(trail.path, log)
    try:
        assert receiver.wait(lambda: len(receiver.seen) >= 1, 20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        in_flight = {s["id"] for s in receiver.seen}
        assert not (in_flight & set(receiver.ids()))  # none of them was answered
        receiver.delay = 0.0
        proc = _deliverer_process(trail.path, log)
        assert receiver.wait(lambda: set(receiver.ids()) >= set(expected), 30), log.read_text()[-2000:]
        redelivered = [s["id"] for s in receiver.seen]
        assert all(redelivered.count(i) >= 2 for i in in_flight)  # the same ids, sent again
        assert all(s["verified"] for s in receiver.seen)
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "delivered evt_" in text  # the log says what happened, and nothing secret
    blob = stored_bytes(trail)  # the audit store (its key file is apart from it, by design)
    for form in (SECRET, base64.b64encode(KEY).decode(), KEY.hex()):
        assert form not in text and form.encode() not in blob
    assert KEY not in blob


def test_only_one_deliverer_runs_per_database(world, tmp_path):
    trail, _, _ = world
    log = tmp_path / "one.log"
    first = _deliverer_process(trail.path, log)
    try:
        deadline = time.monotonic() + 20
        while "destinations:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(
            [str(LEADGATE), "deliver"],
            env={**os.environ, "LEADGATE_DB": str(trail.path)},
            capture_output=True,
            timeout=60,
        )
        assert second.returncode == 1 and b"another leadgate deliver is running" in second.stderr
    finally:
        first.terminate()
        assert first.wait(10) == 0


def test_the_example_receiver_verifies_signatures_and_drops_duplicates(tmp_path, registry):
    import http.client
    import sys

    from tests.server import free_port

    port = free_port()
    example = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "receiver.py"), "--port", str(port), "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    trail = AuditTrail(tmp_path / "e.db", durability="normal")
    d = Deliverer(load_config(environ={}, db=str(trail.path)), trail, environ=ENV)
    try:
        assert example.stdout.readline().startswith("listening")
        deploy.reload(registry, trail, write_rulesets(tmp_path, f"http://127.0.0.1:{port}/hooks"), "tests")
        hand_off(registry, trail, "L-example")
        assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"delivered"})
        handed_off = event_ids(trail, "L-example")[0]
        deliveries.replay(trail, handed_off)
        assert drain(d, lambda: {r["status"] for r in deliveries.listing(trail)} == {"delivered"})
        assert len(d.connections._all) == 1  # the three requests went over one kept-alive connection
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/hooks", b'{"type": "lead.handed_off"}', {"webhook-id": "evt_forged"})
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        d.close()
        example.terminate()
        output = example.communicate(timeout=10)[0]
        trail.close()
    lines = output.splitlines()
    first = json.loads(lines[0])
    assert first["id"] == handed_off and first["owner"] and first["route"] == "sales_handoff"
    assert f"duplicate {handed_off} (already handled)" in lines
    assert "refused: the signature does not verify" in lines


@pytest.mark.slow
def test_through_the_real_server_every_hand_off_is_told_and_no_refused_request_is(tmp_path):
    from tests.server import Server

    receiver = Receiver(KEY).start()
    directory = write_rulesets(tmp_path, receiver.url)
    db = tmp_path / "server.db"
    server = Server(db, workers=2, rulesets=directory)
    log = tmp_path / "deliver.log"
    with server:
        proc = _deliverer_process(db, log)
        try:
            accepted = []
            for i in range(12):
                lead = {**copy.deepcopy(LEAD), "lead_id": f"L-http-{i}"}
                status, reply, _ = server.request("POST", "/v1/decisions", lead)
                assert status == 201
                accepted.append(reply)
                bad = {**lead, "lead_id": f"L-refused-{i}", "profile": {"employees": "many"}}
                assert 400 <= server.request("POST", "/v1/decisions", bad)[0] < 500
                preview = {**lead, "lead_id": f"L-preview-{i}"}
                assert server.request("POST", "/v1/preview", preview)[0] == 200
            trail = AuditTrail(db)
            try:
                expected = event_ids(trail)
            finally:
                trail.close()
            assert receiver.wait(lambda: set(receiver.ids()) >= set(expected), 30), log.read_text()[-2000:]
        finally:
            proc.terminate()
            proc.wait(10)
            receiver.stop()
    told = [s["event"] for s in receiver.accepted]
    handed_off = [e for e in told if e["type"] == "lead.handed_off"]
    assert sorted(e["data"]["decision_id"] for e in handed_off) == sorted(r["decision_id"] for r in accepted)
    assert not [e for e in told if not e["lead_id"].startswith("L-http-")]  # nothing for refusals, previews
    assert set(receiver.ids()) == set(expected) and all(s["verified"] for s in receiver.seen)

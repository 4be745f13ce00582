"""The application factory and its probes."""

from __future__ import annotations

from api import create_app
from tests.conftest import RULESETS


def test_healthz_and_readyz_list_the_loaded_rulesets(tmp_path):
    app = create_app(rulesets=str(RULESETS), db=str(tmp_path / "a.db"))
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["rulesets"]["default"] == 1


def test_readyz_is_unavailable_without_rulesets(tmp_path):
    app = create_app(rulesets=str(tmp_path), db=str(tmp_path / "a.db"))
    assert app.test_client().get("/readyz").status_code == 503

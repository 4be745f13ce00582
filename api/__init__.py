"""leadgate's HTTP API: a Flask application factory over the engine (and, soon, the audit trail)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from engine import Registry

from .config import Config, load_config


def create_app(config: Config | None = None, **overrides) -> Flask:
    config = config or load_config(**overrides)
    app = Flask(__name__)
    app.config.update(config.to_flask())
    app.extensions["leadgate.config"] = config
    registry = Registry()
    problems = registry.load_directory(Path(config.RULESETS))
    app.extensions["leadgate.registry"] = registry
    app.extensions["leadgate.ruleset_problems"] = problems

    from .health import bp as health_bp

    app.register_blueprint(health_bp)
    return app

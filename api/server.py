"""Running the app under gunicorn, configured from the same Config as everything else."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from . import create_app
from .config import Config


class _Server(BaseApplication):
    def __init__(self, config: Config):
        self._config = config
        super().__init__()

    def load_config(self):
        c = self._config
        self.cfg.set("bind", f"{c.HOST}:{c.PORT}")
        self.cfg.set("workers", c.WORKERS)
        self.cfg.set("accesslog", "-")
        # Compile rulesets once in the master; workers inherit them on fork.
        self.cfg.set("preload_app", True)

    def load(self):
        return create_app(self._config)


def run(config: Config) -> None:
    _Server(config).run()

"""Running the app under gunicorn, configured from the same Config as everything else."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from api import create_app, state
from service.config import Config
from service.decide import open_trail

THREADS = 4


class _Server(BaseApplication):
    def __init__(self, config: Config):
        self._config = config
        super().__init__()

    def load_config(self):
        c = self._config
        self.cfg.set("bind", f"{c.HOST}:{c.PORT}")
        self.cfg.set("workers", c.WORKERS)
        # Threads in each worker: a client that is slow to send its request holds one thread, not a
        # whole worker (with sync workers, two such clients stalled the service until the timeout).
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", THREADS)
        self.cfg.set("accesslog", "-")
        # Compile rulesets once in the master; workers inherit them on fork.
        self.cfg.set("preload_app", True)
        self.cfg.set("on_reload", _reload_rulesets)
        self.cfg.set("worker_exit", _close_trail)

    def load(self):
        return create_app(self._config)


def _close_trail(arbiter, worker) -> None:
    """A worker that exits closes its own audit connection (one that failed to boot has none)."""
    app = getattr(worker, "wsgi", None)
    if hasattr(app, "extensions"):
        state.close(app)


def _reload_rulesets(arbiter) -> None:
    """SIGHUP: the master reloads the ruleset files before gunicorn replaces its workers.

    The new workers fork with the new rulesets; any worker still on the old ones catches up on its
    next request from the recorded reload. A refused file keeps its last good version.
    """
    app = arbiter.app.wsgi()
    opened = open_trail(app.extensions["leadgate.config"])
    try:
        record, problems, kept = state.reload_app(app, opened, "sighup")
    finally:
        opened.close()
    for problem in problems:
        arbiter.log.error("ruleset refused: %s", problem)
    arbiter.log.info(
        "rulesets reloaded (%s): %s%s",
        record["reload_id"],
        ", ".join(f"{n} {d[:19]}" for n, d in record["deployment"]["active"].items()),
        f"; kept the last good {kept}" if kept else "",
    )


def run(config: Config) -> None:
    _Server(config).run()

"""Running the app under gunicorn, configured from the same Config as everything else."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import click
from gunicorn.app.base import BaseApplication

from api import create_app, limits, state
from api.front import BufferedFront
from service.config import Config
from service.decide import open_trail
from service.metrics import MULTIPROC_ENV

THREADS = 4
LISTEN = ("auto", "own", "shared")
# Linux: 1 when a listening socket that closes hands the connections waiting on it to another socket
# of its SO_REUSEPORT group instead of resetting them (5.14 and later; absent before).
MIGRATE = Path("/proc/sys/net/ipv4/tcp_migrate_req")


class _Server(BaseApplication):
    def __init__(self, config: Config):
        self._config = config
        super().__init__()

    def load_config(self):
        c = self._config
        self.cfg.set("bind", f"{c.HOST}:{c.PORT}")
        self.cfg.set("workers", c.WORKERS)
        # An asyncio worker owns the sockets: a client still sending holds no thread. api/front.py reads
        # each request whole, under LEADGATE_REQUEST_DEADLINE, before Flask runs it on one of THREADS.
        self.cfg.set("worker_class", "cli.worker.Worker")  # gunicorn's asgi worker + a headers deadline
        # gunicorn-h1c (installed with leadgate) is gunicorn's C parser of HTTP/1.1, which the asgi worker
        # picks by itself; in Python, parsing took about a seventh of a decision's event-loop time.
        self.cfg.set("asgi_lifespan", "off")
        # Own sockets (SO_REUSEPORT): the kernel spreads new connections over the workers by address;
        # on one shared socket, the worker awake when a burst of keep-alive connections arrived took
        # all or most of them and one core served them (issue 15). See own_sockets for when.
        self.cfg.set("reuse_port", own_sockets(c.LISTEN))
        self.cfg.set("accesslog", None)  # the app writes one JSON line per request (api/logs.py)
        # URL and header limits are the front's, answered in the JSON error shape; gunicorn keeps only
        # its outer bounds (1 MB request line, 64 KiB header line), answered in plain text.
        self.cfg.set("limit_request_line", 0)
        self.cfg.set("limit_request_field_size", 65536)
        # No control socket: its default path is one per user, shared by every instance (a second
        # server would take over the first's). Signals (HUP, TERM) are how leadgate is operated.
        self.cfg.set("control_socket_disable", True)
        # Compile rulesets once in the master; workers inherit them on fork.
        self.cfg.set("preload_app", True)
        self.cfg.set("on_reload", _reload_rulesets)
        self.cfg.set("worker_exit", _close_trail)
        self.cfg.set("child_exit", _child_exit)

    def load(self):
        c = self._config
        app = create_app(c)
        limits.prepare(c)  # in the master (preload): workers never race to make the counters file
        return BufferedFront(app, c.REQUEST_DEADLINE, c.MAX_BODY, THREADS)


def _close_trail(arbiter, worker) -> None:
    """A worker that exits closes its own connections (one that failed to boot has none)."""
    app = getattr(getattr(worker, "asgi", None), "flask", None)  # the Flask app behind the buffering front
    if hasattr(app, "extensions"):
        state.close(app)


def _child_exit(arbiter, worker) -> None:
    """A worker's live gauges leave with it; its counts stay in the metrics directory (multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _reload_rulesets(arbiter) -> None:
    """SIGHUP: the master reloads the ruleset files before gunicorn replaces its workers.

    The new workers fork with the new rulesets; any worker still on the old ones catches up on its
    next request from the recorded reload. A refused file keeps its last good version.
    """
    app = arbiter.app.wsgi().flask
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


def _metrics_directory() -> str:
    """A fresh directory for this run's metrics, named by its master's pid; those of servers that died
    without cleaning up (SIGKILL) are removed first."""
    for old in Path(tempfile.gettempdir()).glob("leadgate-metrics-*"):
        pid = old.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"leadgate-metrics-{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse_a_taken_port(config: Config) -> None:
    """With sockets of their own, each worker binds the port with SO_REUSEPORT, which another server of
    the same user has too: a second `leadgate serve` on a port in use would share its connections
    silently. Refuse it, as a plain bind does (SO_REUSEADDR lets a port left in TIME_WAIT by a server just stopped be used)."""
    for family, kind, proto, _, address in socket.getaddrinfo(
        config.HOST, config.PORT, type=socket.SOCK_STREAM
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise click.ClickException(
                    f"{config.HOST}:{config.PORT} cannot be used: {exc.strerror}"
                ) from None


def own_sockets(listen: str, migrate: Path = MIGRATE) -> bool:
    """Whether each worker listens on a socket of its own (SO_REUSEPORT) rather than on one shared.

    A worker that exits (replaced on reload, or after a crash) closes its own socket, and the kernel
    resets the connections still waiting on it unless net.ipv4.tcp_migrate_req moves them to another
    worker's: measured, 2 of ~18,500 fresh connections reset during six reloads. On a shared socket
    the connections wait for whichever worker accepts next, so `auto` shares it unless they move."""
    if listen == "auto":
        try:
            return migrate.read_text().strip() == "1"
        except OSError:
            return False
    return listen == "own"


def _listening(config: Config) -> str:
    if own_sockets(config.LISTEN):
        return "workers listen on sockets of their own (SO_REUSEPORT): the kernel spreads new connections"
    if config.LISTEN == "shared":
        return "workers share one listening socket (LEADGATE_LISTEN=shared)"
    return (
        "workers share one listening socket: net.ipv4.tcp_migrate_req is not 1 here, so a worker "
        "replaced on reload would reset the connections waiting on a socket of its own "
        "(sysctl -w net.ipv4.tcp_migrate_req=1 lets LEADGATE_LISTEN=auto spread them over the workers)"
    )


def run(config: Config) -> None:
    """Serve until stopped; the workers count metrics into a directory made for this run and removed
    after it (counts from an earlier run must not add up with this one's)."""
    if config.LISTEN not in LISTEN:
        raise click.ClickException(
            f"LEADGATE_LISTEN must be one of {', '.join(LISTEN)}, not {config.LISTEN!r}"
        )
    _refuse_a_taken_port(config)
    click.echo(f"leadgate: {_listening(config)}", err=True)
    directory, master = _metrics_directory(), os.getpid()
    os.environ[MULTIPROC_ENV] = directory  # before prometheus-client is first imported (service/metrics.py)
    try:
        _Server(config).run()
    finally:
        if os.getpid() == master:  # a worker leaves through here too (gunicorn exits it with SystemExit)
            shutil.rmtree(directory, ignore_errors=True)

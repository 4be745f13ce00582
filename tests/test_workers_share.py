"""The workers share the connections: each has its own listening socket and the kernel spreads them.

With one listening socket shared by every worker, whichever worker is awake when a burst of
keep-alive connections arrives accepts all of them, and one core then serves every request of those
connections while the other idles (issue 15). Each worker now listens on its own socket on the same
port (SO_REUSEPORT, gunicorn's `reuse_port`), and the kernel hands each new connection to one of
them by its addresses, whether or not that worker is running at that moment.

The test reads which process holds the server's end of each connection from /proc (Linux only).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.server import LEADGATE, Server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

CONNECTIONS = 16


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # the field after the state is the parent's pid
            found.append(int(stat.parent.name))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _server_ends(port: int) -> dict[int, str]:
    """client port -> inode of the server's end of that connection (IPv4 loopback)."""
    ends = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == port and fields[3] == "01":  # established
            ends[int(remote.split(":")[1], 16)] = inode
    return ends


def _listeners(port: int) -> set[str]:
    """Inodes of the sockets listening on the port."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return {f[9] for f in map(str.split, lines) if int(f[1].split(":")[1], 16) == port and f[3] == "0A"}


def _healthz(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        reply += chunk
    return reply.split(b"\r\n", 1)[0]


def test_a_burst_of_connections_is_shared_even_while_one_worker_is_busy(tmp_path):
    with Server(tmp_path / "share.db", workers=2) as server:
        for _ in range(600):  # ready means one worker answered: wait until both run and listen (bounded)
            workers = _children(server.proc.pid)
            if len(workers) == 2 and all(_listeners(server.port) & _socket_inodes(pid) for pid in workers):
                break
            time.sleep(0.05)
        assert len(workers) == 2, workers
        # Each worker has a listening socket of its own; the master has none.
        assert all(_listeners(server.port) & _socket_inodes(pid) for pid in workers)
        assert not _listeners(server.port) & _socket_inodes(server.proc.pid)
        # The kernel picks a socket by the connection's addresses: all 16 on one worker has odds 2**-15
        # a burst; with one shared socket, every burst goes to the running worker. Up to 3 bursts.
        bursts = [_burst(server.port, workers) for _ in range(3)]
        assert any(set(served) == set(workers) for served in bursts), bursts


def _burst(port: int, workers: list[int]) -> Counter:
    """Which worker serves each of 16 connections opened while the second worker is stopped.

    One worker stopped stands for one busy (or not scheduled) while the burst arrives: with a shared
    listening socket the other accepts every connection in the meantime."""
    os.kill(workers[1], signal.SIGSTOP)
    clients = []
    try:
        for _ in range(CONNECTIONS):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)  # the running worker accepts what it can meanwhile (not a measurement)
    finally:
        os.kill(workers[1], signal.SIGCONT)
    try:
        for sock in clients:
            assert _healthz(sock).startswith(b"HTTP/1.1 200")  # each connection was accepted and served
        ends = _server_ends(port)
        held = {pid: _socket_inodes(pid) for pid in workers}
        served = Counter(
            pid for sock in clients for pid in workers if ends.get(sock.getsockname()[1]) in held[pid]
        )
    finally:
        for sock in clients:
            sock.close()
    assert sum(served.values()) == CONNECTIONS, served
    return served


def test_a_second_server_on_a_port_in_use_is_refused(tmp_path):
    """SO_REUSEPORT would let a second server of the same user share the port (and its connections)."""
    with Server(tmp_path / "first.db", workers=1) as server:
        second = subprocess.run(
            [str(LEADGATE), "serve", "--port", str(server.port), "--workers", "1"],
            env={**server.env, "LEADGATE_DB": str(tmp_path / "second.db")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and "cannot be used: Address already in use" in second.stderr, second
        assert server.request("GET", "/healthz")[0] == 200

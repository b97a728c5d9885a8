"""``distcache cluster up`` (what ``make run`` runs) and ``distcache cluster status``, as a
user runs them: a real launcher process, its streamed output, and signals sent to it alone."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from .conftest import FAST, free_ports, wait_until


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (the launcher uses base, base+1, ...),
    below the kernel's ephemeral range, where outgoing connections take theirs."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no run of free ports found")


class Launcher:
    def __init__(self, tmp_path: Path, nodes: int = 3) -> None:
        self.base = consecutive_free_ports(nodes)
        self.ports = list(range(self.base, self.base + nodes))
        args = [sys.executable, "-m", "distcache_core.cli", "cluster", "up",
                "--nodes", str(nodes), "--base-port", str(self.base),
                "--replication-factor", "2", "--data-dir", str(tmp_path / "data")]
        for flag in FAST:
            args += ["--set", flag]
        env = {**os.environ, "DISTCACHE_DISABLE_PLUGIN_AUTOLOAD": "1",
               "DISTCACHE_CLUSTER_SECRET": ""}
        env.pop("DISTCACHE_CLUSTER_SECRET")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, cwd=tmp_path)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_up(self) -> None:
        wait_until(lambda: "nodes up" in self.text() or self.proc.poll() is not None, 60,
                   "cluster up")
        assert self.proc.poll() is None, self.text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def launcher(tmp_path: Path):
    started: list[Launcher] = []

    def factory(nodes: int = 3) -> Launcher:
        run = Launcher(tmp_path, nodes)
        started.append(run)
        return run

    try:
        yield factory
    finally:
        for run in started:
            run.stop()


def _node_pids(text: str) -> list[int]:
    return [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in text.splitlines()
            if "listening on" in line]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill 0 until its parent reaps it.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cluster_up_streams_logs_and_stops_every_node_on_a_signal(launcher, tmp_path: Path,
                                                                   sig: int) -> None:
    run = launcher()
    run.wait_up()
    text = run.text()
    for i, port in enumerate(run.ports, start=1):
        assert f"[node-{i}] DistCache" in text
        assert f"node-{i}  redis-cli -h 127.0.0.1 -p {port}" in text
        assert (tmp_path / "data" / f"node-{i}").is_dir()
    pids = _node_pids(text)
    assert len(pids) == 3
    client = redis.Redis(port=run.ports[0])
    wait_until(lambda: client.execute_command("CLUSTER", "INFO").find(
        b"cluster_nodes_alive:3") >= 0, 20, "all nodes alive")
    client.set("from-make-run", "yes")
    assert redis.Redis(port=run.ports[2]).get("from-make-run") == b"yes"
    assert client.execute_command("CLUSTER", "KEYOWNER", "x").__len__() == 2

    status = subprocess.run([sys.executable, "-m", "distcache_core.cli", "cluster", "status",
                             "--port", str(run.ports[1])], capture_output=True, text=True,
                            timeout=30)
    assert status.returncode == 0, status.stderr
    assert "cluster ok: 3 nodes, replication factor 2" in status.stdout
    assert "node-2 *" in status.stdout
    for i in (1, 2, 3):
        assert f"node-{i}" in status.stdout
    # A signal to the launcher alone (not its process group) stops every node cleanly.
    run.proc.send_signal(sig)
    assert run.proc.wait(30) == 0
    assert all(_gone(pid) for pid in pids)
    out = run.text()
    for i in (1, 2, 3):
        assert f"node-{i} stopped (exit status 0)" in out
    client.close()


def test_cluster_status_names_a_member_that_does_not_answer(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    result = subprocess.run([sys.executable, "-m", "distcache_core.cli", "cluster", "status",
                             "--port", str(port), "--timeout", "1"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert f"no answer from 127.0.0.1:{port}" in result.stderr
    time.sleep(0)

"""Real clusters for the cluster tests: ``distcache serve`` processes on free loopback ports,
named in each other's ``CLUSTER_NODES``, with short heartbeat and failure timeouts so a test
sees a node go down in about a second. Each node's log goes to a file under the test's
``tmp_path`` (printed when a test fails)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

#: Timeouts for tests: short enough to see failures quickly, long enough for a loaded
#: two-core machine not to call a busy node dead.
FAST = (
    "cluster.heartbeat_interval_ms=100",
    "cluster.failure_timeout_ms=1000",
    "cluster.request_timeout_ms=500",
    "plugins.circuit_breaker.reset_timeout_ms=1000",
    "plugins.circuit_breaker.failure_threshold=3",
)


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until(condition: Callable[[], Any], seconds: float = 15.0, what: str = "condition"
               ) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = condition()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {seconds} s")
        time.sleep(0.05)


class ClusterNode:
    """One ``distcache serve`` process of a test cluster."""

    def __init__(self, cluster: TestCluster, index: int, port: int) -> None:
        self.cluster = cluster
        self.index = index
        self.node_id = f"node-{index}"
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = cluster.workdir / f"{self.node_id}.log"

    def start(self, *, join: Sequence[str] = (), peers: str | None = None,
              extra: Sequence[str] = ()) -> ClusterNode:
        args = [sys.executable, "-m", "distcache_core.cli", "serve", "--node-id", self.node_id,
                "--port", str(self.port), "--data-dir", str(self.cluster.workdir / self.node_id)]
        for flag in (*FAST, f"cluster.replication_factor={self.cluster.replication_factor}",
                     *self.cluster.sets, *extra):
            args += ["--set", flag]
        for address in join:
            args += ["--join", address]
        env = {**os.environ, "DISTCACHE_DISABLE_PLUGIN_AUTOLOAD": "1",
               "CLUSTER_NODES": self.cluster.peers if peers is None else peers,
               **self.cluster.env}
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        log.close()
        wait_until(self._listening, 20, f"{self.node_id} listening")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.node_id} exited: {self.log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def client(self, **kwargs: Any) -> redis.Redis:
        if self.cluster.tls_ca is not None:
            kwargs.setdefault("ssl", True)
            kwargs.setdefault("ssl_ca_certs", str(self.cluster.tls_ca))
        client = redis.Redis(port=self.port, socket_timeout=10, **kwargs)
        self.cluster.clients.append(client)
        return client

    def info(self) -> dict[str, Any]:
        return self.client().info("cluster")

    def cluster_info(self) -> dict[str, str]:
        text = self.client().execute_command("CLUSTER", "INFO").decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def nodes(self) -> dict[str, dict[str, str]]:
        """CLUSTER NODES as id -> fields (``flags``, ``breaker``, ``keys``...)."""
        from distcache_core.cluster.launcher import parse_node_line

        text = self.client().execute_command("CLUSTER", "NODES").decode()
        rows = [parse_node_line(line) for line in text.splitlines() if line.strip()]
        return {row["id"]: row for row in rows}

    def local_keys(self) -> int:
        """Keys this process holds (INFO keyspace is local)."""
        info = self.client().info("keyspace")
        return int(info.get("db0", {}).get("keys", 0))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class TestCluster:
    """N nodes that list each other (plus room for nodes that join later)."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, workdir: Path, size: int, *, replication_factor: int = 1,
                 spare: int = 1, sets: Sequence[str] = (), env: dict[str, str] | None = None,
                 tls_ca: Path | None = None) -> None:
        self.workdir = workdir
        #: The CA clients verify the nodes with, when the nodes serve TLS.
        self.tls_ca = tls_ca
        self.replication_factor = replication_factor
        self.sets = list(sets)
        self.env = dict(env or {})
        self.clients: list[redis.Redis] = []
        ports = free_ports(size + spare)
        self.nodes = [ClusterNode(self, i + 1, port) for i, port in enumerate(ports)]
        self.size = size
        self.peers = ",".join(f"{n.node_id}@{n.address}" for n in self.nodes[:size])

    def start(self) -> TestCluster:
        for node in self.nodes[:self.size]:
            node.start()
        self.wait_converged(self.nodes[:self.size])
        return self

    def wait_converged(self, nodes: Sequence[ClusterNode], seconds: float = 20) -> None:
        """Every node sees every other alive, and no keys are still moving."""
        def converged() -> bool:
            for node in nodes:
                info = node.cluster_info()
                if int(info["cluster_nodes_alive"]) != len(nodes) \
                        or info["cluster_rebalance_state"] != "idle" \
                        or info["cluster_handoff_pending"]:
                    return False
                if any(row["breaker"] not in ("-", "closed") for row in node.nodes().values()):
                    return False
            return True

        wait_until(converged, seconds, f"cluster of {len(nodes)} converged")

    def __getitem__(self, index: int) -> ClusterNode:
        return self.nodes[index]

    @property
    def running(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for node in self.nodes:
            node.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n.node_id}\n{n.log_path.read_text()[-3000:]}"
                         for n in self.nodes if n.log_path.exists())


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make_cluster(3, replication_factor=2)`` starts a cluster; stopped after the test."""
    made: list[TestCluster] = []

    def factory(size: int, **kwargs: Any) -> TestCluster:
        cluster = TestCluster(tmp_path / f"cluster{len(made)}", size, **kwargs)
        cluster.workdir.mkdir()
        made.append(cluster)
        return cluster.start()

    try:
        yield factory
    finally:
        failed = getattr(request.node, "rep_call", None)
        for cluster in made:
            if failed is not None and failed.failed:
                print(cluster.logs())
            cluster.stop()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """Three nodes, replication factor 1, shared by a module's tests (which must not stop
    nodes or rely on an empty keyspace: each uses its own key prefix)."""
    cluster = TestCluster(tmp_path_factory.mktemp("cluster"), 3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def keys_owned_by(node: ClusterNode, owner: str, count: int, prefix: str = "k") -> list[str]:
    """``count`` key names whose owner (first of CLUSTER KEYOWNER) is ``owner``."""
    client = node.client()
    found: list[str] = []
    i = 0
    while len(found) < count:
        key = f"{prefix}{i}"
        if client.execute_command("CLUSTER", "KEYOWNER", key)[0].decode() == owner:
            found.append(key)
        i += 1
    return found

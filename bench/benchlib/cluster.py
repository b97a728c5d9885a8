"""The cluster table of ``make bench``: redis-benchmark against one node of a 3-node cluster.

Clusters run as separate ``distcache serve`` processes on loopback ports, listing each other
in ``CLUSTER_NODES``. Every run reads the CPU time of *all* the nodes (forwarding spends CPU on
the node that forwards and on the owner), the node's ``cluster_forwarded_commands`` and
``cluster_split_commands`` (the share of requests that left it), and redis-benchmark's
throughput and latency. Two targets of issue 9:

- a forwarded GET costs at most 2.5x the server CPU of a local one: GETs of one key through
  its owner, then through a node that forwards each of them to the owner (``-c 50``);
- pipelined (``-P 16``), a node that is not the owner serves at least half the owner's
  throughput.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import resp, servers
from .report import Target, render_table
from .servers import CLK_TCK, BenchError, Server

NODES = 3
#: The one key of the owner/forwarder runs: redis-benchmark's own name for its GET/SET key.
SINGLE_KEY = "key:__rand_int__"
VALUE = b"x" * 3  # redis-benchmark's default -d 3


@dataclass
class ClusterRun:
    """One redis-benchmark invocation against a cluster (or the single node baseline)."""

    setup: str
    case: str
    test: str
    requests: int
    rps: float | None
    p50_ms: float | None
    #: Requests the node under load sent on to another node (forwarded or split), per request.
    forwarded_share: float
    #: CPU time of every node of the setup, per request.
    cpu_us_per_op: float | None
    error: str | None = None


class Cluster:
    """N node processes that know each other."""

    def __init__(self, repo: Path, workdir: Path, size: int, replication_factor: int,
                 extra_args: Sequence[str] = ()) -> None:
        self.nodes: list[Server] = []
        ports = [servers.free_port() for _ in range(size)]
        peers = ",".join(f"node-{i + 1}@{servers.LOOPBACK}:{port}"
                         for i, port in enumerate(ports))
        env = {k: v for k, v in os.environ.items() if k not in servers.DISTCACHE_ENV}
        env.update(CLUSTER_NODES=peers, DISTCACHE_CLUSTER_SECRET=secrets.token_hex(8))
        binary = servers.distcache_binary(repo)
        try:
            for i, port in enumerate(ports):
                node_id = f"node-{i + 1}"
                log_path = workdir / f"cluster{size}-r{replication_factor}-{node_id}.log"
                cmd = [str(binary), "serve", "--node-id", node_id, "--host", servers.LOOPBACK,
                       "--port", str(port), "--data-dir", str(workdir / f"data-{node_id}"),
                       "--set", "plugins.lru_ttl.capacity=0", "--set", "node.log_level=warning",
                       "--set", f"cluster.replication_factor={replication_factor}",
                       *extra_args]
                with log_path.open("wb") as log:
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=workdir, env=env)
                server = Server(name=node_id, proc=proc, port=port, pid=proc.pid,
                                log_path=log_path)
                self.nodes.append(server)
            for server in self.nodes:
                _, _, pid = servers._wait_for_banner(server.proc, server.log_path)
                server.pid = pid or server.pid
            self._wait_converged()
        except BaseException:
            self.stop()
            raise

    def _wait_converged(self) -> None:
        deadline = time.monotonic() + servers.START_TIMEOUT_S
        while True:
            if all(self._converged(n) for n in self.nodes):
                return
            for node in self.nodes:
                node.check_alive()
            if time.monotonic() > deadline:
                raise BenchError("the bench cluster did not converge; last log lines:\n"
                                 + servers.tail(self.nodes[0].log_path))
            time.sleep(0.1)

    def _converged(self, node: Server) -> bool:
        try:
            info = self.info(node)
        except (OSError, resp.RespError):
            return False
        if int(info.get("cluster_nodes_alive", 0)) != len(self.nodes):
            return False
        nodes_text = self.command(node, "CLUSTER", "NODES").decode()
        return "breaker=open" not in nodes_text and "breaker=half_open" not in nodes_text

    @staticmethod
    def command(node: Server, *args: str) -> Any:
        with resp.Client(node.host, node.port, timeout=5.0) as client:
            return client.command(*args)

    def info(self, node: Server) -> dict[str, str]:
        text = self.command(node, "CLUSTER", "INFO").decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def sent_on(self, node: Server) -> int:
        info = self.info(node)
        return int(info["cluster_forwarded_commands"]) + int(info["cluster_split_commands"])

    def owner(self, key: str) -> Server:
        owner_id = self.command(self.nodes[0], "CLUSTER", "KEYOWNER", key)[0].decode()
        return next(n for n in self.nodes if n.name == owner_id)

    def cpu_ticks(self) -> int:
        return sum(node.cpu_ticks() for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


#: redis-benchmark's --csv parser and time limit, from run_bench (set by :func:`run`).
_parse_csv: Any = None
BENCHMARK_TIMEOUT_S = 600


def _benchmark(target: Server, group: Any, args: Sequence[str], test: str, requests: int,
               setup: str, case: str, sent_on: Any) -> ClusterRun:
    parse_csv = _parse_csv
    cmd = ["redis-benchmark", "-h", target.host, "-p", str(target.port), "-t", test.lower(),
           *args, "--csv"]
    before_ticks, before_sent = group.cpu_ticks(), sent_on()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=BENCHMARK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ClusterRun(setup, case, test, requests, None, None, 0.0, None,
                          error=f"timed out after {BENCHMARK_TIMEOUT_S} s")
    ticks, sent = group.cpu_ticks() - before_ticks, sent_on() - before_sent
    if done.returncode != 0:
        return ClusterRun(setup, case, test, requests, None, None, 0.0, None,
                          error=f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    fields = parse_csv(done.stdout, test)
    return ClusterRun(setup, case, test, requests, fields["rps"], fields["p50_ms"],
                      sent / requests, ticks / CLK_TCK * 1e6 / requests)


class _One:
    """A single node as a group of one (the baseline)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def cpu_ticks(self) -> int:
        return self.server.cpu_ticks()


def run(repo: Path, workdir: Path, quick: bool, rounds: int, parse_csv: Any
        ) -> dict[str, Any]:
    """Every cluster case; returns runs, medians and targets (printed by the caller).
    ``parse_csv(output, test)`` reads redis-benchmark's ``--csv`` row (run_bench's)."""
    global _parse_csv
    _parse_csv = parse_csv
    n = 20_000 if quick else 200_000
    cases = [("-c 50", ("-c", "50", "-n", str(n), "-r", "100000")),
             ("-c 50 -P 16", ("-c", "50", "-n", str(n), "-r", "100000", "-P", "16"))]
    runs: list[ClusterRun] = []

    def note(run_: ClusterRun) -> None:
        runs.append(run_)
        if run_.error:
            shown = f"ERROR {run_.error}"
        else:
            shown = (f"{run_.rps:>10,.0f} ops/s  cpu {run_.cpu_us_per_op:6.2f} us/op (all "
                     f"nodes)  sent on {run_.forwarded_share:5.1%}")
        print(f"  {run_.setup:<24} {run_.case:<12} {run_.test:<4} {shown}", flush=True)

    single = servers.start_distcache(repo, workdir, ["--set", "node.log_level=warning"])
    try:
        for _ in range(rounds):
            for case, args in cases:
                for test in ("SET", "GET"):
                    note(_benchmark(single, _One(single), args, test, n, "1 node", case,
                                    lambda: 0))
    finally:
        single.stop()
    single_key: dict[str, ClusterRun] = {}
    for replication_factor in (1, 2):
        cluster = Cluster(repo, workdir, NODES, replication_factor)
        try:
            setup = f"3 nodes, R={replication_factor}, via node-1"
            entry = cluster.nodes[0]
            for _ in range(rounds):
                for case, args in cases:
                    for test in ("SET", "GET"):
                        note(_benchmark(entry, cluster, args, test, n, setup, case,
                                        lambda c=cluster, e=entry: c.sent_on(e)))
            if replication_factor == 1:
                single_key = _owner_and_forwarder(cluster, n, rounds, note)
        finally:
            cluster.stop()
    return {"runs": runs, "targets": targets(single_key), "single_key": single_key}


def _owner_and_forwarder(cluster: Cluster, n: int, rounds: int, note: Any
                         ) -> dict[str, ClusterRun]:
    """GETs of one key through its owner and through another node, plain and pipelined."""
    owner = cluster.owner(SINGLE_KEY)
    other = next(node for node in cluster.nodes if node is not owner)
    Cluster.command(owner, "SET", SINGLE_KEY, VALUE.decode())
    best: dict[str, list[ClusterRun]] = {}
    for _ in range(rounds):
        for case, args in (("-c 50", ("-c", "50", "-n", str(n))),
                           ("-c 50 -P 16", ("-c", "50", "-n", str(n), "-P", "16"))):
            for label, node in (("owner", owner), ("forwarder", other)):
                run_ = _benchmark(node, cluster, args, "GET", n, f"one key via {label}", case,
                                  lambda node=node: cluster.sent_on(node))
                note(run_)
                best.setdefault(f"{label} {case}", []).append(run_)
    return {key: _median_run(values) for key, values in best.items()}


def _median_run(values: list[ClusterRun]) -> ClusterRun:
    ok = sorted((r for r in values if r.rps is not None), key=lambda r: r.rps or 0.0)
    return ok[len(ok) // 2] if ok else values[0]


def targets(single_key: dict[str, ClusterRun]) -> list[Target]:
    def cpu(key: str) -> float | None:
        run_ = single_key.get(key)
        return run_.cpu_us_per_op if run_ is not None else None

    def rps(key: str) -> float | None:
        run_ = single_key.get(key)
        return run_.rps if run_ is not None else None

    forwarded, local = cpu("forwarder -c 50"), cpu("owner -c 50")
    ratio_cpu = forwarded / local if forwarded and local else None
    pipelined, owner = rps("forwarder -c 50 -P 16"), rps("owner -c 50 -P 16")
    ratio_rps = pipelined / owner if pipelined and owner else None
    return [Target("forwarded GET server CPU / local GET (-c 50)", ratio_cpu, "<=", 2.5),
            Target("non-owner / owner throughput (-c 50 -P 16)", ratio_rps, ">=", 0.5)]


def _median(values: Sequence[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    return present[len(present) // 2] if present else None


def table(result: dict[str, Any]) -> str:
    runs: list[ClusterRun] = result["runs"]
    groups: dict[tuple[str, str, str], list[ClusterRun]] = {}
    for run_ in runs:
        groups.setdefault((run_.setup, run_.case, run_.test), []).append(run_)
    baseline = {(case, test): _median([r.cpu_us_per_op for r in group])
                for (setup, case, test), group in groups.items() if setup == "1 node"}
    rows = []
    for (setup, case, test), group in groups.items():
        cpu = _median([r.cpu_us_per_op for r in group])
        base = baseline.get((case, test))
        rows.append([setup, case, test, _fmt(_median([r.rps for r in group]), ",.0f"),
                     f"{_median([r.forwarded_share for r in group]) or 0:.0%}",
                     _fmt(cpu, ".2f"),
                     "-" if setup == "1 node" or not cpu or not base else f"{cpu / base:.2f}x"])
    text = render_table(["setup", "case", "test", "ops/s", "sent on", "CPU us/op (all nodes)",
                         "CPU vs 1 node"], rows)
    marks = "\n".join(f"  {t.name}: {_fmt(t.value, '.2f')}x ({t.cell()})"
                      for t in result["targets"])
    return f"{text}\n{marks}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)

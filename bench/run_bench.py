#!/usr/bin/env python3
"""``make bench``: DistCache against redis-server, side by side, with redis-benchmark.

Both servers run fresh on free loopback ports. Every case runs SET then GET as separate
redis-benchmark invocations, alternating DistCache and Redis (A B A B ...) for --rounds rounds;
each invocation also records the server's CPU time (utime+stime from /proc). A second fresh
pair then takes a pipelined load of 16-byte keys with 32-byte values to measure resident memory
per key. The medians, their ratios and the issue's targets are printed and written as JSON.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import cluster, durability, hostile, report, resp, servers
from benchlib.report import Case, MemoryResult, RunResult
from benchlib.servers import CLK_TCK, BenchError, Server

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
TESTS = ("SET", "GET")
BENCHMARK_TIMEOUT_S = 600
KEY_BYTES, VALUE_BYTES = 16, 32
LOAD_BATCH = 10_000
#: Share of the machine's CPU used by other processes above which the run gets a warning.
BUSY_SHARE = 0.05


def make_cases(quick: bool) -> list[Case]:
    n, n_latency = (20_000, 5_000) if quick else (200_000, 50_000)
    c50 = ("-c", "50", "-n", str(n))
    return [
        Case("c50", "-c 50", c50, n),
        Case("c50-P16", "-c 50 -P 16", (*c50, "-P", "16"), n),
        Case("c50-P16-r100k", "-c 50 -P 16 -r 100000", (*c50, "-P", "16", "-r", "100000"), n),
        Case("c1", "-c 1", ("-c", "1", "-n", str(n_latency)), n_latency),
    ]


# -- redis-benchmark --------------------------------------------------------------------------

CSV_FIELDS = {"rps": "rps", "avg_latency_ms": "avg_ms", "min_latency_ms": "min_ms",
              "p50_latency_ms": "p50_ms", "p95_latency_ms": "p95_ms",
              "p99_latency_ms": "p99_ms", "max_latency_ms": "max_ms"}


def parse_csv(output: str, test: str) -> dict[str, float]:
    """The row of ``test`` in redis-benchmark 7's ``--csv`` output, as RunResult fields."""
    for row in csv.DictReader(io.StringIO(output)):
        if row.get("test", "").upper() == test:
            return {attr: float(row[col]) for col, attr in CSV_FIELDS.items()}
    raise ValueError(f"no {test} row in redis-benchmark output: {output.strip()[:300]!r}")


def run_benchmark(server: Server, case: Case, test: str, round_no: int) -> RunResult:
    cmd = ["redis-benchmark", "-h", server.host, "-p", str(server.port), "-t", test.lower(),
           *case.args, "--csv"]
    server.check_alive()
    ticks_before, started = server.cpu_ticks(), time.monotonic()
    error, fields = None, {}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=BENCHMARK_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            error = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        else:
            fields = parse_csv(done.stdout, test)
    except subprocess.TimeoutExpired:
        error = f"redis-benchmark timed out after {BENCHMARK_TIMEOUT_S} s"
        ensure_responsive(server)
    except ValueError as exc:
        error = str(exc)
    wall, ticks = time.monotonic() - started, server.cpu_ticks() - ticks_before
    server.check_alive()
    cpu_us = ticks / CLK_TCK * 1e6 / case.requests if error is None else None
    return RunResult(round=round_no, case=case.key, test=test, server=server.name,
                     requests=case.requests, wall_s=round(wall, 3), cpu_ticks=ticks,
                     cpu_us_per_op=cpu_us, error=error, **fields)


def ensure_responsive(server: Server) -> None:
    """After a timeout: go on only if the server still answers (a hung one stops the run)."""
    server.check_alive()
    try:
        with resp.Client(server.host, server.port, timeout=5.0) as client:
            client.command("PING")
    except (OSError, resp.RespError) as exc:
        raise BenchError(f"{server.name} stopped answering ({exc}); last log lines:\n"
                         f"{servers.tail(server.log_path)}") from None


def describe(run: RunResult) -> str:
    if run.error:
        return f"ERROR {run.error}"
    return (f"{run.rps:>12,.0f} ops/s  p50 {run.p50_ms:.3f} ms  p99 {run.p99_ms:.3f} ms  "
            f"cpu {run.cpu_us_per_op:.2f} us/op")


def run_rounds(pair: Sequence[Server], cases: Sequence[Case], rounds: int) -> list[RunResult]:
    runs = []
    for round_no in range(1, rounds + 1):
        for case in cases:
            for test in TESTS:
                for server in pair:  # A B, A B, ...: both see the same conditions
                    run = run_benchmark(server, case, test, round_no)
                    runs.append(run)
                    print(f"  round {round_no}/{rounds}  {case.label:<22} {test}  "
                          f"{server.name:<9} {describe(run)}", flush=True)
    return runs


# -- memory -----------------------------------------------------------------------------------

def set_commands(start: int, stop: int) -> bytes:
    """Pipelined SETs of keys ``k:%014d`` (16 bytes) to values ``v%031d`` (32 bytes)."""
    head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
    return b"".join(head + b"k:%014d\r\n$32\r\nv%031d\r\n" % (i, i) for i in range(start, stop))


def measure_memory(server: Server, keys: int) -> MemoryResult:
    try:
        return _load_and_measure(server, keys)
    except (OSError, resp.RespError) as exc:
        server.check_alive()
        raise BenchError(f"loading {keys:,} keys into {server.name} failed: {exc}") from None


def _load_and_measure(server: Server, keys: int) -> MemoryResult:
    with resp.Client(server.host, server.port) as client:
        client.command("FLUSHALL")
        time.sleep(0.2)
        rss_before = server.rss_bytes()
        started = time.monotonic()
        for start in range(0, keys, LOAD_BATCH):
            stop = min(start + LOAD_BATCH, keys)
            client.pipeline_ok(set_commands(start, stop), stop - start)
        load_s = time.monotonic() - started
        dbsize = client.command("DBSIZE")
    time.sleep(0.5)
    rss_after = server.rss_bytes()
    if dbsize != keys:
        raise BenchError(f"{server.name} holds {dbsize} keys after loading {keys}: "
                         "is its capacity too small? (see --distcache-args)")
    return MemoryResult(server=server.name, keys=keys, key_bytes=KEY_BYTES,
                        value_bytes=VALUE_BYTES, rss_before=rss_before, rss_after=rss_after,
                        dbsize=dbsize, load_s=round(load_s, 3),
                        bytes_per_key=(rss_after - rss_before) / keys)


# -- machine and repository -------------------------------------------------------------------

def _output(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=30,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def git_info() -> dict[str, Any]:
    commit = _output(["git", "rev-parse", "HEAD"]) or "unknown"
    dirty = bool(_output(["git", "status", "--porcelain", "--untracked-files=no"]))
    return {"commit": commit, "short": commit[:7], "dirty": dirty}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(distcache_bin: Path) -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server_version": servers.tool_version("redis-server"),
        "redis_benchmark_version": servers.tool_version("redis-benchmark"),
        "distcache_version": _output([str(distcache_bin), "--version"]) or "unknown",
        "clock_ticks_per_s": CLK_TCK,
    }


# -- orchestration ----------------------------------------------------------------------------

@contextmanager
def server_pair(workdir: Path, distcache_args: list[str]) -> Iterator[list[Server]]:
    """A fresh DistCache node and a fresh redis-server, both stopped on the way out."""
    pair: list[Server] = []
    try:
        pair.append(servers.start_distcache(REPO, workdir, distcache_args))
        pair.append(servers.start_redis(workdir))
        for server in pair:
            print(f"  {server.name} pid {server.pid} on {server.host}:{server.port}", flush=True)
        yield pair
    finally:
        for server in pair:
            server.stop()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None,
                        help="A B rounds per case (default 3, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: -n 20000 (-c 1: 5000), 1 round, 100k keys for memory")
    parser.add_argument("--distcache-args", default="", metavar="'ARGS'",
                        help="extra arguments for `distcache serve`, e.g. "
                             "\"--set node.log_level=warning\"")
    parser.add_argument("--skip-durability", action="store_true",
                        help="leave out the durability table (persistence against Redis's)")
    parser.add_argument("--durability-only", action="store_true",
                        help="run only the durability table")
    parser.add_argument("--durability-throughput-only", action="store_true",
                        help="run only the durability table's SET -c 50 rows (no recovery or "
                             "snapshot rows); TMPDIR=/dev/shm puts the data on tmpfs")
    parser.add_argument("--output", type=Path, default=None, metavar="PATH",
                        help="JSON file (default bench/results/<date>-<shortcommit>.json)")
    parser.add_argument("--no-hostile", action="store_true",
                        help="skip the hostile-client table (worst PING beside a fuzzer)")
    parser.add_argument("--hostile-only", action="store_true",
                        help="only the hostile-client table")
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the cluster table (3-node clusters, replication 1 and 2)")
    parser.add_argument("--cluster-only", action="store_true",
                        help="only the cluster table")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.durability_throughput_only:
        args.durability_only = True
    args.distcache_args = shlex.split(args.distcache_args)
    if any(a == "--host" or a.startswith(("--host=", "node.host")) for a in args.distcache_args):
        parser.error("--distcache-args may not change the host: the benchmark is loopback only")
    args.keys = 100_000 if args.quick else 1_000_000
    return args


def print_report(summaries: list[report.CaseSummary], memory: dict[str, MemoryResult],
                 header: str) -> list[report.Target]:
    print(f"\n{header}\n")
    print("Throughput (median ops/s) and latency (median of per-round p50/p99, ms)")
    print(report.throughput_table(summaries))
    print("\nServer CPU time per operation (utime+stime / requests)")
    print(report.cpu_table(summaries))
    print("\nResident memory per key (VmRSS after - before loading, / keys)")
    print(report.memory_table(memory))
    targets = report.all_targets(summaries, memory)
    passed = sum(t.passed is True for t in targets)
    print(f"\nTargets: {passed}/{len(targets)} pass")
    for target in targets:
        if target.passed is not True:
            value = "n/a" if target.value is None else f"{target.value:.3f}{target.unit}"
            print(f"  {target.cell().split()[-1]:<4}  {target.name}: {value} "
                  f"(target {target.op}{target.threshold:g}{target.unit})")
    return targets


@dataclass
class CpuWatch:
    """How much CPU everything else on the machine used while the benchmark ran.

    Machine-wide user+nice+system time (/proc/stat) minus this script's and its reaped children's
    (both servers, every redis-benchmark): what other processes took from the cores.
    """

    machine_s: float = field(default_factory=lambda: CpuWatch.machine_busy_s())
    ours_s: float = field(default_factory=lambda: CpuWatch.our_cpu_s())
    wall_start: float = field(default_factory=time.monotonic)

    @staticmethod
    def machine_busy_s() -> float:
        user, nice, system = Path("/proc/stat").read_text().split()[1:4]
        return (int(user) + int(nice) + int(system)) / CLK_TCK

    @staticmethod
    def our_cpu_s() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def others_share(self, cores: int) -> float:
        """CPU time of other processes as a share of all cores over the run (0..1)."""
        others = (self.machine_busy_s() - self.machine_s) - (self.our_cpu_s() - self.ours_s)
        return max(0.0, others / (cores * (time.monotonic() - self.wall_start)))


def warn_if_busy(share: float) -> None:
    if share > BUSY_SHARE:
        print(f"\nwarning: other processes used {share:.0%} of the machine's CPU during the run; "
              "they competed with the servers and redis-benchmark, so these numbers are noisier "
              "than on an idle machine", file=sys.stderr)


def default_output(git: dict[str, Any], now: dt.datetime) -> Path:
    return RESULTS_DIR / f"{now.strftime('%Y-%m-%dT%H%M%SZ')}-{git['short']}.json"


def phase(title: str) -> Callable[[], None]:
    started = time.monotonic()
    print(f"\n== {title}", flush=True)
    return lambda: print(f"   ({time.monotonic() - started:.1f} s)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    servers.ensure_redis_tools()
    distcache_bin = servers.distcache_binary(REPO)
    cases = make_cases(args.quick)
    now = dt.datetime.now(dt.UTC)
    git, machine = git_info(), machine_info(distcache_bin)
    print(f"DistCache {git['short']}{' (uncommitted changes)' if git['dirty'] else ''} vs "
          f"{machine['redis_server_version'].split(' sha=')[0]}; {machine['cpu_model']}, "
          f"{machine['cores']} cores; {args.rounds} round(s)")
    watch = CpuWatch()
    runs: list[RunResult] = []
    memory: dict[str, MemoryResult] = {}
    cluster_result: dict[str, Any] = {}
    durability_results: dict[str, Any] | None = None
    hostile_results: dict[str, Any] | None = None
    only = args.cluster_only or args.durability_only or args.hostile_only
    with tempfile.TemporaryDirectory(prefix="distcache-bench-") as tmp:
        if not only:
            done = phase("throughput, latency and CPU (redis-benchmark)")
            with server_pair(Path(tmp), args.distcache_args) as pair:
                runs = run_rounds(pair, cases, args.rounds)
            done()
            done = phase(f"memory: {args.keys:,} keys of {KEY_BYTES} B with {VALUE_BYTES} B "
                         "values")
            with server_pair(Path(tmp), args.distcache_args) as pair:
                memory = {s.name: measure_memory(s, args.keys) for s in pair}
                for m in memory.values():
                    print(f"  {m.server:<9} {m.bytes_per_key:8.1f} B/key  (RSS "
                          f"{m.rss_before:,} -> {m.rss_after:,} B, load {m.load_s:.1f} s)",
                          flush=True)
            done()
        if not args.no_hostile and (args.hostile_only or not only):
            done = phase("hostile clients: worst PING beside a fuzzer of huge headers")
            hostile_results = hostile.run(REPO, Path(tmp), quick=args.quick)
            done()
        if not args.no_cluster and (args.cluster_only or not only):
            done = phase("cluster: one node of 3, replication factor 1 and 2, against 1 node")
            cluster_result = cluster.run(REPO, Path(tmp), args.quick, args.rounds,
                                         parse_csv)
            done()
        if not args.skip_durability and (args.durability_only or not only):
            done = phase("durability: persistence against Redis's AOF and RDB")
            durability_results = durability.run(
                REPO, Path(tmp), quick=args.quick, rounds=args.rounds,
                throughput_only=args.durability_throughput_only)
            done()
    machine["other_processes_cpu_share"] = round(watch.others_share(machine["cores_usable"]), 4)
    output = args.output or default_output(git, now)
    settings = {"rounds": args.rounds, "quick": args.quick,
                "distcache_args": args.distcache_args, "memory_keys": args.keys,
                "cases": cases}
    if args.durability_only:
        assert durability_results is not None
        print("\n" + durability.table(durability_results))
        report.write_json(output, {
            "schema": 1, "date": now.isoformat(timespec="seconds"), "git": git,
            "machine": machine, "settings": settings, "durability": durability_results})
        warn_if_busy(machine["other_processes_cpu_share"])
        print(f"\nresults: {output}")
        return 0
    summaries = report.summarise(cases, runs)
    header = (f"DistCache vs Redis: medians of {args.rounds} round(s), "
              f"{'quick' if args.quick else 'full'} run, {now:%Y-%m-%d %H:%M} UTC")
    targets = print_report(summaries, memory, header) if runs else []
    if cluster_result:
        print("\nCluster: redis-benchmark against node-1 of 3 (random keys: about 2/3 sent on "
              "to their owner), CPU of every node per request")
        print(cluster.table(cluster_result))
        targets = [*targets, *cluster_result["targets"]]
    if durability_results is not None:
        print("\n" + durability.table(durability_results))
    if hostile_results is not None:
        print("\n" + hostile.table(hostile_results))
    report.write_json(output, {
        "schema": 1, "date": now.isoformat(timespec="seconds"), "git": git,
        "machine": machine, "settings": {**settings, "cluster": not args.no_cluster},
        "summary": summaries, "memory": memory, "targets": targets,
        "targets_passed": sum(t.passed is True for t in targets), "runs": runs,
        "cluster": cluster_result, "durability": durability_results,
        "hostile": hostile_results,
    })
    warn_if_busy(machine["other_processes_cpu_share"])
    print(f"\nresults: {output}")
    failed = [r for r in runs if r.error]
    if failed:
        print(f"bench: {len(failed)} of {len(runs)} redis-benchmark runs failed (see above and "
              "'error' in the JSON)", file=sys.stderr)
        return 1
    return 0


def entry() -> int:
    try:
        return main()
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry())

"""The durability table of ``make bench``: what persistence costs, against Redis's own.

* SET throughput at ``-c 50`` with the WAL's ``fsync = always`` against ``appendonly yes
  appendfsync always`` (group commit is how either gets there), with ``everysec`` against
  ``everysec``, and against the node without persistence; the writes per fsync the node
  reports.
* Recovery of 1M keys (16-byte keys, 32-byte values) from each snapshot kind and from the
  log alone, against Redis loading its RDB file: the node's own recovery time (from INFO) and
  the wall time from starting the process until it stops answering ``-LOADING``.
* A 1M-key snapshot taken while a client writes: the worst and p99 PING latency a second
  client sees while it runs, and the peak extra resident memory (Redis: BGSAVE's fork and
  ``rdb_last_cow_size``).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import resp, servers
from .servers import LOOPBACK, BenchError, Server

KEY_BYTES, VALUE_BYTES = 16, 32
LOAD_BATCH = 10_000
ALWAYS = ["--set", 'node.persistence=["wal"]', "--set", 'plugins.wal.fsync="always"']
EVERYSEC = ["--set", 'node.persistence=["wal"]', "--set", 'plugins.wal.fsync="everysec"']


def snapshot_args(kind: str) -> list[str]:
    # No timed or counted snapshots during the measurement: only the ones asked for.
    return ["--set", f'node.persistence=["{kind}"]', "--set", f"plugins.{kind}.after_writes=0",
            "--set", f"plugins.{kind}.interval_seconds=0"]


@dataclass
class ThroughputRow:
    name: str
    distcache_rps: list[float] = field(default_factory=list)
    redis_rps: list[float] = field(default_factory=list)
    writes_per_fsync: float | None = None
    #: Server CPU (utime + stime, all threads) per SET of each run, in microseconds.
    distcache_cpu_us: list[float] = field(default_factory=list)
    redis_cpu_us: list[float] = field(default_factory=list)


@dataclass
class RecoveryRow:
    name: str
    keys: int
    recovery_s: float  # the node's own figure (INFO last_recovery), or Redis's log line
    wall_s: float  # process start until it stopped answering -LOADING
    file_bytes: int


@dataclass
class StallRow:
    name: str
    keys: int
    snapshot_s: float
    worst_ping_ms: float
    p99_ping_ms: float
    pings: int
    peak_extra_rss_bytes: int
    cow_bytes: int | None = None


# -- servers ----------------------------------------------------------------------------------


def start_distcache(repo: Path, workdir: Path, data_dir: Path, args: list[str]) -> Server:
    return servers.start_distcache(repo, workdir, ["--data-dir", str(data_dir),
                                                   "--set", "node.log_level=warning", *args])


def start_redis(workdir: Path, data_dir: Path, args: list[str]) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    return servers.start_redis(workdir, ["--dir", str(data_dir), *args])


def info(server: Server, section: str = "persistence") -> dict[str, str]:
    with resp.Client(server.host, server.port, timeout=30) as client:
        text = client.command("INFO", section)
    assert isinstance(text, bytes)
    return dict(line.split(":", 1) for line in text.decode().splitlines()
                if ":" in line and not line.startswith("#"))


def wait_loaded(server: Server, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            if info(server).get("loading") == "0":
                return
        except (OSError, resp.RespError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} still loading after {timeout:.0f} s")
        time.sleep(0.01)


def wait_idle(server: Server, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while info(server).get("rdb_bgsave_in_progress") != "0":
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name}: the snapshot did not finish in {timeout:.0f} s")
        time.sleep(0.01)


def load_keys(server: Server, keys: int) -> None:
    head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
    with resp.Client(server.host, server.port, timeout=120) as client:
        for start in range(0, keys, LOAD_BATCH):
            stop = min(start + LOAD_BATCH, keys)
            client.pipeline_ok(b"".join(head + b"k:%014d\r\n$32\r\nv%031d\r\n" % (i, i)
                                        for i in range(start, stop)), stop - start)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "LOCK")


# -- throughput -------------------------------------------------------------------------------


def set_rps(server: Server, requests: int, cpu_us: list[float] | None = None) -> float:
    """SET -c 50 ops/s; the server's CPU per SET is appended to ``cpu_us``."""
    ticks = server.cpu_ticks()
    cmd = ["redis-benchmark", "-h", LOOPBACK, "-p", str(server.port), "-t", "set", "-c", "50",
           "-n", str(requests), "--csv"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL)
    server.check_alive()
    if cpu_us is not None:
        cpu_us.append((server.cpu_ticks() - ticks) / servers.CLK_TCK / requests * 1e6)
    for row in csv.DictReader(io.StringIO(done.stdout)):
        if row.get("test", "").upper() == "SET":
            return float(row["rps"])
    raise BenchError(f"redis-benchmark against {server.name}: {done.stderr or done.stdout}")


def measure_throughput(repo: Path, workdir: Path, rounds: int, requests: int
                       ) -> list[ThroughputRow]:
    """All five servers run at once and take turns, round after round, so each comparison
    is made under the same conditions (the machine is shared)."""
    plans = [("always", ALWAYS, ["--appendonly", "yes", "--appendfsync", "always"]),
             ("everysec", EVERYSEC, ["--appendonly", "yes", "--appendfsync", "everysec"]),
             ("none", [], None)]
    rows = {name: ThroughputRow(name) for name, _, _ in plans}
    started: list[tuple[str, Server, Server | None]] = []
    try:
        for name, ours, theirs in plans:
            node = start_distcache(repo, workdir, workdir / f"tp-{name}", ours)
            redis = None
            try:
                if theirs is not None:
                    redis = start_redis(workdir, workdir / f"tp-redis-{name}", theirs)
            finally:
                started.append((name, node, redis))
        for round_no in range(1, rounds + 1):
            for name, node, redis in started:
                row = rows[name]
                row.distcache_rps.append(set_rps(node, requests, row.distcache_cpu_us))
                if redis is not None:
                    row.redis_rps.append(set_rps(redis, requests, row.redis_cpu_us))
                print(f"  round {round_no}/{rounds}  SET -c 50  fsync {name:<9} distcache "
                      f"{row.distcache_rps[-1]:>10,.0f} ops/s {row.distcache_cpu_us[-1]:5.1f} us"
                      + (f"   redis {row.redis_rps[-1]:>10,.0f} ops/s "
                         f"{row.redis_cpu_us[-1]:5.1f} us" if redis else ""),
                      flush=True)
        for name, node, _ in started:
            if name != "none":
                fields = info(node)
                if fields.get("wal_fsyncs", "0") != "0":
                    rows[name].writes_per_fsync = float(fields["wal_writes_per_fsync"])
    finally:
        for _, node, redis in started:
            node.stop()
            if redis is not None:
                redis.stop()
    return list(rows.values())


# -- recovery ---------------------------------------------------------------------------------


def measure_recovery(repo: Path, workdir: Path, keys: int) -> list[RecoveryRow]:
    rows = []
    for name, args in (("mmap_snapshot", snapshot_args("mmap_snapshot")),
                       ("lmdb_snapshot", snapshot_args("lmdb_snapshot")),
                       ("wal (log alone)", EVERYSEC)):
        data_dir = workdir / f"recovery-{name.split()[0]}"
        node = start_distcache(repo, workdir, data_dir, args)
        try:
            load_keys(node, keys)
            if "snapshot" in name:
                with resp.Client(node.host, node.port, timeout=600) as client:
                    client.command("SAVE")
        finally:
            node.stop()
        size = directory_bytes(data_dir)
        started = time.monotonic()
        node = start_distcache(repo, workdir, data_dir, args)
        try:
            wait_loaded(node)
            wall = time.monotonic() - started
            report = info(node)["last_recovery"]
        finally:
            node.stop()
        seconds = float(re.search(r"seconds=([\d.]+)", report).group(1))  # type: ignore[union-attr]
        rows.append(RecoveryRow(name, keys, seconds, wall, size))
        print(f"  {name:<16} {seconds:6.2f} s recovery, {wall:6.2f} s from process start "
              f"({size / 1e6:.0f} MB on disk)", flush=True)
    data_dir = workdir / "recovery-redis"
    redis = start_redis(workdir, data_dir, [])
    try:
        load_keys(redis, keys)
        with resp.Client(redis.host, redis.port, timeout=600) as client:
            client.command("SAVE")
    finally:
        redis.stop()
    size = directory_bytes(data_dir)
    started = time.monotonic()
    redis = start_redis(workdir, data_dir, [])
    try:
        wait_loaded(redis)
        wall = time.monotonic() - started
    finally:
        redis.stop()
    loaded = re.findall(r"DB loaded from disk: ([\d.]+) seconds",
                        redis.log_path.read_text(errors="replace"))
    rows.append(RecoveryRow("redis RDB", keys, float(loaded[-1]) if loaded else wall, wall,
                            size))
    print(f"  {'redis RDB':<16} {rows[-1].recovery_s:6.2f} s loading, {wall:6.2f} s from "
          f"process start ({size / 1e6:.0f} MB on disk)", flush=True)
    return rows


# -- snapshot stall ---------------------------------------------------------------------------


class PingProbe(threading.Thread):
    """One client sending PING after PING, recording each round trip with its start time."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with resp.Client(self.server.host, self.server.port, timeout=30) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                client.command("PING")
                self.samples.append((started, time.monotonic() - started))
                time.sleep(0.001)


class RssSampler(threading.Thread):
    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.server.rss_bytes())
            time.sleep(0.01)


def measure_stall(repo: Path, workdir: Path, keys: int) -> list[StallRow]:
    rows = []
    for name in ("mmap_snapshot", "lmdb_snapshot", "redis BGSAVE"):
        if name.startswith("redis"):
            server = start_redis(workdir, workdir / "stall-redis", [])
        else:
            server = start_distcache(repo, workdir, workdir / f"stall-{name}",
                                     snapshot_args(name))
        writer = None
        try:
            load_keys(server, keys)
            time.sleep(0.5)
            rss_before = server.rss_bytes()
            # A write load on keys of the same keyspace while the snapshot runs.
            writer = subprocess.Popen(
                ["redis-benchmark", "-h", LOOPBACK, "-p", str(server.port), "-t", "set",
                 "-c", "4", "-r", str(keys), "-n", "100000000", "-d", str(VALUE_BYTES), "-q"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            probe, sampler = PingProbe(server), RssSampler(server)
            probe.start()
            sampler.start()
            time.sleep(1.0)
            started = time.monotonic()
            with resp.Client(server.host, server.port, timeout=60) as client:
                client.command("BGSAVE")
            wait_idle(server)
            ended = time.monotonic()
            time.sleep(0.2)
            probe.stop.set()
            sampler.stop.set()
            probe.join(30)
            sampler.join(30)
            during = [latency for at, latency in probe.samples if started <= at <= ended]
            cow = info(server).get("rdb_last_cow_size") if name.startswith("redis") else None
        finally:
            if writer is not None:
                writer.kill()
                writer.wait()
            server.stop()
        if not during:
            raise BenchError(f"{name}: no PING completed during the snapshot")
        row = StallRow(name, keys, ended - started, max(during) * 1000,
                       statistics.quantiles(during, n=100)[98] * 1000 if len(during) > 1
                       else during[0] * 1000, len(during),
                       max(sampler.peak - rss_before, 0), int(cow) if cow else None)
        rows.append(row)
        print(f"  {name:<14} {row.snapshot_s:6.2f} s, worst PING {row.worst_ping_ms:6.1f} ms, "
              f"p99 {row.p99_ping_ms:5.1f} ms over {row.pings} PINGs, peak extra RSS "
              f"{row.peak_extra_rss_bytes / 1e6:6.1f} MB"
              + (f" (copy-on-write {row.cow_bytes / 1e6:.1f} MB)" if row.cow_bytes else ""),
              flush=True)
    return rows


def run(repo: Path, workdir: Path, *, quick: bool, rounds: int,
        throughput_only: bool = False) -> dict[str, Any]:
    keys = 100_000 if quick else 1_000_000
    requests = 20_000 if quick else 100_000
    print("  throughput", flush=True)
    throughput = measure_throughput(repo, workdir, rounds, requests)
    if throughput_only:
        return {"keys": keys, "requests": requests,
                "throughput": [asdict(r) for r in throughput], "recovery": [], "stall": []}
    print(f"  recovery of {keys:,} keys", flush=True)
    recovery = measure_recovery(repo, workdir, keys)
    print(f"  a snapshot of {keys:,} keys under a write load", flush=True)
    stall = measure_stall(repo, workdir, keys)
    return {"keys": keys, "requests": requests, "throughput": [asdict(r) for r in throughput],
            "recovery": [asdict(r) for r in recovery], "stall": [asdict(r) for r in stall]}


def _cpu(row: dict[str, Any]) -> str:
    """Median server CPU per SET (older results have none)."""
    ours, theirs = row.get("distcache_cpu_us"), row.get("redis_cpu_us")
    if not ours:
        return ""
    return (f"; CPU {statistics.median(ours):.1f} us/SET"
            + (f" (Redis {statistics.median(theirs):.1f})" if theirs else ""))


def table(results: dict[str, Any]) -> str:
    """The durability table as printed (and copied into the README)."""
    lines = [f"Durability: SET -c 50 ({results['requests']:,} requests, median ops/s)",
             f"  {'fsync':<9} {'DistCache':>11} {'Redis':>11} {'ratio':>6}  target"]
    by_name = {row["name"]: row for row in results["throughput"]}
    none = statistics.median(by_name["none"]["distcache_rps"])
    for name, target in (("always", ">= 1.0x Redis"), ("everysec", ">= 0.9x no persistence")):
        row = by_name[name]
        ours, theirs = statistics.median(row["distcache_rps"]), statistics.median(
            row["redis_rps"])
        extra = (f"; {row['writes_per_fsync']:.1f} writes per fsync"
                 if row["writes_per_fsync"] else "")
        versus = ours / theirs if name == "always" else ours / none
        verdict = "PASS" if versus >= (1.0 if name == "always" else 0.9) else "FAIL"
        lines.append(f"  {name:<9} {ours:>11,.0f} {theirs:>11,.0f} {ours / theirs:>5.2f}x  "
                     f"{target}: {versus:.2f}x {verdict}{extra}{_cpu(row)}")
    lines.append(f"  {'none':<9} {none:>11,.0f}{_cpu(by_name['none'])}")
    lines.append(f"Recovery of {results['keys']:,} keys ({KEY_BYTES} B keys, {VALUE_BYTES} B "
                 "values; target < 2 s)")
    for row in results["recovery"]:
        lines.append(f"  {row['name']:<16} {row['recovery_s']:6.2f} s  ({row['wall_s']:.2f} s "
                     f"from process start, {row['file_bytes'] / 1e6:.0f} MB)")
    lines.append(f"A snapshot of {results['keys']:,} keys under a write load (target: worst "
                 "PING < 20 ms)")
    for row in results["stall"]:
        cow = f", copy-on-write {row['cow_bytes'] / 1e6:.0f} MB" if row["cow_bytes"] else ""
        lines.append(f"  {row['name']:<14} {row['snapshot_s']:6.2f} s  worst PING "
                     f"{row['worst_ping_ms']:6.1f} ms  p99 {row['p99_ping_ms']:5.1f} ms  peak "
                     f"extra RSS {row['peak_extra_rss_bytes'] / 1e6:6.1f} MB{cow}")
    return "\n".join(lines)

"""The hostile-client table: the worst PING a well-behaved client sees while a fuzzer sends
request headers with huge counts and lengths (issue 6: one ``*2147483647`` froze every client
for ~3 s before the parser's limits), against redis-server under the same fuzzer.

The fuzzer opens a connection, sends one hostile header (alone, after good requests, or nested
in an array), reads whatever comes back and closes, as fast as it can, from a process of its
own: as a thread beside the probe it took the probe's GIL and showed as a 23 ms "worst PING"
the node never caused (a probe beside a fuzzer thread measures the bench, not the server).
The probe is the durability table's :class:`~benchlib.durability.PingProbe`: one
client, one PING a millisecond. Target: worst PING under 10 ms.
"""

from __future__ import annotations

import multiprocessing
import random
import socket
import time
from pathlib import Path
from typing import Any

from .durability import PingProbe
from .servers import Server, start_distcache, start_redis

TARGET_WORST_MS = 10.0
HUGE_COUNTS = [2**31 - 1, 3_000_000_000, 2**63 - 1, 10**12, 536_870_912]
GOOD = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"


def hostile_request(rng: random.Random) -> bytes:
    count = rng.choice(HUGE_COUNTS)
    shape = rng.randrange(4)
    if shape == 0:
        return b"*%d\r\n" % count
    if shape == 1:
        return GOOD * rng.randrange(1, 4) + b"*%d\r\n" % count
    if shape == 2:
        return b"*2\r\n$3\r\nGET\r\n$%d\r\n" % count
    return b"*2\r\n" * rng.randrange(1, 5) + b"*%d\r\n" % count


class Fuzzer:
    """The fuzzer's process; ``sent`` is read after :meth:`stop`."""

    def __init__(self, server: Server, seed: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._sent = context.Value("q", 0)
        self._stop = context.Event()
        self._ready = context.Event()
        self._process = context.Process(
            target=_fuzz, args=(server.host, server.port, seed, self._stop, self._sent,
                                self._ready),
            daemon=True)

    def start(self) -> None:
        """Start the process and return once it is about to send (an interpreter starting
        takes a core for ~50 ms on this 2-core machine: not the server's doing)."""
        self._process.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fuzzer process did not start")

    def stop(self) -> None:
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()

    @property
    def sent(self) -> int:
        return int(self._sent.value)


def _fuzz(host: str, port: int, seed: int, stop: Any, sent: Any, ready: Any) -> None:
    rng = random.Random(seed)
    count = 0
    ready.set()
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                sock.sendall(hostile_request(rng))
                sock.settimeout(0.05)
                try:
                    sock.recv(4096)
                except OSError:
                    pass
            count += 1
            if count % 64 == 0:
                sent.value = count
        except OSError:
            time.sleep(0.001)
    sent.value = count


def measure(server: Server, seconds: float) -> dict[str, Any]:
    probe = PingProbe(server)
    fuzzer = Fuzzer(server, seed=6)
    probe.start()
    time.sleep(0.2)  # the probe's connection first: it is not one of the fuzzer's
    fuzzer.start()
    started = time.monotonic()
    time.sleep(seconds)
    fuzzer.stop()
    probe.stop.set()
    probe.join(5)
    server.check_alive()
    rtts = sorted(rtt for at, rtt in probe.samples if at >= started)
    if not rtts:
        return {"worst_ping_ms": None, "p99_ping_ms": None, "pings": 0,
                "hostile_requests": fuzzer.sent}
    return {"worst_ping_ms": round(rtts[-1] * 1000, 2),
            "p99_ping_ms": round(rtts[int(len(rtts) * 0.99) - 1] * 1000, 2),
            "pings": len(rtts), "hostile_requests": fuzzer.sent}


def run(repo: Path, workdir: Path, *, quick: bool) -> dict[str, Any]:
    seconds = 3.0 if quick else 10.0
    results: dict[str, Any] = {"seconds": seconds, "target_worst_ms": TARGET_WORST_MS}
    for name in ("distcache", "redis"):
        server = (start_distcache(repo, workdir, ["--set", "node.log_level=warning"])
                  if name == "distcache" else start_redis(workdir))
        try:
            results[name] = measure(server, seconds)
        finally:
            server.stop()
        row = results[name]
        print(f"  {name:<10} worst PING {row['worst_ping_ms']} ms, p99 {row['p99_ping_ms']} ms "
              f"over {row['pings']} PINGs beside {row['hostile_requests']} hostile requests",
              flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"Hostile clients: worst PING beside a fuzzer of huge counts and lengths "
             f"({results['seconds']:.0f} s; target < {results['target_worst_ms']:.0f} ms)",
             "  server      worst PING   p99 PING   PINGs  hostile requests"]
    for name in ("distcache", "redis"):
        row = results.get(name)
        if not row or row["worst_ping_ms"] is None:
            continue
        verdict = ""
        if name == "distcache":
            verdict = ("  pass" if row["worst_ping_ms"] < results["target_worst_ms"]
                       else "  FAIL")
        lines.append(f"  {name:<10} {row['worst_ping_ms']:8.2f} ms {row['p99_ping_ms']:7.2f} ms "
                     f"{row['pings']:7d} {row['hostile_requests']:17d}{verdict}")
    return "\n".join(lines)

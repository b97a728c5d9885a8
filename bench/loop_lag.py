"""Where the event loop stalls during a snapshot: a real node in this process, a write load and
a PING client in other processes, and a probe on the node's loop.

    .venv/bin/python bench/loop_lag.py --kind mmap_snapshot --keys 1000000

The probe is a callback every millisecond that records the gap since its previous run; a
sampler thread looks at the loop's thread whenever the probe is late by more than
``--stack-after-ms`` and records its Python stack, so each long gap comes with what ran in
it (a stall inside one C call shows the line that made the call). Prints the longest gaps
with their stacks, the worst PING the outside client saw, and the snapshot's duration.
A development tool, not part of ``make bench`` (the durability table there is the figure
of record).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from distcache_core.config import ConfigSources  # noqa: E402
from distcache_core.node import Node  # noqa: E402

PING_CLIENT = r"""
import json, signal, socket, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
samples = []
while not stop:
    started = time.monotonic()
    sock.sendall(b"PING\r\n")
    data = b""
    while not data.endswith(b"\r\n"):
        data += sock.recv(64)
    samples.append((time.time(), time.monotonic() - started))
    time.sleep(0.001)
json.dump(samples, sys.stdout)
"""


class LagProbe:
    """Gaps between runs of a 1 ms timer on the loop, with stacks sampled during long ones."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stack_after_s: float) -> None:
        self.loop = loop
        self.stack_after_s = stack_after_s
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        #: (wall time, seconds, the loop thread's CPU seconds in the gap, stacks)
        self.gaps: list[tuple[float, float, float, list[str]]] = []
        self._stacks: collections.Counter[str] = collections.Counter()
        self._current_stacks: list[str] = []
        self._running = True
        self._main = threading.get_ident()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self.last = time.perf_counter()
        self.loop.call_later(0.001, self._tick)
        self._thread.start()

    def stop(self) -> None:
        self._running = False

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        gap = now - self.last
        if gap > 0.003:
            self.gaps.append((time.time(), gap, cpu - self.last_cpu, self._current_stacks))
        self._current_stacks = []
        self.last, self.last_cpu = now, cpu
        if self._running:
            self.loop.call_later(0.001, self._tick)

    def _sample(self) -> None:
        while self._running:
            time.sleep(0.0005)
            last = self.last
            if time.perf_counter() - last > self.stack_after_s:
                frame = sys._current_frames().get(self._main)
                if frame is not None:
                    stack = "".join(traceback.format_stack(frame, limit=8)[-6:])
                    if last == self.last:  # still the same gap
                        self._current_stacks.append(stack)


class Spans:
    """Wall-clock spans of named functions on the loop's thread, to put names on the gaps."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []  # (start, end, name), time.time()
        self._main = threading.get_ident()

    def wrap(self, owner: object, attribute: str, name: str | None = None) -> None:
        original = getattr(owner, attribute)
        label = name or f"{getattr(owner, '__name__', owner)}.{attribute}"
        spans, main = self.spans, self._main

        def timed(*args: object, **kwargs: object) -> object:
            started = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                spans.append((started, time.time(), label if threading.get_ident() == main
                              else f"[thread] {label}"))

        setattr(owner, attribute, timed)

    def gc_callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.time()
        else:
            self.spans.append((self._gc_started, time.time(),
                               f"gc generation {info['generation']}"))

    def within(self, start: float, end: float) -> list[tuple[float, str]]:
        found = collections.Counter[str]()
        for s, e, label in self.spans:
            overlap = min(e, end) - max(s, start)
            if overlap > 0:
                found[label] += overlap
        return sorted(((v, k) for k, v in found.items()), reverse=True)


def instrument(spans: Spans) -> None:
    import gc

    from distcache_core.persistence import manager
    from distcache_plugins.lmdb_snapshot import builder, frames
    from distcache_plugins.lmdb_snapshot import plugin as lmdb_plugin
    from distcache_plugins.lru_ttl import databases
    from distcache_plugins.mmap_snapshot import plugin as mmap_plugin

    gc.callbacks.append(spans.gc_callback)
    original_items = databases.DatabaseViews._items_of

    def items_of(self, key_type):  # type: ignore[no-untyped-def]
        started = time.time()
        generator = original_items(self, key_type)
        first = next(generator, None)
        spans.spans.append((started, time.time(), "engine items(): first item"))
        if first is not None:
            yield first
            yield from generator

    databases.DatabaseViews._items_of = items_of  # type: ignore[method-assign]
    for owner, attribute in ((mmap_plugin, "encode_keys"), (mmap_plugin, "encode_overlay"),
                             (frames, "encode_keys"), (frames, "encode_overlay"),
                             (mmap_plugin.MmapSnapshot, "snapshots"),
                             (lmdb_plugin.LmdbSnapshot, "snapshots"), (lmdb_plugin, "_delete"),
                             (mmap_plugin, "_delete"), (builder.BuilderProcess, "start"),
                             (builder.BuilderProcess, "finish"),
                             (mmap_plugin.SnapshotFileWriter, "publish"),
                             (manager.PersistenceManager, "_succeeded"),
                             (gc, "enable"), (gc, "disable"), (gc, "freeze")):
        spans.wrap(owner, attribute)


def write_load_file(path: Path, keys: int) -> None:
    head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
    with path.open("wb") as fh:
        for start in range(0, keys, 100_000):
            fh.write(b"".join(head + b"k:%014d\r\n$32\r\nv%031d\r\n" % (i, i)
                              for i in range(start, min(start + 100_000, keys))))


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="loop-lag-"))
    kind = args.kind
    sets = ['node.host="127.0.0.1"', "node.port=0", f'node.data_dir="{work / "data"}"',
            f'node.persistence=["{kind}"]', f"plugins.{kind}.after_writes=0",
            f"plugins.{kind}.interval_seconds=0", "plugins.lru_ttl.capacity=0",
            'node.log_level="warning"']
    node = Node.from_sources(ConfigSources.gather(None, sets))
    await node.start()
    await node.persistence.wait_recovered()
    port = node.port
    load = work / "load.resp"
    await asyncio.to_thread(write_load_file, load, args.keys)
    with load.open("rb") as fh:
        piped = await asyncio.create_subprocess_exec(
            "redis-cli", "-p", str(port), "--pipe", stdin=fh,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await piped.wait()
    load.unlink()
    print(f"loaded {len(node.engine):,} keys", flush=True)
    await asyncio.sleep(0.5)
    writer = await asyncio.create_subprocess_exec(
        "redis-benchmark", "-p", str(port), "-t", "set", "-c", "4", "-r", str(args.keys),
        "-n", "100000000", "-d", "32", "-q",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pinger = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PING_CLIENT, str(port), stdout=subprocess.PIPE)
    spans = Spans()
    instrument(spans)
    probe = LagProbe(asyncio.get_running_loop(), args.stack_after_ms / 1000)
    probe.start()
    await asyncio.sleep(1.0)
    base_start = time.time()
    await asyncio.sleep(args.baseline_seconds)
    base = sorted((g[1] for g in probe.gaps if g[0] >= base_start), reverse=True)
    base_cpu = max((g[2] for g in probe.gaps if g[0] >= base_start), default=0.0)
    print(f"baseline, {args.baseline_seconds:.0f} s without a snapshot: {len(base)} gaps > 3 ms; "
          "the longest: " + ", ".join(f"{g * 1000:.1f}" for g in base[:args.show])
          + f"; the most loop-thread CPU in one: {base_cpu * 1000:.1f} ms", flush=True)
    windows = []
    for round_no in range(args.rounds):
        started_wall, started = time.time(), time.perf_counter()
        node.persistence.bgsave()
        while node.persistence.checkpoint_in_progress:
            await asyncio.sleep(0.01)
        ended_wall = time.time()
        windows.append((started_wall, ended_wall))
        print(f"snapshot {round_no + 1}: {time.perf_counter() - started:.2f} s", flush=True)
        during = [g for g in probe.gaps if started_wall <= g[0] <= ended_wall + 0.05]
        worst = sorted(during, key=lambda g: -g[1])[:args.show]
        print(f"  {len(during)} gaps > 3 ms on the loop; the longest: "
              + ", ".join(f"{g[1] * 1000:.1f}" for g in worst), flush=True)
        busy = sorted(during, key=lambda g: -g[2])[:args.show]
        print("  the most loop-thread CPU in a gap: " + ", ".join(
            f"{g[2] * 1000:.1f} ms of {g[1] * 1000:.1f}" for g in busy), flush=True)
        for at, gap, cpu, stacks in worst + [g for g in busy[:2] if g not in worst]:
            print(f"--- gap {gap * 1000:.1f} ms ({cpu * 1000:.1f} ms CPU) at "
                  f"+{at - started_wall:.2f} s ({len(stacks)} samples): " + ", ".join(
                      f"{label} {seconds * 1000:.1f} ms"
                      for seconds, label in spans.within(at - gap, at)[:4]))
            for stack, count in collections.Counter(stacks).most_common(2):
                print(f"  [{count}x]\n{stack}")
        await asyncio.sleep(1.0)
    probe.stop()
    writer.kill()
    await writer.wait()
    pinger.terminate()
    out, _ = await pinger.communicate()
    samples = json.loads(out)
    for start, end in windows:
        during = [latency for at, latency in samples if start <= at <= end]
        print(f"PING client during the snapshot: {len(during)} PINGs, worst "
              f"{max(during, default=0) * 1000:.1f} ms")
    await node.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="mmap_snapshot",
                        choices=["mmap_snapshot", "lmdb_snapshot"])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--show", type=int, default=8)
    parser.add_argument("--baseline-seconds", type=float, default=2.0)
    parser.add_argument("--stack-after-ms", type=float, default=4.0)
    import uvloop

    uvloop.run(main(parser.parse_args()))
    os._exit(0)

"""The process that writes a snapshot environment, fed by the node through a pipe.

Why a process: the node's event loop must not do LMDB's work, and a thread of the node cannot
either. py-lmdb releases the GIL around every put; a thread that gives the GIL back once per
key waits for it again behind the busy loop (measured: 200 puts from a thread took 19.5 s
beside a loop running Python bytecode). Done on the loop instead, each slice's puts and commit
held it 4-22 ms beside a write load, and a commit that met the kernel's writeback throttling
434 ms (``bench/loop_lag.py``, 1M keys). Here the node only encodes each slice into a frame
(:mod:`.frames`, C loops) and its writer thread writes the frame into the pipe; this process,
on the other core, decodes the frames, puts the keys, applies the overlay, writes the meta,
syncs and renames the environment into place, and prints its size.

Run as ``python -m distcache_plugins.lmdb_snapshot.builder TEMPORARY MAP_SIZE``: frames on
stdin, the size on stdout, a failure's reason on stderr (exit status 1). A stdin that ends
without a ``FINISH`` frame means the node gave up: the environment is removed. The node keeps
one builder started ahead (the plugin's spare): starting Python and importing takes 0.2 s of
CPU, 0.4-0.8 s on the busy test machine, which a SAVE of a small keyspace would otherwise wait
for. A spare whose input ends before any frame exits without touching the disk.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from distcache_core.errors import PersistenceError
from distcache_core.persistence.files import write_all

from . import frames
from .layout import db_name, encode_items
from .store import EnvironmentWriter

#: How long a builder may take to go once its input is closed (a large environment's sync).
EXIT_TIMEOUT_SECONDS = 600
#: Added to the builder's nice value.
BUILDER_NICENESS = 10


def build(temporary: Path, map_size: int, stdin: object) -> int | None:
    """The builder's work: the environment's size in bytes once published, or None when the
    input ends before any frame (a spare builder the node did not need)."""
    incoming = frames.read_frames(stdin)  # type: ignore[arg-type]
    first = next(incoming, None)
    if first is None:
        return None
    writer = EnvironmentWriter(temporary, map_size)
    writer.open()
    try:
        for kind, payload in itertools.chain([first], incoming):
            if kind == frames.KEYS:
                db, keys, values, expiries = frames.decode_keys(payload)
                items = zip(keys, values, expiries, strict=True)
                writer.put_block(db_name(db), *encode_items(items))
            elif kind == frames.OVERLAY:
                writer.apply(frames.decode_overlay(payload))
            else:
                seq, created_at_ms, final = frames.decode_finish(payload)
                writer.finish(seq, created_at_ms)
                return writer.publish(Path(os.fsdecode(final)))
        raise PersistenceError("the node closed the pipe before the end of the snapshot")
    except BaseException:
        writer.abort()
        raise


def main(argv: list[str]) -> int:
    temporary, map_size = Path(argv[0]), int(argv[1])
    try:
        size = build(temporary, map_size, sys.stdin.buffer)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    if size is not None:
        print(size, flush=True)
    return 0


class BuilderProcess:
    """The node's side of one builder; every method runs on the plugin's writer thread
    (blocking pipe writes release the GIL)."""

    def __init__(self, temporary: Path, map_size: int) -> None:
        self.temporary = temporary
        self.map_size = map_size
        self._process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        # subprocess uses vfork here: no copy of the node's page tables, which a plain fork
        # of a 1M-key node takes ~10 ms to make while its other threads wait.
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.temporary), str(self.map_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            close_fds=True)
        # The node's loop comes first when the two want the same core (measured beside a
        # write load on 2 busy cores: the loop's longest waits 18-37 ms, 8-13 ms with this).
        pid = self._process.pid
        os.setpriority(os.PRIO_PROCESS, pid,
                       os.getpriority(os.PRIO_PROCESS, pid) + BUILDER_NICENESS)

    def send(self, frame: bytes) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            write_all(self._process.stdin.fileno(), frame)
        except BrokenPipeError:
            raise self._failure() from None

    def finish(self, seq: int, created_at_ms: int, final: Path) -> int:
        """Send ``FINISH``, wait for the builder to publish ``final``; its size in bytes."""
        self.send(frames.encode_finish(seq, created_at_ms, os.fsencode(final)))
        assert self._process is not None
        out, err = self._process.communicate(timeout=EXIT_TIMEOUT_SECONDS)
        if self._process.returncode != 0:
            raise self._failure(err)
        return int(out)

    def abort(self) -> None:
        """Stop the builder (it removes its environment when its input ends early)."""
        process = self._process
        if process is not None and process.returncode is None:
            try:
                process.communicate(timeout=EXIT_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()

    def _failure(self, err: bytes | None = None) -> PersistenceError:
        assert self._process is not None
        if err is None:
            _, err = self._process.communicate(timeout=EXIT_TIMEOUT_SECONDS)
        reason = err.decode("utf-8", "replace").strip().splitlines()
        return PersistenceError(f"the LMDB snapshot builder failed: "
                                f"{reason[-1] if reason else 'no reason given'} "
                                f"(exit status {self._process.returncode})")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

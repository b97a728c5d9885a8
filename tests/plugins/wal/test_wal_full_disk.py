"""A full disk, for real: the WAL on a small tmpfs filled up by another file.

Needs root to mount the tmpfs (``make test`` runs as root in CI); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distcache_core.errors import PersistenceError, PersistenceWriteError
from distcache_core.mutations import Cause, Mutation, Op
from distcache_core.testing.persistence_contract import engine_state, live, run

from .test_wal_recovery import harness, recover, recover_with_manager

ENOSPC_LINE = "MISCONF Errors writing to the AOF file: No space left on device"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    with open(path, "wb", buffering=0) as fh:
        chunk = b"\0" * 4096
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_full_disk_refuses_writes_with_misconf_and_recovers_when_space_returns(
        small_disk: Path, fsync: str) -> None:
    data_dir = small_disk / "data"
    filler = small_disk / "filler"

    async def go() -> dict:
        h = harness(data_dir, fsync=fsync)
        await h.start()
        status = h.manager.status
        h.apply(Mutation(Op.SET, 0, b"before", b"1"))
        await h.turn()
        fill(filler)
        for index in range(50):
            h.apply(Mutation(Op.SET, 0, b"during:%d" % index, b"x" * 100))
        barrier = h.manager.barrier()
        if fsync == "always":
            assert barrier is not None
            barrier = asyncio.ensure_future(barrier)
        await wait_for(lambda: status.write_error is not None)
        assert status.write_error == ENOSPC_LINE
        fields = dict(h.manager.info_fields())
        assert fields["aof_last_write_status"] == "err"
        # Records made once the failure is known come from expiry and eviction (writes are
        # refused): their barrier does not wait.
        h.apply(Mutation(Op.DEL, 0, b"during:0", cause=Cause.EXPIRED))
        assert h.manager.barrier() is None
        # Still full: the retry at the next tick fails again, nothing is lost meanwhile, and
        # the failed writes' barrier still waits: neither an error nor an OK.
        h.manager.tick(time.time())
        await asyncio.sleep(0.05)
        await wait_for(lambda: h.plugin.writer._inflight is None)
        assert status.write_error == ENOSPC_LINE
        if barrier is not None:
            assert not barrier.done()
        filler.unlink()
        h.manager.tick(time.time())  # space is back: the retry writes the buffered records
        await wait_for(lambda: status.write_error is None)
        if barrier is not None:
            await asyncio.wait_for(barrier, 10)  # the held writes are durable: OK at last
        h.apply(Mutation(Op.SET, 0, b"after", b"2"))
        await h.turn()
        assert dict(h.manager.info_fields())["aof_last_write_status"] == "ok"
        await h.stop()
        return live(h.model)

    expected = run(go())
    assert len(expected) == 51  # "before", "after" and 49 of the 50 (one expired)
    assert recover(data_dir)[0] == expected


def test_checkpoint_on_a_full_disk_fails_cleanly_and_the_log_stays_whole(small_disk: Path
                                                                        ) -> None:
    data_dir = small_disk / "data"
    filler = small_disk / "filler"

    async def go() -> dict:
        h = harness(data_dir)
        await h.start()
        for index in range(200):
            h.apply(Mutation(Op.SET, 0, b"k%d" % index, b"v" * 200))
        await h.turn()
        fill(filler)
        with pytest.raises(PersistenceError, match="No space left on device"):
            await h.manager.save()
        assert dict(h.manager.info_fields())["rdb_last_bgsave_status"] == "err"
        assert not list((data_dir / "wal").glob(".tmp-*"))  # the half-written base is gone
        filler.unlink()
        await h.manager.save()
        assert engine_state(h.databases) == live(h.model)
        await h.stop()
        return live(h.model)

    expected = run(go())
    assert recover_with_manager(data_dir)[0] == expected  # the base, then the log


def test_writes_held_on_a_full_disk_are_gone_if_the_node_stops_first(small_disk: Path
                                                                     ) -> None:
    """fsync = always: the writes whose records failed were never acknowledged; stopping
    before space returns releases their barrier with the error (their clients are gone by
    then) and a restart does not have them."""
    data_dir = small_disk / "data"
    filler = small_disk / "filler"

    async def go() -> None:
        h = harness(data_dir)
        await h.start()
        h.apply(Mutation(Op.SET, 0, b"before", b"1"))
        await h.turn()
        fill(filler)
        h.apply(Mutation(Op.SET, 0, b"during", b"x" * 10_000))
        barrier = asyncio.ensure_future(h.manager.barrier())
        await wait_for(lambda: h.manager.status.write_error is not None)
        await asyncio.sleep(0.05)
        assert not barrier.done()
        await h.stop()  # the last write at close fails too
        with pytest.raises(PersistenceWriteError, match="No space left on device"):
            await barrier

    run(go())
    (small_disk / "filler").unlink()
    assert recover(data_dir)[0] == {(0, b"before"): (b"1", None)}

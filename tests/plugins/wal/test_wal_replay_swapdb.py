"""Replaying SETs around a SWAPDB: recovery resolves a database's engine once for a run of SET
records (RecoveryTarget.apply_set) and must resolve it again after the swap."""

from __future__ import annotations

from pathlib import Path

from distcache_core.mutations import Mutation, Op
from distcache_core.testing.persistence_contract import Harness, engine_state, run
from distcache_plugins.wal import WalPersistence, WalSettings

from .test_wal_contract import databases


def test_sets_after_a_swapdb_replay_into_the_swapped_databases(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    def harness() -> Harness:
        return Harness(WalPersistence(WalSettings(fsync="always"), data_dir), data_dir,
                       databases(2))

    async def first_life() -> dict:
        h = harness()
        await h.start()
        for mutation in (Mutation(Op.SET, 0, b"a", b"zero"), Mutation(Op.SET, 1, b"b", b"one"),
                         Mutation(Op.SWAPDB, 0, b"", other_db=1),
                         Mutation(Op.SET, 0, b"c", b"after"), Mutation(Op.SET, 1, b"d", b"x"),
                         Mutation(Op.SWAPDB, 0, b"", other_db=1),
                         Mutation(Op.SET, 0, b"e", b"back")):
            h.apply(mutation)
        await h.turn()
        state = engine_state(h.databases)
        await h.stop()
        return state

    expected = run(first_life())
    assert expected == {(0, b"a"): (b"zero", None), (0, b"d"): (b"x", None),
                        (0, b"e"): (b"back", None), (1, b"b"): (b"one", None),
                        (1, b"c"): (b"after", None)}

    async def second_life() -> dict:
        h = harness()
        await h.start()
        state = engine_state(h.databases)
        await h.stop(save=False)
        return state

    assert run(second_life()) == expected

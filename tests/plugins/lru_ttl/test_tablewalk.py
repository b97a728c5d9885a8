"""The in-place walk of a dict's table (plugins/lru_ttl/tablewalk.py) and the engine's items()
built on it: exact under the writes a snapshot sees between slices, KeyspaceChanged on a resize,
and the plain copy when the interpreter is not the one it checked."""

from __future__ import annotations

import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_core.contracts import KeyspaceChanged
from distcache_plugins.lru_ttl import tablewalk
from distcache_plugins.lru_ttl.engine import LruTtlEngine
from distcache_plugins.lru_ttl.tablewalk import CHUNK_KEYS, TableWalk


def test_the_walk_resumes_in_place_on_this_interpreter() -> None:
    if sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13):
        assert tablewalk.RESUMABLE
    assert tablewalk._self_check() is tablewalk.RESUMABLE


def headroom(table: dict[object, object]) -> int:
    """Inserts the dict takes before its entry array is full (then it resizes)."""
    probe = dict(table)  # same size class, as compact as the original at best
    size = sys.getsizeof(probe)
    added = 0
    while sys.getsizeof(probe) == size:
        probe[("probe", added)] = None
        added += 1
    return added - 1 - (tablewalk._entries(table) - len(table))


def walk_with_writes(table: dict[object, object], rng: random.Random, writes: int
                     ) -> tuple[list[object], list[object]]:
    """Walk ``table``, making ``writes`` random changes between chunks (deletes, inserts of new
    keys, deleted keys added back, value updates), none resizing it. Returns what the walk
    yielded and what it must yield: every key present at the start whose entry was still
    there when the walk reached it, in table order."""
    original = list(table)
    index = {key: i for i, key in enumerate(original)}
    dead_before_reached: set[object] = set()
    deleted: list[object] = []
    budget = headroom(table) // 2
    frontier = -1
    yielded: list[object] = []
    for chunk in TableWalk(table):
        yielded.extend(chunk)
        frontier = index.get(chunk[-1], frontier)
        for _ in range(writes):
            roll = rng.random()
            live = [key for key in original if key in table]
            if roll < 0.4 and live:
                key = rng.choice(live)
                del table[key]
                deleted.append(key)
                if index[key] > frontier:
                    dead_before_reached.add(key)
            elif roll < 0.6 and budget > 0:
                budget -= 1
                table[("new", rng.random())] = None
            elif roll < 0.8 and deleted and budget > 0:
                budget -= 1
                table[deleted.pop(rng.randrange(len(deleted)))] = "back"  # a new entry
            elif live:
                table[rng.choice(live)] = "updated"  # in place
    expected = [key for key in original if key not in dead_before_reached]
    return yielded, expected


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 6 * CHUNK_KEYS), writes=st.integers(0, 40), seed=st.integers())
def test_walk_yields_exactly_the_keys_present_throughout(size: int, writes: int,
                                                         seed: int) -> None:
    table: dict[object, object] = {b"k%d" % i: i for i in range(size)}
    yielded, expected = walk_with_writes(table, random.Random(seed), writes)
    assert yielded == expected


def test_walk_stops_before_keys_added_behind_a_run_of_deleted_entries() -> None:
    table = {key: None for key in range(4 * CHUNK_KEYS)}
    walk = TableWalk(table)
    first = next(walk)
    for key in range(CHUNK_KEYS, 4 * CHUNK_KEYS):
        del table[key]  # everything after the first chunk
    table["added"] = None
    del table[first[0]]
    table[first[0]] = None  # yielded already, added back at the end
    assert list(walk) == []
    assert first == list(range(CHUNK_KEYS))


def test_a_resize_between_chunks_raises_keyspace_changed() -> None:
    table = {key: None for key in range(4 * CHUNK_KEYS)}
    walk = TableWalk(table)
    next(walk)
    for key in range(4 * CHUNK_KEYS, 40 * CHUNK_KEYS):
        table[key] = None
    with pytest.raises(KeyspaceChanged):
        next(walk)


def test_a_clear_between_chunks_raises_keyspace_changed() -> None:
    table = {key: None for key in range(4 * CHUNK_KEYS)}
    walk = TableWalk(table)
    next(walk)
    table.clear()
    with pytest.raises(KeyspaceChanged):
        next(walk)


def test_without_the_check_passing_the_walk_copies_the_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tablewalk, "RESUMABLE", False)
    table = {key: None for key in range(3 * CHUNK_KEYS)}
    walk = TableWalk(table)
    first = next(walk)
    table.clear()  # the copy does not notice: the engine filters removed keys itself
    assert first + [key for chunk in walk for key in chunk] == list(range(3 * CHUNK_KEYS))


def test_engine_items_across_writes_in_every_database() -> None:
    engine = LruTtlEngine(capacity=0)
    other = engine.open_database(1)
    for i in range(5 * CHUNK_KEYS):
        engine.set(b"k%d" % i, b"zero")
        other.set(b"k%d" % i, b"one")
    for database, value in ((engine, b"zero"), (other, b"one")):
        seen = []
        for count, (key, stored, expiry) in enumerate(database.items()):
            assert (stored, expiry) == (value, None)
            seen.append(key)
            if count == 0:
                for i in range(4 * CHUNK_KEYS, 5 * CHUNK_KEYS):
                    database.delete(b"k%d" % i)  # not reached yet: skipped
                database.set(b"fresh", b"v")  # added meanwhile: not yielded
                database.get(b"k3")  # a use moves it in the LRU order, not in the table
        assert seen == [b"k%d" % i for i in range(4 * CHUNK_KEYS)]
        assert all(type(key) is bytes for key in seen)


def test_engine_items_raises_keyspace_changed_when_its_dict_is_resized() -> None:
    engine = LruTtlEngine(capacity=0)
    for i in range(4 * CHUNK_KEYS):
        engine.set(b"k%d" % i, b"v")
    items = engine.items()
    next(items)
    for i in range(40 * CHUNK_KEYS):
        engine.set(b"more%d" % i, b"v")
    with pytest.raises(KeyspaceChanged):
        list(items)

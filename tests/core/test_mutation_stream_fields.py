"""The mutation stream's fast form (``subscribe(callback, fields)``, an engine's
``set_change_listener``), on a real engine family: while every subscriber takes fields, no
Mutation is built and each subscriber gets the same changes, numbered the same way, as the
Mutation form would have given it; one Mutation-only subscriber switches everyone back to
Mutations, and leaving switches the fast form on again."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_core.databases import Databases
from distcache_core.mutations import Cause, Mutation, MutationStream, Op, replay
from distcache_plugins.lru_ttl import LruTtlEngine


class Node:
    def __init__(self, capacity: int = 0) -> None:
        self.engine = LruTtlEngine(capacity=capacity)
        self.databases = Databases(self.engine, 3)
        self.mutations = MutationStream()
        self.mutations.bind(self.databases.set_listener)


class FieldsRecorder:
    """A subscriber with both forms; ``as_fields`` counts the changes that came as fields."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self.as_fields = 0

    def record(self, mutation: Mutation) -> None:
        self.seen.append((mutation.seq, int(mutation.op), mutation.db, mutation.key,
                          mutation.value, mutation.expire_at_ms, int(mutation.cause)))

    def record_fields(self, seq: int, op: int, db: int, key: bytes, value: bytes | None,
                      expire_at_ms: int | None, cause: int) -> None:
        self.as_fields += 1
        self.seen.append((seq, int(op), db, key, value, expire_at_ms, int(cause)))


def as_tuple(mutation: Mutation) -> tuple[Any, ...]:
    return (mutation.seq, int(mutation.op), mutation.db, mutation.key, mutation.value,
            mutation.expire_at_ms, int(mutation.cause))


FAR = int(time.time() * 1000) + 3_600_000
STEP = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from([b"a", b"b", b"c"]),
              st.sampled_from([b"1", b"vv", b""]), st.sampled_from([None, FAR])),
    st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from([b"a", b"b"])),
    st.tuples(st.just("expire"), st.integers(0, 2), st.sampled_from([b"a", b"c"])),
    st.tuples(st.just("persist"), st.integers(0, 2), st.sampled_from([b"a", b"c"])),
    st.tuples(st.just("incr"), st.integers(0, 2), st.sampled_from([b"n", b"a"])),
    st.tuples(st.just("flushdb"), st.integers(0, 2)),
    st.tuples(st.just("swap"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("restore"), st.integers(0, 2), st.sampled_from([b"a", b"r"])),
)


def run(node: Node, step: tuple[Any, ...]) -> None:
    name, db = step[0], step[1]
    engine = node.databases[db]
    if name == "set":
        engine.set(step[2], step[3], step[4])
    elif name == "delete":
        engine.delete(step[2])
    elif name == "expire":
        engine.expire_at(step[2], FAR)
    elif name == "persist":
        engine.persist(step[2])
    elif name == "incr":
        try:
            engine.incr_by(step[2], 3)
        except Exception:
            pass
    elif name == "flushdb":
        engine.clear()
    elif name == "swap":
        node.databases.swap(db, step[2])
    elif name == "restore":
        engine.restore(step[2], b"restored", None)


@settings(max_examples=60, deadline=None)
@given(st.lists(STEP, max_size=30), st.lists(STEP, max_size=30))
def test_fields_and_mutations_give_the_same_changes(first: list[Any], second: list[Any]
                                                    ) -> None:
    """The same steps on two nodes: one whose sole subscriber takes fields, one whose
    subscriber takes Mutations only. Then a Mutation-only subscriber joins the first node
    (everyone gets Mutations) and the same again; the records must be equal throughout."""
    fast, slow = Node(), Node()
    fast_sub = FieldsRecorder()
    slow_seen: list[Mutation] = []
    fast.mutations.subscribe(fast_sub.record, fast_sub.record_fields)
    slow.mutations.subscribe(slow_seen.append)
    for step in first:
        run(fast, step)
        run(slow, step)
    swaps = sum(1 for step in first if step[0] == "swap" and step[1] != step[2])
    assert fast_sub.as_fields == len(slow_seen) - swaps  # SWAPDB alone came as a Mutation
    joined: list[Mutation] = []
    fast.mutations.subscribe(joined.append)
    before = fast_sub.as_fields
    for step in second:
        run(fast, step)
        run(slow, step)
    assert fast_sub.as_fields == before  # a Mutation-only subscriber: no fields at all
    assert fast_sub.seen == [as_tuple(m) for m in slow_seen]
    assert [as_tuple(m) for m in joined] == fast_sub.seen[len(fast_sub.seen) - len(joined):]
    assert fast.mutations.seq == slow.mutations.seq == len(slow_seen)


def test_the_fast_form_returns_when_the_mutation_subscriber_leaves() -> None:
    node = Node()
    sub = FieldsRecorder()
    node.mutations.subscribe(sub.record, sub.record_fields)
    watcher: list[Mutation] = []
    node.mutations.subscribe(watcher.append)
    node.engine.set(b"k", b"1")
    assert sub.as_fields == 0 and len(watcher) == 1
    node.mutations.unsubscribe(watcher.append)
    node.engine.set(b"k", b"2")
    node.databases[2].set(b"k", b"3")  # a database opened later gets the fast form too
    assert sub.as_fields == 2 and len(watcher) == 1
    assert [s[:5] for s in sub.seen] == [(1, 1, 0, b"k", b"1"), (2, 1, 0, b"k", b"2"),
                                         (3, 1, 2, b"k", b"3")]
    node.mutations.unsubscribe(sub.record)
    node.engine.set(b"k", b"4")
    assert node.mutations.seq == 3 and not node.mutations.active


def test_evictions_come_as_fields_with_their_cause() -> None:
    node = Node(capacity=2)
    sub = FieldsRecorder()
    node.mutations.subscribe(sub.record, sub.record_fields)
    for key in (b"a", b"b", b"c"):
        node.engine.set(key, b"v")
    assert [(s[1], s[3], s[6]) for s in sub.seen] == [
        (Op.SET, b"a", Cause.COMMAND), (Op.SET, b"b", Cause.COMMAND),
        (Op.DEL, b"a", Cause.EVICTED), (Op.SET, b"c", Cause.COMMAND)]


class MutationOnlyEngine:
    """An engine written before the fast form: it offers ``set_listener`` alone."""

    def __init__(self) -> None:
        self._engine = LruTtlEngine(capacity=0)

    def set_listener(self, listener: Any) -> None:
        self._engine.set_listener(listener)

    def set(self, key: bytes, value: bytes) -> None:
        self._engine.set(key, value)


def test_an_engine_without_the_fast_form_still_reports_mutations() -> None:
    engine = MutationOnlyEngine()
    databases = Databases(engine, 1)  # type: ignore[arg-type]
    stream = MutationStream()
    stream.bind(databases.set_listener)
    sub = FieldsRecorder()
    stream.subscribe(sub.record, sub.record_fields)
    engine.set(b"k", b"v")
    assert sub.seen == [(1, 1, 0, b"k", b"v", None, 0)] and sub.as_fields == 0


def test_replaying_fields_reproduces_the_keyspace() -> None:
    node = Node()
    sub = FieldsRecorder()
    node.mutations.subscribe(sub.record, sub.record_fields)
    for step in [("set", 0, b"a", b"1", FAR), ("set", 1, b"b", b"2", None),
                 ("incr", 1, b"n"), ("expire", 1, b"b"), ("delete", 0, b"x"),
                 ("flushdb", 0), ("set", 2, b"c", b"", None)]:
        run(node, step)
    copy = Databases(LruTtlEngine(capacity=0), 3)
    replay([Mutation(Op(op), db, key, value, expire_at_ms, Cause(cause))
            for _, op, db, key, value, expire_at_ms, cause in sub.seen], copy)
    for db in range(3):
        assert sorted(copy[db].items()) == sorted(node.databases[db].items())

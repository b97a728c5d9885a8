"""The stream of applied writes: one :class:`Mutation` per change to the keyspace.

Every change, whoever made it, is emitted once, after it is applied, in the order it was
applied: a command's effect as a whole value with an absolute expiry (SET with ``EX 10`` is a
``SET`` with ``expire_at_ms``; INCR and APPEND are a ``SET`` of the resulting value), deletions,
expiry changes, flushes, and the engine's own removals (eviction, lazy and active expiry) as
``DEL`` with their :class:`Cause`. A write that changes nothing emits nothing.

The storage engine emits them (it alone sees evictions and expirations) by calling the listener
the node gives it through ``StorageEngine.set_listener``; the node's :class:`MutationStream`
numbers them and hands them to its subscribers (the WAL, replication, rebalancing, WATCH).
With no subscriber the engine has no listener and the stream costs one ``is None`` test per
write.

The fast form. An engine may also offer ``set_change_listener(listener)``: it then reports a
change as its fields, ``listener(op, db, key, value, expire_at_ms, cause)`` (a
:data:`ChangeListener`; ``op`` and ``cause`` may be plain ints), and builds no object. A
subscriber may likewise give the stream a :data:`FieldsListener` beside its callback
(``subscribe(callback, fields)``): ``fields(seq, op, db, key, value, expire_at_ms, cause)``
(``op`` and ``cause`` plain ints or the enums). While every subscriber has one (the WAL alone,
the usual case), an engine's change reaches them as fields and no :class:`Mutation` is built:
two Python calls per write from the engine to the WAL's buffer, against six. As soon as one
subscriber takes only Mutations (replication, WATCH, a snapshot in progress), every
subscriber gets the same :class:`Mutation` through its callback, as before, so a field a
subscriber stamps on it (replication's ``version``) is seen by those after it. Changes
reported as a :class:`Mutation` (``SWAPDB``, engines without the fast form) always go to the
callbacks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any


class Op(enum.IntEnum):
    """What changed. The values are part of the WAL format: never renumber."""

    #: ``key`` now holds ``value`` with ``expire_at_ms`` (None: no expiry).
    SET = 1
    #: ``key`` is gone.
    DEL = 2
    #: ``key`` keeps its value; its expiry becomes ``expire_at_ms`` (None: PERSIST).
    EXPIRE = 3
    #: Database ``db`` is empty.
    FLUSHDB = 4
    #: Every database is empty (``db`` is 0).
    FLUSHALL = 5
    #: Databases ``db`` and ``other_db`` swapped contents (SWAPDB).
    SWAPDB = 6


class Cause(enum.IntEnum):
    """Why it changed. Replication propagates only what the owner decided; a replica that
    drops a copy to free memory does not tell the others (see the cluster design)."""

    COMMAND = 0
    EVICTED = 1
    EXPIRED = 2
    #: ``StorageEngine.restore``: recovery, a replica applying its owner's write, a key moved
    #: by rebalancing. Logged by the WAL (a moved key must survive a restart of its new owner).
    RESTORE = 3


class ValueType(enum.IntEnum):
    """The type of ``value``; strings only today, room for the others. Part of the WAL format."""

    NONE = 0
    STRING = 1


class Mutation:
    """One applied change. Plain slots, not attrs: one is built per write when anything
    listens, so construction cost matters.

    :ivar op: :class:`Op`.
    :ivar db: logical database index (``SELECT n``).
    :ivar key: the key (``b""`` for FLUSHDB, FLUSHALL, SWAPDB).
    :ivar value: the whole new value for ``SET``, else None.
    :ivar expire_at_ms: absolute Unix ms expiry for ``SET`` and ``EXPIRE``; None for none.
    :ivar cause: :class:`Cause`.
    :ivar value_type: :class:`ValueType` of ``value``.
    :ivar other_db: the second database of ``SWAPDB``.
    :ivar seq: this node's sequence number, set by the :class:`MutationStream` (1, 2, ...).
    :ivar version: a replication version (0 until the cluster assigns one).
    """

    __slots__ = ("op", "db", "key", "value", "expire_at_ms", "cause", "value_type",
                 "other_db", "seq", "version")

    def __init__(self, op: Op, db: int, key: bytes, value: bytes | None = None,
                 expire_at_ms: int | None = None, cause: Cause = Cause.COMMAND,
                 value_type: ValueType = ValueType.STRING, other_db: int = 0) -> None:
        self.op = op
        self.db = db
        self.key = key
        self.value = value
        self.expire_at_ms = expire_at_ms
        self.cause = cause
        self.value_type = value_type if value is not None else ValueType.NONE
        self.other_db = other_db
        self.seq = 0
        self.version = 0

    def __repr__(self) -> str:
        fields = [f"{self.op.name}", f"db={self.db}", f"key={self.key!r}"]
        if self.value is not None:
            shown = self.value if len(self.value) <= 32 else self.value[:32] + b"..."
            fields.append(f"value={shown!r}")
        if self.expire_at_ms is not None:
            fields.append(f"expire_at_ms={self.expire_at_ms}")
        if self.cause is not Cause.COMMAND:
            fields.append(f"cause={self.cause.name}")
        if self.op is Op.SWAPDB:
            fields.append(f"other_db={self.other_db}")
        return f"Mutation({', '.join(fields)}, seq={self.seq})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mutation):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


#: What an engine calls for each applied change.
MutationListener = Callable[[Mutation], None]
#: The fast form an engine may call instead: (op, db, key, value, expire_at_ms, cause).
ChangeListener = Callable[[int, int, bytes, "bytes | None", "int | None", int], None]
#: The fast form a subscriber may take: (seq, op, db, key, value, expire_at_ms, cause).
FieldsListener = Callable[[int, int, int, bytes, "bytes | None", "int | None", int], None]

_OPS = {int(op): op for op in Op}
_CAUSES = {int(cause): cause for cause in Cause}


def to_mutation_listener(listener: MutationListener) -> ChangeListener:
    """A :data:`ChangeListener` that builds the :class:`Mutation` and calls ``listener``: how
    an engine with the fast form serves ``set_listener``."""
    ops, causes = _OPS, _CAUSES

    def change(op: int, db: int, key: bytes, value: bytes | None, expire_at_ms: int | None,
               cause: int) -> None:
        listener(Mutation(ops[op], db, key, value, expire_at_ms, causes[cause]))

    return change


class MutationStream:
    """Numbers the engine's mutations and fans them out to subscribers, in order.

    Subscribers register at start-up (``node.mutations.subscribe(callback)``), never per
    request. A subscriber must not raise: an exception is logged by the caller's
    ``internal error`` path and the write has already happened. ``seq`` is the number of the
    last mutation emitted; the server compares it before and after a batch to know whether the
    batch wrote (and so must wait for the durability barrier).
    """

    __slots__ = ("seq", "_subscribers", "_fields", "_attach", "changes")

    def __init__(self) -> None:
        self.seq = 0
        self._subscribers: list[MutationListener] = []
        #: Each subscriber's fast form, or None, in the same order.
        self._fields: list[FieldsListener | None] = []
        #: Called with the stream's listeners (or None, None) when they change: the first
        #: subscriber arrives, the last leaves, or the fast form starts or stops applying.
        self._attach: Callable[[MutationListener | None, ChangeListener | None], None] | None
        self._attach = None
        #: What engines with the fast form call now (None: nobody listens).
        self.changes: ChangeListener | None = None

    def bind(self, attach: Callable[[MutationListener | None, ChangeListener | None], None]
             ) -> None:
        """Called by the node once: how to hand ``emit`` and ``changes`` to its engines
        (``Databases.set_listener``)."""
        self._attach = attach
        self._rebind()

    def subscribe(self, callback: MutationListener, fields: FieldsListener | None = None
                  ) -> None:
        """``callback(mutation)`` for every change; ``fields``, if given, is the same
        subscriber's fast form (see the module docstring), which must record exactly what
        ``callback`` would."""
        self._subscribers.append(callback)
        self._fields.append(fields)
        self._rebind()

    def unsubscribe(self, callback: MutationListener) -> None:
        index = self._subscribers.index(callback)
        del self._subscribers[index]
        del self._fields[index]
        self._rebind()

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def emit(self, mutation: Mutation) -> None:
        self.seq = mutation.seq = self.seq + 1
        for subscriber in self._subscribers:
            subscriber(mutation)

    def _emit_change(self, op: int, db: int, key: bytes, value: bytes | None,
                     expire_at_ms: int | None, cause: int) -> None:
        """The change listener while some subscriber takes only Mutations."""
        mutation = Mutation(_OPS[op], db, key, value, expire_at_ms, _CAUSES[cause])
        self.seq = mutation.seq = self.seq + 1
        for subscriber in self._subscribers:
            subscriber(mutation)

    def _rebind(self) -> None:
        changes: ChangeListener | None
        if not self._subscribers:
            changes = None
        elif None in self._fields:
            changes = self._emit_change
        else:
            changes = self._fields_emitter([f for f in self._fields if f is not None])
        self.changes = changes
        if self._attach is not None:
            self._attach(self.emit if changes is not None else None, changes)

    def _fields_emitter(self, subscribers: list[FieldsListener]) -> ChangeListener:
        stream = self
        if len(subscribers) == 1:
            (sole,) = subscribers

            def change(op: int, db: int, key: bytes, value: bytes | None,
                       expire_at_ms: int | None, cause: int) -> None:
                stream.seq = seq = stream.seq + 1
                sole(seq, op, db, key, value, expire_at_ms, cause)

            return change

        def change_all(op: int, db: int, key: bytes, value: bytes | None,
                       expire_at_ms: int | None, cause: int) -> None:
            stream.seq = seq = stream.seq + 1
            for fields in subscribers:
                fields(seq, op, db, key, value, expire_at_ms, cause)

        return change_all


def replay(mutations: Any, engines: Any) -> None:
    """Apply ``mutations`` in order to ``engines`` (a sequence indexed by database), through
    ``restore``/``delete``/``expire_at``/``clear``: how the WAL recovers and how tests prove
    that the stream reproduces the keyspace."""
    for m in mutations:
        op = m.op
        if op == Op.SET:
            engines[m.db].restore(m.key, m.value, m.expire_at_ms)
        elif op == Op.DEL:
            engines[m.db].delete(m.key)
        elif op == Op.EXPIRE:
            engine = engines[m.db]
            if m.expire_at_ms is None:
                engine.persist(m.key)
            else:
                engine.expire_at(m.key, m.expire_at_ms)
        elif op == Op.FLUSHDB:
            engines[m.db].clear()
        elif op == Op.FLUSHALL:
            for engine in engines:
                engine.clear()
        elif op == Op.SWAPDB:
            engines.swap(m.db, m.other_db) if hasattr(engines, "swap") else _swap(
                engines, m.db, m.other_db)


def _swap(engines: Any, a: int, b: int) -> None:
    engines[a], engines[b] = engines[b], engines[a]

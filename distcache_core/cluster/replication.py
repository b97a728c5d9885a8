"""Replication: every write applied here reaches the key's other copies, versioned.

The replicator subscribes to the node's mutation stream. For each change a command made on
this node (the key's coordinator: its owner, or the first replica up while the owner is down)
it takes a new version (:class:`~.versions.VersionClock`), records it, and sends the change as
``DC.APPLY db version op key [value expire_at_ms]`` to the other nodes of the key's
preference list over their ``final`` links (pipelined: one write per peer per loop turn).
A replica applies a change only when its version is newer than the one it holds (live or
deleted), so copies converge on the last write whatever order changes arrive in, and a copy
that was down never brings back a deleted key.

Only the owner decides evictions and expirations: an eviction or expiry on the key's owner is
replicated as a versioned delete; on any other node it drops the local copy and tells no one.
Expiry times travel as absolute Unix ms, so every copy expires at the same moment anyway.

A change for a peer that is down, or whose send fails, is kept as a hint (:mod:`.hints`) and
handed over when the peer answers again. ``cluster.write_ack`` says what a write waits for
before its reply: ``one`` (this node's copy), ``quorum`` (a majority of the R copies) or
``all``; a write that cannot reach enough copies is refused before it is applied
(``-NOREPLICAS``), and one whose replicas do not confirm in time reports so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..errors import CommandError
from ..mutations import Cause, Mutation, Op
from .hints import HintStore
from .peer import MODE_FINAL, LinkFailure
from .resp import encode_command, is_error
from .versions import VersionClock, VersionMap

log = logging.getLogger("distcache.cluster.replication")

OP_NAMES = {Op.SET: b"SET", Op.DEL: b"DEL", Op.EXPIRE: b"EXPIRE"}
APPLY = b"DC.APPLY"


def apply_request(db: int, version: int, op: Op, key: bytes, value: bytes | None = None,
                  expire_at_ms: int | None = None) -> bytes:
    """The ``DC.APPLY`` request for one versioned change."""
    expire = b"" if expire_at_ms is None else b"%d" % expire_at_ms
    if op is Op.SET:
        assert value is not None
        return encode_command(APPLY, db, version, b"SET", key, value, expire)
    if op is Op.EXPIRE:
        return encode_command(APPLY, db, version, b"EXPIRE", key, expire)
    return encode_command(APPLY, db, version, b"DEL", key)


class Replicator:
    """The mutation-stream subscriber and the ``DC.APPLY`` side of replication."""

    def __init__(self, cluster: Any, *, replication_factor: int, write_ack: str,
                 versions: VersionMap, clock: VersionClock, hints: HintStore) -> None:
        self.cluster = cluster
        self.replication_factor = replication_factor
        self.write_ack = write_ack
        #: Replica acknowledgements a write waits for (this node's own copy is the first).
        self.acks_needed = {"one": 0, "quorum": replication_factor // 2,
                            "all": replication_factor - 1}[write_ack]
        self.versions = versions
        self.clock = clock
        self.hints = hints
        #: > 0 while replication or a move changes the keyspace here: those changes are not
        #: this node's writes and are not sent on.
        self.muted = 0
        #: The version of the change being applied while muted (stamped on its mutation).
        self.applying_version = 0
        #: While a write command runs under write_ack quorum/all: its replicas' ack futures.
        self.ack_scope: list[list[asyncio.Future[bool]]] | None = None
        self.sent = self.applied = self.stale = 0
        self._handovers: dict[str, asyncio.Task[None]] = {}

    # -- this node's writes --------------------------------------------------------------------

    def on_mutation(self, mutation: Mutation) -> None:
        """The mutation stream's subscriber (every applied change, in order)."""
        cause = mutation.cause
        if cause is Cause.COMMAND:
            if self.muted:
                mutation.version = self.applying_version
                return
        elif cause is Cause.RESTORE:
            mutation.version = self.applying_version if self.muted else 0
            return
        op = mutation.op
        if op is Op.SET or op is Op.DEL or op is Op.EXPIRE:
            key = mutation.key
            db = mutation.db
            if cause is not Cause.COMMAND and not self.cluster.owns(key):
                # Evicted or expired here, on a copy this node does not own: local only.
                self.versions.drop(db, key)
                return
            version = mutation.version = self.clock.next()
            if op is Op.DEL:
                self.versions.delete(db, key, version)
            else:
                self.versions.set(db, key, version)
            self._send(db, key, apply_request(db, version, op, key, mutation.value,
                                              mutation.expire_at_ms))
        elif op is Op.FLUSHDB:
            self.versions.clear(mutation.db)
        elif op is Op.FLUSHALL:
            self.versions.clear()
        elif op is Op.SWAPDB:
            self.versions.swap(mutation.db, mutation.other_db)

    def _send(self, db: int, key: bytes, payload: bytes) -> None:
        cluster = self.cluster
        targets = cluster.replica_targets(key)
        if not targets:
            return
        scope = self.ack_scope
        futures: list[asyncio.Future[bool]] | None = [] if scope is not None else None
        pool = cluster.pool
        down = cluster.down
        for node_id in targets:
            client = pool.clients.get(node_id)
            if client is None or node_id in down:
                self.hints.add(node_id, payload)
                continue
            if futures is not None:
                future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                futures.append(future)
                sent = client.send(MODE_FINAL, payload, self._acked, (node_id, future),
                                   hint=payload)
            else:
                sent = client.send(MODE_FINAL, payload, self._sent, node_id, hint=payload)
            if sent:
                self.sent += 1
            else:
                self.hints.add(node_id, payload)
                if futures is not None:
                    futures[-1].set_result(False)
        if scope is not None and futures is not None:
            scope.append(futures)

    def _sent(self, node_id: str, result: Any) -> None:
        if type(result) is bytes and is_error(result):
            log.warning("replica %s refused a change: %s", node_id,
                        result[1:].strip().decode("utf-8", "replace"))

    def _acked(self, arg: tuple[str, asyncio.Future[bool]], result: Any) -> None:
        node_id, future = arg
        ok = type(result) is bytes and not is_error(result)
        if not ok and not isinstance(result, LinkFailure):
            self._sent(node_id, result)
        if not future.done():
            future.set_result(ok)

    # -- write_ack -----------------------------------------------------------------------------

    def check_replicas(self, key: bytes) -> None:
        """Refuse a write before it is applied when too few of its copies are up."""
        targets = self.cluster.replica_targets(key)
        down = [node for node in targets if node in self.cluster.down]
        if len(targets) - len(down) < self.acks_needed:
            raise CommandError(
                f"NOREPLICAS Not enough good replicas to write (write_ack={self.write_ack}: "
                f"{', '.join(down) or 'too few nodes'} down)")

    def with_acks(self, handler: Callable[[Any, list[bytes]], Any], key_position: int
                  ) -> Callable[[Any, list[bytes]], Any]:
        """``handler`` (a write) made to wait for its replicas per ``write_ack``."""
        replicator = self

        def acked(conn: Any, argv: list[bytes]) -> Any:
            if key_position and len(argv) > key_position:
                replicator.check_replicas(argv[key_position])
            scope: list[list[asyncio.Future[bool]]] = []
            replicator.ack_scope = scope
            try:
                reply = handler(conn, argv)
            finally:
                replicator.ack_scope = None
            if not scope:
                return reply
            return replicator._wait(reply, scope)

        return acked

    async def _wait(self, reply: Any, scope: list[list[asyncio.Future[bool]]]) -> Any:
        for futures in scope:
            results = await asyncio.gather(*futures)
            copies = 1 + sum(results)
            if copies - 1 < self.acks_needed:
                raise CommandError(
                    f"NOREPLICAS Not enough good replicas to write (write_ack={self.write_ack}: "
                    f"applied on {copies} of {len(futures) + 1} copies; the rest will get it "
                    f"when they answer)")
        if asyncio.iscoroutine(reply):
            return await reply
        return reply

    # -- changes from other nodes --------------------------------------------------------------

    def apply(self, db: int, version: int, op: bytes, key: bytes, value: bytes | None,
              expire_at_ms: int | None) -> int:
        """``DC.APPLY``: apply a change if it is newer than what this node has; 1 when
        applied, 0 when it was older (or an expiry change for a key not held here)."""
        self.clock.observe(version)
        if version <= self.versions.get(db, key):
            self.stale += 1
            return 0
        engine = self.cluster.node.databases[db]
        self.muted += 1
        self.applying_version = version
        try:
            if op == b"SET":
                assert value is not None
                engine.restore(key, value, expire_at_ms)
                self.versions.set(db, key, version)
            elif op == b"DEL":
                engine.delete(key)
                self.versions.delete(db, key, version)
            elif op == b"EXPIRE":
                if not engine.exists(key):
                    return 0  # the value is still to come (a hint, a repair): keep its chance
                if expire_at_ms is None:
                    engine.persist(key)
                else:
                    engine.expire_at(key, expire_at_ms)
                self.versions.set(db, key, version)
            else:
                raise CommandError(f"ERR unknown DC.APPLY operation {op!r}")
        finally:
            self.muted -= 1
            self.applying_version = 0
        self.applied += 1
        return 1

    def drop_local(self, db: int, key: bytes) -> None:
        """Remove this node's copy without telling anyone (a key that moved away)."""
        self.muted += 1
        try:
            self.cluster.node.databases[db].delete(key)
        finally:
            self.muted -= 1
        self.versions.drop(db, key)

    # -- hints ---------------------------------------------------------------------------------

    def lost(self, node_id: str, payload: bytes) -> None:
        """A change sent to ``node_id`` got no answer: keep it as a hint."""
        if payload.startswith(b"*") and APPLY in payload[:32]:
            self.hints.add(node_id, payload)

    def hand_over(self, node_id: str) -> None:
        """``node_id`` answers again: send it its hints (in the background)."""
        task = self._handovers.get(node_id)
        if (task is None or task.done()) and self.hints.pending(node_id):
            self._handovers[node_id] = asyncio.get_running_loop().create_task(
                self._hand_over(node_id), name=f"hints-{node_id}")

    async def _hand_over(self, node_id: str) -> None:
        delivered = 0
        while True:
            batch = self.hints.take(node_id)
            if not batch:
                break
            client = self.cluster.pool.clients.get(node_id)
            if client is None:
                return
            futures = []
            for payload in batch:
                future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
                if not client.send(MODE_FINAL, payload, self._acked, (node_id, future)):
                    future.set_result(False)
                futures.append(future)
            results = await asyncio.gather(*futures)
            failed = [payload for payload, ok in zip(batch, results, strict=True) if not ok]
            delivered += len(batch) - len(failed)
            if failed:
                self.hints.put_back(node_id, failed)
                log.info("hand-over to %s interrupted: %d hints kept", node_id, len(failed))
                break
        self.hints.delivered += delivered
        if delivered:
            log.info("handed %d hints over to %s", delivered, node_id)

"""Moving keys when the ring changes, and repairing a node that missed writes.

When a node joins or leaves, each node walks its keys in the background (``scan`` batches of
:data:`BATCH_KEYS`, yielding to the event loop between batches, so requests keep being served)
and, for each key whose preference list changed, offers it to the nodes that should now hold
it, with its value, absolute expiry and version (``DC.APPLY``: the receiver keeps the newer
copy). Once they have it, a node that no longer belongs to the key's list drops its own copy
locally (no versioned delete: the key still exists). Only the first copy up in the previous
list sends a key it keeps (the others would send the same thing); a node giving a key away
always sends it before dropping it.

A key stays readable throughout (the *handoff*): until every node that held keys before the
change has reported its walk done (``DC.REBALANCED``), a read on the new owner that misses
asks the previous owner, and a key that arrived meanwhile wins over the answer.

Progress is in INFO (``cluster`` section) and ``CLUSTER INFO``: keys to move (estimated from
the share seen so far), keys moved and an ETA.

*Repair* offers a returning node every key (and tombstone) it should hold, when hints could
not cover what it missed: it restarted (its copies may be gone), or its hints passed the
window or the byte budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Iterable
from typing import Any

from ..mutations import Op
from .peer import MODE_FINAL
from .replication import apply_request
from .resp import encode_command, is_error

log = logging.getLogger("distcache.cluster.rebalance")

#: Keys examined per batch before yielding to the event loop.
BATCH_KEYS = 256
#: The longest rest between two batches.
MAX_PAUSE_SECONDS = 0.05
#: A handoff nobody reports done for this long ends anyway (a node that left mid-move).
HANDOFF_LIMIT_SECONDS = 120.0


def ring_digest(nodes: Iterable[str]) -> str:
    """A name for a set of nodes that every node computes alike (DC.REBALANCED)."""
    return f"{zlib.crc32(','.join(sorted(nodes)).encode()):08x}"


class Handoff:
    """While keys move: where a key lived before the change, and who is still moving."""

    def __init__(self, previous: Any, pending: set[str], replication_factor: int,
                 down: set[str], digest: str) -> None:
        self.previous = previous
        self.pending = pending
        self.replication_factor = replication_factor
        self.down = down
        self.digest = digest
        self.started = time.monotonic()
        self.reads = 0

    def previous_coordinator(self, key: bytes) -> str | None:
        """The node that answered for ``key`` before the change, if it is still moving keys."""
        for node in self.previous.preference_list(key, self.replication_factor):
            if node not in self.down:
                return node if node in self.pending else None
        return None


class Progress:
    """What INFO reports about the current (or last) move."""

    __slots__ = ("state", "digest", "keys_scanned", "keys_total", "keys_to_move", "keys_moved",
                 "keys_dropped", "started", "finished", "repairs")

    def __init__(self) -> None:
        self.state = "idle"
        self.digest = ""
        self.keys_scanned = self.keys_total = 0
        self.keys_to_move = self.keys_moved = self.keys_dropped = 0
        self.started = self.finished = 0.0
        self.repairs = 0

    def eta_seconds(self) -> float:
        if self.state != "moving" or not self.keys_scanned:
            return 0.0
        elapsed = time.monotonic() - self.started
        left = max(0, self.keys_total - self.keys_scanned)
        return round(elapsed / self.keys_scanned * left, 1)


class Rebalancer:
    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.progress = Progress()
        #: The ring this node last finished moving keys for (heartbeats carry it).
        self.moved_digest = ""
        self._task: asyncio.Task[None] | None = None
        self._repairs: dict[str, asyncio.Task[None]] = {}

    # -- a ring change -------------------------------------------------------------------------

    def ring_changed(self, previous: Any) -> None:
        """The ring changed from ``previous`` (a strategy holding the old node set)."""
        cluster = self.cluster
        nodes = cluster.strategy.nodes()
        previous_nodes = previous.nodes()
        if previous_nodes == [cluster.me]:
            # A node that was alone (just started, or joining): keys move to it from the
            # others, so it serves misses from the ring as it is without it.
            previous = cluster.ring_without(cluster.me)
            previous_nodes = previous.nodes()
        digest = ring_digest(nodes)
        pending = {n for n in previous_nodes if n != cluster.me and n in nodes
                   and n not in cluster.down}
        router = cluster.router
        self.moved_digest = ""
        if pending and len(nodes) > 1:
            router.handoff = Handoff(previous, pending, cluster.replication_factor,
                                     cluster.down, digest)
        else:
            router.handoff = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if len(nodes) > 1 or len(previous_nodes) > 1:
            self._task = asyncio.get_running_loop().create_task(
                self._move(previous, digest), name="rebalance")

    def peer_done(self, node_id: str, digest: str) -> None:
        """``DC.REBALANCED``: ``node_id`` has moved its keys for the ring named ``digest``."""
        handoff = self.cluster.router.handoff
        if handoff is not None and handoff.digest == digest:
            handoff.pending.discard(node_id)
            self._maybe_end_handoff()

    def peer_down(self, node_id: str) -> None:
        handoff = self.cluster.router.handoff
        if handoff is not None:
            handoff.pending.discard(node_id)
            self._maybe_end_handoff()

    def end_handoff_if_due(self) -> None:
        self._maybe_end_handoff()

    def _maybe_end_handoff(self) -> None:
        router = self.cluster.router
        handoff = router.handoff
        if handoff is not None and (not handoff.pending
                                    or time.monotonic() - handoff.started
                                    > HANDOFF_LIMIT_SECONDS):
            router.handoff = None
            log.info("handoff for ring %s done (%d reads asked the previous owner)",
                     handoff.digest, handoff.reads)

    async def _move(self, previous: Any, digest: str) -> None:
        cluster = self.cluster
        progress = self.progress
        progress.state, progress.digest = "moving", digest
        progress.started = time.monotonic()
        progress.keys_scanned = progress.keys_to_move = progress.keys_moved = 0
        progress.keys_dropped = 0
        progress.keys_total = sum(len(engine) for _, engine in cluster.node.databases.opened())
        failures = 0
        try:
            for db, engine in list(cluster.node.databases.opened()):
                cursor = 0
                while True:
                    started = time.monotonic()
                    cursor, keys = engine.scan(cursor, None, BATCH_KEYS)
                    progress.keys_scanned += len(keys)
                    failures += await self._move_batch(db, engine, keys, previous)
                    # Rate limit: rest as long as the batch took, so moving keys takes at
                    # most about half of this node's time (and of the receiver's).
                    await asyncio.sleep(min(MAX_PAUSE_SECONDS, time.monotonic() - started))
                    if cursor == 0:
                        break
        except asyncio.CancelledError:
            progress.state = "interrupted"
            raise
        progress.state = "idle" if not failures else "incomplete"
        progress.finished = time.monotonic()
        if not failures:
            self.moved_digest = digest
        log.info("rebalance for ring %s: %d keys moved, %d dropped here, %d failed, %.1fs",
                 digest, progress.keys_moved, progress.keys_dropped, failures,
                 progress.finished - progress.started)
        payload = encode_command(b"DC.REBALANCED", digest, cluster.me)
        for node in cluster.router.others_up():
            client = cluster.pool.clients.get(node)
            if client is not None:
                client.send(MODE_FINAL, payload, _ignore, None)
        if failures:
            await asyncio.sleep(1.0)
            if cluster.router.handoff is None or cluster.router.handoff.digest == digest:
                self._task = asyncio.get_running_loop().create_task(
                    self._move(previous, digest), name="rebalance-retry")

    async def _move_batch(self, db: int, engine: Any, keys: list[bytes], previous: Any) -> int:
        cluster = self.cluster
        me = cluster.me
        strategy = cluster.strategy
        copies = cluster.replication_factor
        down = cluster.down
        sends: list[tuple[bytes, list[str], bool]] = []
        for key in keys:
            new = strategy.preference_list(key, copies)
            old = previous.preference_list(key, copies)
            leaving = me not in new
            if me in old:
                targets = [n for n in new if n not in old]
                if not leaving:
                    first_up = next((n for n in old if n == me or n not in down), me)
                    if first_up != me:
                        targets = []
            else:  # a copy that was not where the old ring put it (a write during a change)
                targets = [n for n in new if n != me]
            if targets or leaving:
                sends.append((key, targets, leaving))
        if not sends:
            return 0
        self.progress.keys_to_move += len(sends)
        outcomes = await asyncio.gather(*(self._offer(db, engine, key, targets)
                                          for key, targets, _ in sends))
        failures = 0
        for (key, _, leaving), ok in zip(sends, outcomes, strict=True):
            if not ok:
                failures += 1
                continue
            self.progress.keys_moved += 1
            if leaving:
                cluster.replicator.drop_local(db, key)
                self.progress.keys_dropped += 1
        return failures

    async def _offer(self, db: int, engine: Any, key: bytes, targets: list[str]) -> bool:
        """Send ``key`` as it is here to ``targets``; True once all of them have it."""
        value = engine.peek(key)
        if value is None:
            return True  # gone meanwhile (deleted, expired): nothing to move
        try:
            expire_at_ms = engine.get_expire_at(key)
        except KeyError:
            return True
        # A key written before the node was in a cluster has no version: 1 loses to any
        # real write and wins only where the key is missing.
        version = self.cluster.versions.get(db, key) or 1
        payload = apply_request(db, version, Op.SET, key, value, expire_at_ms)
        return await self._send_all(payload, targets, db)

    async def _send_all(self, payload: bytes, targets: list[str], db: int) -> bool:
        cluster = self.cluster
        futures = []
        for node in targets:
            client = cluster.pool.clients.get(node)
            if client is None:
                continue  # forgotten meanwhile
            if node in cluster.down:
                cluster.hints.add(node, payload)
                continue
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            if not client.send(MODE_FINAL, payload, _resolve, future):
                return False
            futures.append(future)
        results = await asyncio.gather(*futures)
        return all(type(r) is bytes and not is_error(r) for r in results)

    # -- repair --------------------------------------------------------------------------------

    def repairing(self, node_id: str) -> bool:
        task = self._repairs.get(node_id)
        return task is not None and not task.done()

    def repair(self, node_id: str) -> None:
        """Offer ``node_id`` every key and tombstone it should hold (in the background)."""
        task = self._repairs.get(node_id)
        if task is None or task.done():
            self._repairs[node_id] = asyncio.get_running_loop().create_task(
                self._repair(node_id), name=f"repair-{node_id}")

    async def _repair(self, node_id: str) -> None:
        cluster = self.cluster
        me = cluster.me
        strategy = cluster.strategy
        copies = cluster.replication_factor
        offered = failed = 0

        def designated(key: bytes) -> bool:
            prefs = strategy.preference_list(key, copies)
            if node_id not in prefs:
                return False
            first = next((n for n in prefs if n != node_id and (n == me or n not in
                                                                 cluster.down)), None)
            return first == me

        for db, engine in list(cluster.node.databases.opened()):
            for key, version in cluster.versions.tombstones(db):
                if designated(key):
                    offered += 1
                    if not await self._send_all(apply_request(db, version, Op.DEL, key),
                                                [node_id], db):
                        failed += 1
                        break
            cursor = 0
            while not failed:
                cursor, keys = engine.scan(cursor, None, BATCH_KEYS)
                mine = [key for key in keys if designated(key)]
                results = await asyncio.gather(*(self._offer(db, engine, key, [node_id])
                                                 for key in mine))
                offered += len(mine)
                failed += results.count(False)
                await asyncio.sleep(0)
                if cursor == 0:
                    break
            if failed:
                break
        if failed:
            log.info("repair of %s interrupted (%d offers failed); retrying", node_id, failed)
            cluster.repair_failed(node_id)
            return
        self.progress.repairs += 1
        log.info("repaired %s: %d keys and tombstones offered", node_id, offered)
        # A restarted node serves misses from the previous owners until they have all
        # repaired it: this one has.
        client = cluster.pool.clients.get(node_id)
        if client is not None:
            client.send(MODE_FINAL, encode_command(b"DC.REBALANCED",
                                                   ring_digest(strategy.nodes()), me),
                        _ignore, None)

    def stop(self) -> None:
        for task in [self._task, *self._repairs.values()]:
            if task is not None:
                task.cancel()


def _ignore(arg: Any, result: Any) -> None:
    pass


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)

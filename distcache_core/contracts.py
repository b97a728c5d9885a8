"""The contracts between the core and its plugins, as ``typing.Protocol`` classes.

The core builds one object of each selected kind at start-up and then calls these methods
directly; nothing here goes through pluggy on the request path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from .mutations import Cause, Mutation, MutationListener


@attrs.define
class EngineStats:
    """Counters every storage engine keeps, read by INFO and the metrics sinks."""

    keys: int = 0
    #: Bytes of keys and values held, plus the engine's own per-key overhead estimate.
    bytes_used: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expired: int = 0
    #: Keys that carry an expiry time (Redis reports it as ``expires=`` in INFO keyspace).
    keys_with_expiry: int = 0
    #: The configured limits (0: none), so INFO and CONFIG GET report what is in force.
    capacity: int = 0
    maxmemory_bytes: int = 0
    #: Redis's name of the eviction policy in force (``allkeys-lru``, ``noeviction``, ...).
    maxmemory_policy: str = "allkeys-lru"


class KeyspaceChanged(RuntimeError):
    """Raised by a :meth:`StorageEngine.items` walk that cannot go on exactly after the writes
    made since its previous item (the lru_ttl engine: its dict was resized). The caller starts
    a new walk; a snapshot starts again."""


@runtime_checkable
class StorageEngine(Protocol):
    """Holds the keyspace: ``bytes`` keys to ``bytes`` values with optional expiry.

    Expiry times are absolute Unix milliseconds so they survive a restart. A key whose expiry
    time has passed is never returned by any method (lazy expiry); ``active_expire_cycle`` removes
    such keys in the background. Every method is called from the event loop thread only.
    """

    def get(self, key: bytes) -> bytes | None:
        """Return the value, or None when the key is missing or expired. Counts a hit or a miss
        and marks the key recently used."""

    def peek(self, key: bytes) -> bytes | None:
        """Like ``get`` but counts nothing and leaves the LRU order alone (for internal reads
        such as SET ... GET or APPEND)."""

    def set(self, key: bytes, value: bytes, expire_at_ms: int | None = None, *,
            keep_ttl: bool = False) -> None:
        """Store ``value``. With ``keep_ttl`` the key keeps its current expiry; otherwise the
        expiry becomes ``expire_at_ms`` (None: the engine's default TTL, if any, else none).
        May evict other keys to stay within the limits (reported before the ``SET``). Emits
        one ``SET`` mutation with the expiry actually stored (or, for an expiry already past,
        a ``DEL`` if a key existed). Raises ``CommandError`` with Redis's ``OOM command not
        allowed when used memory > 'maxmemory'.`` when the write cannot fit: the key alone is
        larger than the byte limit, or the eviction policy finds nothing to evict; the
        keyspace is then unchanged (keys already evicted stay evicted, as in Redis)."""

    def restore(self, key: bytes, value: bytes, expire_at_ms: int | None, *,
                cause: Cause = Cause.RESTORE) -> None:
        """Store exactly this value with exactly this absolute expiry (None: no expiry, never
        the default TTL), for recovery, replication and moving keys between nodes. Emits a
        ``SET`` with ``cause``; an expiry already past stores nothing (and removes a current
        value, emitting a ``DEL``). With the default cause it never refuses for memory (it
        evicts what the policy allows, like Redis loading its data file); with
        ``Cause.COMMAND`` it is a command's write with an exact expiry (RENAME, COPY, MOVE):
        refused with ``OOM`` where ``set`` would be, and reported as the command's, so
        replication propagates it."""

    def set_listener(self, listener: MutationListener | None) -> None:
        """Where to report each applied change (see :mod:`distcache_core.mutations`); None
        stops reporting. The engine builds a :class:`Mutation` only while it has a listener."""

    def delete(self, key: bytes) -> bool:
        """Remove the key; True if it existed (and had not expired)."""

    def exists(self, key: bytes) -> bool:
        """True if the key is present and not expired. Counts nothing."""

    def touch(self, key: bytes) -> bool:
        """Mark the key recently used; True if it exists."""

    def expire_at(self, key: bytes, expire_at_ms: int) -> bool:
        """Set the key's absolute expiry; a time in the past deletes it. False if missing."""

    def get_expire_at(self, key: bytes) -> int | None:
        """The key's absolute expiry in Unix ms, None if it has none. KeyError if missing."""

    def ttl_ms(self, key: bytes) -> int:
        """Milliseconds left: -2 when the key is missing, -1 when it has no expiry."""

    def persist(self, key: bytes) -> bool:
        """Drop the key's expiry; True if it had one."""

    def incr_by(self, key: bytes, delta: int) -> int:
        """Add ``delta`` to the integer stored at ``key`` (0 when missing), keeping its expiry.
        Raises ``NotIntegerError`` or ``OverflowCommandError`` (signed 64-bit)."""

    def keys(self, pattern: bytes = b"*") -> list[bytes]:
        """Every live key matching the glob-style ``pattern`` (Redis KEYS rules)."""

    def scan(self, cursor: int, match: bytes | None = None,
             count: int = 10) -> tuple[int, list[bytes]]:
        """One SCAN step: (next cursor, keys). Cursor 0 starts and ends a full iteration; a key
        present for the whole iteration is returned at least once."""

    def random_key(self) -> bytes | None:
        """A live key chosen at random, None when empty."""

    def __len__(self) -> int:
        """Number of keys held (may include expired keys not yet collected)."""

    def items(self) -> Iterator[tuple[bytes, bytes, int | None]]:
        """(key, value, expire_at_ms) for every live key, for snapshots and rebalancing.

        The caller may write to the engine between items (a snapshot reads a slice, then lets
        the loop serve requests): a key removed meanwhile is skipped, a key added meanwhile
        may or may not be yielded, a key changed meanwhile is yielded with the value it has
        when reached; no key is yielded twice. Where that cannot hold (the engine rebuilt its
        table meanwhile), the walk raises :class:`KeyspaceChanged` instead."""

    def clear(self) -> None:
        """Remove every key (emits one ``FLUSHDB``)."""

    # Optional: ``restore_many(keys, values, expiries)``, ``restore`` of each triple (two
    # lists and an iterable of the same length), for recovery: a snapshot loader hands over a
    # block of a few thousand keys at once, and an engine that can insert them without a
    # Python call per key makes loading several times faster (restore costs ~2.3 us a key on
    # the 2-core test machine, a dict update ~0.15 us).
    #
    # Optional: ``open_database(index) -> StorageEngine``, a sibling engine for logical
    # database ``index`` (SELECT) that shares this engine's limits and eviction and emits
    # mutations with ``db = index`` (``open_database(0)`` is the engine itself; the same index
    # gives the same object; the listener is shared by the family). An engine without it
    # serves database 0 only.
    #
    # Optional: ``loading()``, a context manager that suspends expiry while a log or snapshot
    # is replayed (as Redis expires nothing while loading), so a key whose first expiry a
    # later EXPIRE moved survives a replay that happens after that first expiry time.
    #
    # Optional: ``memory_usage(key) -> int | None``, what the key costs against
    # ``maxmemory_bytes`` (MEMORY USAGE); None when it is missing.
    #
    # Optional: ``configure(*, capacity=None, maxmemory_bytes=None, maxmemory_policy=None)``,
    # run-time limits (CONFIG SET): None leaves a setting alone; ``maxmemory_policy`` is one of
    # Redis's ``allkeys-lru`` (default), ``volatile-lru``, ``volatile-ttl``,
    # ``allkeys-random``, ``noeviction``; a bad value raises ``ValueError``. Lowering a limit
    # evicts at once. ``stats()`` reports what is in force.

    def active_expire_cycle(self, time_budget_ms: float) -> int:
        """Remove expired keys by sampling, as Redis does, for at most about
        ``time_budget_ms``; return how many were removed. Called from a timer."""

    def stats(self) -> EngineStats:
        """Current counters."""


class StorageEngineFactory(Protocol):
    def __call__(self, settings: Any) -> StorageEngine:
        """Build an engine from the plugin's config section (None when it has none)."""


@attrs.frozen
class SnapshotRef:
    """A snapshot a persistence plugin can load (``Persistence.snapshots``)."""

    #: Sequence number of the image: every mutation up to it is in it, none after it.
    seq: int
    #: Where it is (a file, or a directory for an LMDB environment).
    path: str
    size_bytes: int
    created_at_ms: int
    #: Registered name of the plugin that wrote it and loads it.
    source: str


@attrs.frozen
class RecoveryReport:
    """What recovery found and did, for the log, ``INFO persistence`` and tests."""

    keys_loaded: int = 0
    records_replayed: int = 0
    #: Sequence number the node continues from.
    last_sequence: int = 0
    #: The snapshot loaded (its path), empty when none was.
    snapshot: str = ""
    #: Keys whose expiry passed while the node was down: not loaded.
    keys_expired: int = 0
    seconds: float = 0.0
    #: Human-readable warnings: a torn tail truncated, a snapshot that failed its checksum.
    warnings: tuple[str, ...] = ()


class Persistence(Protocol):
    """Makes the keyspace survive restarts. Built by the factory a plugin registers through
    ``distcache_register_persistence`` and driven by the node's
    :class:`~distcache_core.persistence.PersistenceManager`, in this order:

    1. ``open(status)`` before the node listens: create and check files; raise
       :class:`~distcache_core.errors.PersistenceError` to refuse to start.
    2. Recovery, while the node already answers ``-LOADING``: the manager collects every
       plugin's ``snapshots()``, loads the newest one through its plugin's ``load_snapshot``
       (an older one if that fails), then every log's ``replay(after_seq=snapshot.seq)``.
       Both are coroutines that work in slices (``target.pause``) so the loop stays
       responsive.
    3. ``start(seq)``; then ``record(mutation)`` for every applied write (logs), ``barrier()``
       once per loop turn that wrote, ``tick()`` every second, ``checkpoint(image)`` when
       ``checkpoint_due`` or on SAVE/BGSAVE/BGREWRITEAOF, then ``compact(seq)``.
    4. ``close()`` at shutdown (after a last checkpoint of snapshot plugins that want one).

    Everything runs on the event loop thread; blocking disk work belongs in a thread.
    """

    #: ``"log"`` (records every mutation and replays it: the WAL) or ``"snapshot"`` (writes
    #: images of the keyspace: SAVE and BGSAVE, periodic saves).
    role: str
    #: The registered name, for messages and INFO.
    name: str

    def open(self, status: Any) -> None:
        """Prepare files; ``status`` is the node's
        :class:`~distcache_core.persistence.PersistenceStatus`, where the plugin reports write
        failures (``status.set_write_error(self.name, message or None)``)."""

    def snapshots(self) -> list[SnapshotRef]:
        """Loadable snapshots, newest first, without reading them whole (may be empty)."""

    async def load_snapshot(self, ref: SnapshotRef, target: Any) -> None:
        """Load ``ref`` into ``target`` (a :class:`~distcache_core.persistence.RecoveryTarget`).
        Raise :class:`~distcache_core.errors.CorruptSnapshotError` when it fails its checksum
        or structure: the manager clears what was loaded and tries an older snapshot."""

    def replay_size(self, after_seq: int) -> int:
        """Bytes ``replay(after_seq)`` will read, for the loading progress (0: nothing)."""

    async def replay(self, after_seq: int, target: Any) -> int:
        """Apply every record with a sequence number above ``after_seq`` to ``target``, in order;
        return the last sequence number seen (``after_seq`` when none). A torn tail is
        truncated and reported with ``target.warn``; damage before the tail raises
        :class:`~distcache_core.errors.CorruptLogError`. Snapshot plugins return ``after_seq``."""

    def start(self, seq: int) -> None:
        """Recovery is over and the node's mutation stream continues from ``seq``."""

    def record(self, mutation: Mutation) -> None:
        """One applied write (logs; subscribed to the mutation stream). Must not block or
        raise: buffer it, and report failures through ``status`` when the buffer is written.
        A log may also offer ``record_fields(seq, op, db, key, value, expire_at_ms, cause)``,
        the same record from the change's fields (the stream's fast form, see
        :mod:`distcache_core.mutations`); the manager subscribes both."""

    def barrier(self) -> Awaitable[None] | None:
        """An awaitable that completes once everything recorded so far is as durable as the
        plugin promises (for a WAL with ``fsync = always``: on disk), or None when nothing
        needs waiting for. Called once per loop turn that wrote. It raises
        :class:`~distcache_core.errors.PersistenceWriteError` when the write failed; each
        call returns a new awaitable, so cancelling one waiter cancels nothing else."""

    def tick(self, now: float) -> None:
        """Called every second (Unix time ``now``): timed fsyncs, retries after a failure."""

    def checkpoint_due(self, now: float, seq: int) -> bool:
        """True when the plugin's own schedule asks for a checkpoint now (save interval,
        writes since the last one, log size), given the stream's current ``seq``."""

    async def checkpoint(self, image: Any) -> SnapshotRef | None:
        """Write a consistent image of the keyspace, read from ``image`` (a
        :class:`~distcache_core.persistence.KeyspaceImage`) without stalling the loop; return
        what was written (None if nothing was). A log's checkpoint is a rewrite of itself
        (BGREWRITEAOF)."""

    async def compact(self, retain_after_seq: int) -> None:
        """Drop what is no longer needed to recover: the records up to ``retain_after_seq``
        (logs), once a snapshot covers them. Must be crash-safe at every step."""

    def info(self) -> list[tuple[str, Any]]:
        """Fields for ``INFO persistence`` (Redis's names where Redis has one)."""

    async def close(self) -> None:
        """Write out what is buffered, sync it and release files."""


class PersistenceFactory(Protocol):
    """What ``distcache_register_persistence`` registers."""

    def __call__(self, settings: Any, data_dir: Path) -> Persistence:
        """Build from the plugin's config section (None when it has none) and the node's data
        dir (the plugin keeps its files in a folder of its own under it)."""


class HashStrategy(Protocol):
    """Maps keys to nodes. The router calls ``owner`` / ``preference_list`` on every request,
    so they must be cheap; membership calls ``add_node`` / ``remove_node`` when the member set
    changes. Placement must depend only on the set of nodes (every node computes it alone)."""

    def add_node(self, node_id: str) -> None:
        """Put a node on the ring; adding one already there does nothing."""

    def remove_node(self, node_id: str) -> None:
        """Take a node off the ring; removing one that is not there does nothing."""

    def owner(self, key: bytes) -> str:
        """The node that owns ``key``; raises ``LookupError`` when there is no node."""

    def preference_list(self, key: bytes, n: int) -> list[str]:
        """The owner then replicas: ``n`` distinct nodes (fewer when the cluster is smaller)."""

    def nodes(self) -> list[str]:
        """Every node placed, sorted."""

    # Optional, used when present (the cluster works without them):
    # ``copy() -> HashStrategy``, an independent strategy with the same nodes, cheaper than
    # building one and adding them (the rebalancer keeps the ring from before a change);
    # ``shares() -> dict[str, float]``, each node's fraction of the key space (CLUSTER NODES).


class PeerGuard(Protocol):
    """The fault policy's view of one peer, consulted around every call to it: ``allow()``
    before (False: fail fast, do not wait on this peer), then ``on_success()`` or
    ``on_failure()`` with the outcome (a timeout is a failure)."""

    @property
    def state(self) -> str:
        """The guard's state as of now, for ``CLUSTER NODES`` and metrics (the circuit
        breaker's are ``closed``, ``open`` and ``half_open``)."""

    def allow(self) -> bool:
        """May a call go to the peer now?"""

    def on_success(self) -> None:
        """The call allowed last got an answer from the peer."""

    def on_failure(self) -> None:
        """The call allowed last failed or timed out."""

    # Optional: ``trip()`` (fail fast from now on: membership declared the peer down) and
    # ``reset()`` (start afresh: the peer is a new process, first met or restarted).


class FaultPolicy(Protocol):
    def for_peer(self, node_id: str) -> PeerGuard:
        """The guard of ``node_id``: the same object each time for the same peer."""

    # Optional: ``forget(node_id)`` (the peer left the cluster) and ``set_listener(callback)``
    # (each guard's state changes, for logs and CLUSTER NODES' ``breaker-changes``).


class MetricsSink(Protocol):
    """Exports the node's counters; started with the node, never called per request."""

    async def start(self, node: Any) -> None: ...
    async def stop(self) -> None: ...


class CommandContext(Protocol):
    """What a command handler is given: the client connection it runs for.

    Handlers read ``engine`` for the keyspace and ``node`` for everything else.
    """

    engine: StorageEngine
    node: Any
    #: The node's RESP server: its connections, limits and counters (CLIENT LIST, CONFIG).
    server: Any
    client_id: int
    client_name: bytes | None
    resp_version: int

    @property
    def authenticated(self) -> bool:
        """Whether the client passed AUTH (or no password is set). Read it; change it with
        :meth:`set_authenticated`."""

    def set_authenticated(self, value: bool) -> None:
        """What AUTH does: the parser's limits for unauthenticated clients and the request
        path's gate follow it (assigning ``authenticated`` would leave both behind: the client
        would keep the small request limits and every request would take the slow path)."""

    def close_after_reply(self) -> None:
        """Close the connection once the reply is written (QUIT)."""


#: A handler takes the connection and the full argument vector (command name first) and
#: returns a reply value (see ``distcache_core.protocol.encoder``) or raises ``CommandError``.
CommandHandler = Callable[[Any, list[bytes]], Any]


class NodeContext(Protocol):
    """What command handlers (``conn.node``) and plugins may use of the node.

    Everything else on :class:`~distcache_core.node.Node` is internal and may change.
    """

    #: This node's id (``node.id``).
    node_id: str
    #: The validated configuration (``config.node``, ``config.cluster``, plugin tables).
    config: Any
    #: The storage engine of database 0.
    engine: StorageEngine
    #: The logical databases: ``databases[i]`` is the engine of database ``i``.
    databases: Any
    #: The stream of applied writes: ``mutations.subscribe(callback)`` at start-up.
    mutations: Any
    #: The RESP server: connections, limits, counters.
    server: Any
    #: Unix time of the last successful save (LASTSAVE).
    last_save_time: int
    #: The node's :class:`~distcache_core.persistence.PersistenceManager` (SAVE, BGSAVE,
    #: BGREWRITEAOF, INFO persistence; ``persistence.status`` has the loading flag).
    persistence: Any
    run_id: str
    started_at: float

    def request_shutdown(self) -> None:
        """Stop soon, gracefully (SIGTERM, SHUTDOWN)."""

    def durability_barrier(self) -> Any:
        """An awaitable that completes when the writes applied so far in this loop turn are as
        durable as the persistence plugins promise; None when nothing needs waiting for."""

    async def save(self, background: bool) -> None:
        """Checkpoint every persistence plugin (SAVE, BGSAVE)."""

"""The contracts between the core and its plugins, as ``typing.Protocol`` classes.

The core builds one object of each selected kind at start-up and then calls these methods
directly; nothing here goes through pluggy on the request path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import attrs

from .mutations import Cause, MutationListener


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
        """(key, value, expire_at_ms) for every live key, for snapshots and rebalancing."""

    def clear(self) -> None:
        """Remove every key (emits one ``FLUSHDB``)."""

    # Optional: ``open_database(index) -> StorageEngine``, a sibling engine for logical
    # database ``index`` (SELECT) that shares this engine's limits and eviction and emits
    # mutations with ``db = index`` (``open_database(0)`` is the engine itself; the same index
    # gives the same object; the listener is shared by the family). An engine without it
    # serves database 0 only.
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
class RecoveryReport:
    """What ``Persistence.recover`` found."""

    keys_loaded: int = 0
    records_replayed: int = 0
    last_sequence: int = 0
    #: Human-readable warnings, such as a truncated torn tail.
    warnings: tuple[str, ...] = ()


class Persistence(Protocol):
    """Makes the keyspace survive restarts (write-ahead log, snapshots)."""

    def recover(self, engine: StorageEngine) -> RecoveryReport:
        """Load the latest snapshot then replay the log from its sequence number on."""

    def record(self, mutation: Any) -> None:
        """Append one applied write."""

    async def barrier(self) -> None:
        """Return once recorded writes are as durable as the fsync policy demands."""

    def checkpoint(self, engine: StorageEngine) -> None:
        """Write a snapshot and compact the log."""

    def close(self) -> None:
        """Flush and release files."""


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


class FaultPolicy(Protocol):
    def for_peer(self, node_id: str) -> PeerGuard:
        """The guard of ``node_id``: the same object each time for the same peer."""


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
    authenticated: bool
    resp_version: int

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
    run_id: str
    started_at: float

    def request_shutdown(self) -> None:
        """Stop soon, gracefully (SIGTERM, SHUTDOWN)."""

    def durability_barrier(self) -> Any:
        """An awaitable that completes when the writes applied so far in this loop turn are as
        durable as the persistence plugins promise; None when nothing needs waiting for."""

    async def save(self, background: bool) -> None:
        """Checkpoint every persistence plugin (SAVE, BGSAVE)."""

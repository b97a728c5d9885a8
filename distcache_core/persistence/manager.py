"""The node's persistence: the plugins of ``node.persistence``, driven through their contract.

One :class:`PersistenceManager` per node. It owns the order of things (lock the data dir, open
the plugins, recover, subscribe the logs to the mutation stream, checkpoints, shutdown), the
state the request path reads (:class:`PersistenceStatus`), the combined durability barrier and
the ``INFO persistence`` fields. It never reads or writes a plugin's files itself.

Recovery picks the newest snapshot any plugin offers (by sequence number), loads it through the
plugin that wrote it (an older one if it fails its checksum), then asks every log to replay what
came after it. Checkpoints run one at a time; after each, logs drop what the second newest
snapshot covers, so one damaged snapshot still leaves an older one plus the log to recover from.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from ..contracts import Persistence, RecoveryReport, SnapshotRef
from ..dispatch import proceed
from ..errors import CommandError, ConfigError, CorruptSnapshotError, PersistenceError
from ..mutations import Mutation, MutationStream
from .files import DataDirLock, ensure_directory
from .image import ImageAborted, KeyspaceImage
from .recovery import RecoveryTarget
from .status import LOADING_ERROR, SNAPSHOT_WRITE_ERROR, PersistenceStatus

log = logging.getLogger("distcache.persistence")

#: After a failed checkpoint, scheduled ones wait this long (Redis CONFIG_BGSAVE_RETRY_DELAY).
RETRY_DELAY_SECONDS = 5.0
#: A checkpoint restarts at most this many times when SWAPDB runs during it.
MAX_IMAGE_ATTEMPTS = 3


def _no_op(mutation: Mutation) -> None:
    """Subscribed when only snapshot plugins are configured, so the stream numbers writes
    (``rdb_changes_since_last_save`` and ``after_writes`` rules count them)."""


def _no_op_fields(seq: int, op: int, db: int, key: bytes, value: bytes | None,
                  expire_at_ms: int | None, cause: int) -> None:
    """:func:`_no_op`'s fast form: engines then build no Mutation for it."""


class PersistenceManager:
    """Drives ``plugins`` (name, object) in config order; ``data_dir`` holds the lock file."""

    def __init__(self, plugins: Sequence[tuple[str, Persistence]], data_dir: Path) -> None:
        self.plugins = [plugin for _, plugin in plugins]
        self.names = [name for name, _ in plugins]
        self.data_dir = data_dir
        self.status = PersistenceStatus()
        self.report: RecoveryReport | None = None
        self._lock = DataDirLock(data_dir)
        self._databases: Any = []
        self._stream: MutationStream | None = None
        self._subscribed: list[Any] = []
        self._checkpoint_lock = asyncio.Lock()
        self._background: asyncio.Task[Any] | None = None
        self._cron: asyncio.Task[None] | None = None
        self._failed_at: dict[str, float] = {}
        self._rewrite_scheduled = False
        self._bgsave_scheduled = False
        self._current: str = ""  # "rdb" or "aof" while a checkpoint runs
        self._current_started = 0.0
        self._current_image: KeyspaceImage | None = None
        self._node: Any = None
        self._recovery: asyncio.Task[None] | None = None
        #: Why recovery failed (the node stops and the CLI prints it), or None.
        self.recovery_error: PersistenceError | None = None
        #: SHUTDOWN SAVE / NOSAVE: take (or skip) the shutdown snapshot; None: when changed.
        self.shutdown_save: bool | None = None
        #: INFO counters, Redis's names.
        self.last_save_time = int(time.time())
        self.seq_at_last_save = 0
        self.rdb_saves = 0
        self.rdb_last_status = "ok"
        self.rdb_last_seconds = -1
        self.aof_rewrites = 0
        self.aof_last_status = "ok"
        self.aof_last_seconds = -1

    @classmethod
    def from_config(cls, config: Any, registry: Any) -> PersistenceManager:
        """Build the plugins named by ``config.node.persistence`` from ``registry``."""
        names = list(config.node.persistence)
        data_dir = config.node.resolved_data_dir()
        plugins: list[tuple[str, Persistence]] = []
        for name in names:
            registration = registry.persistence.get(name)
            if registration is None:
                available = ", ".join(sorted(registry.persistence)) or "none"
                raise ConfigError(f"node.persistence = {names!r}: no persistence plugin named "
                                  f"{name!r} is loaded (available: {available})")
            plugins.append((name, registration.obj(config.plugin_settings(name), data_dir)))
        return cls(plugins, data_dir)

    @property
    def enabled(self) -> bool:
        return bool(self.plugins)

    def _of_role(self, role: str) -> list[Persistence]:
        return [plugin for plugin in self.plugins if plugin.role == role]

    # --- start-up ---------------------------------------------------------------------------

    def open(self) -> None:
        """Before the node listens: the data dir exists, is writable and is ours (flock);
        every plugin opens its files. Raises :class:`PersistenceError` naming the problem."""
        if not self.plugins:
            return
        ensure_directory(self.data_dir, "node.data_dir")
        self._lock.acquire()
        try:
            for plugin in self.plugins:
                plugin.open(self.status)
        except BaseException:
            self._lock.release()
            raise
        self.status.loading = True  # from now until recovery ends, data commands wait

    async def recover(self, databases: Any, stream: MutationStream) -> RecoveryReport:
        """Load the newest valid snapshot, replay the logs after it, continue the stream's
        numbering from there and subscribe the logs. The loop keeps serving meanwhile."""
        self._databases = databases
        self._stream = stream
        started = time.monotonic()
        target = RecoveryTarget(self._databases, self.status)
        # Loading allocates in bulk and nothing it allocates forms cycles: the collector
        # would only pause the loop (see KeyspaceImage) and slow the load.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        target.hold_expiry()  # a later record may revive a key whose expiry passed
        try:
            snapshot = await self._load_newest_snapshot(target)
            after_seq = snapshot.seq if snapshot else 0
            last_seq = after_seq
            for plugin in self._of_role("log"):
                last_seq = max(last_seq, await plugin.replay(after_seq, target))
        finally:
            target.end_hold()
            if gc_was_enabled:
                gc.enable()
        if self.plugins:
            # What recovery built lives as long as the node: out of the collector's sight,
            # a full collection no longer walks the loaded keyspace (200 ms at 1M keys).
            gc.freeze()
        report = RecoveryReport(
            keys_loaded=target.keys_loaded, records_replayed=target.records_replayed,
            last_sequence=last_seq, snapshot=snapshot.path if snapshot else "",
            keys_expired=target.keys_expired, seconds=time.monotonic() - started,
            warnings=tuple(target.warnings))
        for warning in report.warnings:
            log.warning("recovery: %s", warning)
        stream.seq = max(stream.seq, last_seq)
        self.seq_at_last_save = snapshot.seq if snapshot else stream.seq
        for plugin in self.plugins:
            plugin.start(stream.seq)
        self._subscribe(stream)
        self.report = report
        self.status.end_loading()
        if self.plugins:
            log.info("recovered %d keys and %d log records in %.2f s (sequence %d)",
                     report.keys_loaded, report.records_replayed, report.seconds, last_seq)
        return report

    async def _load_newest_snapshot(self, target: RecoveryTarget) -> SnapshotRef | None:
        by_name = dict(zip(self.names, self.plugins, strict=True))
        candidates = sorted((ref for plugin in self.plugins for ref in plugin.snapshots()),
                            key=lambda ref: ref.seq, reverse=True)
        for ref in candidates:
            total = ref.size_bytes + sum(p.replay_size(ref.seq) for p in self._of_role("log"))
            self.status.begin_loading(total)
            try:
                await by_name[ref.source].load_snapshot(ref, target)
            except CorruptSnapshotError as exc:
                target.warn(f"snapshot {ref.path} not used: {exc}")
                target.reset()
                continue
            return ref
        self.status.begin_loading(sum(p.replay_size(0) for p in self._of_role("log")))
        return None

    def _subscribe(self, stream: MutationStream) -> None:
        logs = self._of_role("log")
        listeners = [(plugin.record, getattr(plugin, "record_fields", None)) for plugin in logs]
        if not listeners and self.plugins:
            listeners = [(_no_op, _no_op_fields)]
        for listener, fields in listeners:
            stream.subscribe(listener, fields)
            self._subscribed.append(listener)

    # --- the node ----------------------------------------------------------------------------

    def attach(self, node: Any) -> None:
        """Called once the node listens (after :meth:`open`): gate requests while loading or
        while writes fail, recover in the background, then subscribe the logs, give the node
        the durability barrier and start the cron. A recovery that fails stops the node;
        :attr:`recovery_error` then says why."""
        if not self.plugins:
            return
        self._node = node
        self.status.on_change = self._update_gate
        self._update_gate()
        self._recovery = asyncio.get_running_loop().create_task(self._recover_node(node),
                                                               name="persistence-recovery")

    async def _recover_node(self, node: Any) -> None:
        try:
            await self.recover(node.databases, node.mutations)
        except Exception as exc:
            if not isinstance(exc, PersistenceError):
                log.exception("recovery failed")
                exc = PersistenceError(f"recovery failed: {type(exc).__name__}: {exc}")
            log.error("%s", exc)
            self.recovery_error = exc
            node.request_shutdown()
            return
        node.last_save_time = self.last_save_time
        if any(getattr(plugin, "wants_barrier", False) for plugin in self.plugins):
            node.add_barrier_source(self._barrier_source)
        self.start_cron()

    async def wait_recovered(self) -> None:
        """Return once recovery has finished (or failed); for tests and embedding."""
        if self._recovery is not None:
            await asyncio.wait([self._recovery])

    def _barrier_source(self) -> Awaitable[None]:
        barrier = self.barrier()
        if barrier is not None:
            return barrier
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _update_gate(self) -> None:
        node = self._node
        if node is None:
            return
        refusing = self.status.loading or self.status.write_error is not None
        node.server.set_node_gate("persistence", self._gate if refusing else None)

    def _gate(self, conn: Any, command: Any, argv: list[bytes]) -> Any:
        """Requests while loading or while writes fail, as Redis's ``processCommand`` treats
        them: ``-LOADING`` for commands not flagged ``loading``, ``-MISCONF`` for writes."""
        status = self.status
        flags = _flags_of(command, argv)
        if status.loading and "loading" not in flags:
            raise CommandError(LOADING_ERROR)
        if status.write_error is not None and ("write" in flags or _exec_writes(conn, command)):
            raise CommandError(status.write_error)
        return proceed(conn, command, argv)

    def start_cron(self) -> None:
        """Start the once-a-second task: plugin ticks, scheduled checkpoints."""
        if self.plugins and self._cron is None:
            self._cron = asyncio.get_running_loop().create_task(self._every_second(),
                                                                name="persistence-cron")

    async def _every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.tick(time.time())
            except Exception:
                log.exception("persistence tick failed")

    def tick(self, now: float) -> None:
        for plugin in self.plugins:
            plugin.tick(now)
        if self.status.loading or self._stream is None or self.checkpoint_in_progress:
            return
        seq = self._stream.seq
        if self._rewrite_scheduled:
            self._rewrite_scheduled = False
            self._start_background(self._of_role("log"), "aof")
            return
        if self._bgsave_scheduled:
            self._bgsave_scheduled = False
            self._start_background(self._snapshot_plugins(), "rdb")
            return
        for name, plugin in zip(self.names, self.plugins, strict=True):
            failed_at = self._failed_at.get(name)
            if failed_at is not None and now - failed_at < RETRY_DELAY_SECONDS:
                continue
            if plugin.checkpoint_due(now, seq):
                self._start_background([plugin], "rdb" if plugin.role == "snapshot" else "aof")
                return

    # --- the request path -------------------------------------------------------------------

    def barrier(self) -> Awaitable[None] | None:
        """The durability barrier of this loop turn's writes (None: nothing to wait for).
        With several plugins it completes when all of theirs have."""
        waits = None
        for plugin in self.plugins:
            wait = plugin.barrier()
            if wait is not None:
                waits = [wait] if waits is None else [*waits, wait]
        if waits is None:
            return None
        if len(waits) == 1:
            return waits[0]
        return _all(waits)

    # --- checkpoints ------------------------------------------------------------------------

    @property
    def checkpoint_in_progress(self) -> bool:
        """A checkpoint runs, or BGSAVE/BGREWRITEAOF started one that has not begun yet."""
        return self._checkpoint_lock.locked() or (
            self._background is not None and not self._background.done())

    def _snapshot_plugins(self) -> list[Persistence]:
        """What SAVE and BGSAVE write: the snapshot plugins, or the logs when there are none
        (a WAL alone is compacted by SAVE, as it is by BGREWRITEAOF)."""
        return self._of_role("snapshot") or self._of_role("log")

    async def save(self) -> None:
        """SAVE: checkpoint now and return when it is durable (after a running rewrite).
        Raises :class:`PersistenceError` when it fails or a save is already running."""
        self._require_plugins()
        if self._current == "rdb":
            raise PersistenceError("Background save already in progress")
        if not await self._checkpoint(self._snapshot_plugins(), "rdb"):
            raise PersistenceError(self._last_error or "snapshot failed")

    def bgsave(self, schedule: bool = False) -> str:
        """BGSAVE [SCHEDULE]: the status reply; raises with Redis's words when it cannot."""
        self._require_plugins()
        if self._current == "rdb":
            raise PersistenceError("Background save already in progress")
        if self.checkpoint_in_progress:
            if not schedule:
                raise PersistenceError(
                    "Another child process is active (AOF?): can't BGSAVE right now. Use "
                    "BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
            self._bgsave_scheduled = True
            return "Background saving scheduled"
        self._start_background(self._snapshot_plugins(), "rdb")
        return "Background saving started"

    def bgrewriteaof(self) -> str:
        """BGREWRITEAOF: rewrite the logs from the keyspace, then drop what came before."""
        logs = self._of_role("log")
        if not logs:
            raise PersistenceError("no log is configured (add \"wal\" to node.persistence)")
        if self.checkpoint_in_progress:
            if self._current == "aof":
                raise PersistenceError(
                    "Background append only file rewriting already in progress")
            self._rewrite_scheduled = True
            return "Background append only file rewriting scheduled"
        self._start_background(logs, "aof")
        return "Background append only file rewriting started"

    def _require_plugins(self) -> None:
        if not self.plugins:
            raise PersistenceError("no persistence plugin is configured (set node.persistence)")

    def _start_background(self, plugins: list[Persistence], kind: str) -> None:
        self._current = kind  # a BGSAVE right after a BGSAVE finds it running, as in Redis
        self._background = asyncio.get_running_loop().create_task(
            self._checkpoint(plugins, kind), name=f"persistence-{kind}")

    _last_error: str | None = None

    async def _checkpoint(self, plugins: list[Persistence], kind: str) -> bool:
        """Checkpoint ``plugins`` one after the other, then compact; True when all worked."""
        if self._stream is None or self.status.loading:
            self._last_error = "the node is still loading"
            return False
        async with self._checkpoint_lock:
            self._current, self._current_started = kind, time.monotonic()
            ok = True
            try:
                for plugin in plugins:
                    ok = await self._checkpoint_one(plugin) and ok
                if ok:
                    await self._compact()
            finally:
                seconds = int(time.monotonic() - self._current_started)
                self._current, self._current_image = "", None
            if kind == "rdb":
                self.rdb_last_status, self.rdb_last_seconds = ("ok" if ok else "err"), seconds
            else:
                self.aof_last_status, self.aof_last_seconds = ("ok" if ok else "err"), seconds
            return ok

    async def _checkpoint_one(self, plugin: Persistence) -> bool:
        assert self._stream is not None
        name = plugin.name
        for _ in range(MAX_IMAGE_ATTEMPTS):
            image = KeyspaceImage(self._databases, self._stream)
            self._current_image = image
            try:
                async with image:
                    ref = await plugin.checkpoint(image)
            except ImageAborted as exc:
                log.info("%s: checkpoint interrupted (%s), starting it again", name, exc)
                continue
            except Exception as exc:
                self._failed(plugin, exc)
                return False
            self._succeeded(plugin, ref)
            return True
        self._failed(plugin, PersistenceError("SWAPDB or table rebuilds kept interrupting it"))
        return False

    def _failed(self, plugin: Persistence, exc: BaseException) -> None:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        log.error("%s: checkpoint failed: %s", plugin.name, reason)
        self._last_error = f"{plugin.name}: {reason}"
        self._failed_at[plugin.name] = time.time()
        if plugin.role == "snapshot":
            # Redis's stop-writes-on-bgsave-error: a cache that cannot save refuses writes
            # rather than let them pile up unsaved; the next successful save lifts it.
            self.status.set_write_error(f"checkpoint:{plugin.name}", SNAPSHOT_WRITE_ERROR)

    def _succeeded(self, plugin: Persistence, ref: SnapshotRef | None) -> None:
        self._failed_at.pop(plugin.name, None)
        self.status.set_write_error(f"checkpoint:{plugin.name}", None)
        if ref is None:
            return
        if plugin.role == "snapshot" or not self._of_role("snapshot"):
            self.last_save_time = int(time.time())
            if self._node is not None:
                self._node.last_save_time = self.last_save_time
            self.seq_at_last_save = ref.seq
            self.rdb_saves += 1
        if plugin.role == "log":
            self.aof_rewrites += 1
        log.info("%s: checkpoint at sequence %d written to %s", plugin.name, ref.seq, ref.path)

    async def _compact(self) -> None:
        refs = sorted((ref for plugin in self.plugins for ref in plugin.snapshots()),
                      key=lambda ref: ref.seq, reverse=True)
        if not refs:
            return
        # Keep the log back to the snapshot before the newest, so a damaged newest one falls
        # back to it and the log; while only one exists, keep the whole log (its fallback is
        # the log alone).
        retain_after = refs[1].seq if len(refs) > 1 else 0
        for plugin in self._of_role("log"):
            await plugin.compact(retain_after)

    # --- shutdown ---------------------------------------------------------------------------

    async def close(self, *, save: bool = True) -> None:
        """Stop the cron, let a running checkpoint finish, take the shutdown snapshot (when
        ``save`` and there were writes since the last one, or SHUTDOWN SAVE), close the
        plugins, unlock."""
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
            await asyncio.wait([self._recovery])
        if self.shutdown_save is not None:
            save = self.shutdown_save
        if self._cron is not None:
            self._cron.cancel()
            self._cron = None
        if self._background is not None and not self._background.done():
            await asyncio.wait([self._background])
        try:
            snapshotters = [p for p in self._of_role("snapshot")
                            if getattr(p, "snapshot_on_shutdown", True)]
            changed = self._stream is not None and self._stream.seq != self.seq_at_last_save
            if (save and snapshotters and self._stream is not None and not self.status.loading
                    and (changed or self.shutdown_save)):
                await self._checkpoint(snapshotters, "rdb")
            for listener in self._subscribed:
                if self._stream is not None:
                    self._stream.unsubscribe(listener)
            self._subscribed.clear()
            for plugin in self.plugins:
                try:
                    await plugin.close()
                except Exception:
                    log.exception("%s: close failed", plugin.name)
        finally:
            self._lock.release()

    # --- INFO -------------------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, Any]]:
        """The ``# Persistence`` section, Redis's fields first, then each plugin's."""
        status = self.status
        seq = self._stream.seq if self._stream is not None else 0
        image = self._current_image
        now = time.monotonic()
        rdb_running = self._current == "rdb"
        aof_running = self._current == "aof"
        has_log = bool(self._of_role("log"))
        fields: list[tuple[str, Any]] = [
            ("loading", int(status.loading)),
            ("async_loading", 0),
            ("current_save_keys_processed", image.keys_walked if image else 0),
            ("current_save_keys_total", image.keys_total if image else 0),
            ("rdb_changes_since_last_save", max(seq - self.seq_at_last_save, 0)),
            ("rdb_bgsave_in_progress", int(rdb_running)),
            ("rdb_last_save_time", self.last_save_time),
            ("rdb_last_bgsave_status", self.rdb_last_status),
            ("rdb_last_bgsave_time_sec", self.rdb_last_seconds),
            ("rdb_current_bgsave_time_sec",
             int(now - self._current_started) if rdb_running else -1),
            ("rdb_saves", self.rdb_saves),
            ("rdb_last_load_keys_expired", self.report.keys_expired if self.report else 0),
            ("rdb_last_load_keys_loaded", self.report.keys_loaded if self.report else 0),
            ("aof_enabled", int(has_log)),
            ("aof_rewrite_in_progress", int(aof_running)),
            ("aof_rewrite_scheduled", int(self._rewrite_scheduled)),
            ("aof_last_rewrite_time_sec", self.aof_last_seconds),
            ("aof_current_rewrite_time_sec",
             int(now - self._current_started) if aof_running else -1),
            ("aof_last_bgrewrite_status", self.aof_last_status),
            ("aof_rewrites", self.aof_rewrites),
        ]
        if status.loading:
            fields.extend(status.loading_fields())
        for plugin in self.plugins:
            fields.extend(plugin.info())
        fields.append(("persistence_plugins", ",".join(self.names)))
        fields.append(("persistence_write_error", status.write_error or ""))
        if self.report is not None:
            report = self.report
            fields.append(("last_recovery",
                           f"keys={report.keys_loaded},records={report.records_replayed},"
                           f"expired={report.keys_expired},seconds={report.seconds:.3f},"
                           f"seq={report.last_sequence},warnings={len(report.warnings)}"))
        return fields


def _flags_of(command: Any, argv: list[bytes]) -> frozenset[str]:
    """The flags that decide: a container command's (CLIENT, CONFIG) are its subcommand's,
    as Redis looks them up (CLIENT SETINFO runs while loading, CONFIG SET does not). An
    unknown subcommand gets the container's handler, which names the error."""
    if command.subcommands and len(argv) > 1:
        name = argv[1].lower().decode("utf-8", "replace")
        for sub in command.subcommands:
            if sub.name == name:
                return frozenset(sub.flags)
        return frozenset({"loading"})
    return frozenset(command.flags)


def _exec_writes(conn: Any, command: Any) -> bool:
    """EXEC of a transaction that queued a write counts as a write (Redis's processCommand
    checks ``c->mstate.cmd_flags``): refused, it aborts with ``-EXECABORT``."""
    transaction = getattr(conn, "transaction", None)
    return (command.name == "exec" and transaction is not None
            and any(queued.is_write for queued, _ in transaction.commands))


async def _all(waits: list[Awaitable[None]]) -> None:
    await asyncio.gather(*waits)

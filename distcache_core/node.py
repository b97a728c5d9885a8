"""A node: everything built once from config, started and stopped in order."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable
from typing import Any

from . import __version__
from .cluster import Cluster
from .command_table import CommandTable
from .config import Config, ConfigSources, build_config, structure_node
from .contracts import StorageEngine
from .databases import Databases
from .errors import ConfigError
from .metrics import NodeMetrics
from .mutations import MutationStream
from .persistence import PersistenceManager
from .plugins import PluginHost, Registry, load_plugins
from .protocol import ProtocolLimits
from .replyqueue import DurabilityBarrier
from .server import RespServer
from .tls import server_context

log = logging.getLogger("distcache.node")

#: Active expiry runs this many times a second (Redis ``hz`` 10) ...
ACTIVE_EXPIRE_HZ = 10
#: ... with this much time at most per run, so a burst of expiring keys never stalls requests
#: for long (Redis allows 25 ms; Python pays more per key, so the slice is smaller and the
#: sampling still converges because it repeats every 100 ms).
ACTIVE_EXPIRE_BUDGET_MS = 5.0


def _settle_barrier(barrier: DurabilityBarrier, wait: asyncio.Future[Any]) -> None:
    """The sources' wait ended: complete the turn's barrier and send the replies it held."""
    if barrier.done():
        return
    exc = None if wait.cancelled() else wait.exception()
    if wait.cancelled() or exc is not None:
        log.error("durability barrier failed: %s", exc or "cancelled")
        barrier.set_exception(exc or RuntimeError("barrier cancelled"))
        barrier.exception()  # retrieved: the reply queues report it to clients
    else:
        barrier.set_result(None)
    barrier.release()


def _ignore_mutation(mutation: Any) -> None:
    pass


def _ignore_fields(seq: int, op: int, db: int, key: bytes, value: bytes | None,
                   expire_at_ms: int | None, cause: int) -> None:
    """:func:`_ignore_mutation`'s fast form (engines then build no Mutation for it)."""


class Node:
    """One DistCache node. Build it with :meth:`from_sources` (config + plugins), then
    ``await node.start()`` / ``await node.stop()``, or ``await node.serve_forever()``."""

    def __init__(self, config: Config, host: PluginHost, registry: Registry) -> None:
        self.config = config
        self.plugin_host = host
        self.registry = registry
        self.pm = host.pm
        self.engine = self._build_engine()
        #: ``databases[i]``: the engine of logical database i (SELECT); see Databases.
        self.databases = Databases(self.engine, config.node.databases)
        #: The stream of applied writes (WAL, replication, WATCH subscribe to it).
        self.mutations = MutationStream()
        self.mutations.bind(self.databases.set_listener)
        #: Awaitable suppliers of durability (persistence plugins); see durability_barrier.
        self._barrier_sources: list[Any] = []
        self._barrier: DurabilityBarrier | None = None
        #: The persistence plugins of ``node.persistence``, driven through their contract.
        self.persistence = PersistenceManager.from_config(config, registry)
        self.commands = CommandTable(reg.obj for reg in registry.commands.values())
        node_cfg = config.node
        self.metrics = NodeMetrics(
            self.commands, slowlog_log_slower_than_us=node_cfg.slowlog_log_slower_than_us,
            slowlog_max_len=node_cfg.slowlog_max_len)
        #: Metrics sinks named by ``node.metrics`` (the dashboard), started with the node.
        self.metrics_sinks: dict[str, Any] = {
            name: self._registered("metrics_sinks", name, "node.metrics").obj(
                config.plugin_settings(name))
            for name in node_cfg.metrics}
        self.server = RespServer(
            node=self,
            mutations=self.mutations,
            protected_mode=node_cfg.protected_mode,
            engine=self.engine,
            commands=self.commands,
            limits=ProtocolLimits(
                max_bulk_len=node_cfg.max_bulk_bytes,
                max_multibulk_len=node_cfg.max_arguments,
                max_inline_len=node_cfg.max_inline_bytes,
            ),
            requirepass=node_cfg.requirepass,
            maxclients=node_cfg.maxclients,
            idle_timeout_seconds=node_cfg.idle_timeout_seconds,
            reply_buffer_high_water_bytes=node_cfg.reply_buffer_high_water_bytes,
        )
        self.started_at = time.time()
        self.run_id = os.urandom(20).hex()
        #: Unix time of the last successful save (LASTSAVE); start-up time until a save.
        self.last_save_time = int(self.started_at)
        self.host: str = node_cfg.host
        self.port: int = node_cfg.port
        self._listener: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self._stopping = False
        self._ssl_context = server_context(node_cfg)
        #: Membership, routing, replication, rebalancing: idle until a second node is known.
        self.cluster = Cluster(self)

    @classmethod
    def from_sources(cls, sources: ConfigSources, *,
                     extra_plugins: Iterable[tuple[str, object]] = ()) -> Node:
        """Read the ``[node]`` table, load plugins, validate the rest, build the node."""
        node_cfg = structure_node(sources)
        host = load_plugins(node_cfg.plugins, extra_objects=extra_plugins)
        registry = Registry.collect(host.pm)
        return cls(build_config(sources, registry.config_sections), host, registry)

    @property
    def node_id(self) -> str:
        return self.config.node.id

    def _build_engine(self) -> StorageEngine:
        name = self.config.node.storage
        registration = self.registry.storage_engines.get(name)
        if registration is None:
            available = ", ".join(sorted(self.registry.storage_engines)) or "none"
            raise ConfigError(f"node.storage = {name!r}: no storage engine plugin of that "
                              f"name is loaded (available: {available})")
        if self.config.node.persistence:
            available = ", ".join(sorted(self.registry.persistence)) or "none"
            missing = [p for p in self.config.node.persistence
                       if p not in self.registry.persistence]
            if missing:
                raise ConfigError(f"node.persistence = {list(self.config.node.persistence)!r}: "
                                  f"no persistence plugin named {missing[0]!r} is loaded "
                                  f"(available: {available})")
        return registration.obj(self.config.plugin_settings(name))

    @property
    def stopping(self) -> bool:
        """True once a graceful shutdown began (the dashboard's /health answers 503)."""
        return self._stopping

    def _registered(self, kind: str, name: str, key: str) -> Any:
        registration = getattr(self.registry, kind).get(name)
        if registration is None:
            available = ", ".join(sorted(getattr(self.registry, kind))) or "none"
            raise ConfigError(f"{key}: no plugin registers {name!r} (available: {available})")
        return registration

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Everything built so far (modules, plugins, the command table) lives as long as the
        # node: out of the cyclic collector's sight, the first full collection no longer
        # walks it while clients wait (measured: a 23 ms PING beside the hostile-client
        # bench's first burst of connections, 1.6 ms at worst after it).
        gc.collect()
        gc.freeze()
        self.persistence.open()  # the data dir is ours and writable, or no start at all
        self._listener = await loop.create_server(
            self.server.protocol_factory, self.config.node.host, self.config.node.port,
            reuse_address=True, backlog=511, ssl=self._ssl_context,
        )
        sockname = self._listener.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        await self.cluster.start()
        self._tasks = [
            asyncio.create_task(self._every(1.0, self.server.cron), name="server-cron"),
            asyncio.create_task(self._every(1.0, self.metrics.fold), name="metrics-fold"),
            asyncio.create_task(self._every(1.0 / ACTIVE_EXPIRE_HZ, self._active_expire),
                                name="active-expire"),
        ]
        # Recovery runs in the background; until it ends, data commands get -LOADING.
        self.persistence.attach(self)
        for sink in self.metrics_sinks.values():
            await sink.start(self)
        self.pm.hook.distcache_node_started(node=self)

    def _active_expire(self) -> None:
        self.engine.active_expire_cycle(ACTIVE_EXPIRE_BUDGET_MS)

    async def _every(self, seconds: float, action: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                action()
            except Exception:
                log.exception("periodic task %r failed", action)

    # -- durability ----------------------------------------------------------------------------

    def add_barrier_source(self, barrier: Any) -> None:
        """Register ``barrier``, a callable returning an awaitable that completes once every
        write recorded so far is as durable as its plugin promises (``fsync = always``).
        From then on a batch of requests that wrote sends its replies only after it."""
        self._barrier_sources.append(barrier)
        if not self.mutations.active:
            # The server knows a batch wrote by the stream's sequence number, which only
            # moves while the engines report to someone.
            self.mutations.subscribe(_ignore_mutation, _ignore_fields)
        self.server.barrier_enabled = True
        for conn in self.server.connections.values():
            conn._barrier_enabled = True

    def durability_barrier(self) -> DurabilityBarrier:
        """The barrier of this loop turn: every batch that writes during one turn of the event
        loop shares it, so one fsync covers all their writes (group commit, as Redis's
        ``beforeSleep`` does). It starts at the end of the turn, once they have all written."""
        barrier = self._barrier
        if barrier is None or barrier.done():
            loop = asyncio.get_running_loop()
            barrier = self._barrier = DurabilityBarrier(loop=loop)
            barrier.queues = []
            loop.call_soon(self._start_barrier, barrier)
        return barrier

    def _start_barrier(self, barrier: DurabilityBarrier) -> None:
        if self._barrier is barrier:
            self._barrier = None  # writes from now on wait for the next one
        sources = self._barrier_sources
        wait = sources[0]() if len(sources) == 1 else None
        if not isinstance(wait, asyncio.Future):
            # Several sources, or an awaitable that is not a future: gather them. One future
            # (the WAL's) is waited for as it is: gather's future and task each cost a loop
            # iteration before the replies could leave.
            waits = [wait] if wait is not None else [source() for source in sources]
            wait = asyncio.ensure_future(asyncio.gather(*waits))
        wait.add_done_callback(functools.partial(_settle_barrier, barrier))

    async def save(self, background: bool) -> None:
        """SAVE (wait until the checkpoint is durable) or BGSAVE (start it)."""
        if background:
            self.persistence.bgsave()
        else:
            await self.persistence.save()

    def request_shutdown(self) -> None:
        """Stop soon (SIGINT, SIGTERM, SHUTDOWN); safe to call more than once."""
        if not self._stopping:
            asyncio.get_running_loop().create_task(self.stop())

    async def stop(self) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        log.info("node %s shutting down", self.node_id)
        self.pm.hook.distcache_node_stopping(node=self)
        if self._listener is not None:
            self._listener.close()
        for task in self._tasks:
            task.cancel()
        # Every client gets the replies of what it sent and a clean close, not a reset.
        await self.server.shut_down()
        for sink in self.metrics_sinks.values():
            await sink.stop()
        self.metrics.close()
        await self.cluster.stop()
        if self._listener is not None:
            await self._listener.wait_closed()
        await self.persistence.close()  # the shutdown snapshot, logs synced, lock released
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`stop` has finished."""
        await self._stopped.wait()

    def _set_process_title(self) -> None:
        # `ps` shows what this process is, never its arguments (--set node.requirepass=...),
        # as Redis does.
        try:
            import setproctitle
        except ImportError:
            return
        setproctitle.setproctitle(f"distcache {self.node_id} {self.host}:{self.port}")

    def _announce_ready(self) -> None:
        print(f"DistCache {__version__} node {self.node_id} listening on "
              f"{self.host}:{self.port} (storage {self.config.node.storage}, "
              f"{len(self.commands)} commands, pid {os.getpid()})", flush=True)
        for name, sink in self.metrics_sinks.items():
            if getattr(sink, "url", None):
                print(f"DistCache node {self.node_id} {name}: {sink.url}", flush=True)

    async def serve_forever(self, *, install_signal_handlers: bool = True,
                            announce: bool = True) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_shutdown)
        if announce:
            self._set_process_title()
            if self.persistence.enabled:
                print(f"DistCache {__version__} node {self.node_id} loading its data from "
                      f"{self.persistence.data_dir}: answering -LOADING on "
                      f"{self.host}:{self.port} until it is loaded (pid {os.getpid()})",
                      flush=True)
            # The "listening" line says the node is ready, so it comes once recovery has
            # succeeded, as Redis logs "Ready to accept connections" only after loading; a
            # damaged log found halfway through stops the node without it. Validating the
            # log before listening instead would cost a second pass over it (1.3-2 s per
            # million records here, a third to half of the replay) during which the port
            # answers nothing at all, not even -LOADING.
            await self.persistence.wait_recovered()
            if not self._stopping and self.persistence.recovery_error is None:
                self._announce_ready()
        await self.wait_stopped()
        if self.persistence.recovery_error is not None:
            raise self.persistence.recovery_error
        if announce:
            print(f"DistCache node {self.node_id} stopped", file=sys.stderr, flush=True)

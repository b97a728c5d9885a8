"""The cluster side of a node: builds and wires membership, the peer pool, the router,
replication and rebalancing, and reacts to membership changes.

The node builds one :class:`Cluster` always; it costs nothing per request until the ring holds
a second node (from ``cluster.peers``, ``serve --join``, ``CLUSTER MEET``, or a node that
meets this one), when the router's tables go in and replication subscribes to the mutation
stream. It asks the hash strategy and the fault policy only through their contracts
(:class:`~distcache_core.contracts.HashStrategy`, :class:`~distcache_core.contracts.FaultPolicy`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from typing import Any

from ..errors import ConfigError
from ..metrics import INFO_PERCENTILES
from ..tls import peer_context
from .hints import HintStore
from .membership import DOWN, LEFT, Member, Membership, format_address, parse_peer, wall_ms
from .peer import PeerPool
from .rebalance import Rebalancer
from .replication import Replicator
from .resp import decode, encode_command
from .router import Router
from .versions import VersionClock, VersionMap

log = logging.getLogger("distcache.cluster")

#: Breaker changes kept per peer for CLUSTER NODES.
BREAKER_HISTORY = 8
#: Housekeeping (hint expiry, tombstone collection, handoff deadline) runs this often.
HOUSEKEEPING_SECONDS = 1.0
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class MembershipEvent:
    """What ``distcache_membership_changed`` hooks receive."""

    __slots__ = ("kind", "node_id", "address", "state", "previous")

    def __init__(self, kind: str, member: Member, previous: Any) -> None:
        self.kind = kind
        self.node_id = member.node_id
        self.address = member.address
        self.state = member.state if kind != "left" else LEFT
        self.previous = previous

    def __repr__(self) -> str:
        return f"MembershipEvent({self.kind!r}, {self.node_id!r}, {self.state!r})"


class Cluster:
    def __init__(self, node: Any) -> None:
        cfg = node.config.cluster
        self.node = node
        self.config = cfg
        self.me: str = node.node_id
        self.replication_factor: int = cfg.replication_factor
        self.secret: str = cfg.secret
        self.strategy = self._build("hashing", node.registry.hash_strategies, cfg.hashing)
        self.policy = self._build("fault_policy", node.registry.fault_policies,
                                  cfg.fault_policy)
        self.strategy.add_node(self.me)
        #: Members that are down: routed around (shared with the router).
        self.down: set[str] = set()
        #: Bumped by every ring change (caches of per-node key counts depend on it).
        self.ring_epoch = 0
        self.versions = VersionMap(cfg.hint_window_ms)
        self.clock = VersionClock(self.me)
        self.hints = HintStore(cfg.hint_window_ms, cfg.max_hints_bytes)
        self.pool = PeerPool(node_id=self.me, secret=cfg.secret,
                             requirepass=node.config.node.requirepass,
                             request_timeout_ms=cfg.request_timeout_ms,
                             guard_for=self.policy.for_peer,
                             ssl_context=peer_context(node.config.node),
                             on_lost_hint=self._lost_hint)
        self.replicator = Replicator(self, replication_factor=cfg.replication_factor,
                                     write_ack=cfg.write_ack, versions=self.versions,
                                     clock=self.clock, hints=self.hints)
        self.router = Router(self)
        self.rebalancer = Rebalancer(self)
        self.membership: Membership | None = None
        self.incarnation = wall_ms()
        #: peer -> recent breaker changes (old, new, reason, Unix ms), newest last.
        self.breaker_history: dict[str, deque[tuple[str, str, str, int]]] = {}
        self._needs_repair: set[str] = set()
        self._ring_before: Any = None
        self._subscribed = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._join: list[tuple[str, int]] = []
        set_listener = getattr(self.policy, "set_listener", None)
        if set_listener is not None:  # optional in the FaultPolicy contract
            set_listener(self._breaker_changed)

    def _build(self, key: str, table: dict[str, Any], name: str) -> Any:
        registration = table.get(name)
        if registration is None:
            available = ", ".join(sorted(table)) or "none"
            raise ConfigError(f"cluster.{key} = {name!r}: no plugin of that name is loaded "
                              f"(available: {available})")
        return registration.obj(self.node.config.plugin_settings(name))

    # -- start and stop ------------------------------------------------------------------------

    def join(self, addresses: list[tuple[str, int]]) -> None:
        """Seeds to join through at start (``distcache serve --join``)."""
        self._join.extend(addresses)

    def announce(self) -> tuple[str, int]:
        """The address peers should use for this node."""
        node_cfg = self.node.config.node
        for entry in self.config.peers:
            node_id, host, port = parse_peer(entry, self.node.port)
            if node_id == self.me:
                return host, self.node.port
        host = node_cfg.host
        if host in _WILDCARD_HOSTS:
            host = socket.getfqdn()
        return host, self.node.port

    async def start(self) -> None:
        node = self.node
        self.router.build(node.commands)
        host, port = self.announce()
        me = Member(self.me, host, port, self.incarnation, now_ms=time.monotonic() * 1000,
                    myself=True)
        cfg = self.config
        self.membership = Membership(
            me=me, pool=self.pool, heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            failure_timeout_ms=cfg.failure_timeout_ms, remove_after_ms=cfg.remove_after_ms,
            request_timeout_ms=cfg.request_timeout_ms, listener=self._membership_changed,
            open_seed=self._call_address, local_keys=self.local_keys,
            moved=self._moved_for, on_moved=self.rebalancer.peer_done)
        seeds = list(self._join)
        for entry in cfg.peers:
            node_id, peer_host, peer_port = parse_peer(entry, 6379)
            if node_id == self.me:
                continue
            if node_id is None:
                seeds.append((peer_host, peer_port))
            else:
                self.membership.add(node_id, peer_host, peer_port, 0)
        self.membership.add_seeds(seeds)
        if (cfg.peers or seeds) and not self.secret:
            log.warning("cluster.secret is not set: the internal cluster commands (DC.*) are "
                        "open to anyone who can connect to this port; set cluster.secret (env "
                        "DISTCACHE_CLUSTER_SECRET) on every node")
        self.pool.start()
        self.membership.start()
        self._tasks.append(asyncio.get_running_loop().create_task(self._housekeeping(),
                                                                  name="cluster-housekeeping"))

    async def stop(self) -> None:
        if self.membership is not None:
            self.membership.stop()
        self.rebalancer.stop()
        for task in self._tasks:
            task.cancel()
        self.pool.close()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                self.hints.expire()
                self.versions.collect()
                self.rebalancer.end_handoff_if_due()
                self._service_peers()
                self.pool.fold()
            except Exception:
                log.exception("cluster housekeeping failed")

    # -- placement, for the router and replication ---------------------------------------------

    def owns(self, key: bytes) -> bool:
        return bool(self.strategy.owner(key) == self.me)

    def replica_targets(self, key: bytes) -> list[str]:
        """The other nodes a write of ``key`` made here must reach."""
        if self.replication_factor == 1:
            owner = self.strategy.owner(key)
            return [] if owner == self.me else [owner]
        return [n for n in self.strategy.preference_list(key, self.replication_factor)
                if n != self.me]

    def ring_copy(self) -> Any:
        copy = getattr(self.strategy, "copy", None)  # optional: cheaper than a rebuild
        if copy is not None:
            return copy()
        return self._ring_of(self.strategy.nodes())

    def ring_without(self, node_id: str) -> Any:
        return self._ring_of(n for n in self.strategy.nodes() if n != node_id)

    def _ring_of(self, nodes: Any) -> Any:
        ring = self.node.registry.hash_strategies[self.config.hashing].obj(
            self.node.config.plugin_settings(self.config.hashing))
        for node_id in nodes:
            ring.add_node(node_id)
        return ring

    def local_keys(self) -> int:
        return sum(len(engine) for _, engine in self.node.databases.opened())

    # -- membership changes --------------------------------------------------------------------

    def _membership_changed(self, kind: str, member: Member, detail: Any) -> None:
        node_id = member.node_id
        if kind == "joined":
            self._change_ring(lambda: self.strategy.add_node(node_id))
        elif kind == "left":
            self.down.discard(node_id)
            self.hints.forget(node_id)
            forget = getattr(self.policy, "forget", None)
            if forget is not None:
                forget(node_id)
            self.rebalancer.peer_down(node_id)
            self._change_ring(lambda: self.strategy.remove_node(node_id))
        elif kind == "state":
            if member.state == DOWN:
                self.down.add(node_id)
                trip = getattr(self.policy.for_peer(node_id), "trip", None)
                if trip is not None:  # optional: open the breaker of a member known down
                    trip()
                self.rebalancer.peer_down(node_id)
            else:
                self.down.discard(node_id)
                if detail == DOWN:
                    self._peer_returned(node_id)
        elif kind in ("introduced", "restarted"):
            # A new process: whatever its predecessor (or the empty port before it started)
            # did to its breaker is history.
            reset = getattr(self.policy.for_peer(node_id), "reset", None)
            if reset is not None:  # optional in the PeerGuard contract
                reset()
            if kind == "restarted":
                self._needs_repair.add(node_id)
                if member.state != DOWN:
                    self._peer_returned(node_id)
        try:
            self.node.pm.hook.distcache_membership_changed(
                node=self.node, event=MembershipEvent(kind, member, detail))
        except Exception:
            log.exception("a distcache_membership_changed hook failed")

    def _peer_returned(self, node_id: str) -> None:
        self.replicator.hand_over(node_id)
        if node_id in self._needs_repair or node_id in self.hints.overflowed:
            self._needs_repair.discard(node_id)
            self.hints.overflowed.discard(node_id)
            self.rebalancer.repair(node_id)

    def _service_peers(self) -> None:
        """Retry what a returning peer is owed (hints, a repair) until it is delivered: the
        first attempt may meet a breaker still open from the outage."""
        for node_id in list(self.pool.clients):
            if node_id not in self.down and (self.hints.pending(node_id)
                                             or node_id in self._needs_repair
                                             or node_id in self.hints.overflowed):
                if not self.rebalancer.repairing(node_id):
                    self._peer_returned(node_id)

    def _moved_for(self, node_id: str) -> str:
        """The ring this node has moved its keys for, as told to ``node_id``: nothing while
        it still owes that peer a repair (a restarted peer asks the previous owners until
        every one of them has repaired it)."""
        if node_id in self._needs_repair or self.rebalancer.repairing(node_id) \
                or node_id in self.hints.overflowed:
            return ""
        return self.rebalancer.moved_digest

    def repair_failed(self, node_id: str) -> None:
        self._needs_repair.add(node_id)

    def _change_ring(self, change: Any) -> None:
        if self._ring_before is None:
            self._ring_before = self.ring_copy()
            # Several changes from one gossip message make one move, after them all.
            asyncio.get_running_loop().call_soon(self._ring_changed)
        change()

    def _ring_changed(self) -> None:
        previous, self._ring_before = self._ring_before, None
        self.ring_epoch += 1
        nodes = self.strategy.nodes()
        log.info("ring: %s", ", ".join(nodes))
        if len(nodes) > 1:
            self._activate()
        else:
            self._deactivate()
        self.rebalancer.ring_changed(previous)

    def _activate(self) -> None:
        self.router.install(self.node.commands)
        if not self._subscribed:
            self.node.mutations.subscribe(self.replicator.on_mutation)
            self._subscribed = True

    def _deactivate(self) -> None:
        self.router.uninstall(self.node.commands)
        if self._subscribed:
            self.node.mutations.unsubscribe(self.replicator.on_mutation)
            self._subscribed = False

    def _lost_hint(self, node_id: str, payload: bytes) -> None:
        if node_id in self.pool.clients:
            self.replicator.lost(node_id, payload)

    def _breaker_changed(self, transition: Any) -> None:
        self.pool.stats_of(transition.peer).breaker_transitions += 1
        history = self.breaker_history.setdefault(transition.peer,
                                                  deque(maxlen=BREAKER_HISTORY))
        history.append((transition.old, transition.new, transition.reason,
                        int(transition.at_unix_ms)))
        level = logging.WARNING if transition.new == "open" else logging.INFO
        log.log(level, "breaker of %s: %s -> %s (%s)", transition.peer, transition.old,
                transition.new, transition.reason)

    # -- peers by address (seeds, MEET) --------------------------------------------------------

    async def _call_address(self, host: str, port: int, argv: list[bytes]) -> Any:
        """One request to an address whose node id is unknown, on a short-lived connection
        with the same handshake as a peer link."""
        timeout = self.config.request_timeout_ms / 1000.0
        requests = []
        if self.node.config.node.requirepass:
            requests.append(encode_command(b"AUTH", self.node.config.node.requirepass))
        requests.append(encode_command(b"DC.AUTH", self.secret, self.me, "control"))
        requests.append(encode_command(*argv))
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self.pool.ssl_context,
                                    server_hostname=host if self.pool.ssl_context else None),
            timeout)
        try:
            writer.write(b"".join(requests))
            from .resp import ReplySplitter
            splitter = ReplySplitter()
            replies: list[bytes] = []
            while len(replies) < len(requests):
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    raise ConnectionError("connection closed")
                replies.extend(splitter.feed(data))
        finally:
            writer.close()
        for raw in replies[:-1]:
            value = decode(raw)
            if isinstance(value, Exception):
                raise ConnectionError(f"refused: {value}")
        value = decode(replies[-1])
        if isinstance(value, Exception):
            raise ConnectionError(str(value))
        return value

    async def meet(self, host: str, port: int) -> str:
        """CLUSTER MEET: contact ``host:port`` and merge views; its node id."""
        assert self.membership is not None
        if not self.secret:
            log.warning("cluster.secret is not set: internal cluster commands are open to "
                        "anyone who can connect")
        return await self.membership.contact(host, port)

    def address_of(self, node_id: str) -> str:
        if self.membership is not None:
            member = self.membership.members.get(node_id)
            if member is not None:
                return member.address
        client = self.pool.clients.get(node_id)
        return client.address if client is not None else "?"

    def peer_calls(self) -> dict[str, dict[str, Any]]:
        """Peer id -> this node's calls to it (INFO ``cluster``, ``/api/cluster``,
        ``/metrics``): ``calls``, ``errors``, ``timeouts``, ``rejected``, ``breaker`` (its
        state now), ``breaker_transitions`` and ``latency_usec`` (``samples``, ``usec`` in
        total, ``usec_per_call``, ``p50``, ``p99``, ``p99.9``)."""
        out = {}
        for node_id, stats in sorted(self.pool.peer_stats.items()):
            stats.fold()
            values = stats.histogram.percentiles_usec(INFO_PERCENTILES)
            latency: dict[str, Any] = {
                "samples": stats.samples, "usec": round(stats.sampled_seconds * 1e6),
                "usec_per_call": round(stats.usec_per_call, 3)}
            latency.update((f"p{p:g}", round(values[p], 3)) for p in INFO_PERCENTILES)
            out[node_id] = {
                "calls": stats.calls, "errors": stats.errors, "timeouts": stats.timeouts,
                "rejected": stats.rejected, "breaker": self.policy.for_peer(node_id).state,
                "breaker_transitions": stats.breaker_transitions, "latency_usec": latency}
        return out

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: the peer call counters and latencies."""
        self.pool.reset_stats()

    def describe(self) -> dict[str, Any]:
        """The cluster as the dashboard's ``/api/cluster`` shows it: members (state ``up``,
        ``suspect`` or ``down``, address, ring share, breaker, seconds since last heard,
        keys, this node's calls to it), replication factor, hints, and the current move's
        progress."""
        shares = getattr(self.strategy, "shares", None)  # optional in the contract
        share_of = shares() if shares is not None else {}
        now = time.monotonic() * 1000
        nodes = []
        members = self.membership.members if self.membership is not None else {}
        calls = self.peer_calls()
        for member in sorted(members.values(), key=lambda m: m.node_id):
            nodes.append({
                "id": member.node_id, "address": member.address,
                "state": "up" if member.state == "alive" else member.state,
                "ring_share": share_of.get(member.node_id),
                "breaker": None if member.myself
                else self.policy.for_peer(member.node_id).state,
                "last_seen_seconds": 0.0 if member.myself
                else round((now - member.last_heard_ms) / 1000, 3),
                "keys": self.local_keys() if member.myself else member.keys,
                "peer": None if member.myself else calls.get(member.node_id),
            })
        progress = self.rebalancer.progress
        return {
            "enabled": len(self.strategy.nodes()) > 1, "self": self.me, "nodes": nodes,
            "replication_factor": self.replication_factor,
            "write_ack": self.replicator.write_ack,
            "hints_pending": len(self.hints),
            "rebalance": {"keys_to_move": progress.keys_to_move,
                          "keys_moved": progress.keys_moved,
                          "active": progress.state == "moving",
                          "eta_seconds": progress.eta_seconds()},
        }

    def describe_me(self) -> str:
        host, port = self.announce()
        return f"{self.me}@{format_address(host, port)}"

"""Who is in the cluster, and who answers: members, heartbeats, gossip, MEET and FORGET.

Every node sends a heartbeat (``DC.HEARTBEAT``) to every member each ``heartbeat_interval_ms``
over the member's control link, through its guard like any peer call. The heartbeat carries
the sender's member list and the reply the receiver's, so a node that joins through one member
(``CLUSTER MEET``, ``serve --join``, a seed in ``cluster.peers``) is known to all within a
heartbeat or two, and so is a ``CLUSTER FORGET``. At this size (a few to a few dozen nodes)
everyone probes everyone directly; memberlist's defaults (1 s probes, suspicion before death)
are the model, with the interval and timeout configurable.

Liveness is what this node hears itself: an answered heartbeat, or a heartbeat received. A
member silent for half of ``failure_timeout_ms`` (at least two intervals) is *suspect* (still
routed to), for ``failure_timeout_ms`` *down*: routed around, its breaker tripped open. It is
*alive* again as soon as it answers. A down member keeps its place on the ring (a restart must
not move every key twice); ``CLUSTER FORGET`` or ``remove_after_ms`` takes it off.

Each member carries an *incarnation*, the Unix ms its process started: a higher one from the
same id is the same node restarted (its copies may be gone: it gets repaired), and a forgotten
node comes back only with a higher incarnation than the one it was forgotten at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .peer import MODE_CONTROL, LinkFailure
from .resp import decode, encode_command

log = logging.getLogger("distcache.cluster.membership")

ALIVE = "alive"
SUSPECT = "suspect"
DOWN = "down"
#: Gossip status of a member taken off the cluster (FORGET, remove_after_ms).
LEFT = "left"
#: Fields per member in gossip.
FIELDS = 6


def wall_ms() -> int:
    return int(time.time() * 1000)


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


def parse_address(text: str, default_port: int = 6379) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    host, sep, port_text = text.rpartition(":")
    if not sep or ":" in host:  # no port, or a bare IPv6 address
        return text, default_port
    return host, int(port_text)


def parse_peer(text: str, default_port: int = 6379) -> tuple[str | None, str, int]:
    """A ``cluster.peers`` entry: ``"id@host:port"`` or ``"host[:port]"`` (a seed whose id is
    learnt when it answers) -> (id or None, host, port)."""
    node_id, sep, address = text.partition("@")
    if not sep:
        node_id, address = "", text
    host, port = parse_address(address, default_port)
    return (node_id or None), host, port


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Member:
    """One node as this node sees it."""

    __slots__ = ("node_id", "host", "port", "incarnation", "state", "last_heard_ms",
                 "state_since_ms", "myself", "keys")

    def __init__(self, node_id: str, host: str, port: int, incarnation: int, *,
                 now_ms: float, myself: bool = False) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.incarnation = incarnation
        self.state = ALIVE
        #: When it was last heard from (monotonic ms); a new member gets a full timeout of
        #: grace before it can be declared down.
        self.last_heard_ms = now_ms
        self.state_since_ms = now_ms
        self.myself = myself
        #: Keys the node holds, as it last told us (heartbeats carry it).
        self.keys = 0

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def gossip(self) -> list[bytes]:
        return [self.node_id.encode(), self.host.encode(), b"%d" % self.port,
                b"%d" % self.incarnation, ALIVE.encode(), b"%d" % self.keys]

    def __repr__(self) -> str:
        return f"Member({self.node_id!r}, {self.address}, {self.state})"


#: ``listener(kind, member, detail)``; kind is ``joined``, ``state`` (detail: old state),
#: ``introduced`` (its process is known for the first time), ``restarted`` (detail: old
#: incarnation) or ``left``.
MembershipListener = Callable[[str, Member, Any], None]


class Membership:
    """The member table and the heartbeat loop.

    :param pool: the :class:`~.peer.PeerPool` heartbeats go through.
    :param listener: told of every change (the cluster updates the ring, hints, repairs).
    """

    def __init__(self, *, me: Member, pool: Any, heartbeat_interval_ms: int,
                 failure_timeout_ms: int, remove_after_ms: int, request_timeout_ms: int,
                 listener: MembershipListener, open_seed: Callable[..., Any],
                 local_keys: Callable[[], int] = lambda: 0,
                 moved: Callable[[str], str] = lambda node_id: "",
                 on_moved: Callable[[str, str], None] = lambda node_id, digest: None,
                 clock_ms: Callable[[], float] = monotonic_ms) -> None:
        self.me = me
        self.pool = pool
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.failure_timeout_ms = failure_timeout_ms
        self.suspect_after_ms = max(2 * heartbeat_interval_ms, failure_timeout_ms // 2)
        self.remove_after_ms = remove_after_ms
        self.request_timeout_ms = request_timeout_ms
        self._listener = listener
        self._open_seed = open_seed
        self._local_keys = local_keys
        #: The ring this node has finished moving keys for, and what to do with a peer's:
        #: heartbeats carry it, so a node that was down when another finished still learns.
        self._moved = moved
        self._on_moved = on_moved
        self._clock = clock_ms
        self.members: dict[str, Member] = {me.node_id: me}
        #: id -> incarnation it was forgotten at; it may come back only with a later one.
        self.forgotten: dict[str, int] = {}
        #: Addresses to contact whose ids are not known yet (seeds, MEET).
        self.seeds: set[tuple[str, int]] = set()
        self._task: asyncio.Task[None] | None = None
        self._outstanding: set[str] = set()
        self._contacting: set[tuple[str, int]] = set()

    # -- the table -----------------------------------------------------------------------------

    def others(self) -> list[Member]:
        return [m for m in self.members.values() if not m.myself]

    def is_up(self, node_id: str) -> bool:
        member = self.members.get(node_id)
        return member is not None and member.state != DOWN

    def add(self, node_id: str, host: str, port: int, incarnation: int = 0) -> Member | None:
        """Add (or update) a member learnt from config, a heartbeat or gossip; None when it is
        this node or forgotten at this incarnation."""
        if node_id == self.me.node_id:
            return None
        if node_id in self.forgotten:
            if incarnation <= self.forgotten[node_id]:
                return None
            del self.forgotten[node_id]
        now = self._clock()
        member = self.members.get(node_id)
        if member is None:
            member = self.members[node_id] = Member(node_id, host, port, incarnation, now_ms=now)
            self.pool.add(node_id, host, port)
            self.seeds.discard((host, port))
            log.info("member %s (%s) joined the cluster view", node_id, member.address)
            self._listener("joined", member, None)
            return member
        if (host, port) != (member.host, member.port) and incarnation >= member.incarnation:
            member.host, member.port = host, port
            self.pool.add(node_id, host, port)
        if incarnation > member.incarnation:
            old = member.incarnation
            member.incarnation = incarnation
            if old:
                log.info("member %s restarted (incarnation %d -> %d)", node_id, old,
                         incarnation)
                self._listener("restarted", member, old)
            else:
                self._listener("introduced", member, None)
        return member

    def forget(self, node_id: str, incarnation: int | None = None) -> bool:
        """Take a member off the cluster; False when it is not a member."""
        member = self.members.get(node_id)
        if member is None or member.myself:
            return False
        if incarnation is not None and incarnation < member.incarnation:
            return False  # a forget of an older incarnation: it restarted since
        del self.members[node_id]
        self.forgotten[node_id] = member.incarnation if incarnation is None else incarnation
        self.pool.remove(node_id)
        log.info("member %s (%s) forgotten", node_id, member.address)
        self._listener("left", member, None)
        return True

    def heard_from(self, member: Member) -> None:
        member.last_heard_ms = self._clock()
        if member.state != ALIVE:
            self._set_state(member, ALIVE)

    def _set_state(self, member: Member, state: str) -> None:
        old = member.state
        member.state = state
        member.state_since_ms = self._clock()
        level = logging.WARNING if state == DOWN else logging.INFO
        log.log(level, "member %s (%s): %s -> %s", member.node_id, member.address, old, state)
        self._listener("state", member, old)

    def check(self) -> None:
        """Move silent members to suspect and down, and forget those down too long."""
        now = self._clock()
        for member in self.others():
            silent = now - member.last_heard_ms
            if silent >= self.failure_timeout_ms:
                if member.state != DOWN:
                    self._set_state(member, DOWN)
                elif self.remove_after_ms and now - member.state_since_ms >= self.remove_after_ms:
                    log.warning("member %s down for %d ms: removed (remove_after_ms)",
                                member.node_id, self.remove_after_ms)
                    self.forget(member.node_id)
            elif silent >= self.suspect_after_ms and member.state == ALIVE:
                self._set_state(member, SUSPECT)

    # -- gossip --------------------------------------------------------------------------------

    def gossip(self) -> list[bytes]:
        """This node's view, flattened: :data:`FIELDS` per member (id, host, port,
        incarnation, ``alive`` or ``left``, keys held), this node first."""
        self.me.keys = self._local_keys()
        out = self.me.gossip()
        for member in self.others():
            out += member.gossip()
        for node_id, incarnation in self.forgotten.items():
            out += [node_id.encode(), b"", b"0", b"%d" % incarnation, LEFT.encode(), b"0"]
        return out

    def merge(self, fields: list[Any], sender: Member | None = None) -> None:
        """Merge a peer's gossip; ``sender`` is the member it came from (its own entry,
        the first, tells its key count)."""
        if sender is not None and len(fields) >= FIELDS and _text(fields[0]) == sender.node_id:
            sender.keys = int(fields[5])
        for i in range(0, len(fields) - FIELDS + 1, FIELDS):
            node_id = _text(fields[i])
            host = _text(fields[i + 1])
            port, incarnation = int(fields[i + 2]), int(fields[i + 3])
            status = _text(fields[i + 4])
            if status == LEFT:
                if node_id == self.me.node_id:
                    if incarnation >= self.me.incarnation:
                        log.warning("this node was forgotten by the cluster; CLUSTER MEET a "
                                    "member (or restart) to join again")
                    continue
                self.forget(node_id, incarnation)
            elif status == ALIVE:
                self.add(node_id, host, port, incarnation)

    def view(self) -> list[bytes]:
        """``DC.VIEW``: ``[moved-ring, <gossip...>]`` as a heartbeat's reply, without the
        caller becoming a member."""
        return [self._moved("").encode(), *self.gossip()]

    def heartbeat_args(self, to: str = "") -> list[bytes]:
        """``DC.HEARTBEAT id host port incarnation moved-ring <gossip...>`` for peer ``to``
        (``moved-ring`` is empty while this node still owes ``to`` keys)."""
        return [b"DC.HEARTBEAT", self.me.node_id.encode(), self.me.host.encode(),
                b"%d" % self.me.port, b"%d" % self.me.incarnation, self._moved(to).encode(),
                *self.gossip()]

    def on_heartbeat(self, argv: list[bytes]) -> list[bytes]:
        """A heartbeat from a peer (see :meth:`heartbeat_args`): the sender is alive. The
        reply is ``[moved-ring, <gossip...>]``, this node's entry first."""
        node_id = _text(argv[1])
        incarnation = int(argv[4])
        if node_id != self.me.node_id:
            member = self.add(node_id, _text(argv[2]), int(argv[3]), incarnation)
            if member is not None:
                self.heard_from(member)
                self.merge(argv[6:], member)
                self._on_moved(node_id, _text(argv[5]))
        return [self._moved(node_id).encode(), *self.gossip()]

    # -- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeats")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        interval = self.heartbeat_interval_ms / 1000.0
        while True:
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat round failed")
            await asyncio.sleep(interval)

    def beat(self) -> None:
        """One round: a heartbeat to each member and seed, then the state check."""
        for member in self.others():
            if member.node_id in self._outstanding:
                continue  # the last one is still out: its timeout will count
            client = self.pool.client(member.node_id)
            if client is None:
                continue
            payload = encode_command(*self.heartbeat_args(member.node_id))
            if client.send(MODE_CONTROL, payload, self._heartbeat_reply, member):
                self._outstanding.add(member.node_id)
        for host, port in list(self.seeds):
            if (host, port) not in self._contacting:
                asyncio.get_running_loop().create_task(self._try_contact(host, port))
        self.check()

    def _heartbeat_reply(self, member: Member, result: Any) -> None:
        self._outstanding.discard(member.node_id)
        if isinstance(result, LinkFailure):
            return
        value = decode(result)
        if isinstance(value, Exception) or not isinstance(value, list) or len(value) < 1 + FIELDS:
            log.warning("member %s answered the heartbeat with %r", member.node_id, value)
            return
        if self.members.get(member.node_id) is not member:
            return  # forgotten meanwhile
        if _text(value[1]) != member.node_id:
            log.warning("%s answers as %s, not %s", member.address, _text(value[1]),
                        member.node_id)
            return
        self.heard_from(member)
        self.merge(value[1:], member)
        self._on_moved(member.node_id, _text(value[0]))

    async def contact(self, host: str, port: int) -> str:
        """Heartbeat an address whose id is unknown (a seed, CLUSTER MEET): learn its id and
        view. Returns its id; raises ``ConnectionError`` naming what went wrong.

        It first asks for the member's view without introducing itself (``DC.VIEW``) and
        merges it, so this node knows the ring, and where its keys are before they move
        here, before any member routes a request to it: the members learn of it from the
        heartbeat that follows."""
        self._contacting.add((host, port))
        try:
            view = await self._open_seed(host, port, [b"DC.VIEW"])
            if isinstance(view, list) and len(view) >= 1 + FIELDS:
                if _text(view[1]) != self.me.node_id:
                    self.merge(view[1:])
                    await asyncio.sleep(0)  # the ring change (batched) applies first
            reply = await self._open_seed(host, port, self.heartbeat_args())
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.debug("seed %s: %s", format_address(host, port), exc)
            raise ConnectionError(f"{format_address(host, port)}: {exc}") from None
        finally:
            self._contacting.discard((host, port))
        if not isinstance(reply, list) or len(reply) < 1 + FIELDS:
            raise ConnectionError(f"{format_address(host, port)} answered {reply!r}")
        moved, reply = _text(reply[0]), reply[1:]
        node_id = _text(reply[0])
        self.seeds.discard((host, port))
        if node_id == self.me.node_id:
            return node_id  # a seed list that names this node
        # The seed is reached at the address we used, whatever it announces about itself.
        member = self.add(node_id, host, port, int(reply[3]))
        if member is not None:
            self.heard_from(member)
            member.keys = int(reply[5])
            self._on_moved(node_id, moved)
        self.merge(reply[FIELDS:])
        return node_id

    async def _try_contact(self, host: str, port: int) -> None:
        try:
            await self.contact(host, port)
        except ConnectionError:
            pass  # tried again next round

    def add_seeds(self, addresses: Iterable[tuple[str, int]]) -> None:
        for address in addresses:
            if address != (self.me.host, self.me.port):
                self.seeds.add(address)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

"""Connections to the other nodes: pooled, pipelined, guarded by the fault policy.

Each peer has a few long-lived connections (:class:`PeerLink`), one per *mode* and RESP
version, made on first use:

- ``control``: heartbeats and gossip, never queued behind bulk traffic;
- ``peer``: commands a client sent to this node for a key another node owns. The other node
  routes them once more if its view of the ring differs (a join not yet heard of here);
- ``final``: commands the other node must run itself, whatever its ring says (re-forwards,
  fan-out of whole-keyspace commands, replication, moving keys).

A link authenticates once (``AUTH`` when the node has a password, then ``DC.AUTH`` with the
cluster secret, its node id and the mode). Requests are pipelined: everything sent to one
link during one loop turn leaves in one ``write``; replies come back in order and are matched
to requests first in, first out. A reply is handed on as the raw bytes the peer wrote (see
:mod:`.resp`), so a forwarded reply reaches the client without being decoded.

A client's commands sent on for it (:meth:`PeerClient.forward`) are the bulk of this traffic,
and a pipelining client sends many per read. Those of one client that leave in one write
form a :class:`ForwardBatch`: one entry on the link, one future in the client's reply queue
(see :class:`~distcache_core.replyqueue.ReplyFuture`), and their replies are found in the
peer's bytes by counting them (:func:`.resp.skip_replies`), then handed on as one slice. Per
command that leaves the ring lookup, the request's encoding (by the router) and two list
appends; per batch, what a single request used to cost (``bench/count_forwarding.py``: a
pipelined GET through a non-owner went from 34,905 to 21,028 instructions on that node,
against 15,344 on its owner; 20,541 once a batch kept its requests as bytes).

Every call passes the peer's guard (``FaultPolicy.for_peer``): ``allow()`` before (once for
a batch, which leaves as one call), then ``on_success`` / ``on_failure`` with the outcome (one
failure for each unanswered command of a batch). When a link gets no reply at all for
``request_timeout_ms`` while requests wait, they all fail and the link is closed (so nothing
waits on a hung peer much longer than that; a slow peer that keeps answering is not a hung
one).

Each peer's calls are counted in its :class:`PeerCallStats` (INFO ``cluster``, the dashboard):
calls, errors, timeouts and refusals exactly, with an attribute add each; latency is sampled
the way the command metrics sample it (see :class:`PeerLink`), with no clock read or
allocation of its own per call.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..metrics.histogram import LatencyHistogram
from ..replyqueue import ReplyFuture, replies_arrived, replies_arriving
from .resp import ReplyProtocolError, encode_command, is_error, reply_end, skip_replies

log = logging.getLogger("distcache.cluster.peer")

MODE_CONTROL = "control"
MODE_PEER = "peer"
MODE_FINAL = "final"
MODES = (MODE_CONTROL, MODE_PEER, MODE_FINAL)


class LinkFailure:
    """Why a request got no reply. ``sent`` says whether it may have reached the peer: a
    write that was never sent can safely go to another node instead."""

    __slots__ = ("reason", "sent")

    def __init__(self, reason: str, sent: bool) -> None:
        self.reason = reason
        self.sent = sent

    def __repr__(self) -> str:
        return f"LinkFailure({self.reason!r}, sent={self.sent})"


#: ``done(arg, result)``: result is the raw reply ``bytes`` or a :class:`LinkFailure`.
Done = Callable[[Any, Any], None]
#: Commands a :class:`ForwardBatch` takes at most. A batch is one entry of the client's reply
#: queue, whose limit (``MAX_OUTSTANDING_REPLIES`` entries) thus bounds a client's commands in
#: flight to this many times that; past 16 a batch saves next to nothing more.
MAX_BATCH = 16


def _ignore(arg: Any, result: Any) -> None:
    pass


#: A new latency sample may start this long after the last one ended (ms): at most about a
#: thousand a second per link, like the command metrics' time samples.
SAMPLE_INTERVAL_MS = 1.0


class ForwardBatch:
    """Consecutive commands of one client, forwarded on one link in one write: their replies
    are consecutive in the peer's bytes, and their future's place in the client's reply queue
    is theirs (see :meth:`PeerClient.forward`)."""

    __slots__ = ("link", "conn", "entries", "future", "payloads", "left", "parts")

    def __init__(self, link: PeerLink, conn: Any, payload: bytes) -> None:
        self.link = link
        self.conn = conn
        #: The client's reply queue's entries (the batch may take more while its future is
        #: the last of them).
        self.entries = conn.replies.entries
        self.future = future = ReplyFuture()
        future.batch = self
        #: The commands as they were sent (RESP requests), to retry those left unanswered
        #: when the link fails. Bytes, not the clients' argument lists: lists kept alive until
        #: their replies come count against the collector's threshold, which then ran every
        #: few hundred forwarded commands (~550 instructions a pipelined GET, callgrind).
        self.payloads = [payload]
        #: Replies still to come.
        self.left = 1
        #: Replies that came before the rest (a batch split across reads), or None.
        self.parts: list[bytes] | None = None

    @property
    def count(self) -> int:
        """How many commands the batch holds."""
        return len(self.payloads)

    def split(self) -> ReplyFuture:
        """Give up the command taken last (it must come after replies the client's queue
        got meanwhile) to a batch of its own, queued on the link right behind this one."""
        payload = self.payloads.pop()
        self.left -= 1
        link = self.link
        batch = ForwardBatch(link, self.conn, payload)
        link.waiting.append((None, batch, None))
        link.tail_batch = batch
        return batch.future

    def answered(self, data: bytes) -> None:
        """The rest of the replies came: the client gets them all."""
        future = self.future
        if not future.done():
            parts = self.parts
            if parts is not None:
                parts.append(data)
                data = b"".join(parts)
            future.set_result(data)
            self.conn.replies.flush_soon()


def _monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class PeerLink(asyncio.Protocol):
    """One pipelined connection to a peer. Not used directly: see :meth:`PeerClient.send`.

    **Latency is sampled, one request in flight at a time**, at most one sample per
    :data:`SAMPLE_INTERVAL_MS`. Once a sample is due, the next request queued becomes the
    timed one: its queueing time (``_timed_since``) and how many replies come before its own
    (``_timed_ahead``) are noted. Each batch of replies takes that many off; the batch that
    answers it gives its latency, from the clock read each batch takes anyway, and the next
    sample is due :data:`SAMPLE_INTERVAL_MS` later (each later batch checks). A request queued
    on an idle link (each non-pipelined call) checks the clock read the request timeout takes
    anyway. So a call costs a flag test (a float compare on an idle link), a sample one clock
    read and one float, and a quiet link has every call timed.
    """

    def __init__(self, client: PeerClient, mode: str, resp_version: int) -> None:
        self.client = client
        self.mode = mode
        self.resp_version = resp_version
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self.closed = False
        #: (done, arg, hint payload or None) per request, oldest first; for a batch of a
        #: client's forwarded commands, ``done`` is None and ``arg`` the batch.
        self.waiting: deque[tuple[Done | None, Any, bytes | None]] = deque()
        #: The batch queued last, while it may take more commands: it is the last entry of
        #: ``waiting`` and its requests have not been written yet.
        self.tail_batch: ForwardBatch | None = None
        #: Since when the oldest waiting request has waited for progress (monotonic ms): set
        #: when the queue goes from empty to not, and on every reply. One clock read per
        #: batch of replies instead of one per request.
        self._waiting_since = 0.0
        #: Latency samples (see the class docstring). ``_timing``: a request is timed, or the
        #: next sample is not due yet (before ``_sample_after``, monotonic ms). The timed
        #: request was queued at ``_timed_since`` (monotonic ms) with ``_timed_ahead`` replies
        #: before its own (-1: none is timed).
        self._timing = False
        self._sample_after = 0.0
        self._timed_since = 0.0
        self._timed_ahead = -1
        #: True while a batch of replies is being handed on: a request queued by one of their
        #: callbacks is not timed (replies of the batch still in ``waiting`` would be
        #: counted ahead of it).
        self._delivering = False
        self._out: list[bytes] = []
        self._flush_scheduled = False
        #: The start of a reply not received whole yet.
        self._buffer = b""
        #: The database the peer connection has selected (forwarded commands set it).
        self.db = 0
        self._connect_task: asyncio.Task[None] | None = None

    # -- sending -------------------------------------------------------------------------------

    def send(self, payload: bytes, done: Done, arg: Any, db: int = 0,
             hint: bytes | None = None) -> None:
        if db != self.db:
            self._queue(encode_command(b"SELECT", db), _ignore, None, None)
            self.db = db
        self._queue(payload, done, arg, hint)

    def _queue(self, payload: bytes, done: Done | None, arg: Any, hint: bytes | None) -> None:
        self.tail_batch = None
        waiting = self.waiting
        if not waiting:
            self._waiting_since = now = _monotonic_ms()
            # An idle link times nothing (the timed request would be waiting): a sample starts
            # here once it is due. Not while replies are handed on: the read's sample is
            # taken after that (see data_received).
            if now >= self._sample_after and not self._delivering:
                self._timed_since = now
                self._timed_ahead = 0
                self._timing = True
        elif not self._timing and not self._delivering:
            self._timed_since = _monotonic_ms()
            self._timed_ahead = len(waiting)
            self._timing = True
        waiting.append((done, arg, hint))
        self._out.append(payload)
        if not self._flush_scheduled and self.connected:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self.transport is not None and not self.closed:
            self.tail_batch = None
            data = b"".join(self._out)
            self._out.clear()
            self.transport.write(data)
            self.client.pool.stats.bytes_sent += len(data)

    # -- connecting ----------------------------------------------------------------------------

    def start(self) -> None:
        self._connect_task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        client = self.client
        pool = client.pool
        host, port = client.host, client.port
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().create_connection(
                    lambda: self, host, port, ssl=pool.ssl_context,
                    server_hostname=host if pool.ssl_context is not None else None),
                timeout=pool.request_timeout_ms / 1000.0)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self._fail(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}",
                       sent=False, timeout=isinstance(exc, TimeoutError))
            return
        except asyncio.CancelledError:
            self._fail("closed", sent=False)
            raise

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.closed:
            transport.close()
            return
        pool = self.client.pool
        handshake = []
        if pool.requirepass:
            handshake.append(encode_command(b"AUTH", pool.requirepass))
        handshake.append(encode_command(b"DC.AUTH", pool.secret, pool.node_id, self.mode))
        if self.resp_version == 3:
            handshake.append(encode_command(b"HELLO", 3))
        # The handshake's replies come first: put its entries in front of what waits. What
        # waits is sent only once the handshake is answered: the peer switches this
        # connection's command table at DC.AUTH, and a request read in the same batch as
        # DC.AUTH would still be routed as a client's.
        for _ in handshake:
            self.waiting.appendleft((self._handshake_reply, None, None))
        if self._timed_ahead >= 0:
            self._timed_ahead += len(handshake)
        self._waiting_since = _monotonic_ms()
        self._handshake_left = len(handshake)
        transport.write(b"".join(handshake))  # type: ignore[attr-defined]

    _handshake_left = 0

    def _handshake_reply(self, arg: Any, result: Any) -> None:
        if type(result) is bytes and is_error(result):
            text = result[1:].strip().decode("utf-8", "replace")
            log.warning("peer %s refused this node: %s", self.client.node_id, text)
            self._fail(f"handshake refused: {text}", sent=False)
            return
        if type(result) is bytes:
            self._handshake_left -= 1
            if self._handshake_left == 0 and not self.closed:
                self.connected = True
                self._flush()

    # -- receiving -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        stats = self.client.pool.stats
        stats.bytes_received += len(data)
        buf = self._buffer + data if self._buffer else data
        size = len(buf)
        pos = 0
        # The clock read of each read of replies: the request timeout's progress mark and the
        # latency sample's end (taken before the replies are handed on).
        now = _monotonic_ms()
        waiting = self.waiting
        answered = False
        popped = 0  # waiting entries answered whole (a batch is one)
        # Clients' replies completed by this read leave in one write each, at its end.
        replies_arriving()
        self._delivering = True
        try:
            while pos < size:
                if not waiting:
                    self._fail("reply without a request", sent=True)
                    return
                done, arg, _ = waiting[0]
                if done is None:  # a client's forwarded commands: count their replies
                    end, found = skip_replies(buf, pos, arg.left)
                    if not found:
                        break
                    answered = True
                    if found < arg.left:
                        if arg.parts is None:
                            arg.parts = []
                        arg.parts.append(buf[pos:end])
                        arg.left -= found
                        pos = end
                        break
                    waiting.popleft()
                    popped += 1
                    count = len(arg.payloads)
                    stats.forwarded += count
                    self.client.stats.calls += count  # counted once answered (or failed)
                    arg.answered(buf[pos:end] if pos or end < size else buf)
                else:
                    end = reply_end(buf, pos)
                    if end < 0:
                        break
                    waiting.popleft()
                    popped += 1
                    answered = True
                    done(arg, buf[pos:end])
                pos = end
        except (ReplyProtocolError, ValueError) as exc:
            self._fail(f"protocol error: {exc}", sent=True)
            return
        finally:
            self._delivering = False
            replies_arrived()
        self._buffer = buf[pos:] if pos < size else b""
        if self._timing:
            ahead = self._timed_ahead
            if ahead >= 0:
                if popped:
                    ahead -= popped
                    if ahead < 0:  # this read answered the timed request; the next is not due
                        self.client.stats.pending_ms.append(now - self._timed_since)
                        self._sample_after = now + SAMPLE_INTERVAL_MS
                        ahead = -1
                    self._timed_ahead = ahead
            elif now >= self._sample_after:
                self._timing = False
        if answered:
            self._waiting_since = now
            self.client.answered()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost{': ' + str(exc) if exc else ''}", sent=True)

    # -- failure -------------------------------------------------------------------------------

    def stalled_ms(self, now_ms: float) -> float:
        """How long requests have waited without a reply (0 when none waits): a peer that
        answers nothing for ``request_timeout_ms`` fails every request waiting on it."""
        return now_ms - self._waiting_since if self.waiting else 0.0

    def _fail(self, reason: str, sent: bool, timeout: bool = False) -> None:
        """Close the link; every request still waiting fails (counted as a timeout when the
        link is closed for answering nothing in ``request_timeout_ms``)."""
        if not self.closed:
            self.closed = True
            self.connected = False
            self.client.link_closed(self)
            if self.transport is not None:
                self.transport.close()
            if self._connect_task is not None and not self._connect_task.done() \
                    and self._connect_task is not asyncio.current_task():
                self._connect_task.cancel()
        waiting, self.waiting = self.waiting, deque()
        self._timing = False
        self._timed_ahead = -1
        self._out.clear()
        if not waiting:
            return
        failure = LinkFailure(reason, sent and self.transport is not None)
        client = self.client
        self.tail_batch = None
        self._buffer = b""
        for done, arg, hint in waiting:
            if done is None:
                client.stats.calls += len(arg.payloads)
                for _ in range(arg.left):
                    client.failed(timeout)
                client.pool.forward_failed(arg, failure)
                continue
            if done is not _ignore and done != self._handshake_reply:
                client.failed(timeout)
            if hint is not None:
                client.pool.on_lost_hint(client.node_id, hint)
            done(arg, failure)

    def close(self) -> None:
        self._fail("closed", sent=True)


class PeerStats:
    """Bytes of all peer traffic, and the forwarded commands answered."""

    __slots__ = ("bytes_sent", "bytes_received", "forwarded")

    def __init__(self) -> None:
        self.bytes_sent = self.bytes_received = 0
        #: Clients' commands answered by the peer they were forwarded to.
        self.forwarded = 0


class PeerCallStats:
    """The calls to one peer (INFO ``cluster``'s ``peer_<id>``, ``/api/cluster``,
    ``/metrics``). Every call is counted once in ``calls`` or ``rejected``; a call that got no
    reply is also counted once in ``errors`` or ``timeouts``."""

    __slots__ = ("calls", "errors", "timeouts", "rejected", "breaker_transitions",
                 "pending_ms", "samples", "sampled_seconds", "histogram")

    def __init__(self) -> None:
        #: Requests sent (the guard allowed them), heartbeats and replication included.
        self.calls = 0
        #: Calls that failed without a reply: no connection, a lost or refused one.
        self.errors = 0
        #: Calls that failed because the peer answered nothing for ``request_timeout_ms``
        #: (or the connection was not made within it).
        self.timeouts = 0
        #: Calls refused by the guard before anything was sent (an open breaker).
        self.rejected = 0
        #: Changes of the peer's breaker state.
        self.breaker_transitions = 0
        #: Sampled latencies in ms not yet folded (see :class:`PeerLink`).
        self.pending_ms: list[float] = []
        #: Sampled calls folded so far, their total time in seconds, and their histogram.
        self.samples = 0
        self.sampled_seconds = 0.0
        self.histogram = LatencyHistogram()

    def fold(self) -> None:
        """Move the pending latencies into the sample counters and the histogram."""
        pending = self.pending_ms
        if not pending:
            return
        self.pending_ms = []
        seconds = [ms / 1000.0 for ms in pending]
        self.samples += len(seconds)
        self.sampled_seconds += sum(seconds)
        self.histogram.record_batch(seconds)

    def add(self, other: PeerCallStats) -> None:
        """Add ``other``'s counters to these (a peer that left stays in the totals)."""
        other.fold()
        self.fold()
        self.calls += other.calls
        self.errors += other.errors
        self.timeouts += other.timeouts
        self.rejected += other.rejected
        self.breaker_transitions += other.breaker_transitions
        self.samples += other.samples
        self.sampled_seconds += other.sampled_seconds
        self.histogram.merge(other.histogram)

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.calls = self.errors = self.timeouts = self.rejected = 0
        self.breaker_transitions = self.samples = 0
        self.pending_ms = []
        self.sampled_seconds = 0.0
        self.histogram = LatencyHistogram()

    @property
    def usec_per_call(self) -> float:
        """Mean latency of the sampled calls in microseconds (call :meth:`fold` first)."""
        return self.sampled_seconds * 1e6 / self.samples if self.samples else 0.0


class PeerClient:
    """What this node holds for one peer: its address, guard and links."""

    def __init__(self, pool: PeerPool, node_id: str, host: str, port: int) -> None:
        self.pool = pool
        self.node_id = node_id
        self.host = host
        self.port = port
        self.guard = pool.guard_for(node_id)
        self.stats = pool.stats_of(node_id)
        self._links: dict[tuple[str, int], PeerLink] = {}
        #: mode -> its RESP2 link, the one nearly every forwarded command takes: a lookup by a
        #: string (its hash cached) instead of by a new tuple.
        self._resp2: dict[str, PeerLink] = {}

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def link(self, mode: str, resp_version: int = 2) -> PeerLink:
        key = (mode, resp_version)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = PeerLink(self, mode, resp_version)
            link.start()
        if resp_version == 2:
            self._resp2[mode] = link
        return link

    def send(self, mode: str, payload: bytes, done: Done, arg: Any, *, db: int = 0,
             resp_version: int = 2, hint: bytes | None = None) -> bool:
        """Send one request if the guard allows it; False (nothing sent) when it does not."""
        stats = self.stats
        if not self.guard.allow():
            stats.rejected += 1
            return False
        stats.calls += 1
        link = self._links.get((mode, resp_version))
        if link is None:
            link = self.link(mode, resp_version)
        link.send(payload, done, arg, db, hint)
        return True

    def forward(self, mode: str, conn: Any, payload: bytes) -> ReplyFuture | None:
        """Send a client's command, encoded as ``payload``, on (None, nothing sent,
        when the guard refuses): a
        :class:`~distcache_core.replyqueue.ReplyFuture` that resolves to the peer's reply as
        it wrote it, or, when it answers for the client's previous commands too, that one
        (see :class:`ForwardBatch`). Unanswered commands go to the pool's
        ``forward_failed(batch, failure)``.

        A command joins the link's open batch when the batch is the client's and its future
        is the newest entry of the client's reply queue: then nothing the client sent in
        between has a reply yet, except what dispatch holds and has not queued
        (``ReplyQueue.add_future`` splits the batch then). It joins without asking the guard
        again: a batch leaves as one call."""
        link = self._resp2.get(mode) if conn.resp_version == 2 else None
        if link is None:
            link = self.link(mode, conn.resp_version)
        batch = link.tail_batch
        if batch is not None and batch.conn is conn and link.db == conn.db:
            entries = batch.entries
            if entries and entries[-1] is batch.future:
                link._out.append(payload)
                payloads = batch.payloads
                payloads.append(payload)
                batch.left += 1
                if len(payloads) == MAX_BATCH:  # full: the next command starts a batch
                    link.tail_batch = None
                return batch.future
        if not self.guard.allow():
            self.stats.rejected += 1
            return None
        db = conn.db
        if db != link.db:
            link._queue(encode_command(b"SELECT", db), _ignore, None, None)
            link.db = db
        batch = ForwardBatch(link, conn, payload)
        link._queue(payload, None, batch, None)
        link.tail_batch = batch
        return batch.future

    def answered(self) -> None:
        self.guard.on_success()

    def failed(self, timeout: bool = False) -> None:
        if timeout:
            self.stats.timeouts += 1
        else:
            self.stats.errors += 1
        self.guard.on_failure()

    def link_closed(self, link: PeerLink) -> None:
        key = (link.mode, link.resp_version)
        if self._links.get(key) is link:
            del self._links[key]
        if self._resp2.get(link.mode) is link:
            del self._resp2[link.mode]

    def links(self) -> list[PeerLink]:
        return list(self._links.values())

    def close(self) -> None:
        for link in self.links():
            link.close()

    def move(self, host: str, port: int) -> None:
        """The peer answers at a new address (a restart elsewhere): reconnect there."""
        if (host, port) != (self.host, self.port):
            self.host, self.port = host, port
            self.close()


class PeerPool:
    """Every :class:`PeerClient` of this node, and the timer that fails requests waiting
    longer than ``request_timeout_ms``."""

    def __init__(self, *, node_id: str, secret: str, requirepass: str, request_timeout_ms: int,
                 guard_for: Callable[[str], Any], ssl_context: ssl.SSLContext | None = None,
                 on_lost_hint: Callable[[str, bytes], None] | None = None) -> None:
        self.node_id = node_id
        self.secret = secret
        self.requirepass = requirepass
        self.request_timeout_ms = request_timeout_ms
        self.guard_for = guard_for
        self.ssl_context = ssl_context
        self._on_lost_hint = on_lost_hint
        #: ``forward_failed(batch, failure)``: forwarded commands got no reply (the router's).
        self.forward_failed: Callable[[ForwardBatch, LinkFailure], None] = _ignore
        self.clients: dict[str, PeerClient] = {}
        self.stats = PeerStats()
        #: peer id -> its call counters (kept while it is a member, whatever its links do).
        self.peer_stats: dict[str, PeerCallStats] = {}
        #: The counters of peers that left, so the node's totals never go backwards.
        self._departed = PeerCallStats()
        self._timer: asyncio.Task[None] | None = None

    def client(self, node_id: str) -> PeerClient | None:
        return self.clients.get(node_id)

    def add(self, node_id: str, host: str, port: int) -> PeerClient:
        client = self.clients.get(node_id)
        if client is None:
            client = self.clients[node_id] = PeerClient(self, node_id, host, port)
        else:
            client.move(host, port)
        return client

    def remove(self, node_id: str) -> None:
        client = self.clients.pop(node_id, None)
        if client is not None:
            client.close()
        stats = self.peer_stats.pop(node_id, None)
        if stats is not None:
            self._departed.add(stats)

    def stats_of(self, node_id: str) -> PeerCallStats:
        """The call counters of ``node_id`` (made on first use)."""
        stats = self.peer_stats.get(node_id)
        if stats is None:
            stats = self.peer_stats[node_id] = PeerCallStats()
        return stats

    def fold(self) -> None:
        """Fold every peer's pending latency samples (the cluster's housekeeping, readers)."""
        for stats in self.peer_stats.values():
            if stats.pending_ms:
                stats.fold()

    def totals(self) -> PeerCallStats:
        """Every peer's counters added up, those of peers that left included."""
        total = PeerCallStats()
        total.add(self._departed)
        for stats in self.peer_stats.values():
            total.add(stats)
        return total

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: every call counter and latency sample."""
        for stats in self.peer_stats.values():
            stats.reset()
        self._departed = PeerCallStats()
        self.stats.bytes_sent = self.stats.bytes_received = 0

    def on_lost_hint(self, node_id: str, payload: bytes) -> None:
        if self._on_lost_hint is not None:
            self._on_lost_hint(node_id, payload)

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().create_task(self._expire_requests())

    async def _expire_requests(self) -> None:
        # One timer for every request of every link (not a timer per request): requests are
        # answered in order, so only the oldest of each link can be the first to time out.
        period = min(100.0, self.request_timeout_ms / 5.0) / 1000.0
        while True:
            await asyncio.sleep(period)
            now = _monotonic_ms()
            for client in list(self.clients.values()):
                for link in client.links():
                    if link.stalled_ms(now) > self.request_timeout_ms:
                        log.warning("%s link to %s: no reply within %d ms (%d requests "
                                    "waiting); closing it", link.mode, client.node_id,
                                    self.request_timeout_ms, len(link.waiting))
                        link._fail(f"no reply within request_timeout_ms "
                                   f"({self.request_timeout_ms} ms)", sent=True, timeout=True)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for client in list(self.clients.values()):
            client.close()

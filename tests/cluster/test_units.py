"""The cluster's sans-IO parts on their own: the reply splitter (fuzzed with random splits),
versions and tombstones, the hint store's bounds, and membership's state machine on a fake
clock."""

from __future__ import annotations

from typing import Any

import hiredis
from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_core.cluster.hints import HintStore
from distcache_core.cluster.membership import (
    ALIVE,
    DOWN,
    SUSPECT,
    Member,
    Membership,
    parse_peer,
)
from distcache_core.cluster.resp import ReplySplitter, decode, encode_command, reply_end
from distcache_core.cluster.versions import VersionClock, VersionMap
from distcache_core.errors import CommandError
from distcache_core.protocol import encode_resp2, encode_resp3
from distcache_core.replies import ErrorReply

# -- the splitter ---------------------------------------------------------------------------

leaf = st.one_of(st.binary(max_size=40), st.integers(-2**63, 2**63 - 1), st.none(),
                 st.text(alphabet="abc XYZ", max_size=10),
                 st.builds(ErrorReply, st.text(alphabet="ERR bad", min_size=1, max_size=12)),
                 st.floats(allow_nan=False), st.booleans())
replies = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.binary(max_size=5), inner, max_size=3)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(replies, min_size=1, max_size=8), st.booleans(), st.data())
def test_splitter_finds_every_reply_whatever_the_chunks(values: list[Any], resp3: bool,
                                                        data: st.DataObject) -> None:
    encode = encode_resp3 if resp3 else encode_resp2
    encoded = [encode(v) for v in values]
    stream = b"".join(encoded)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    splitter = ReplySplitter()
    out: list[bytes] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        out += splitter.feed(stream[previous:cut])
        previous = cut
    assert out == encoded
    assert splitter.pending_bytes() == 0


def test_splitter_edge_cases() -> None:
    assert reply_end(b"$-1\r\n", 0) == 5
    assert reply_end(b"*-1\r\n", 0) == 5
    assert reply_end(b"*2\r\n$1\r\na\r\n", 0) == -1
    assert reply_end(b"$3\r\nab", 0) == -1
    assert ReplySplitter().feed(b"+OK\r\n:1\r\n$0\r\n\r\n") == [b"+OK\r\n", b":1\r\n",
                                                                 b"$0\r\n\r\n"]
    assert decode(b"-ERR x\r\n").message == "ERR x"
    assert isinstance(decode(b"*1\r\n-ERR y\r\n")[0], CommandError)
    reader = hiredis.Reader()
    reader.feed(encode_command(b"DC.APPLY", 0, 5, "SET", b"k\r\n", b""))
    assert reader.gets() == [b"DC.APPLY", b"0", b"5", b"SET", b"k\r\n", b""]


# -- versions -------------------------------------------------------------------------------


def test_versions_grow_and_follow_what_they_see() -> None:
    now = [1_000]
    clock = VersionClock("node-1", lambda: now[0])
    first = clock.next()
    second = clock.next()
    assert second > first
    assert first & 0xFF == second & 0xFF == clock.tag  # the writer's tag
    now[0] = 999  # the wall clock stepped back: versions still grow
    assert clock.next() > second
    remote = VersionClock("node-2", lambda: now[0] + 10_000).next()
    clock.observe(remote)
    assert clock.next() > remote  # a write after seeing another node's is newer than it
    other = VersionClock("node-2", lambda: 1_000)
    assert other.tag != clock.tag or other.next() != VersionClock("node-1", lambda: 1_000).next()


def test_tombstones_keep_deleted_keys_deleted_until_they_expire() -> None:
    now = [0]
    versions = VersionMap(retention_ms=1_000, clock_ms=lambda: now[0])
    versions.set(0, b"k", 10)
    assert versions.get(0, b"k") == 10
    versions.delete(0, b"k", 20)
    assert versions.get(0, b"k") == 20 and versions.is_tombstone(0, b"k")
    assert list(versions.tombstones(0)) == [(b"k", 20)]
    versions.set(0, b"k", 30)
    assert not versions.is_tombstone(0, b"k")
    versions.delete(0, b"k", 40)
    now[0] = 999
    assert versions.collect() == 0
    now[0] = 1_001
    assert versions.collect() == 1
    assert versions.get(0, b"k") == 0
    versions.set(1, b"a", 1)
    versions.swap(0, 1)
    assert versions.get(0, b"a") == 1 and versions.get(1, b"a") == 0
    versions.drop(0, b"a")
    assert versions.counts() == (0, 0)


# -- hints ----------------------------------------------------------------------------------


def test_hints_are_bounded_by_window_and_bytes() -> None:
    now = [0.0]
    hints = HintStore(window_ms=1_000, max_bytes=100, clock_ms=lambda: now[0])
    assert hints.add("n2", b"a" * 40) and hints.add("n2", b"b" * 40)
    assert not hints.add("n2", b"c" * 40)  # past the byte budget: dropped, peer marked
    assert hints.overflowed == {"n2"} and hints.bytes_held == 80
    assert hints.take("n2", limit=1) == [b"a" * 40]
    hints.put_back("n2", [b"a" * 40])
    assert hints.pending("n2") == 2
    now[0] = 2_000
    assert hints.add("n3", b"x")
    assert hints.take("n2") == []  # older than the window
    assert hints.take("n3") == [b"x"]
    assert hints.bytes_held == 0 and len(hints) == 0
    assert HintStore(window_ms=0, max_bytes=100).add("n", b"x") is False


# -- membership -----------------------------------------------------------------------------


class FakePool:
    def __init__(self) -> None:
        self.clients: dict[str, tuple[str, int]] = {}

    def add(self, node_id: str, host: str, port: int) -> None:
        self.clients[node_id] = (host, port)

    def remove(self, node_id: str) -> None:
        self.clients.pop(node_id, None)

    def client(self, node_id: str) -> None:
        return None


def make_membership(now: list[float], events: list[tuple[str, str, Any]]) -> Membership:
    me = Member("node-1", "127.0.0.1", 7001, 5, now_ms=now[0], myself=True)
    return Membership(me=me, pool=FakePool(), heartbeat_interval_ms=100,
                      failure_timeout_ms=1_000, remove_after_ms=3_000, request_timeout_ms=500,
                      listener=lambda kind, m, d: events.append((kind, m.node_id, d)),
                      open_seed=None, clock_ms=lambda: now[0])


def test_silent_members_go_suspect_then_down_and_come_back() -> None:
    now = [0.0]
    events: list[tuple[str, str, Any]] = []
    members = make_membership(now, events)
    peer = members.add("node-2", "127.0.0.1", 7002, 0)  # from config: process not known yet
    assert peer is not None and events == [("joined", "node-2", None)]
    members.add("node-2", "127.0.0.1", 7002, 7)
    assert events[-1] == ("introduced", "node-2", None)
    now[0] = 499
    members.check()
    assert peer.state == ALIVE
    now[0] = 500
    members.check()
    assert peer.state == SUSPECT
    now[0] = 1_000
    members.check()
    assert peer.state == DOWN and not members.is_up("node-2")
    members.heard_from(peer)
    assert peer.state == ALIVE
    assert [e for e in events if e[0] == "state"] == [
        ("state", "node-2", ALIVE), ("state", "node-2", SUSPECT), ("state", "node-2", DOWN)]
    members.add("node-2", "127.0.0.1", 7002, 9)  # a higher incarnation: it restarted
    assert events[-1] == ("restarted", "node-2", 7)
    now[0] = 2_000
    members.check()  # down again...
    now[0] = 5_000
    members.check()  # ...for longer than remove_after_ms: forgotten
    assert "node-2" not in members.members and members.forgotten == {"node-2": 9}
    assert members.add("node-2", "127.0.0.1", 7002, 9) is None  # not at the same incarnation
    assert members.add("node-2", "127.0.0.1", 7002, 10) is not None  # but after a restart


def test_gossip_spreads_members_and_forgets() -> None:
    now = [0.0]
    a = make_membership(now, [])
    b_events: list[tuple[str, str, Any]] = []
    b = Membership(me=Member("node-2", "h", 2, 1, now_ms=0, myself=True), pool=FakePool(),
                   heartbeat_interval_ms=100, failure_timeout_ms=1_000, remove_after_ms=0,
                   request_timeout_ms=500,
                   listener=lambda kind, m, d: b_events.append((kind, m.node_id, d)),
                   open_seed=None, clock_ms=lambda: now[0])
    a.add("node-3", "h", 3, 4)
    b.merge(a.gossip())
    assert sorted(b.members) == ["node-1", "node-2", "node-3"]
    a.forget("node-3")
    b.merge(a.gossip())
    assert sorted(b.members) == ["node-1", "node-2"]
    assert ("left", "node-3", None) in b_events
    assert parse_peer("node-1@10.0.0.1:7000") == ("node-1", "10.0.0.1", 7000)
    assert parse_peer("cache.local") == (None, "cache.local", 6379)
    assert parse_peer("[::1]:7001") == (None, "::1", 7001)

"""The vnode ring against a plain reference: every point sorted in a list, a bisect per key and
a walk for the preference list. The bucket table must agree with it everywhere, including at
the points themselves and at bucket edges, where the table hands over to the bisect."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_plugins.vnode_ring import EmptyRingError, VnodeRing, VnodeRingSettings
from distcache_plugins.vnode_ring.ring import HASH_SPACE, PRECOMPUTED_DEPTH, point_hash

THREE = ["node-1", "node-2", "node-3"]
KEYS = [b"key:%d" % i for i in range(100_000)]


class ReferenceRing:
    """Consistent hashing in the fewest lines: the specification the ring must meet."""

    def __init__(self, nodes: list[str], virtual_nodes: int) -> None:
        self.ring = sorted(
            (xxhash.xxh3_64_intdigest(f"{node}#{i}".encode()), node)
            for node in nodes for i in range(virtual_nodes))
        self.node_count = len(set(nodes))

    def start(self, h: int) -> int:
        index = bisect_left(self.ring, (h, ""))
        return index % len(self.ring)

    def owner_of_hash(self, h: int) -> str:
        return self.ring[self.start(h)][1]

    def preference_list(self, key: bytes, n: int) -> list[str]:
        found: list[str] = []
        index = self.start(xxhash.xxh3_64_intdigest(key))
        while len(found) < min(n, self.node_count):
            node = self.ring[index % len(self.ring)][1]
            if node not in found:
                found.append(node)
            index += 1
        return found


def owners(ring: VnodeRing, keys: list[bytes] = KEYS) -> list[str]:
    return [ring.owner(key) for key in keys]


# --- balance and movement (issue 9's numbers, with the default settings) ---------------------


def test_default_ring_spreads_100k_keys_within_15_percent_of_fair_share():
    ring = VnodeRing.from_settings(None)
    assert ring.virtual_nodes == VnodeRingSettings().virtual_nodes == 160
    for node in THREE:
        ring.add_node(node)
    counts = Counter(owners(ring))
    fair = len(KEYS) / 3
    assert set(counts) == set(THREE)
    assert max(counts.values()) <= 1.15 * fair, counts


def test_adding_a_fourth_node_moves_about_a_quarter_of_keys_all_to_it():
    ring = VnodeRing.from_settings(None)
    for node in THREE:
        ring.add_node(node)
    before = owners(ring)
    ring.add_node("node-4")
    after = owners(ring)
    moved = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(moved) <= 1.2 * len(KEYS) / 4, len(moved)
    assert len(moved) >= 0.8 * len(KEYS) / 4, len(moved)  # the new node does take its share
    assert {new for _, new in moved} == {"node-4"}  # no key moves between the old nodes


def test_removing_a_node_moves_only_its_keys():
    ring = VnodeRing(160, [*THREE, "node-4"])
    before = owners(ring, KEYS[:20_000])
    ring.remove_node("node-2")
    after = owners(ring, KEYS[:20_000])
    for old, new in zip(before, after, strict=True):
        assert new == old if old != "node-2" else new != "node-2"


def test_three_points_per_node_leave_a_node_with_far_more_than_its_share():
    """Why the default is 160 (README): the seed's 3 points per node, measured."""
    counts = Counter(owners(VnodeRing(3, THREE)))
    assert max(counts.values()) > 1.2 * len(KEYS) / 3, counts


def test_shares_sum_to_one_and_predict_the_key_counts():
    ring = VnodeRing(160, THREE)
    shares = ring.shares()
    assert sorted(shares) == THREE
    assert sum(shares.values()) == pytest.approx(1.0)
    counts = Counter(owners(ring))
    for node in THREE:
        assert counts[node] / len(KEYS) == pytest.approx(shares[node], abs=0.01)
    assert VnodeRing(160, ["solo"]).shares() == {"solo": 1.0}
    assert VnodeRing(160).shares() == {}


# --- agreement with the reference ------------------------------------------------------------


@pytest.mark.parametrize("virtual_nodes,node_count", [(1, 1), (3, 3), (160, 3), (160, 12),
                                                      (40, 30)])
def test_owner_at_every_point_and_bucket_edge_matches_the_reference(virtual_nodes, node_count):
    nodes = [f"n{i}" for i in range(node_count)]
    ring = VnodeRing(virtual_nodes, nodes)
    reference = ReferenceRing(nodes, virtual_nodes)
    shift = ring._shift
    probes = {0, HASH_SPACE - 1}
    for point, _ in reference.ring:
        probes.update({point - 1, point, point + 1})
        bucket = point >> shift
        probes.update({bucket << shift, ((bucket + 1) << shift) - 1, (bucket + 1) << shift})
    for h in sorted(p for p in probes if 0 <= p < HASH_SPACE):
        assert ring.owner_of_hash(h) == reference.owner_of_hash(h), h


@settings(max_examples=60, deadline=None)
@given(nodes=st.sets(st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
                     min_size=1, max_size=PRECOMPUTED_DEPTH + 4),
       virtual_nodes=st.integers(1, 40),
       keys=st.lists(st.binary(max_size=24), min_size=1, max_size=40),
       n=st.integers(0, PRECOMPUTED_DEPTH + 6))
def test_lookups_match_the_reference(nodes, virtual_nodes, keys, n):
    ring = VnodeRing(virtual_nodes, nodes)
    reference = ReferenceRing(sorted(nodes), virtual_nodes)
    for key in keys:
        expected = reference.preference_list(key, n)
        got = ring.preference_list(key, n)
        assert got == expected
        assert len(got) == min(n, len(nodes)) and len(set(got)) == len(got)
        assert ring.owner(key) == reference.preference_list(key, 1)[0]


def test_preference_list_is_owner_then_distinct_nodes_for_many_keys():
    ring = VnodeRing(160, [f"node-{i}" for i in range(1, 6)])
    for key in KEYS[:5000]:
        full = ring.preference_list(key, 5)
        assert full[0] == ring.owner(key)
        assert sorted(full) == ring.nodes()
        for n in range(7):
            assert ring.preference_list(key, n) == full[:n]


def test_long_preference_lists_past_the_precomputed_depth():
    nodes = [f"node-{i}" for i in range(PRECOMPUTED_DEPTH + 5)]
    ring = VnodeRing(50, nodes)
    reference = ReferenceRing(nodes, 50)
    for key in KEYS[:500]:
        got = ring.preference_list(key, len(nodes) + 3)
        assert got == reference.preference_list(key, len(nodes))
        assert sorted(got) == sorted(nodes)


# --- stability ---------------------------------------------------------------------------------


def test_placement_depends_on_the_node_set_not_the_order_of_changes():
    one = VnodeRing(160, ["c", "a", "b"])
    two = VnodeRing(160)
    for node in ["b", "x", "a", "c"]:
        two.add_node(node)
    two.remove_node("x")
    two.add_node("a")  # already there: no-op
    two.remove_node("never-added")  # not there: no-op
    assert one.points() == two.points()
    assert owners(one, KEYS[:5000]) == owners(two, KEYS[:5000])


def test_placement_is_pinned_across_versions():
    """Nodes of different releases must agree on every key: these values may never change."""
    assert point_hash("node-1", 0) == 3770303527775087743
    assert point_hash("node-1", 159) == 15605425950581850330
    ring = VnodeRing(160, THREE)
    assert [ring.owner(k) for k in (b"", b"foo", b"bar", b"user:1000")] == [
        "node-3", "node-1", "node-3", "node-3"]
    assert ring.preference_list(b"foo", 3) == ["node-1", "node-3", "node-2"]


def test_version_counts_changes_and_copy_is_independent():
    ring = VnodeRing(160, THREE)
    version = ring.version
    before = ring.copy()
    ring.add_node("node-4")
    assert ring.version == version + 1
    ring.add_node("node-4")
    assert ring.version == version + 1
    assert before.nodes() == THREE and "node-4" not in before and len(before) == 3
    assert ring.nodes() == [*THREE, "node-4"] and "node-4" in ring
    moved = [k for k in KEYS[:2000] if before.owner(k) != ring.owner(k)]
    assert moved and all(ring.owner(k) == "node-4" for k in moved)
    assert before.version == version


def test_empty_ring():
    ring = VnodeRing(160)
    with pytest.raises(EmptyRingError, match="no nodes"):
        ring.owner(b"k")
    assert ring.preference_list(b"k", 3) == []
    assert ring.nodes() == [] and len(ring) == 0
    ring.add_node("a")
    ring.remove_node("a")
    with pytest.raises(LookupError):
        ring.owner(b"k")


def test_bad_arguments():
    with pytest.raises(ValueError):
        VnodeRing(0)
    with pytest.raises(ValueError):
        VnodeRing(160).add_node("")

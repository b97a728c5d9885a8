"""The behaviour every :class:`~distcache_core.contracts.HashStrategy` must show.

Use it from a strategy's test module::

    class TestMyStrategy(HashStrategyContract):
        def make_strategy(self):
            return MyStrategy()          # empty: the tests add the nodes

The router and the rebalancer rely on these promises: owners and replicas are distinct nodes
on the ring, placement depends only on the set of nodes (every node computes it alone, in any
order of joins and leaves), and a change of membership moves only the keys it must: a joining
node takes keys from the others and none move between them; a leaving node's keys go to the
others and no other key moves.
"""

from __future__ import annotations

from collections import Counter

import pytest

from distcache_core.contracts import HashStrategy

NODES = ["node-1", "node-2", "node-3", "node-4", "node-5"]
KEYS = [b"key:%d" % i for i in range(3000)] + [b"", b"\x00", b"\xff" * 40]


class HashStrategyContract:
    """Mixin of ``test_*`` methods; subclasses implement :meth:`make_strategy`."""

    def make_strategy(self) -> HashStrategy:
        """A new strategy with no node."""
        raise NotImplementedError

    def with_nodes(self, nodes: list[str]) -> HashStrategy:
        strategy = self.make_strategy()
        for node in nodes:
            strategy.add_node(node)
        return strategy

    def test_owner_is_first_of_distinct_preference_lists(self) -> None:
        strategy = self.with_nodes(NODES[:4])
        for key in KEYS:
            full = strategy.preference_list(key, 4)
            assert sorted(full) == NODES[:4]
            assert full[0] == strategy.owner(key)
            for n in range(6):
                assert strategy.preference_list(key, n) == full[:n]

    def test_every_node_owns_some_keys(self) -> None:
        counts = Counter(map(self.with_nodes(NODES[:3]).owner, KEYS))
        assert set(counts) == set(NODES[:3])

    def test_nodes_are_listed_sorted_and_changes_are_idempotent(self) -> None:
        strategy = self.with_nodes(["b", "c", "a"])
        strategy.add_node("a")
        strategy.remove_node("never-added")
        assert strategy.nodes() == ["a", "b", "c"]
        strategy.remove_node("b")
        strategy.remove_node("b")
        assert strategy.nodes() == ["a", "c"]

    def test_placement_depends_only_on_the_node_set(self) -> None:
        one = self.with_nodes(NODES[:3])
        two = self.with_nodes(["x", NODES[2], NODES[0], NODES[1]])
        two.remove_node("x")
        for key in KEYS:
            assert one.preference_list(key, 3) == two.preference_list(key, 3)

    def test_a_joining_node_only_takes_keys(self) -> None:
        strategy = self.with_nodes(NODES[:3])
        before = {key: strategy.preference_list(key, 3) for key in KEYS}
        strategy.add_node(NODES[3])
        moved = 0
        for key in KEYS:
            owner = strategy.owner(key)
            if owner != before[key][0]:
                assert owner == NODES[3]
                moved += 1
            # The old nodes keep their relative order: the newcomer is only inserted.
            without = [n for n in strategy.preference_list(key, 4) if n != NODES[3]]
            assert without == before[key]
        assert moved > 0

    def test_a_leaving_node_only_gives_keys(self) -> None:
        strategy = self.with_nodes(NODES[:4])
        before = {key: strategy.owner(key) for key in KEYS}
        strategy.remove_node(NODES[1])
        for key in KEYS:
            if before[key] != NODES[1]:
                assert strategy.owner(key) == before[key]
            else:
                assert strategy.owner(key) != NODES[1]

    def test_an_empty_strategy(self) -> None:
        strategy = self.make_strategy()
        assert strategy.nodes() == [] and strategy.preference_list(b"k", 2) == []
        with pytest.raises(LookupError):
            strategy.owner(b"k")
        strategy.add_node("only")
        assert strategy.owner(b"k") == "only"
        assert strategy.preference_list(b"k", 3) == ["only"]

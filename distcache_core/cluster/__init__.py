"""The cluster: membership, routing, replication and rebalancing (DESIGN.md section 5).

:class:`~.core.Cluster` is what the node builds; the rest are its parts, one job a module:
``peer`` (pooled, pipelined connections to other nodes), ``membership`` (heartbeats, gossip,
MEET, FORGET), ``router`` (where each command runs), ``replication`` and ``hints`` (copies and
writes kept for a node that is down), ``versions`` (last write wins, tombstones),
``rebalance`` (moving keys, repair), ``commands`` (CLUSTER and the internal ``DC.*``
commands) and ``launcher`` (``distcache cluster up`` / ``status``).
"""

from __future__ import annotations

from .core import Cluster, MembershipEvent

__all__ = ["Cluster", "MembershipEvent"]

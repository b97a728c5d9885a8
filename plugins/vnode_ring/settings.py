"""The ``[plugins.vnode_ring]`` config table."""

from __future__ import annotations

from typing import Any

import attrs

from distcache_core.config import FieldValueError

#: More points than this per node buys no balance worth its memory and rebuild time (the
#: imbalance falls as 1/sqrt(points): 160 points already keep 3 nodes within a few per cent).
MAX_VIRTUAL_NODES = 65_536


def _virtual_nodes(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= MAX_VIRTUAL_NODES:
        raise FieldValueError(attribute, f"expected an integer from 1 to {MAX_VIRTUAL_NODES}")


@attrs.frozen(kw_only=True)
class VnodeRingSettings:
    """How the ``vnode_ring`` hash strategy places nodes on the ring."""

    #: Points each node gets on the ring (env ``HASH_RING_VIRTUAL_NODES``). The original
    #: DistCache used 3, which leaves one of three nodes with about twice the keys of another;
    #: 160 keeps every node within a few per cent of its fair share (README, Cluster section).
    virtual_nodes: int = attrs.field(default=160, validator=_virtual_nodes)

"""What a key costs against ``maxmemory_bytes``, measured so that the limit bounds the process.

The engine keeps ``bytes_used`` as the sum of :func:`cost_of` over its keys (plus
``EXPIRY_OVERHEAD_BYTES`` for each key with an expiry), updated on every write with the same
formula inlined on the hot path, so it costs an addition.

Where a key's memory goes (CPython 3.11, 64-bit): its key and value are two ``bytes`` objects
(33 bytes of header each, rounded up to 16 by pymalloc below 512 bytes: up to 2 x 48 bytes
beyond their lengths), an ``OrderedDict`` link node (32 bytes), and its share of the dict's
tables: 24 bytes of entry per usable slot (2/3 of the slots), 4 of index and 8 of the
OrderedDict's node array per slot. A dict under eviction churn fills with deleted slots and
is rebuilt at 3 x its live keys rounded up to a power of two, so the tables hold 3 to 6 slots
per live key: 84 to 168 bytes. Worst case: 96 + 32 + 168 = 296 bytes beyond the key and value.

Measured on a ``distcache serve`` process (``tests/e2e/test_memory.py`` does it for 100-byte
values): 50 MB ``maxmemory``, a million SETs of fresh keys in pipelines of 1000, RSS above the
empty node once evictions run steadily. Before, with 168 bytes counted per key (the growth-only
tracemalloc figure) and glibc's sliding mmap threshold (see :func:`pin_malloc_mmap_threshold`):

==========  ===========  ============
value       no expiry    EX on every key
==========  ===========  ============
10 B        1.58x
100 B       1.72x        1.77x
1000 B      1.25x
==========  ===========  ============

and with the figures below and the threshold pinned: 10 B 0.70x / 0.99x, 100 B 0.85x / 0.83x,
1000 B 1.07x / 1.07x (the rest is malloc's own rounding and fragmentation of ~1 KB blocks).
"""

from __future__ import annotations

#: What a key costs beyond the bytes of its key and value: the worst case above.
PER_KEY_OVERHEAD_BYTES = 300
#: What a key with an expiry costs more: an int (32 bytes) and its share of the expires
#: dict's tables under churn (24 x 4 + 4 x 6 bytes at most), plus the active-expiry sampler's
#: 8-byte reference to it.
EXPIRY_OVERHEAD_BYTES = 170


def cost_of(key: bytes, value: bytes) -> int:
    """What one key counts against ``maxmemory_bytes``."""
    return len(key) + len(value) + PER_KEY_OVERHEAD_BYTES


#: glibc ``mallopt`` parameter number of ``M_MMAP_THRESHOLD``.
_M_MMAP_THRESHOLD = -3
#: Allocations from this size up get their own mapping, returned to the system when freed.
MMAP_THRESHOLD_BYTES = 1024 * 1024


def pin_malloc_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold so that large blocks (the dict tables, large values) are
    always mapped on their own and unmapped when freed. Returns False where it cannot
    (not glibc).

    glibc raises the threshold each time a mapped block is freed (up to 32 MiB), after which
    blocks of that size come from the heap, where a freed table leaves a hole the heap does
    not give back. Measured on a node at a 50 MB ``maxmemory`` with 100-byte values written
    in a loop: RSS above the empty node crept from 46 to 60 MB over a million writes (the
    OrderedDict's table reallocated each time evictions filled it with deleted slots) while
    the live data stayed constant; with the threshold fixed it stays at 42 MB. A process-wide
    setting, made once by the engine factory the node uses (``from_settings``).
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (ImportError, OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))

"""MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, in Redis 7.0's reply shapes
(``memoryCommand`` and ``getMemoryDoctorReport`` in ``src/object.c``).

Redis reads its figures from its allocator; a Python process has none to ask, so the figures
are the process's (resident set size now, at start and at its peak) and the storage engine's
(what the keyspace counts against ``maxmemory``, INFO's ``used_memory``):

- ``total.allocated``, ``peak.allocated``, ``startup.allocated``: the process's RSS now, its
  peak (``ru_maxrss``) and when the node started listening;
- ``dataset.bytes``: the keyspace as the engine accounts it; ``overhead.total`` the rest of
  the process (interpreter, code, buffers);
- the ``allocator*``, ``rss-overhead`` and ``fragmentation`` fields have no Python
  counterpart and report no fragmentation (ratio 1, 0 bytes); so do a database's hash table
  overheads (the engine accounts memory per key, not per table), the replication backlog, AOF
  buffer and script caches (0).

DOCTOR applies Redis's rules to these figures: an instance with less than 5 MiB of data is
"empty", a peak above 150% of the current size is reported, and the texts are Redis's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import sys
import weakref
from collections.abc import Callable
from typing import Any, Final

from ..command_table import Command, Subcommand, subcommand_handler
from ..errors import SYNTAX, CommandError
from ..hookspecs import hookimpl
from ..info import resident_memory_bytes
from ..replies import OK, VerbatimReply
from .arguments import parse_int

#: RSS when each node started listening (``startup.allocated``).
_STARTUP_RSS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
#: Below this much data Redis's doctor calls the instance empty.
DOCTOR_EMPTY_BYTES: Final = 5 * 1024 * 1024

DOCTOR_EMPTY: Final = (
    "Hi Sam, this instance is empty or is using very little memory, my issues detector can't "
    "be used in these conditions. Please, leave for your mission on Earth and fill it with "
    "some data. The new Sam and I will be back to our programming as soon as I finished "
    "rebooting.\n")
DOCTOR_FINE: Final = ("Hi Sam, I can't find any memory issue in your instance. I can only "
                      "account for what occurs on this base.\n")
DOCTOR_PEAK: Final = (
    "Sam, I detected a few issues in this Redis instance memory implants:\n\n"
    " * Peak memory: In the past this instance used more than 150% the memory that is "
    "currently using. The allocator is normally not able to release memory after a peak, so "
    "you can expect to see a big fragmentation ratio, however this is actually harmless and "
    "is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is "
    "currently bigger than expected, the memory will be used as soon as you fill the Redis "
    "instance with more data. If the memory peak was only occasional and you want to try to "
    "reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is "
    "to shutdown and restart the instance.\n\n"
    "I'm here to keep you safe, Sam. I want to help you.\n")

MEMORY_HELP: Final = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
]


def _memory_usage(conn: Any, argv: list[bytes]) -> Any:
    if len(argv) == 5 and argv[3].lower() == b"samples":
        parse_int(argv[4])  # a string has nothing to sample; the count is only checked
    elif len(argv) != 3:
        raise CommandError(SYNTAX)
    engine = conn.engine
    usage = getattr(engine, "memory_usage", None)
    if usage is not None:
        return usage(argv[2])
    value = engine.peek(argv[2])
    return None if value is None else len(argv[2]) + len(value)


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _figures(node: Any) -> dict[str, Any]:
    total = resident_memory_bytes()
    peak = max(_peak_rss_bytes(), total)
    startup = min(_STARTUP_RSS.get(node, total), total)
    # The engines of all databases share one budget: any of them reports the node's bytes.
    dataset = node.engine.stats().bytes_used
    databases = [(index, engine.stats()) for index, engine in node.databases.opened()]
    keys = sum(stats.keys for _, stats in databases)
    net = max(total - startup, 1)
    return {"total": total, "peak": peak, "startup": startup, "dataset": dataset,
            "keys": keys, "net": net,
            "databases": [index for index, stats in databases if stats.keys]}


def _memory_stats(conn: Any, argv: list[bytes]) -> dict[str, Any]:
    f = _figures(conn.node)
    total, dataset = f["total"], f["dataset"]
    stats: dict[str, Any] = {
        "peak.allocated": f["peak"], "total.allocated": total,
        "startup.allocated": f["startup"], "replication.backlog": 0, "clients.slaves": 0,
        "clients.normal": 0, "cluster.links": 0, "aof.buffer": 0, "lua.caches": 0,
        "functions.caches": 0,
    }
    for index in f["databases"]:
        stats[f"db.{index}"] = {"overhead.hashtable.main": 0, "overhead.hashtable.expires": 0,
                                "overhead.hashtable.slot-to-keys": 0}
    stats.update({
        "overhead.total": max(total - dataset, 0), "keys.count": f["keys"],
        "keys.bytes-per-key": f["net"] // f["keys"] if f["keys"] else 0,
        "dataset.bytes": dataset, "dataset.percentage": dataset * 100 / f["net"],
        "peak.percentage": total * 100 / f["peak"],
        "allocator.allocated": total, "allocator.active": total, "allocator.resident": total,
        "allocator-fragmentation.ratio": 1.0, "allocator-fragmentation.bytes": 0,
        "allocator-rss.ratio": 1.0, "allocator-rss.bytes": 0,
        "rss-overhead.ratio": 1.0, "rss-overhead.bytes": 0,
        "fragmentation": 1.0, "fragmentation.bytes": 0,
    })
    return stats


def _memory_doctor(conn: Any, argv: list[bytes]) -> VerbatimReply:
    f = _figures(conn.node)
    if f["dataset"] < DOCTOR_EMPTY_BYTES:
        report = DOCTOR_EMPTY
    elif f["peak"] / f["total"] > 1.5:
        report = DOCTOR_PEAK
    else:
        report = DOCTOR_FINE
    return VerbatimReply(report.encode())


def _memory_malloc_stats(conn: Any, argv: list[bytes]) -> VerbatimReply:
    """What Python's allocator and collector say (Redis prints jemalloc's statistics)."""
    lines = ["___ Begin Python allocator statistics ___",
             f"Version: {sys.implementation.name} {sys.version.split()[0]}",
             f"allocated blocks: {sys.getallocatedblocks()}",
             f"resident: {resident_memory_bytes()}", f"peak resident: {_peak_rss_bytes()}",
             f"gc counts: {' '.join(map(str, gc.get_count()))}",
             f"gc frozen objects: {gc.get_freeze_count()}"]
    for generation, counts in enumerate(gc.get_stats()):
        lines.append(f"gc generation {generation}: "
                     + " ".join(f"{name}={value}" for name, value in counts.items()))
    lines.append("--- End Python allocator statistics ---")
    return VerbatimReply(("\n".join(lines) + "\n").encode())


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None


def _memory_purge(conn: Any, argv: list[bytes]) -> str:
    """Collect garbage, then hand free heap pages back to the OS (glibc's ``malloc_trim``),
    as Redis asks jemalloc to purge its dirty pages."""
    gc.collect()
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)
    return OK


_READ = frozenset({"readonly"})
MEMORY_SUBCOMMANDS = (
    Subcommand(name="doctor", arity=2, handler=_memory_doctor,
               summary="Outputs a memory problems report."),
    Subcommand(name="help", arity=2, handler=lambda conn, argv: MEMORY_HELP,
               flags={"loading", "stale"},
               summary="Returns helpful text about the different subcommands."),
    Subcommand(name="malloc-stats", arity=2, handler=_memory_malloc_stats,
               summary="Returns the allocator statistics."),
    Subcommand(name="purge", arity=2, handler=_memory_purge,
               summary="Asks the allocator to release memory."),
    Subcommand(name="stats", arity=2, handler=_memory_stats,
               summary="Returns details about memory usage."),
    Subcommand(name="usage", arity=-3, handler=_memory_usage, flags=_READ,
               first_key=2, last_key=2, key_step=1, key_flags=("RO",),
               summary="Estimates the memory usage of a key."),
)


@hookimpl
def distcache_register_commands(register: Callable[[Command], None]) -> None:
    register(Command(name="memory", handler=subcommand_handler("memory", MEMORY_SUBCOMMANDS),
                     arity=-2, group="server", subcommands=MEMORY_SUBCOMMANDS,
                     summary="A container for memory diagnostics commands."))


@hookimpl
def distcache_node_started(node: Any) -> None:
    _STARTUP_RSS[node] = resident_memory_bytes()

"""The text of INFO: Redis's sections and the fields Redis clients and tools read."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import REDIS_COMPAT_VERSION, __version__
from .metrics import INFO_PERCENTILES

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def human_bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n:.2f}T"  # pragma: no cover


def _server(node: Any) -> list[tuple[str, Any]]:
    uptime = int(time.time() - node.started_at)
    return [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("distcache_version", __version__),
        ("redis_mode", "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("multiplexing_api", "asyncio"),
        ("python_version", platform.python_version()),
        ("process_id", os.getpid()),
        ("run_id", node.run_id),
        ("node_id", node.node_id),
        ("tcp_port", node.port),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", 10),
        ("executable", sys.argv[0]),
    ]


def _clients(node: Any) -> list[tuple[str, Any]]:
    server = node.server
    return [
        ("connected_clients", len(server.connections)),
        ("maxclients", server.maxclients),
        ("blocked_clients", 0),
        ("paused_reading_clients",
         sum(1 for c in server.connections.values() if c.reading_paused)),
    ]


def _memory(node: Any) -> list[tuple[str, Any]]:
    stats = node.engine.stats()
    rss = resident_memory_bytes()
    # The limits in force, as the engine reports them (CONFIG SET changes them at run time).
    maxmemory = stats.maxmemory_bytes
    return [
        # used_memory is the engine's estimate of what the keyspace costs; the process's whole
        # footprint, interpreter included, is used_memory_rss.
        ("used_memory", stats.bytes_used),
        ("used_memory_human", human_bytes(stats.bytes_used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", human_bytes(rss)),
        ("maxmemory", maxmemory),
        ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", stats.maxmemory_policy),
        ("maxkeys", stats.capacity),
    ]


def _persistence(node: Any) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = node.persistence.info_fields()
    return fields


def _stats(node: Any) -> list[tuple[str, Any]]:
    server_stats = node.server.totals()
    engine_stats = node.engine.stats()
    return [
        ("total_connections_received", server_stats.connections_received),
        ("total_commands_processed", server_stats.commands_processed),
        ("total_net_input_bytes", server_stats.net_input_bytes),
        ("total_net_output_bytes", server_stats.net_output_bytes),
        ("rejected_connections", server_stats.rejected_connections),
        ("expired_keys", engine_stats.expired),
        ("evicted_keys", engine_stats.evictions),
        ("keyspace_hits", engine_stats.hits),
        ("keyspace_misses", engine_stats.misses),
        ("total_error_replies", server_stats.error_replies),
        ("protocol_errors", server_stats.protocol_errors),
    ]


def _errorstats(node: Any) -> list[tuple[str, Any]]:
    return list(node.server.error_stats.info_fields())


def _replication(node: Any) -> list[tuple[str, Any]]:
    return [("role", "master"), ("connected_slaves", 0)]


def _cpu(node: Any) -> list[tuple[str, Any]]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [("used_cpu_sys", f"{usage.ru_stime:.6f}"), ("used_cpu_user", f"{usage.ru_utime:.6f}")]


def _cluster(node: Any) -> list[tuple[str, Any]]:
    # DistCache routes keys on the server side; 1 here would switch clients into Redis
    # Cluster mode, which expects MOVED redirections and slot maps. The rest is DistCache's
    # own cluster (CLUSTER INFO's fields: members, moves and their progress, hints), then a
    # line per peer (``peer_<id>:calls=..``).
    cluster = getattr(node, "cluster", None)
    if cluster is None:
        return [("cluster_enabled", 0)]
    from .cluster.commands import info_fields, peer_info_fields

    return [("cluster_enabled", 0), *info_fields(cluster), *peer_info_fields(cluster)]


def _commandstats(node: Any) -> list[tuple[str, Any]]:
    return [(f"cmdstat_{stats.name}",
             f"calls={stats.calls},usec={stats.usec},usec_per_call={stats.usec_per_call:.2f},"
             f"rejected_calls={stats.rejected},failed_calls={stats.failed}")
            for stats in node.metrics.touched()]


def _latencystats(node: Any) -> list[tuple[str, Any]]:
    out = []
    for stats in node.metrics.touched():
        if not stats.histogram.total:
            continue
        values = stats.histogram.percentiles_usec(INFO_PERCENTILES)
        out.append((f"latency_percentiles_usec_{stats.name}",
                     ",".join(f"p{p:g}={values[p]:.3f}" for p in INFO_PERCENTILES)))
    return out


def _keyspace(node: Any) -> list[tuple[str, Any]]:
    # One line per non-empty database, as Redis. avg_ttl is Redis's running estimate from its
    # expiry sampling; DistCache does not estimate it and reports 0 ("unknown" to Redis too).
    lines = []
    for index, engine in node.databases.opened():
        stats = engine.stats()
        if stats.keys:
            lines.append((f"db{index}",
                          f"keys={stats.keys},expires={stats.keys_with_expiry},avg_ttl=0"))
    return lines


SECTIONS: dict[str, Callable[[Any], list[tuple[str, Any]]]] = {
    "server": _server,
    "clients": _clients,
    "memory": _memory,
    "persistence": _persistence,
    "stats": _stats,
    "replication": _replication,
    "cpu": _cpu,
    "commandstats": _commandstats,
    "errorstats": _errorstats,
    "latencystats": _latencystats,
    "cluster": _cluster,
    "keyspace": _keyspace,
}
#: What plain INFO and ``INFO default`` show: the per-command sections only on request.
DEFAULT_SECTIONS = tuple(n for n in SECTIONS if n not in ("commandstats", "latencystats"))
#: Headers Redis does not spell as the capitalized section name.
SECTION_TITLES = {"cpu": "CPU"}


def selected_sections(requested: Iterable[str]) -> list[str]:
    """Redis 7's rules: any number of section names, plus ``default``, ``all`` and
    ``everything``; each section once, in the fixed order; unknown names are ignored."""
    names = {name.lower() for name in requested} or {"default"}
    wanted: set[str] = set()
    if names & {"all", "everything"}:
        wanted.update(SECTIONS)
    if "default" in names:
        wanted.update(DEFAULT_SECTIONS)
    wanted.update(names & set(SECTIONS))
    return [name for name in SECTIONS if name in wanted]


def render_info(node: Any, requested: Iterable[str] = ()) -> str:
    selected = selected_sections(requested)
    if not selected:
        return ""
    blocks = []
    for name in selected:
        lines = [f"# {SECTION_TITLES.get(name, name.capitalize())}"]
        lines.extend(f"{key}:{value}" for key, value in SECTIONS[name](node))
        blocks.append("\r\n".join(lines))
    return "\r\n\r\n".join(blocks) + "\r\n"

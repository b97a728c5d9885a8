"""The node's figures as JSON-ready dicts: ``/api/stats`` and ``/api/cluster`` (every field
and its unit is listed in the README's Monitoring section). INFO, ``/metrics`` and these read
the same counters, so after the same workload they agree."""

from __future__ import annotations

import os
import time
from typing import Any

import attrs

from distcache_core import REDIS_COMPAT_VERSION, __version__
from distcache_core.info import resident_memory_bytes

#: Config keys whose values are never shown, only whether they are set.
SECRET_WORDS = ("pass", "secret", "token", "credential")
#: Percentiles the dashboard reports (INFO latencystats' three).
PERCENTILES = (50.0, 99.0, 99.9)
SLOWLOG_ENTRIES = 20


def node_status(node: Any) -> str:
    """``serving``, ``loading`` (recovering data: requests wait) or ``stopping``."""
    if getattr(node, "stopping", False):
        return "stopping"
    persistence_status = getattr(getattr(node, "persistence", None), "status", None)
    if getattr(node, "loading", False) or getattr(persistence_status, "loading", False):
        return "loading"
    return "serving"


def _hidden(table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out[key] = _hidden(value)
        elif any(word in key.lower() for word in SECRET_WORDS):
            out[key] = "(set)" if value else ""
        else:
            out[key] = list(value) if isinstance(value, tuple | frozenset | set) else value
    return out


def public_config(node: Any) -> dict[str, Any]:
    """The node's configuration with every password and secret replaced by ``(set)``."""
    config = node.config
    tables: dict[str, Any] = {"node": attrs.asdict(config.node)}
    cluster = getattr(config, "cluster", None)
    if cluster is not None and attrs.has(type(cluster)):
        tables["cluster"] = attrs.asdict(cluster)
    tables["plugins"] = {name: attrs.asdict(settings) for name, settings in
                         sorted(config.plugins.items()) if attrs.has(type(settings))}
    return _hidden(tables)


def _percentiles(histogram: Any) -> dict[str, float]:
    values = histogram.percentiles_usec(PERCENTILES)
    return {f"p{p:g}": round(values[p], 3) for p in PERCENTILES}


def totals(node: Any) -> dict[str, Any]:
    """The counters the history samples every second (cheap: no per-command walk)."""
    server_stats = node.server.totals()
    engine = node.engine.stats()
    lookups = engine.hits + engine.misses
    return {
        "commands_processed": server_stats.commands_processed,
        "hits": engine.hits,
        "misses": engine.misses,
        "hit_ratio": round(engine.hits / lookups, 4) if lookups else None,
        "used_memory_bytes": engine.bytes_used,
        "keys": engine.keys,
        "connected_clients": len(node.server.connections),
    }


def node_stats(node: Any, history: Any = None) -> dict[str, Any]:
    """Everything ``/api/stats`` returns."""
    metrics = node.metrics
    metrics.fold()
    server_stats = node.server.totals()
    engine = node.engine.stats()
    lookups = engine.hits + engine.misses
    commands = {}
    for stats in metrics.touched():
        entry: dict[str, Any] = {
            "calls": stats.calls, "usec": stats.usec,
            "usec_per_call": round(stats.usec_per_call, 3),
            "rejected_calls": stats.rejected, "failed_calls": stats.failed,
            "samples": stats.samples}
        entry.update(_percentiles(stats.histogram))
        commands[stats.name] = entry
    latency = metrics.latency()
    databases = []
    for index, db_engine in _databases(node):
        db = db_engine.stats()
        if db.keys:
            databases.append({"db": index, "keys": db.keys, "expires": db.keys_with_expiry})
    return {
        "node": {
            "id": node.node_id, "version": __version__, "redis_version": REDIS_COMPAT_VERSION,
            "status": node_status(node), "host": node.host, "port": node.port,
            "pid": os.getpid(), "uptime_seconds": int(time.time() - node.started_at),
        },
        "time": round(time.time(), 3),
        "clients": {
            "connected": len(node.server.connections), "max": node.server.maxclients,
            "total_received": server_stats.connections_received,
            "rejected": server_stats.rejected_connections,
        },
        "traffic": {
            "commands_processed": server_stats.commands_processed,
            "net_input_bytes": server_stats.net_input_bytes,
            "net_output_bytes": server_stats.net_output_bytes,
            "error_replies": server_stats.error_replies,
            "protocol_errors": server_stats.protocol_errors,
        },
        "keyspace": {
            "keys": engine.keys, "keys_with_expiry": engine.keys_with_expiry,
            "hits": engine.hits, "misses": engine.misses,
            "hit_ratio": round(engine.hits / lookups, 4) if lookups else None,
            "evicted_keys": engine.evictions, "expired_keys": engine.expired,
            "databases": databases,
        },
        "memory": {
            "used_bytes": engine.bytes_used, "rss_bytes": resident_memory_bytes(),
            "max_bytes": engine.maxmemory_bytes, "max_keys": engine.capacity,
            "policy": engine.maxmemory_policy,
        },
        "latency_usec": {**_percentiles(latency), "max": latency.max_usec(),
                         "samples": latency.total},
        "commands": commands,
        "errors": dict(node.server.error_stats.by_code),
        "slowlog": [
            {"id": e.id, "timestamp": e.timestamp, "duration_usec": e.duration_usec,
             "argv": [a.decode("utf-8", "replace") for a in e.argv],
             "client_addr": e.client_addr,
             "client_name": e.client_name.decode("utf-8", "replace")}
            for e in metrics.slowlog.get(SLOWLOG_ENTRIES)],
        "config": public_config(node),
        "history": history.as_json() if history is not None else None,
    }


def _databases(node: Any) -> list[tuple[int, Any]]:
    databases = getattr(node, "databases", None)
    opened = getattr(databases, "opened", None)
    if callable(opened):
        return list(opened())
    return [(0, node.engine)]


def cluster_view(node: Any) -> dict[str, Any]:
    """Everything ``/api/cluster`` returns: this node's view of the members, the ring and the
    breakers. A node without a cluster reports itself alone, owning the whole ring."""
    cluster = getattr(node, "cluster", None)
    describe = getattr(cluster, "describe", None)
    if callable(describe):
        view = dict(describe())
        view.setdefault("self", node.node_id)
        return view
    return {
        "enabled": False,
        "self": node.node_id,
        "nodes": [{
            "id": node.node_id, "address": f"{node.host}:{node.port}",
            "state": "up" if node_status(node) == "serving" else node_status(node),
            "ring_share": 1.0, "breaker": None, "last_seen_seconds": 0.0,
        }],
        "replication_factor": 1,
        "hints_pending": 0,
        "rebalance": {"keys_to_move": 0, "keys_moved": 0, "active": False},
    }

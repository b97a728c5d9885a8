"""``/metrics``: a ``prometheus_client`` collector that reads the node's counters when scraped.

Metric names are the Redis exporter's (oliver006/redis_exporter), so Grafana dashboards made
for it work unchanged; ``plugins.dashboard.metrics_namespace`` replaces the ``redis`` prefix.
Per-command latency is exported as the exporter does, a summary of three quantiles
(``redis_latency_percentiles_usec{cmd,quantile}``), not as per-command bucket series.
Nothing is recorded per request: the collector walks the counters at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from distcache_core import REDIS_COMPAT_VERSION, __version__
from distcache_core.info import resident_memory_bytes

from .stats import PERCENTILES, cluster_view, node_status

BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


class NodeCollector(Collector):
    """Yields the node's metrics at each scrape."""

    def __init__(self, node: Any, namespace: str = "redis") -> None:
        self.node = node
        self.ns = namespace

    def _name(self, name: str) -> str:
        return f"{self.ns}_{name}"

    def collect(self) -> Iterator[Metric]:
        node = self.node
        ns = self._name
        server = node.server.totals()
        engine = node.engine.stats()
        metrics = node.metrics
        metrics.fold()

        yield GaugeMetricFamily(ns("up"), "Whether the node serves (0 while loading or "
                                "stopping).", value=1 if node_status(node) == "serving" else 0)
        info = GaugeMetricFamily(ns("instance_info"), "Information about the node.",
                                 labels=["redis_version", "distcache_version", "node_id",
                                         "redis_mode"])
        info.add_metric([REDIS_COMPAT_VERSION, __version__, node.node_id, "standalone"], 1)
        yield info
        yield GaugeMetricFamily(ns("uptime_in_seconds"), "Seconds since the node started.",
                                value=_uptime(node))
        yield GaugeMetricFamily(ns("connected_clients"), "Client connections open.",
                                value=len(node.server.connections))
        yield GaugeMetricFamily(ns("max_clients"), "maxclients.", value=node.server.maxclients)
        yield CounterMetricFamily(ns("connections_received"), "Connections accepted.",
                                  value=server.connections_received)
        yield CounterMetricFamily(ns("rejected_connections"), "Connections refused.",
                                  value=server.rejected_connections)
        yield CounterMetricFamily(ns("commands_processed"), "Commands run.",
                                  value=server.commands_processed)
        yield CounterMetricFamily(ns("net_input_bytes"), "Bytes read from clients.",
                                  value=server.net_input_bytes)
        yield CounterMetricFamily(ns("net_output_bytes"), "Bytes written to clients.",
                                  value=server.net_output_bytes)
        yield CounterMetricFamily(ns("keyspace_hits"), "Reads that found their key.",
                                  value=engine.hits)
        yield CounterMetricFamily(ns("keyspace_misses"), "Reads that did not.",
                                  value=engine.misses)
        yield CounterMetricFamily(ns("evicted_keys"), "Keys evicted by the memory limits.",
                                  value=engine.evictions)
        yield CounterMetricFamily(ns("expired_keys"), "Keys removed when they expired.",
                                  value=engine.expired)
        yield GaugeMetricFamily(ns("memory_used_bytes"), "The keyspace's size estimate.",
                                value=engine.bytes_used)
        yield GaugeMetricFamily(ns("memory_used_rss_bytes"), "The process's resident memory.",
                                value=resident_memory_bytes())
        yield GaugeMetricFamily(ns("memory_max_bytes"), "maxmemory (0: no limit).",
                                value=engine.maxmemory_bytes)
        yield GaugeMetricFamily(ns("max_keys"), "The key count limit (0: none).",
                                value=engine.capacity)
        keys = GaugeMetricFamily(ns("db_keys"), "Keys per database.", labels=["db"])
        expiring = GaugeMetricFamily(ns("db_keys_expiring"), "Keys with an expiry, per "
                                     "database.", labels=["db"])
        for index, db_engine in _databases(node):
            db = db_engine.stats()
            keys.add_metric([f"db{index}"], db.keys)
            expiring.add_metric([f"db{index}"], db.keys_with_expiry)
        yield keys
        yield expiring
        yield from self._commands(metrics)
        errors = CounterMetricFamily(ns("errors"), "Error replies by error code.",
                                     labels=["err"])
        for code, count in sorted(node.server.error_stats.by_code.items()):
            errors.add_metric([code], count)
        yield errors
        yield CounterMetricFamily(ns("total_error_replies"), "Error replies sent.",
                                  value=server.error_replies)
        yield GaugeMetricFamily(ns("slowlog_length"), "Entries in the slow log.",
                                value=len(metrics.slowlog))
        yield GaugeMetricFamily(ns("slowlog_last_id"), "Id of the newest slow log entry.",
                                value=metrics.slowlog.next_id - 1)
        yield from self._persistence(node)
        yield from self._cluster(node)

    def _commands(self, metrics: Any) -> Iterator[Metric]:
        ns = self._name
        calls = CounterMetricFamily(ns("commands"), "Calls per command.", labels=["cmd"])
        seconds = CounterMetricFamily(ns("commands_duration_seconds"), "Time spent per "
                                      "command (sampled mean times calls).", labels=["cmd"])
        rejected = CounterMetricFamily(ns("commands_rejected_calls"), "Calls refused before "
                                       "running (arity, auth, loading).", labels=["cmd"])
        failed = CounterMetricFamily(ns("commands_failed_calls"), "Calls that replied an "
                                     "error.", labels=["cmd"])
        latency = SummaryMetricFamily(ns("latency_percentiles_usec"), "Latency percentiles "
                                      "per command, in microseconds.", labels=["cmd"])
        for stats in metrics.touched():
            label = [stats.name]
            calls.add_metric(label, stats.calls)
            seconds.add_metric(label, stats.usec / 1e6)
            rejected.add_metric(label, stats.rejected)
            failed.add_metric(label, stats.failed)
            if stats.histogram.total:
                values = stats.histogram.percentiles_usec(PERCENTILES)
                for p in PERCENTILES:
                    latency.samples.append(_quantile_sample(
                        latency.name, stats.name, p, values[p]))
                latency.add_metric(label, count_value=stats.calls, sum_value=stats.usec)
        yield from (calls, seconds, rejected, failed, latency)

    def _persistence(self, node: Any) -> Iterator[Metric]:
        """The Redis exporter's persistence gauges, and the WAL's fsync time as a summary
        (count and seconds: rate() of both gives the mean fsync latency)."""
        ns = self._name
        fields = dict(node.persistence.info_fields())
        for field, name, doc in (
                ("loading", "loading_dump_file", "Whether the node is loading its data."),
                ("rdb_changes_since_last_save", "rdb_changes_since_last_save",
                 "Writes since the last snapshot."),
                ("rdb_last_save_time", "rdb_last_save_timestamp_seconds",
                 "When the last snapshot was saved."),
                ("aof_enabled", "aof_enabled", "Whether the write-ahead log is on."),
                ("aof_current_size", "aof_current_size_bytes", "The log's size on disk.")):
            if str(fields.get(field, "")).lstrip("-").isdigit():
                yield GaugeMetricFamily(ns(name), doc, value=int(fields[field]))
        if "wal_fsyncs" in fields:
            fsync = SummaryMetricFamily(ns("wal_fsync_seconds"), "Time in fdatasync of the "
                                        "write-ahead log.")
            fsync.add_metric([], count_value=int(fields["wal_fsyncs"]),
                             sum_value=float(fields.get("wal_fsync_seconds_total", 0)))
            yield fsync

    def _cluster(self, node: Any) -> Iterator[Metric]:
        ns = self._name
        view = cluster_view(node)
        yield GaugeMetricFamily(ns("cluster_enabled"), "Whether the node is in a cluster.",
                                value=1 if view.get("enabled") else 0)
        nodes = GaugeMetricFamily(ns("cluster_node_up"), "Each member as this node sees it "
                                  "(1: up).", labels=["node"])
        share = GaugeMetricFamily(ns("cluster_ring_share"), "Each member's share of the ring.",
                                  labels=["node"])
        breaker = GaugeMetricFamily(ns("cluster_peer_breaker_state"), "Circuit breaker per "
                                    "peer: 0 closed, 1 half-open, 2 open.", labels=["peer"])
        for member in view.get("nodes", ()):
            nodes.add_metric([member["id"]], 1 if member.get("state") == "up" else 0)
            share.add_metric([member["id"]], member.get("ring_share") or 0.0)
            state = member.get("breaker")
            if state in BREAKER_STATES:
                breaker.add_metric([member["id"]], BREAKER_STATES[state])
        yield from (nodes, share, breaker)
        yield from self._peer_calls(view)
        yield GaugeMetricFamily(ns("hints_pending"), "Writes held for peers that are down.",
                                value=view.get("hints_pending", 0))
        rebalance = view.get("rebalance") or {}
        remaining = rebalance.get("keys_to_move", 0) - rebalance.get("keys_moved", 0)
        yield GaugeMetricFamily(ns("rebalance_keys_remaining"), "Keys still to move to their "
                                "new owner.", value=max(0, remaining))


    def _peer_calls(self, view: dict[str, Any]) -> Iterator[Metric]:
        """This node's calls to each peer (``nodes[].peer`` of ``/api/cluster``)."""
        ns = self._name
        counters = [(key, CounterMetricFamily(ns(f"cluster_peer_{key}"), doc, labels=["peer"]))
                    for key, doc in (
                        ("calls", "Requests sent to the peer."),
                        ("errors", "Calls that got no reply: no connection, a lost one."),
                        ("timeouts", "Calls that got no reply within request_timeout_ms."),
                        ("rejected", "Calls refused at once by the peer's open breaker."),
                        ("breaker_transitions", "Changes of the peer's breaker state."))]
        latency = SummaryMetricFamily(ns("cluster_peer_latency_seconds"), "Latency of the "
                                      "sampled calls to the peer (count: samples).",
                                      labels=["peer"])
        for member in view.get("nodes", ()):
            calls = member.get("peer")
            if not calls:
                continue
            peer = member["id"]
            for key, family in counters:
                family.add_metric([peer], calls[key])
            sampled = calls["latency_usec"]
            for p in PERCENTILES:
                latency.samples.append(Sample(latency.name, {"peer": peer,
                                                             "quantile": f"{p / 100:g}"},
                                              sampled[f"p{p:g}"] / 1e6))
            latency.add_metric([peer], count_value=sampled["samples"],
                               sum_value=sampled["usec"] / 1e6)
        yield from (family for _, family in counters)
        yield latency


def _quantile_sample(name: str, command: str, percentile: float, value: float) -> Sample:
    return Sample(name, {"cmd": command, "quantile": f"{percentile / 100:g}"}, value)


def _uptime(node: Any) -> float:
    return int(time.time() - node.started_at)


def _databases(node: Any) -> list[tuple[int, Any]]:
    databases = getattr(node, "databases", None)
    opened = getattr(databases, "opened", None)
    return list(opened()) if callable(opened) else [(0, node.engine)]


def registry_for(node: Any, namespace: str) -> CollectorRegistry:
    """A registry holding only this node's collector (never the process-global one, so two
    nodes in one process each export their own)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node, namespace))
    return registry

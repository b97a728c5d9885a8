"""Per-peer call metrics on a real 3-node cluster: INFO ``cluster``'s ``peer_<id>`` lines,
``/api/cluster``'s ``nodes[].peer`` and ``/metrics``' ``redis_cluster_peer_*`` (parsed with
``prometheus_client``'s parser) count the forwarded commands and agree with each other; a hung
peer (SIGSTOP) adds timeouts and breaker transitions; CONFIG RESETSTAT clears them."""

from __future__ import annotations

import json
import signal
import urllib.request
from typing import Any

import redis
from prometheus_client.parser import text_string_to_metric_families

from .conftest import ClusterNode, keys_owned_by, wait_until
from .test_dashboard_browser import dashboard_url

DASHBOARD = ['node.metrics=["dashboard"]', "plugins.dashboard.port=0"]
FORWARDED = 60  # commands sent to node-1 for keys node-2 owns, in each test


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(fetch(url + "metrics")):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def peer_info(node: ClusterNode, peer: str) -> dict[str, Any]:
    """INFO cluster's ``peer_<peer>`` line, as redis-py parses it."""
    info = node.client().info("cluster")
    return info[f"peer_{peer}"]  # type: ignore[no-any-return]


def peer_metric(metrics: dict, name: str, peer: str) -> float:
    return metrics[(f"redis_cluster_peer_{name}", (("peer", peer),))]


def forward(node: ClusterNode, keys: list[str]) -> None:
    client = node.client()
    for index in range(FORWARDED // 2):
        key = keys[index % len(keys)]
        assert client.set(key, f"v{index}") is True
        assert client.get(key) == f"v{index}".encode()


def test_forwarded_calls_are_counted_alike_by_info_api_and_metrics(make_cluster) -> None:
    cluster = make_cluster(3, sets=DASHBOARD)
    one = cluster[0]
    url = wait_until(lambda: dashboard_url(one.log_path), 20, "node-1's dashboard")
    keys = keys_owned_by(one, "node-2", 5, "pm:")
    before = peer_info(one, "node-2")
    forward(one, keys)

    # Heartbeats keep calling every peer, so each reader's figure lies between the INFO
    # figures read just before and just after it.
    first = peer_info(one, "node-2")
    metrics = scrape(url)
    view = json.loads(fetch(url + "api/cluster"))
    last = peer_info(one, "node-2")
    assert first["calls"] - before["calls"] >= FORWARDED
    calls = peer_metric(metrics, "calls_total", "node-2")
    assert first["calls"] <= calls <= last["calls"]
    peer = {n["id"]: n for n in view["nodes"]}["node-2"]["peer"]
    assert first["calls"] <= peer["calls"] <= last["calls"]
    assert {n["id"]: n for n in view["nodes"]}["node-1"]["peer"] is None  # itself
    # Nothing failed meanwhile (the start, with peers not yet listening, may have).
    for name in ("errors", "timeouts", "rejected", "breaker_transitions"):
        assert before[name] == first[name] == peer[name] == last[name] \
            == peer_metric(metrics, f"{name}_total", "node-2"), name
    assert first["breaker"] == peer["breaker"] == "closed"

    # Latency: every call on an otherwise idle link at least a millisecond apart is timed;
    # the round trips here are far more than that.
    latency = peer["latency_usec"]
    assert latency["samples"] >= 1 and 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"]
    assert first["usec_per_call"] > 0
    count = metrics[("redis_cluster_peer_latency_seconds_count", (("peer", "node-2"),))]
    total = metrics[("redis_cluster_peer_latency_seconds_sum", (("peer", "node-2"),))]
    assert count >= 1 and total > 0
    p99 = metrics[("redis_cluster_peer_latency_seconds",
                   (("peer", "node-2"), ("quantile", "0.99")))]
    assert 0 < p99 < 10
    # node-3 only got heartbeats from node-1: counted, fewer than node-2's calls.
    assert 0 < peer_metric(metrics, "calls_total", "node-3") < calls


def test_a_hung_peer_adds_timeouts_and_breaker_transitions(make_cluster) -> None:
    cluster = make_cluster(3, sets=DASHBOARD)
    one, three = cluster[0], cluster[2]
    url = wait_until(lambda: dashboard_url(one.log_path), 20, "node-1's dashboard")
    key = keys_owned_by(one, "node-3", 1, "hung:")[0]
    client = one.client()
    before = peer_info(one, "node-3")
    three.signal(signal.SIGSTOP)
    try:
        def breaker_opened() -> bool:
            try:
                client.get(key)
            except redis.RedisError:
                pass
            return peer_info(one, "node-3")["breaker"] != "closed"

        wait_until(breaker_opened, 20, "node-3's breaker opened")
        hung = peer_info(one, "node-3")
        metrics = scrape(url)
        after = peer_info(one, "node-3")
        assert hung["timeouts"] > before["timeouts"]
        assert hung["breaker_transitions"] > before["breaker_transitions"]
        for name in ("timeouts", "errors", "rejected", "breaker_transitions"):
            assert hung[name] <= peer_metric(metrics, f"{name}_total", "node-3") \
                <= after[name], name
        # The other peer is unaffected.
        assert peer_info(one, "node-2")["timeouts"] == 0
    finally:
        three.signal(signal.SIGCONT)
    # It answers again: the breaker closes, one more transition.
    wait_until(lambda: peer_info(one, "node-3")["breaker"] == "closed", 20,
               "node-3's breaker closed")
    assert peer_info(one, "node-3")["breaker_transitions"] > hung["breaker_transitions"]


def test_config_resetstat_clears_the_peer_counters(make_cluster) -> None:
    cluster = make_cluster(3)
    one = cluster[0]
    forward(one, keys_owned_by(one, "node-2", 3, "reset:"))
    before = peer_info(one, "node-2")
    assert before["calls"] >= FORWARDED
    assert one.client().config_resetstat() is True
    after = peer_info(one, "node-2")
    # Only heartbeats (ten a second) since the reset.
    assert after["calls"] < FORWARDED
    assert after["errors"] == after["timeouts"] == after["breaker_transitions"] == 0
    info = one.client().info("cluster")
    assert info["cluster_peer_calls"] < before["calls"]

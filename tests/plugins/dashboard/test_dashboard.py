"""The dashboard plugin on a real node: /metrics parsed with prometheus_client's parser,
/api/stats, /api/cluster, /health (through a real recovery and a shutdown), secrets never
shown, routes added by other plugins."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from distcache_core.hookspecs import hookimpl
from tests.conftest import free_port

DASHBOARD = ('node.metrics=["dashboard"]', "plugins.dashboard.port=0")


def get(node, path: str) -> tuple[int, str, str]:
    port = node.node.metrics_sinks["dashboard"].port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def scrape(node) -> dict[tuple[str, tuple], float]:
    status, kind, text = get(node, "/metrics")
    assert status == 200 and kind.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def workload(r: redis.Redis) -> dict[str, int]:
    """Known counts per command (every request a few ms apart: every read is timed)."""
    sent = {"set": 0, "get": 0, "incr": 0, "del": 0}
    for i in range(6):
        r.execute_command("SET", f"k{i}", i)
        sent["set"] += 1
        time.sleep(0.002)
    for i in range(9):  # 6 hits, 3 misses
        r.execute_command("GET", f"k{i}")
        sent["get"] += 1
        time.sleep(0.002)
    for _ in range(4):
        r.execute_command("INCR", "counter")
        sent["incr"] += 1
        time.sleep(0.002)
    r.execute_command("DEL", "k0", "k1")
    sent["del"] += 1
    return sent


@pytest.fixture
def dash(make_node):
    return make_node(*DASHBOARD)


def test_metrics_match_a_known_workload_per_command(dash) -> None:
    r = redis.Redis(port=dash.port, socket_timeout=5)
    r.config_resetstat()
    sent = workload(r)
    metrics = scrape(dash)
    for name, count in sent.items():
        assert metrics[("redis_commands_total", (("cmd", name),))] == count
        assert metrics[("redis_commands_duration_seconds_total", (("cmd", name),))] > 0
        for quantile in ("0.5", "0.99", "0.999"):
            assert metrics[("redis_latency_percentiles_usec",
                            (("cmd", name), ("quantile", quantile)))] > 0
        assert metrics[("redis_latency_percentiles_usec_count", (("cmd", name),))] == count
    assert metrics[("redis_keyspace_hits_total", ())] == 6
    assert metrics[("redis_keyspace_misses_total", ())] == 3
    assert metrics[("redis_db_keys", (("db", "db0"),))] == 5  # k2..k5 and counter
    assert metrics[("redis_connected_clients", ())] == 1
    assert metrics[("redis_memory_used_bytes", ())] > 0
    assert metrics[("redis_evicted_keys_total", ())] == 0
    assert metrics[("redis_up", ())] == 1
    assert metrics[("redis_cluster_ring_share", (("node", "node-1"),))] == 1.0
    r.close()


def test_api_stats_metrics_and_info_agree(dash) -> None:
    r = redis.Redis(port=dash.port, socket_timeout=5)
    workload(r)
    dash.call(dash.node.metrics.fold)
    # One loop turn answers each, and no request runs in between: the three must agree.
    info = r.info("everything")
    status, kind, body = get(dash, "/api/stats")
    stats = json.loads(body)
    metrics = scrape(dash)
    assert status == 200 and kind.startswith("application/json")
    # INFO counted itself once it returned; /api/stats and /metrics are not commands.
    for name in ("set", "get", "incr", "del"):
        calls = info[f"cmdstat_{name}"]["calls"]
        assert stats["commands"][name]["calls"] == calls
        assert metrics[("redis_commands_total", (("cmd", name),))] == calls
        assert stats["commands"][name]["usec"] == info[f"cmdstat_{name}"]["usec"]
        assert stats["commands"][name]["p99"] == info[f"latency_percentiles_usec_{name}"]["p99"]
    assert stats["keyspace"]["hits"] == info["keyspace_hits"] == \
        metrics[("redis_keyspace_hits_total", ())]
    assert stats["keyspace"]["keys"] == info["db0"]["keys"] == \
        metrics[("redis_db_keys", (("db", "db0"),))]
    assert stats["memory"]["used_bytes"] == info["used_memory"] == \
        metrics[("redis_memory_used_bytes", ())]
    assert stats["traffic"]["commands_processed"] == \
        metrics[("redis_commands_processed_total", ())] == \
        info["total_commands_processed"] + 1  # the INFO that read it
    assert stats["node"]["status"] == "serving" and stats["node"]["id"] == "node-1"
    r.close()


def test_history_and_cluster(make_node) -> None:
    node = make_node(*DASHBOARD, "plugins.dashboard.sample_interval_seconds=0.2")
    r = redis.Redis(port=node.port, socket_timeout=5)
    deadline = time.monotonic() + 10
    points: list = []
    while time.monotonic() < deadline and len(points) < 3:
        r.set("a", "1")
        r.get("a")
        time.sleep(0.05)
        points = json.loads(get(node, "/api/stats")[2])["history"]["points"]
    assert len(points) >= 3
    assert {"t", "ops_per_sec", "p50_usec", "p99_usec", "hit_ratio", "used_memory_bytes",
            "keys", "connected_clients"} <= set(points[-1])
    assert any(p["ops_per_sec"] > 0 for p in points)
    cluster = json.loads(get(node, "/api/cluster")[2])
    assert cluster["enabled"] is False and cluster["self"] == "node-1"
    (member,) = cluster["nodes"]
    assert member["state"] == "up" and member["ring_share"] == 1.0
    assert member["address"] == f"127.0.0.1:{node.port}"
    r.close()


def test_health_follows_the_node_state(dash) -> None:
    status, _, body = get(dash, "/health")
    assert status == 200 and json.loads(body) == {"status": "serving", "node": "node-1"}
    status_of_recovery = dash.node.persistence.status
    dash.call(setattr, status_of_recovery, "loading", True)  # as while recovery runs
    status, _, body = get(dash, "/health")
    assert status == 503 and json.loads(body)["status"] == "loading"
    assert scrape(dash)[("redis_up", ())] == 0
    dash.call(setattr, status_of_recovery, "loading", False)
    assert get(dash, "/health")[0] == 200


#: Keys written before the restart: enough for a log replay of well over a second here (about
#: 4 s a million records on this 2-core machine), few enough to write in a few seconds.
RECOVERY_KEYS = 400_000


def health(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as reply:
            return reply.status, json.loads(reply.read())["status"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["status"]


def test_health_is_503_during_a_long_recovery_then_200(tmp_path, node_process) -> None:
    dashboard_port = free_port()  # the node prints a port-0 dashboard's URL only once loaded
    args = ("--port", "0", "--data-dir", str(tmp_path / "data"),
            "--set", 'node.persistence=["wal"]', "--set", "plugins.lru_ttl.capacity=0",
            "--set", 'node.metrics=["dashboard"]',
            "--set", f"plugins.dashboard.port={dashboard_port}")
    proc = node_process(*args)
    r = redis.Redis(port=proc.port, socket_timeout=30)
    while int(r.info("persistence")["loading"]):  # an empty data dir: at once
        time.sleep(0.02)
    assert health(dashboard_port) == (200, "serving")
    for start in range(0, RECOVERY_KEYS, 10_000):
        r.mset({b"key:%d" % i: b"v" * 16 for i in range(start, start + 10_000)})
    r.close()
    proc.stop()

    proc = node_process(*args)  # back as soon as it answers -LOADING
    r = redis.Redis(port=proc.port, socket_timeout=30)
    seen = []
    deadline = time.monotonic() + 60
    while True:
        loading = int(r.info("persistence")["loading"])
        status = health(dashboard_port)
        seen.append((loading, *status))
        if status[0] == 200:
            break
        assert time.monotonic() < deadline, seen[-5:]
        time.sleep(0.02)
    # 503 "loading" while INFO said loading:1, then 200 once it has loaded everything.
    assert (1, 503, "loading") in seen, seen[:5]
    assert all(entry == (1, 503, "loading") for entry in seen[:-1]), seen
    assert seen[-1][1:] == (200, "serving")
    assert int(r.info("persistence")["loading"]) == 0 and r.dbsize() == RECOVERY_KEYS
    r.close()


def test_health_is_503_while_shutting_down(make_node) -> None:
    node = make_node(*DASHBOARD)
    # A client that never reads keeps the graceful shutdown waiting for it to drain.
    stuck = redis.Redis(port=node.port, socket_timeout=5)
    stuck.ping()
    node.loop.call_soon_threadsafe(node.node.request_shutdown)
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = get(node, "/health")
        except OSError:
            break
        if seen[0] == 503:
            break
        time.sleep(0.01)
    assert seen is not None and seen[0] == 503 and json.loads(seen[2])["status"] == "stopping"
    stuck.close()


def test_secrets_are_never_shown(make_node) -> None:
    node = make_node(*DASHBOARD, "node.requirepass=hunter2-pass", "cluster.secret=s3cr3t-ring",
                     "node.slowlog_log_slower_than_us=0")
    r = redis.Redis(port=node.port, password="hunter2-pass", socket_timeout=5)
    r.config_set("requirepass", "hunter2-pass")
    r.set("k", "v")
    texts = [get(node, path)[2] for path in ("/api/stats", "/api/cluster", "/metrics",
                                             "/health", "/", "/static/dashboard.js")]
    for text in texts:
        assert "hunter2" not in text and "s3cr3t" not in text
    config = json.loads(texts[0])["config"]
    assert config["node"]["requirepass"] == "(set)"
    assert config["cluster"]["secret"] == "(set)"
    r.close()


def test_namespace_and_routes_from_other_plugins(make_node) -> None:
    class Hello:
        @hookimpl
        def distcache_http_routes(self, app, node):
            from aiohttp import web

            async def hello(request):
                return web.Response(text=f"hello from {node.node_id}")

            app.router.add_get("/hello", hello)

    node = make_node(*DASHBOARD, "plugins.dashboard.metrics_namespace=distcache",
                     extra_plugins=[("hello-routes", Hello())])
    assert get(node, "/hello")[2] == "hello from node-1"
    metrics = scrape(node)
    assert ("distcache_up", ()) in metrics and ("redis_up", ()) not in metrics
    page = get(node, "/")[2]
    assert '<script src="/static/dashboard.js"' in page and "http" not in page.split(
        "<footer>")[0].replace('http-equiv', '')  # nothing loaded from another host


def test_a_scrape_of_many_keys_is_quick(make_node) -> None:
    node = make_node(*DASHBOARD, "plugins.lru_ttl.capacity=0")
    engine = node.node.engine

    def fill() -> None:
        for i in range(200_000):
            engine.set(b"key:%d" % i, b"v")

    node.call(fill)
    scrape(node)
    started = time.perf_counter()
    metrics = scrape(node)
    took = time.perf_counter() - started
    assert metrics[("redis_db_keys", (("db", "db0"),))] == 200_000
    assert took < 1.0  # about a millisecond here; the bound is for a loaded CI machine


def test_persistence_metrics_and_the_wal_fsync_time(make_node, tmp_path) -> None:
    node = make_node(*DASHBOARD, 'node.persistence=["wal"]', 'plugins.wal.fsync="always"',
                     f'node.data_dir="{tmp_path / "data"}"')
    r = redis.Redis(port=node.port, socket_timeout=5)
    for index in range(20):
        r.set(f"k{index}", "v")
    metrics = scrape(node)
    info = r.info("persistence")
    assert metrics[("redis_aof_enabled", ())] == 1
    assert metrics[("redis_loading_dump_file", ())] == 0
    assert metrics[("redis_wal_fsync_seconds_count", ())] == info["wal_fsyncs"] >= 1
    assert 0 < metrics[("redis_wal_fsync_seconds_sum", ())] <= float(
        info["wal_fsync_seconds_total"]) + 1e-6
    assert metrics[("redis_rdb_changes_since_last_save", ())] >= 20
    r.close()

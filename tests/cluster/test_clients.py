"""Unchanged clients against any node of a cluster: redis-py (plain commands, pipelines,
scan iterators, RESP3) and redis-benchmark."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import TestCluster


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory):
    cluster = TestCluster(tmp_path_factory.mktemp("clients"), 3, replication_factor=2,
                          sets=("plugins.lru_ttl.capacity=0",))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_redis_py_works_unchanged_against_every_node(replicated) -> None:
    for index, node in enumerate(replicated.running):
        client = node.client(decode_responses=True)
        prefix = f"py{index}:"
        assert client.ping() is True
        assert client.set(f"{prefix}a", "1", nx=True) is True
        assert client.set(f"{prefix}a", "2", nx=True) is None
        assert client.incrby(f"{prefix}a", 41) == 42
        assert client.getex(f"{prefix}a", px=50_000) == "42"
        assert 0 < client.pttl(f"{prefix}a") <= 50_000
        assert client.mset({f"{prefix}{c}": c for c in "bcdefgh"}) is True
        assert client.mget([f"{prefix}{c}" for c in "hgfedcb"]) == list("hgfedcb")
        assert client.exists(*(f"{prefix}{c}" for c in "abcz")) == 3
        pipe = client.pipeline(transaction=False)
        for c in "bcd":
            pipe.append(f"{prefix}{c}", "!")
        pipe.strlen(f"{prefix}b").getdel(f"{prefix}c").ttl(f"{prefix}d")
        assert pipe.execute() == [2, 2, 2, 2, "c!", -1]
        assert sorted(client.scan_iter(match=f"{prefix}*")) == sorted(
            f"{prefix}{c}" for c in "abdefgh")
        assert client.delete(*(f"{prefix}{c}" for c in "abcdefgh")) == 7
        assert client.dbsize() == sum(1 for _ in client.scan_iter(count=100))
    info = replicated[0].client().info()
    assert info["cluster_enabled"] == 0  # clients stay in plain (non-cluster) mode
    assert "redis_version" in info


@pytest.mark.skipif(shutil.which("redis-benchmark") is None,
                    reason="redis-benchmark is not installed (tests/ensure_redis.sh)")
def test_redis_benchmark_works_against_any_node(replicated) -> None:
    for node in replicated.running:
        result = subprocess.run(
            ["redis-benchmark", "-p", str(node.port), "-n", "3000", "-c", "8", "-r", "500",
             "-t", "ping,set,get,incr,mset", "-P", "4", "-q"],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        out = result.stdout + result.stderr
        assert "ERR" not in out and "error" not in out.lower(), out
        for test in ("PING_INLINE", "SET", "GET", "INCR", "MSET (10 keys)"):
            assert f"{test}: " in out, out
    client = replicated[1].client()
    # -r 500: at most 500 key:<n> (SET, GET, MSET) and 500 counter:<n> (INCR) over the
    # whole cluster, each counted once, each held twice (replication factor 2).
    size = client.dbsize()
    assert 500 < size <= 1000
    assert sum(n.local_keys() for n in replicated.running) == 2 * size
    keys = list(client.scan_iter(match="key:*", count=200))
    counters = list(client.scan_iter(match="counter:*", count=200))
    assert len(keys) + len(counters) == size
    assert all(value is not None for value in client.mget(keys))
    assert all(int(v) > 0 for v in client.mget(counters))

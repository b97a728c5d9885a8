"""Placement and growth: keys spread evenly, a node that joins (``serve --join``) takes about
its share and nothing else, and the cluster stays correct while keys move under load."""

from __future__ import annotations

import random
import threading
import time

import redis

from .conftest import wait_until

KEYS = 100_000
BATCH = 1000
#: The default CACHE_CAPACITY (10,000 keys a node) would evict most of them.
ROOMY = ("plugins.lru_ttl.capacity=0",)


def _fill(client: redis.Redis, count: int, prefix: str) -> list[str]:
    keys = [f"{prefix}{i}" for i in range(count)]
    for start in range(0, count, BATCH):
        client.mset({k: k for k in keys[start:start + BATCH]})
    return keys


def _all_readable(client: redis.Redis, keys: list[str]) -> bool:
    for start in range(0, len(keys), BATCH):
        chunk = keys[start:start + BATCH]
        if client.mget(chunk) != [k.encode() for k in chunk]:
            return False
    return True


def test_balance_and_a_join_that_moves_about_a_quarter(make_cluster) -> None:
    cluster = make_cluster(3, sets=ROOMY)
    keys = _fill(cluster[0].client(), KEYS, "bal:")
    held = [node.local_keys() for node in cluster.running]
    assert sum(held) == KEYS
    fair = KEYS / 3
    assert max(held) <= 1.15 * fair, held

    fourth = cluster[3].start(join=[cluster[1].address], peers="")
    cluster.wait_converged(cluster.nodes, 60)
    moved = fourth.local_keys()
    after = [node.local_keys() for node in cluster.nodes]
    assert sum(after) == KEYS  # moved, not copied: the old owners dropped what they gave
    ideal = KEYS / 4
    assert moved <= 1.2 * ideal, (moved, after)
    assert moved >= 0.8 * ideal, (moved, after)  # and it did take its share
    for node in cluster.nodes:
        client = node.client()
        assert client.dbsize() == KEYS
        assert _all_readable(client, keys[:20_000])
    assert int(fourth.cluster_info()["cluster_known_nodes"]) == 4
    moved_total = sum(int(n.cluster_info()["cluster_rebalance_keys_moved"])
                      for n in cluster.nodes[:3])
    assert moved_total == moved


class Load:
    """Writers add keys (each written once) and readers check any key already acknowledged,
    through the original nodes, while the test changes the cluster."""

    def __init__(self, ports: list[int], static: list[str]) -> None:
        self.ports = ports
        self.static = static
        self.acked: list[str] = []
        self.problems: list[str] = []
        self.reads = self.writes = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(i,), daemon=True)
                        for i in range(2)]
        self.threads += [threading.Thread(target=self._read, args=(i,), daemon=True)
                         for i in range(2)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _client(self, i: int) -> redis.Redis:
        return redis.Redis(port=self.ports[i % len(self.ports)], socket_timeout=10)

    def _write(self, worker: int) -> None:
        client = self._client(worker)
        n = 0
        while not self.stop.is_set():
            key = f"load:{worker}:{n}"
            try:
                if client.set(key, key) is not True:
                    self.problems.append(f"SET {key} not acknowledged")
            except redis.RedisError as exc:
                self.problems.append(f"SET {key}: {exc}")
            else:
                self.acked.append(key)
                self.writes += 1
            n += 1
        client.close()

    def _read(self, worker: int) -> None:
        client = self._client(worker + 1)
        rng = random.Random(worker)
        while not self.stop.is_set():
            pool = self.acked if self.acked and rng.random() < 0.5 else self.static
            key = pool[rng.randrange(len(pool))]
            try:
                value = client.get(key)
            except redis.RedisError as exc:
                self.problems.append(f"GET {key}: {exc}")
                continue
            self.reads += 1
            if value != key.encode():
                self.problems.append(f"GET {key} returned {value!r}")
        client.close()


#: Under load on a shared two-core machine a node can be starved for a second: timeouts that
#: would call it dead then are not what this test is about.
PATIENT = ("cluster.request_timeout_ms=5000", "cluster.failure_timeout_ms=8000",
           "cluster.heartbeat_interval_ms=200")


def test_join_under_load_loses_nothing_and_never_misses(make_cluster) -> None:
    cluster = make_cluster(3, sets=ROOMY + PATIENT)
    static = _fill(cluster[0].client(), 20_000, "static:")
    with Load([n.port for n in cluster.nodes[:3]], static) as load:
        wait_until(lambda: load.reads > 200 and load.writes > 200, 30, "load running")
        fourth = cluster[3].start(join=[cluster[2].address], peers="")
        cluster.wait_converged(cluster.nodes, 60)
        before = load.reads
        wait_until(lambda: load.reads > before + 200, 30, "load after the move")
    assert not load.problems, load.problems[:10]
    assert fourth.local_keys() > 0
    for node in cluster.nodes:
        assert _all_readable(node.client(), load.acked)
    assert _all_readable(fourth.client(), static)
    assert cluster[0].client().dbsize() == len(static) + len(load.acked)
    time.sleep(0)

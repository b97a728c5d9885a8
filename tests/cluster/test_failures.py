"""A node dies (kill -9) or hangs (SIGSTOP): the others keep answering, the breaker keeps
clients from waiting on it, and when it comes back it gets what it missed."""

from __future__ import annotations

import signal
import time

import redis

from .conftest import keys_owned_by, wait_until

FAILURE_TIMEOUT_S = 1.0  # cluster.failure_timeout_ms in conftest.FAST
REQUEST_TIMEOUT_S = 0.5  # cluster.request_timeout_ms


def test_kill_9_with_replication_factor_2(make_cluster) -> None:
    cluster = make_cluster(3, replication_factor=2)
    one, two, three = cluster[0], cluster[1], cluster[2]
    writer = one.client()
    keys = [f"k9:{i}" for i in range(600)]
    for start in range(0, len(keys), 100):
        writer.mset({k: f"v-{k}" for k in keys[start:start + 100]})
    assert sum(n.local_keys() for n in cluster.running) == 2 * len(keys)
    owned_by_three = [k for k in keys
                      if writer.execute_command("CLUSTER", "KEYOWNER", k)[0] == b"node-3"]
    assert len(owned_by_three) > 100

    three.kill()
    killed_at = time.monotonic()
    # Every key written before the kill is readable through the two others within the
    # failure timeout (reads fall back to the replica at once: the owner refuses connections).
    readers = [one.client(), two.client()]

    def all_readable() -> bool:
        return all(r.mget(keys[i:i + 100]) == [f"v-{k}".encode() for k in keys[i:i + 100]]
                   for r in readers for i in range(0, len(keys), 100))

    wait_until(all_readable, FAILURE_TIMEOUT_S + 5, "every key readable after the kill")
    assert time.monotonic() - killed_at < FAILURE_TIMEOUT_S + 5
    wait_until(lambda: all(n.nodes()["node-3"]["flags"] == "down" for n in (one, two)), 10,
               "node-3 down")
    assert one.cluster_info()["cluster_state"] == "ok"  # every key still has a copy up

    # Writes keep succeeding, including to keys node-3 owns (a replica takes them and keeps
    # a hint for node-3), and deletes of keys node-3 holds.
    for i, key in enumerate(owned_by_three[:50]):
        assert readers[i % 2].set(key, f"new-{key}") is True
    deleted = owned_by_three[50:80]
    assert writer.delete(*deleted) == len(deleted)
    fresh = {f"k9:new:{i}": "fresh" for i in range(50)}
    assert two.client().mset(fresh) is True
    hints = sum(int(n.cluster_info()["cluster_hints_pending"]) for n in (one, two))
    assert hints > 0

    # Restart it: hints are handed over, deleted keys stay deleted, it serves its keys again.
    three.start()
    wait_until(lambda: all("alive" in n.nodes()["node-3"]["flags"] for n in (one, two)), 15,
               "node-3 alive again")
    wait_until(lambda: all(n.cluster_info()["cluster_hints_pending"] == "0" for n in (one, two)),
               15, "hints handed over")
    cluster.wait_converged(cluster.running)
    restarted = three.client()
    for key in owned_by_three[:50]:
        assert restarted.get(key) == f"new-{key}".encode()
    assert restarted.exists(*deleted) == 0
    assert restarted.mget(list(fresh)) == [b"fresh"] * len(fresh)
    survivors = [k for k in keys if k not in deleted and k not in owned_by_three[:50]]
    assert restarted.mget(survivors) == [f"v-{k}".encode() for k in survivors]
    # It holds its own keys again (repaired from the replicas), not just forwards for them.
    held = [k for k in owned_by_three if k not in deleted]
    direct = redis.Redis(port=three.port)
    try:
        assert direct.execute_command("DC.COUNT", 0) >= len(held)
    finally:
        direct.close()
    assert int(three.cluster_info()["cluster_applied_from_peers"]) > 0
    assert restarted.dbsize() == len(keys) - len(deleted) + len(fresh)


def test_a_hung_peer_opens_its_breaker_and_calls_fail_fast(make_cluster) -> None:
    cluster = make_cluster(3)
    one, three = cluster[0], cluster[2]
    keys = keys_owned_by(one, "node-3", 20, "hang:")
    client = one.client()
    for key in keys:
        client.set(key, "x")
    seen: list[str] = []

    def breaker() -> str:
        state = one.nodes()["node-3"]["breaker"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state

    three.signal(signal.SIGSTOP)
    try:
        slowest = 0.0
        errors = 0
        deadline = time.monotonic() + 10
        while breaker() != "open":
            assert time.monotonic() < deadline, "the breaker never opened"
            started = time.monotonic()
            try:
                client.get(keys[0])
            except redis.ResponseError as exc:
                assert str(exc).startswith("The cluster is down: node-3"), exc
                errors += 1
            slowest = max(slowest, time.monotonic() - started)
        # No client call waited much more than request_timeout_ms (generous bound: the
        # machine is shared), and once open, calls fail at once.
        assert slowest < REQUEST_TIMEOUT_S + 1.0
        for key in keys:
            started = time.monotonic()
            try:
                client.get(key)
            except redis.exceptions.ClusterDownError as exc:
                assert "node-3" in str(exc)
            else:
                raise AssertionError("a read of a hung owner's key cannot succeed with RF 1")
            assert time.monotonic() - started < 1.0
        assert "node-3" in one.nodes() and one.nodes()["node-3"]["breaker"] in ("open",
                                                                                 "half_open")
        # Keys of the other nodes are unaffected.
        other = keys_owned_by(one, "node-2", 1, "ok:")[0]
        assert client.set(other, "fine") is True and client.get(other) == b"fine"
    finally:
        three.signal(signal.SIGCONT)
    wait_until(lambda: breaker() == "closed", 15, "breaker closed again")
    assert client.get(keys[0]) == b"x"
    # Each state change showed in CLUSTER NODES; the close came from a successful probe.
    changes = one.nodes()["node-3"]["breaker-changes"]
    assert "closed>open@" in changes and "open>half_open@" in changes
    assert "half_open>closed@" in changes
    assert seen[0] == "closed" and "open" in seen and seen[-1] == "closed"


def test_write_ack_all_refuses_writes_a_down_replica_cannot_take(make_cluster) -> None:
    cluster = make_cluster(3, replication_factor=2, sets=("cluster.write_ack=all",))
    one = cluster[0]
    client = one.client()
    owners = {}
    for i in range(60):
        owners[f"ack:{i}"] = [n.decode() for n in
                              client.execute_command("CLUSTER", "KEYOWNER", f"ack:{i}")]
    assert all(client.set(key, "v") is True for key in owners)
    # Every copy acknowledged before the reply: both holders have it.
    assert sum(n.local_keys() for n in cluster.running) == 2 * len(owners)
    cluster[2].kill()
    wait_until(lambda: "down" in one.nodes()["node-3"]["flags"], 10, "node-3 down")
    refused = accepted = 0
    for key, holders in owners.items():
        try:
            client.set(key, "w")
        except redis.ResponseError as exc:
            assert "Not enough good replicas to write" in str(exc), exc
            assert "node-3" in holders
            refused += 1
        else:
            assert "node-3" not in holders
            accepted += 1
    assert refused and accepted
    info = one.client().info("cluster")
    assert info["cluster_write_ack"] == "all" and info["cluster_nodes_down"] == 1

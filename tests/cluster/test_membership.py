"""Membership through the front door: CLUSTER MEET brings a lone node in, CLUSTER FORGET and
remove_after_ms take a node off the ring, and peer traffic needs the cluster secret."""

from __future__ import annotations

import redis

from .conftest import ClusterNode, wait_until

SECRET = "s3cret-for-tests"


def test_cluster_meet_joins_a_lone_node_and_forget_removes_one(make_cluster) -> None:
    cluster = make_cluster(2)
    lone: ClusterNode = cluster[2]
    lone.start(peers="")
    client = lone.client()
    for i in range(200):
        client.set(f"meet:{i}", i)
    assert lone.cluster_info()["cluster_size"] == "1"
    assert lone.cluster_info()["cluster_routing"] == "off"
    assert client.execute_command("CLUSTER", "MEET", "127.0.0.1", cluster[0].port) == b"OK"
    nodes = cluster.nodes[:3]
    cluster.wait_converged(nodes, 30)
    for node in nodes:
        assert sorted(node.nodes()) == ["node-1", "node-2", "node-3"]
        assert node.client().dbsize() == 200
        assert node.client().get("meet:7") == b"7"
    # Its keys moved to their owners on the grown ring (replication factor 1).
    assert lone.local_keys() < 200
    try:
        client.execute_command("CLUSTER", "MEET", "127.0.0.1", "1")
    except redis.ResponseError as exc:
        assert str(exc).startswith("cannot meet 127.0.0.1:1")
    else:
        raise AssertionError("MEET of a closed port must fail")

    # FORGET node-3 on one member: every member drops it (gossip), keys move off it.
    lone.stop()
    wait_until(lambda: "down" in cluster[0].nodes()["node-3"]["flags"], 10, "node-3 down")
    assert cluster[0].client().execute_command("CLUSTER", "FORGET", "node-3") == b"OK"
    wait_until(lambda: all("node-3" not in n.nodes() for n in cluster.nodes[:2]), 10,
               "node-3 forgotten everywhere")
    assert cluster[1].cluster_info()["cluster_size"] == "2"


def test_remove_after_ms_forgets_a_node_down_too_long(make_cluster) -> None:
    cluster = make_cluster(3, sets=("cluster.remove_after_ms=1500",))
    cluster[2].kill()
    wait_until(lambda: all("node-3" not in n.nodes() for n in cluster.nodes[:2]), 20,
               "node-3 removed after remove_after_ms")
    client = cluster[0].client()
    for i in range(50):  # every key has an owner up again
        assert client.set(f"after:{i}", i) is True
    assert client.dbsize() == 50


def test_internal_commands_need_the_cluster_secret(make_cluster) -> None:
    cluster = make_cluster(3, env={"DISTCACHE_CLUSTER_SECRET": SECRET})
    client = cluster[0].client()
    client.set("secret:key", "v")
    assert cluster[1].client().get("secret:key") == b"v"  # peers authenticated fine
    for command in (("DC.APPLY", "0", "99999999999999999999", "SET", "secret:key", "evil", ""),
                    ("DC.HEARTBEAT", "intruder", "127.0.0.1", "1", "1", ""),
                    ("DC.KEYS", "0", "*"), ("DC.COUNT", "0"), ("DC.SCAN", "0", "0"), ("DC.VIEW",),
                    ("DC.REBALANCED", "x", "intruder")):
        try:
            client.execute_command(*command)
        except redis.ResponseError as exc:
            assert str(exc).startswith("this is an internal cluster command"), exc
        else:
            raise AssertionError(f"{command[0]} must be refused without the secret")
    try:
        client.execute_command("DC.AUTH", "wrong", "intruder", "final")
    except redis.ResponseError as exc:
        assert "cluster secret does not match" in str(exc)
    else:
        raise AssertionError("a wrong secret must be refused")
    assert "intruder" not in cluster[0].nodes()
    assert client.get("secret:key") == b"v"
    # With the secret, a connection may act as a peer.
    peer = redis.Redis(port=cluster[0].port)
    try:
        assert peer.execute_command("DC.AUTH", SECRET, "tool", "final") == b"OK"
        assert peer.execute_command("DC.COUNT", "0") >= 0
    finally:
        peer.close()


def test_a_node_with_another_secret_cannot_join(make_cluster) -> None:
    cluster = make_cluster(2, env={"DISTCACHE_CLUSTER_SECRET": SECRET})
    stranger = cluster[2]
    cluster.env = {"DISTCACHE_CLUSTER_SECRET": "not-the-secret"}
    stranger.start(peers="", join=[cluster[0].address])
    client = stranger.client()
    try:
        client.execute_command("CLUSTER", "MEET", "127.0.0.1", cluster[0].port)
    except redis.ResponseError as exc:
        assert "secret" in str(exc)
    else:
        raise AssertionError("MEET with the wrong secret must fail")
    assert sorted(cluster[0].nodes()) == ["node-1", "node-2"]
    assert stranger.cluster_info()["cluster_size"] == "1"

"""Any node answers any command: single keys forwarded to their owner, multi-key commands
split and merged, whole-keyspace commands counting each key once (three real nodes,
replication factor 1, so every key lives on exactly one node)."""

from __future__ import annotations

from pathlib import Path

import redis

from .conftest import keys_owned_by, wait_until


def test_any_node_answers_a_get_for_a_key_set_through_another(shared_cluster) -> None:
    writers = [node.client() for node in shared_cluster.running]
    for i in range(60):
        writers[i % 3].set(f"any:{i}", f"value-{i}", ex=1000)
    for reader in writers:
        for i in range(60):
            assert reader.get(f"any:{i}") == f"value-{i}".encode()
            assert 0 < reader.ttl(f"any:{i}") <= 1000
    # Each key is on exactly one node (replication factor 1): forwarded, not copied.
    owners = [shared_cluster[0].client().execute_command("CLUSTER", "KEYOWNER", f"any:{i}")
              for i in range(60)]
    assert all(len(o) == 1 for o in owners)
    assert len({o[0] for o in owners}) == 3


def test_replies_and_errors_of_the_owner_reach_the_client_unchanged(shared_cluster) -> None:
    node = shared_cluster[0]
    key = keys_owned_by(node, "node-2", 1, "err:")[0]
    client = node.client()
    client.set(key, "not a number")
    try:
        client.incr(key)
    except redis.ResponseError as exc:
        assert str(exc) == "value is not an integer or out of range"
    else:
        raise AssertionError("INCR of a string must fail")
    assert client.append(key, "!") == len("not a number!")
    assert client.getrange(key, 0, 2) == b"not"
    assert client.get(f"{key}-missing") is None
    assert client.delete(key) == 1


def test_mget_across_owners_returns_values_in_order(shared_cluster) -> None:
    client = shared_cluster[1].client()
    keys = [f"mget:{i}" for i in range(40)]
    for i, key in enumerate(keys):
        if i % 4:
            client.set(key, f"v{i}")
    owners = {client.execute_command("CLUSTER", "KEYOWNER", k)[0] for k in keys}
    assert len(owners) == 3
    expected = [None if i % 4 == 0 else f"v{i}".encode() for i in range(40)]
    for node in shared_cluster.running:
        assert node.client().mget(keys) == expected
    assert client.mget(list(reversed(keys))) == list(reversed(expected))
    assert client.mget([keys[1], keys[1], keys[2]]) == [b"v1", b"v1", b"v2"]


def test_mset_del_exists_touch_unlink_split_and_merge(shared_cluster) -> None:
    client = shared_cluster[2].client()
    mapping = {f"multi:{i}": f"m{i}" for i in range(30)}
    assert client.mset(mapping) is True
    assert shared_cluster[0].client().mget(list(mapping)) == [v.encode() for v in
                                                              mapping.values()]
    names = list(mapping)
    assert client.exists(*names, "multi:none", names[0]) == 31
    assert client.touch(*names) == 30
    assert client.delete(*names[:10], "multi:none") == 10
    assert client.unlink(*names[10:20]) == 10
    assert shared_cluster[1].client().exists(*names) == 10


def test_keys_that_must_share_an_owner_get_crossslot(shared_cluster) -> None:
    node = shared_cluster[0]
    a = keys_owned_by(node, "node-1", 2, "cs:a")
    b = keys_owned_by(node, "node-2", 1, "cs:b")
    client = node.client()
    client.set(a[0], "x")
    client.set(b[0], "y")
    crossslot = "Keys in request don't hash to the same slot"
    for command in (("RENAME", a[0], b[0]), ("MSETNX", a[0], "1", b[0], "2"),
                    ("COPY", a[0], b[0]), ("LCS", a[0], b[0]), ("BITOP", "AND", a[0], b[0])):
        try:
            client.execute_command(*command)
        except redis.ResponseError as exc:
            assert str(exc) == crossslot, command
        else:
            raise AssertionError(f"{command} must fail with CROSSSLOT")
    # Keys with one owner work, through any node.
    other = shared_cluster[2].client()
    assert other.rename(a[0], a[1]) is True
    assert other.get(a[1]) == b"x"
    assert other.msetnx({a[0]: "1", a[1]: "2"}) is False


def test_dbsize_counts_each_key_once_and_scan_returns_every_key(shared_cluster) -> None:
    client = shared_cluster[0].client()
    client.flushall()
    keys = {f"scan:{i}" for i in range(500)}
    client.mset({k: "x" for k in keys})
    local = [node.local_keys() for node in shared_cluster.running]
    assert sum(local) == 500 and all(n > 0 for n in local)
    for node in shared_cluster.running:
        c = node.client()
        assert c.dbsize() == 500
        assert set(c.scan_iter(count=50)) == {k.encode() for k in keys}
        assert set(c.scan_iter(match="scan:1*", count=1000)) == {
            k.encode() for k in keys if k.startswith("scan:1")}
        assert sorted(c.keys("scan:4?")) == sorted(k.encode() for k in keys
                                                   if k.startswith("scan:4") and len(k) == 7)
        assert c.randomkey() in {k.encode() for k in keys}
    cursor, page = client.scan(0, count=10)
    assert int(cursor) != 0
    try:
        client.execute_command("SCAN", "0", "COUNT", "0")
    except redis.ResponseError as exc:
        assert str(exc) == "syntax error"
    else:
        raise AssertionError("SCAN COUNT 0 is a syntax error")
    assert shared_cluster[1].client().flushall() is True
    assert all(node.client().dbsize() == 0 for node in shared_cluster.running)
    assert shared_cluster[2].client().randomkey() is None


def test_pipelined_forwarding_keeps_order(shared_cluster) -> None:
    client = shared_cluster[0].client()
    pipe = client.pipeline(transaction=False)
    for i in range(300):
        pipe.set(f"pipe:{i}", i)
        pipe.get(f"pipe:{i}")
        pipe.incr(f"pipe:{i}")
    replies = pipe.execute()
    for i in range(300):
        assert replies[3 * i:3 * i + 3] == [True, str(i).encode(), i + 1]
    assert int(shared_cluster[0].cluster_info()["cluster_forwarded_commands"]) > 0


def test_resp3_clients_get_resp3_replies_from_other_owners(shared_cluster) -> None:
    node = shared_cluster[0]
    key = keys_owned_by(node, "node-3", 1, "r3:")[0]
    client = node.client(protocol=3)
    client.set(key, "v")
    client.expire(key, 100)
    assert client.get(key) == b"v"
    assert client.ttl(key) == 100
    assert client.get(f"{key}:missing") is None
    raw = redis.Redis(port=node.port, protocol=3)
    try:
        assert raw.execute_command("GET", f"{key}:missing") is None
    finally:
        raw.close()


def test_cluster_commands(shared_cluster) -> None:
    client = shared_cluster[0].client()
    info = shared_cluster[0].cluster_info()
    assert info["cluster_state"] == "ok"
    assert info["cluster_known_nodes"] == "3"
    assert info["cluster_replication_factor"] == "1"
    rows = shared_cluster[0].nodes()
    assert sorted(rows) == ["node-1", "node-2", "node-3"]
    assert "myself" in rows["node-1"]["flags"]
    assert abs(sum(float(r["share"]) for r in rows.values()) - 1.0) < 1e-3
    assert rows["node-2"]["breaker"] == "closed"
    owner = client.execute_command("CLUSTER", "KEYOWNER", "some-key")
    assert len(owner) == 1 and owner[0].decode() in rows
    try:
        client.execute_command("CLUSTER", "FORGET", "node-1")
    except redis.ResponseError as exc:
        assert "can't forget myself" in str(exc)
    try:
        client.execute_command("CLUSTER", "FORGET", "nobody")
    except redis.ResponseError as exc:
        assert str(exc) == "Unknown node nobody"
    assert client.info("cluster")["cluster_enabled"] == 0
    assert client.execute_command("CLUSTER", "HELP")[0].startswith(b"CLUSTER <subcommand>")
    wait_until(lambda: int(shared_cluster[1].nodes()["node-1"]["keys"]) >= 0)


def test_scripts_run_on_the_owner_their_keys_share(shared_cluster) -> None:
    node = shared_cluster[0]
    here = keys_owned_by(node, "node-1", 1, "lua:a")[0]
    there = keys_owned_by(node, "node-2", 2, "lua:b")
    client = node.client()
    script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])"
    # Both keys on node-2: the script runs there, atomically, through node-1.
    assert client.eval(script, 2, there[0], there[1], "v") == 1
    assert shared_cluster[1].client().get(there[0]) == b"v"
    assert shared_cluster[2].client().get(there[1]) == b"1"
    try:
        client.eval(script, 2, here, there[0], "v")
    except redis.ResponseError as exc:
        assert str(exc) == "Keys in request don't hash to the same slot"
    else:
        raise AssertionError("a script whose keys span owners must get CROSSSLOT")
    assert client.eval("return 7", 0) == 7  # no keys: runs where it arrives
    # A script loaded through one node runs by its sha on any owner (SCRIPT LOAD everywhere).
    sha = shared_cluster[2].client().script_load("return redis.call('GET', KEYS[1])")
    for key in (here, there[0]):
        assert client.evalsha(sha, 1, key) == client.get(key)
    counter = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert counter(keys=[there[1]], args=[5]) == 6
    assert shared_cluster[2].client().execute_command("EVAL_RO", "return redis.call("
                                                      "'GET', KEYS[1])", 1, there[1]) == b"6"


def test_transactions_run_on_their_owners(shared_cluster) -> None:
    node = shared_cluster[0]
    mine = keys_owned_by(node, "node-1", 2, "tx:a")
    theirs = keys_owned_by(node, "node-2", 2, "tx:b")
    third = keys_owned_by(node, "node-3", 1, "tx:c")
    client = node.client()
    # All keys on one other node: the block runs there, atomically.
    pipe = client.pipeline(transaction=True)
    pipe.set(theirs[0], "1").incr(theirs[0]).get(theirs[0]).ping().mget(theirs)
    assert pipe.execute() == [True, 2, b"2", True, [b"2", None]]
    # Keys on several nodes (a framework's set_many): each owner runs its part, the replies
    # come back in the order queued.
    pipe = client.pipeline(transaction=True)
    for i, key in enumerate([mine[0], theirs[1], third[0], mine[1]]):
        pipe.set(key, f"v{i}")
        pipe.get(key)
    pipe.incr(theirs[1])
    replies = pipe.execute(raise_on_error=False)
    assert replies[:8] == [True, b"v0", True, b"v1", True, b"v2", True, b"v3"]
    assert isinstance(replies[8], redis.ResponseError)  # INCR of "v1": that command's error
    assert shared_cluster[2].client().mget([mine[0], theirs[1], third[0], mine[1]]) == [
        b"v0", b"v1", b"v2", b"v3"]
    # WATCH: keys on one node only; a watched transaction of another node's keys is refused.
    try:
        client.execute_command("WATCH", mine[0], theirs[0])
    except redis.ResponseError as exc:
        assert "same slot" in str(exc)
    else:
        raise AssertionError("WATCH of keys on two owners must get CROSSSLOT")
    with client.pipeline() as pipe:
        pipe.watch(mine[0])
        pipe.multi()
        pipe.set(mine[0], "watched")
        assert pipe.execute() == [True]
    with client.pipeline() as pipe:
        pipe.watch(mine[0])
        shared_cluster[1].client().set(mine[0], "changed elsewhere")
        pipe.multi()
        pipe.set(mine[0], "lost")
        try:
            pipe.execute()
        except redis.WatchError:
            pass
        else:
            raise AssertionError("a watched key changed through another node: EXEC aborts")
    assert client.get(mine[0]) == b"changed elsewhere"


def test_a_plugin_command_with_movable_keys_runs_on_their_owner(make_cluster) -> None:
    """A third-party command that finds its keys in its arguments (``find_keys``, as EVAL's
    numkeys) routes as the built-in ones: on the owner its keys share, -CROSSSLOT when they
    do not, where it arrives when it names no key; inside MULTI/EXEC too."""
    fixtures = str(Path(__file__).resolve().parent.parent / "fixtures")
    cluster = make_cluster(3, sets=['node.plugins=["movable_commands"]'],
                           env={"PYTHONPATH": fixtures})
    node = cluster[0]
    client = node.client()
    here = keys_owned_by(node, "node-1", 1, "mv:a")[0]
    there = keys_owned_by(node, "node-2", 3, "mv:b")
    assert client.execute_command("SETALL", 2, there[0], there[1], "v") == 2
    for key in there[:2]:
        # node-2 answers for its own keys without asking anyone: the write landed there.
        assert cluster[1].client().get(key) == b"v"
    assert cluster[0].local_keys() == 0
    try:
        client.execute_command("SETALL", 2, here, there[0], "w")
    except redis.ResponseError as exc:
        assert str(exc) == "Keys in request don't hash to the same slot"
    else:
        raise AssertionError("a command whose keys span owners must get CROSSSLOT")
    assert client.execute_command("SETALL", 0, "w") == 0  # no keys: runs where it arrives
    try:
        client.execute_command("SETALL", "x", there[0], "w")
    except redis.ResponseError as exc:
        assert str(exc) == "value is not an integer or out of range"
    else:
        raise AssertionError("SETALL must report a numkeys that is not a number")
    assert client.command_getkeys("SETALL", 2, here, there[0], "w") == [here, there[0]]
    pipe = client.pipeline(transaction=True)
    pipe.execute_command("SETALL", 1, there[2], "t")
    pipe.get(there[2])
    assert pipe.execute() == [1, b"t"]
    assert cluster[1].client().get(there[2]) == b"t"
    assert cluster[0].local_keys() == 0

"""The router finds keys where COMMAND INFO says they are, so those positions must be Redis's:
every command the node serves that Redis 7.0 also has reports the same first key, last key
and step (and arity), side by side with a real redis-server."""

from __future__ import annotations

import redis


def _raw(client: redis.Redis, *args: str) -> list:
    # Straight from the connection: redis-py's COMMAND reply parser expects other shapes.
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()  # type: ignore[no-any-return]
    finally:
        client.connection_pool.release(conn)


def _positions(client: redis.Redis, names: list[str]) -> dict[str, tuple[int, int, int, int]]:
    replies = _raw(client, "COMMAND", "INFO", *names)
    out = {}
    for entry in replies:
        if entry:
            name = entry[0].decode() if isinstance(entry[0], bytes) else entry[0]
            out[name] = (int(entry[1]), int(entry[3]), int(entry[4]), int(entry[5]))
    return out


def test_key_positions_and_arity_match_redis(redis_server, builtin_node) -> None:
    node = redis.Redis(port=builtin_node.port)
    reference = redis.Redis(port=redis_server.port)
    try:
        served = sorted(name.decode() for name in _raw(node, "COMMAND", "LIST"))
        redis_names = {name.decode() for name in _raw(reference, "COMMAND", "LIST")}
        # Top-level commands (a container's subcommands have no keys of their own here).
        common = [name for name in served if name in redis_names and "|" not in name]
        assert len(common) > 60
        ours = _positions(node, common)
        theirs = _positions(reference, common)
        different = {name: (ours[name], theirs[name]) for name in common
                     if ours[name] != theirs[name]}
        assert not different, f"(arity, first, last, step) node vs redis: {different}"
        # DistCache's own commands: CLUSTER has no keys, the internal ones neither.
        extra = [name for name in served if name not in redis_names and "|" not in name]
        assert all(name.startswith("dc.") for name in extra), extra
        assert all(pos[1:] == (0, 0, 0) for pos in _positions(node, extra).values())
    finally:
        node.close()
        reference.close()

"""A script past its time limit, on a real redis-server 7.0 and on a node side by side: what
other clients get, inside MULTI and out (``processCommand`` in Redis's server.c refuses every
command not flagged allow-busy with -BUSY, before queueing it, and flags the client's
transaction so that its EXEC aborts; MULTI, DISCARD, WATCH and UNWATCH go through).

The busy script here is a read-only loop, stopped with SCRIPT KILL; the same requests go to
both servers and their raw replies must be the same, and so must the error and command
counters that INFO reports for them.
"""

from __future__ import annotations

import time

import pytest

from distcache_core.protocol import encode_request
from distcache_core.testing.differential import RawSession, Reply

LIMIT_MS = 300
BUSY = (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
        b"SHUTDOWN NOSAVE.\r\n")


def _request(session: RawSession, *args: str) -> bytes:
    return session.request(encode_request(*args)).raw


def _info(session: RawSession, section: str) -> dict[str, str]:
    reply: Reply = session.request(encode_request("INFO", section))
    fields = {}
    for line in (reply.value or b"").decode().split("\r\n"):
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value
    return fields


def busy_transcript(port: int) -> tuple[list[tuple[str, bytes]], dict[str, str], int]:
    """Run the scenario on ``port``: (label, raw reply) of every request whose reply both
    servers must agree on, the INFO fields to compare, and how many probes got -BUSY."""
    sessions = {name: RawSession(port) for name in ("control", "queued", "late", "other",
                                                    "runner", "probe")}
    transcript: list[tuple[str, bytes]] = []
    try:
        control, queued, late, other, runner, probe = sessions.values()

        def step(client: str, *args: str) -> None:
            transcript.append((f"{client}: {' '.join(args)}", _request(sessions[client], *args)))

        for args in (("FLUSHALL",), ("CONFIG", "RESETSTAT"), ("SET", "k", "before")):
            _request(control, *args)
        # A transaction opened before the script: one command queued, the rest come during.
        step("queued", "MULTI")
        step("queued", "SET", "k", "queued")
        runner.sock.sendall(encode_request("EVAL", "while true do end", "0"))
        busy_probes = 0
        deadline = time.monotonic() + 10
        while _request(probe, "PING") != BUSY:
            assert time.monotonic() < deadline, "the script never made the server busy"
            time.sleep(0.05)
        busy_probes += 1
        step("queued", "SET", "k", "during")
        step("queued", "EXEC")
        step("late", "MULTI")
        step("late", "GET", "k")
        step("late", "MULTI")
        step("late", "WATCH", "k")
        step("late", "EXEC")
        step("late", "DISCARD")
        step("late", "MULTI")
        step("late", "INCR", "n")
        step("other", "WATCH", "k")
        step("other", "UNWATCH")
        step("other", "MULTI")
        step("other", "DISCARD")
        step("other", "GET", "k")
        step("other", "EVAL", "return 1", "0")
        step("other", "SCRIPT", "KILL")
        transcript.append(("runner: EVAL", runner.read().raw))
        step("queued", "EXEC")
        step("late", "EXEC")
        step("other", "GET", "k")
        step("other", "GET", "n")
        info = {**_info(control, "errorstats"), **_info(control, "commandstats")}
        return transcript, info, busy_probes
    finally:
        for session in sessions.values():
            session.close()


@pytest.fixture
def busy_redis(redis_server):
    with RawSession(redis_server.port) as session:
        assert _request(session, "CONFIG", "SET", "busy-reply-threshold", str(LIMIT_MS)) == (
            b"+OK\r\n")
    try:
        yield redis_server
    finally:
        with RawSession(redis_server.port) as session:
            _request(session, "CONFIG", "SET", "busy-reply-threshold", "5000")


def _counts(info: dict[str, str]) -> dict[str, str]:
    """The counters the scenario makes the same on both: errors by code (BUSY less the
    probes, counted apart) and calls, rejected and failed calls of the commands it sends."""
    wanted = {}
    for key, value in info.items():
        if key.startswith("errorstat_") or key in ("cmdstat_set", "cmdstat_get", "cmdstat_exec",
                                                   "cmdstat_incr", "cmdstat_multi"):
            wanted[key] = value if key.startswith("errorstat") else ",".join(
                part for part in value.split(",") if not part.startswith("usec"))
    return wanted


def test_busy_script_refuses_as_redis_does(busy_redis, make_node):
    node = make_node(f"node.lua_time_limit_ms={LIMIT_MS}")
    redis_transcript, redis_info, redis_probes = busy_transcript(busy_redis.port)
    node_transcript, node_info, node_probes = busy_transcript(node.port)
    for (label, expected), (_, actual) in zip(redis_transcript, node_transcript, strict=True):
        assert actual == expected, f"{label}: redis {expected!r} != node {actual!r}"
    # What Redis answers, spelt out: commands refused during the script, EXEC included, and
    # the transactions that saw a refusal abort once it is over.
    replies = [reply for _, reply in redis_transcript]
    # The open transaction: its SET refused, its EXEC discards it.
    assert replies[2] == BUSY
    assert replies[3] == b"-EXECABORT Transaction discarded because of: " + BUSY[1:]
    assert replies[4:6] == [b"+OK\r\n", BUSY]  # MULTI goes through, the GET after it not
    assert replies[-5].startswith(b"-ERR Script killed by user with SCRIPT KILL...")
    assert replies[-4:] == [b"-ERR EXEC without MULTI\r\n",
                            b"-EXECABORT Transaction discarded because of previous errors.\r\n",
                            b"$6\r\nbefore\r\n", b"$-1\r\n"]
    busy = "errorstat_BUSY"
    redis_counts, node_counts = _counts(redis_info), _counts(node_info)
    redis_busy = int(redis_counts.pop(busy).removeprefix("count=")) - redis_probes
    node_busy = int(node_counts.pop(busy, "count=0").removeprefix("count=")) - node_probes
    assert node_busy == redis_busy
    assert node_counts == redis_counts

"""Per-command metrics on a real node: INFO commandstats/latencystats/errorstats read with
redis-py, SLOWLOG catching a slow command, CONFIG RESETSTAT."""

from __future__ import annotations

import time

import redis


def workload(r: redis.Redis) -> None:
    """A known mix; each request more than a sample interval after the last, so every
    read is timed."""
    def call(*args):
        try:
            return r.execute_command(*args)
        except redis.ResponseError:
            return None
        finally:
            time.sleep(0.003)

    for i in range(5):
        call("SET", f"k{i}", i)
    for i in range(7):
        call("GET", f"k{i}")
    call("INCR", "k1")
    call("GET")                      # rejected: arity
    call("INCR", "counter")
    call("LPUSH", "k1", "x")         # unknown here: errorstats only
    call("SET", "text", "abc")
    call("INCR", "text")             # failed: not an integer


def test_commandstats_and_latencystats_parse_as_redis_does(r: redis.Redis) -> None:
    r.config_resetstat()  # redis-py's CLIENT SETINFO on connect is an error on Redis 7.0 too
    workload(r)
    stats = r.info("commandstats")
    assert stats["cmdstat_set"]["calls"] == 6
    assert stats["cmdstat_get"] == {**stats["cmdstat_get"], "calls": 7, "rejected_calls": 1,
                                    "failed_calls": 0}
    assert stats["cmdstat_incr"]["calls"] == 3 and stats["cmdstat_incr"]["failed_calls"] == 1
    assert stats["cmdstat_get"]["usec"] > 0
    assert stats["cmdstat_get"]["usec_per_call"] > 0
    assert "cmdstat_lpush" not in stats  # unknown here: counted in errorstats only
    latency = r.info("latencystats")
    for name in ("set", "get", "incr"):
        p = latency[f"latency_percentiles_usec_{name}"]
        assert set(p) == {"p50", "p99", "p99.9"}
        assert 0 < p["p50"] <= p["p99"] <= p["p99.9"] < 1_000_000
    errors = r.info("errorstats")
    assert errors["errorstat_ERR"]["count"] == 3  # arity, unknown command, not an integer
    everything = r.info("everything")
    assert "cmdstat_get" in everything and "latency_percentiles_usec_get" in everything
    assert "cmdstat_get" not in r.info()  # not in the default sections
    both = r.execute_command("INFO", "server", "CLIENTS")  # redis-py parses it
    assert "redis_version" in both and "connected_clients" in both
    assert "used_memory" not in both
    everything = r.info("everything")  # one snapshot: the sum and the total agree
    assert everything["total_commands_processed"] == sum(
        v["calls"] for k, v in everything.items() if k.startswith("cmdstat_"))


def test_resetstat_clears_the_counters_but_not_the_slowlog(r: redis.Redis) -> None:
    r.config_set("slowlog-log-slower-than", 0)
    workload(r)
    assert r.slowlog_len() > 0
    r.config_resetstat()
    stats = r.info("commandstats")
    assert set(stats) <= {"cmdstat_config"}  # RESETSTAT itself counts after the reset
    assert r.info("latencystats") == {} or set(r.info("latencystats")) <= {
        "latency_percentiles_usec_config", "latency_percentiles_usec_info"}
    assert r.info("errorstats") == {}
    assert r.slowlog_len() > 0


def test_slowlog_records_a_slow_command(make_node) -> None:
    node = make_node("plugins.lru_ttl.capacity=0")
    r = redis.Redis(port=node.port, socket_timeout=30)
    pipe = r.pipeline(transaction=False)
    for i in range(150_000):
        pipe.set(f"user:{i}", "x")
    pipe.execute()
    # KEYS through 150k keys takes about 100 ms; the bounds below leave room for a busy
    # machine (only the slow command must be logged; others may be, if the machine stalls).
    r.config_set("slowlog-log-slower-than", 20000)
    assert r.config_get("slowlog-log-slower-than") == {"slowlog-log-slower-than": "20000"}
    r.slowlog_reset()
    r.client_setname("reporter")
    r.get("user:1")
    r.keys("user:*")
    entries = [e for e in r.slowlog_get() if e["command"].startswith(b"KEYS")]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["command"] == b"KEYS user:*"
    assert entry["duration"] >= 20000
    assert entry["client_name"] == b"reporter"
    assert entry["client_address"].startswith(b"127.0.0.1:")
    # A slow pipelined run names its likeliest culprit and how many ran with it.
    r.slowlog_reset()
    pipe = r.pipeline(transaction=False)
    pipe.get("user:1")
    pipe.get("user:2")
    pipe.keys("user:*")  # last: its reply passes the high-water mark and ends the run
    pipe.execute()
    assert b"KEYS user:* ... (2 more pipelined commands timed with it)" in [
        e["command"] for e in r.slowlog_get()]
    r.config_set("slowlog-log-slower-than", -1)
    length = r.slowlog_len()
    r.keys("user:*")
    assert r.slowlog_len() == length
    r.config_set("slowlog-max-len", 0)
    assert r.slowlog_len() == 0


def test_slow_log_never_shows_a_password(make_node) -> None:
    node = make_node("node.slowlog_log_slower_than_us=0", "node.slowlog_max_len=5")
    r = redis.Redis(port=node.port, socket_timeout=5)
    try:
        r.config_set("requirepass", "s3cret")
        r.execute_command("AUTH", "s3cret")
        logged = [e["command"] for e in r.slowlog_get(-1)]
        assert b"CONFIG SET requirepass (redacted)" in logged
        assert not any(b"s3cret" in c for c in logged)
        assert r.config_get("slowlog-max-len") == {"slowlog-max-len": "5"}
    finally:
        r.close()

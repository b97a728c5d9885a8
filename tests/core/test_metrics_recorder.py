"""NodeMetrics without a server: what a sampled or slow read records, and the slow log."""

from __future__ import annotations

import time

from distcache_core.command_table import Command, CommandTable
from distcache_core.metrics import NodeMetrics
from distcache_core.metrics.commands import FOLD_SAMPLE_LIMIT, CommandStats
from distcache_core.metrics.recorder import SAMPLE_DUE
from distcache_core.metrics.slowlog import SlowLog, shorten


class Conn:
    peer = "127.0.0.1:5000"
    client_name = b"worker"


def table() -> CommandTable:
    handler = print
    return CommandTable([Command(name="get", handler=handler, arity=2, flags={"fast"}),
                         Command(name="strlen", handler=handler, arity=2, flags={"fast"}),
                         Command(name="keys", handler=handler, arity=2),
                         Command(name="auth", handler=handler, arity=-2),
                         Command(name="config", handler=handler, arity=-2)])


def test_each_table_has_its_own_stats() -> None:
    command = Command(name="get", handler=print, arity=2)
    a, b = CommandTable([command]), CommandTable([command])
    a.commands["get"].stats.calls += 1
    assert b.commands["get"].stats.calls == 0 and command.stats.calls == 0


def test_a_due_sample_credits_the_read_to_its_commands_then_waits() -> None:
    commands = table()
    metrics = NodeMetrics(commands, slowlog_log_slower_than_us=10_000_000)
    assert metrics.limit == SAMPLE_DUE  # the first read is timed
    started = time.monotonic() - 0.002
    requests = [[b"GET", b"a"], [b"get", b"b"], [b"KEYS", b"*"], [b"nosuch"], [b"GET"]]
    metrics.sampled_read(Conn(), requests, 4, started)  # the first four ran
    get, keys = commands.commands["get"].stats, commands.commands["keys"].stats
    assert len(get.pending) == 2 and len(keys.pending) == 1
    assert get.pending[0] == keys.pending[0] >= 0.002 / 4
    # No loop here: no timer, so no further sample until one is due.
    assert metrics.limit == 10.0
    metrics.sampled_read(Conn(), [[b"GET", b"a"]], 1, time.monotonic())
    assert len(get.pending) == 2
    metrics.fold()
    assert get.samples == 2 and get.pending == [] and get.histogram.total == 2
    get.calls = 10
    assert get.usec == round(get.sampled_seconds / 2 * 1e6 * 10)


def test_a_slow_lone_request_is_logged_with_its_arguments() -> None:
    metrics = NodeMetrics(table(), slowlog_log_slower_than_us=1000)
    metrics.limit = 0.001
    metrics.sampled_read(Conn(), [[b"KEYS", b"*"]], 1, time.monotonic() - 0.05)
    (entry,) = metrics.slowlog.get()
    assert entry.argv == (b"KEYS", b"*") and entry.duration_usec >= 50_000
    assert entry.client_addr == "127.0.0.1:5000" and entry.client_name == b"worker"
    assert entry.as_reply()[3] == [b"KEYS", b"*"]


def test_a_slow_pipeline_names_the_likeliest_culprit() -> None:
    commands = table()
    metrics = NodeMetrics(commands, slowlog_log_slower_than_us=1000)
    metrics.limit = 0.001
    requests = [[b"GET", b"a"], [b"KEYS", b"user:*"], [b"GET", b"b"]]
    metrics.sampled_read(Conn(), requests, 3, time.monotonic() - 0.03)
    (entry,) = metrics.slowlog.get()  # KEYS is not flagged fast
    assert entry.argv == (b"KEYS", b"user:*", b"... (2 more pipelined commands timed with it)")
    commands.commands["strlen"].stats.pending.append(0.02)
    commands.commands["get"].stats.pending.append(0.000002)
    metrics.fold()
    metrics.sampled_read(Conn(), [[b"GET", b"a"], [b"STRLEN", b"b"]], 2,
                         time.monotonic() - 0.03)
    assert metrics.slowlog.get()[0].argv[:2] == (b"STRLEN", b"b")  # slower on average


def test_secrets_never_reach_the_slow_log() -> None:
    metrics = NodeMetrics(table(), slowlog_log_slower_than_us=0)
    metrics.limit = 0.0
    metrics.sampled_read(Conn(), [[b"AUTH", b"hunter2"]], 1, time.monotonic())
    metrics.sampled_read(Conn(), [[b"CONFIG", b"SET", b"requirepass", b"hunter2"]], 1,
                         time.monotonic())
    (entry,) = metrics.slowlog.get()
    assert entry.argv == (b"CONFIG", b"SET", b"requirepass", b"(redacted)")


def test_threshold_changes_and_reset() -> None:
    commands = table()
    metrics = NodeMetrics(commands, slowlog_log_slower_than_us=-1)
    assert metrics.slowlog.threshold_seconds == float("inf")
    metrics.limit = 5.0
    metrics.set_slowlog_threshold(250)
    assert metrics.limit == 0.00025
    commands.commands["get"].stats.calls = 3
    commands.commands["get"].stats.rejected = 1
    assert [s.name for s in metrics.touched()] == ["get"] and metrics.total_calls() == 3
    metrics.slowlog.add([b"GET", b"x"], 0.5, "", None)
    metrics.reset()
    assert metrics.touched() == [] and len(metrics.slowlog) == 1


def test_slowlog_keeps_the_newest_and_cuts_long_arguments_as_redis_does() -> None:
    log = SlowLog(0, max_len=2)
    for i in range(3):
        log.add([b"SET", b"k%d" % i, b"v"], 0.001, "", None)
    assert [e.argv[1] for e in log.get()] == [b"k2", b"k1"]
    assert [e.id for e in log.get(-1)] == [2, 1] and len(log.get(1)) == 1
    log.set_max_len(1)
    assert len(log) == 1
    argv = [b"MSET"] + [b"x" * 200] * 40
    short = shorten(argv)
    assert len(short) == 32 and short[-1] == b"... (10 more arguments)"
    assert short[1] == b"x" * 128 + b"... (72 more bytes)"


def test_a_big_fold_samples_the_histogram_but_counts_every_call() -> None:
    stats = CommandStats("get")
    stats.pending = [0.000010] * (FOLD_SAMPLE_LIMIT * 5 + 3)
    stats.fold()
    assert stats.samples == FOLD_SAMPLE_LIMIT * 5 + 3
    assert abs(stats.histogram.total - stats.samples) <= 5
    assert abs(stats.usec_per_call - 10.0) < 1e-6

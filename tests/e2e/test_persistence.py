"""Persistence on a real node process: restarts, -LOADING while recovering, SAVE and friends,
refusing a damaged log or a second node on one data dir, and the commands' replies."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distcache_core.mutations import Mutation, Op
from distcache_core.persistence import LOADING_ERROR
from distcache_core.protocol import encode_request
from distcache_core.testing.differential import RawSession
from distcache_plugins.wal.format import (
    KIND_LOG,
    SEGMENT_HEADER_SIZE,
    append_mutation,
    segment_header,
)
from distcache_plugins.wal.segments import list_files, log_name

WAL_ALWAYS = ("--set", 'node.persistence=["wal"]', "--set", 'plugins.wal.fsync="always"')


def serve_args(data_dir: Path, *extra: str) -> tuple[str, ...]:
    return ("--port", "0", "--data-dir", str(data_dir), "--set", "plugins.lru_ttl.capacity=0",
            *extra)


def client(proc) -> redis.Redis:
    r = redis.Redis(port=proc.port, socket_timeout=10)
    wait_loaded(r)
    return r


def wait_loaded(r: redis.Redis, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while int(r.info("persistence")["loading"]):
        assert time.monotonic() < deadline, "the node never finished loading"
        time.sleep(0.02)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_writes_survive_a_restart(tmp_path: Path, node_process) -> None:
    data_dir = tmp_path / "data"
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    binary = b"k\x00\r\n\xff"
    r.set("plain", "v")
    r.set(binary, b"\x00" * 1000)
    r.set("ttl", "t", px=600_000)
    expire_at = r.pexpiretime("ttl")
    r.set("gone", "x")
    r.delete("gone")
    r.incrby("counter", 41)
    r.incr("counter")
    r.append("plain", "+more")
    r.set("short", "s", px=200)
    r.rename("plain", "renamed")
    proc.stop()
    time.sleep(0.3)  # "short" expires while the node is down

    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    assert r.get("renamed") == b"v+more" and r.get("plain") is None
    assert r.get(binary) == b"\x00" * 1000
    assert r.pexpiretime("ttl") == expire_at
    assert r.get("gone") is None and r.get("short") is None
    assert r.get("counter") == b"42"
    assert r.dbsize() == 4
    fields = r.info("persistence")
    assert fields["aof_enabled"] == 1 and fields["loading"] == 0
    assert fields["rdb_last_load_keys_loaded"] == 0  # no snapshot yet: all from the log
    assert fields["last_recovery"]["records"] > 0


@pytest.mark.parametrize("snapshot", ["mmap_snapshot", "lmdb_snapshot"])
def test_a_key_whose_first_expiry_passed_while_down_but_was_extended_survives(
        tmp_path: Path, node_process, snapshot: str) -> None:
    # The snapshot holds "k" with a short expiry; the log after it moves that expiry an hour
    # out. Restarted after the short expiry, replaying both must leave "k" alive, and a key
    # whose only expiry passed stays gone (and is not counted among the keys). The SAVE and
    # the commands after it must all come before the first expiry: 3 s is enough on an idle
    # machine, but a SAVE may wait for the LMDB snapshot builder to start on a busy one, so a
    # setup that ran late is done again, in a fresh directory, with a longer expiry.
    for window_ms in (3_000, 10_000, 30_000):
        data_dir = tmp_path / f"data-{window_ms}"
        args = serve_args(data_dir, "--set", f'node.persistence=["wal", "{snapshot}"]',
                          "--set", 'plugins.wal.fsync="always"')
        proc = node_process(*args)
        r = client(proc)
        first_expiry = time.time() + window_ms / 1000
        r.set("k", "v", px=window_ms)
        r.set("dies", "d", px=window_ms)
        r.set("log-only", "w", px=window_ms)
        r.save()
        r.pexpire("k", 3_600_000)
        r.pexpire("log-only", 3_600_000)
        expire_at = r.pexpiretime("k")
        on_time = r.get("dies") == b"d" and time.time() < first_expiry - 0.2
        r.shutdown(nosave=True)
        proc.proc.wait(10)
        if on_time:
            break
    else:
        pytest.fail("the setup never finished within 30 s of its first write")
    time.sleep(max(first_expiry + 0.1 - time.time(), 0))

    proc = node_process(*args)
    r = client(proc)
    assert r.get("k") == b"v" and r.pexpiretime("k") == expire_at
    assert r.get("log-only") == b"w"
    assert r.get("dies") is None
    assert r.dbsize() == 2
    recovery = r.info("persistence")["last_recovery"]
    assert recovery["expired"] == 1, recovery  # "dies"; the two revived ones are loaded


def test_data_commands_get_loading_while_the_node_recovers(tmp_path: Path, node_process
                                                          ) -> None:
    data_dir = tmp_path / "data"
    proc = node_process(*serve_args(data_dir, "--set", 'node.persistence=["wal"]'))
    r = client(proc)
    pipe = r.pipeline(transaction=False)
    for index in range(300_000):
        pipe.set(b"key:%d" % index, b"v" * 16)
    pipe.execute()
    proc.stop()

    proc = node_process(*serve_args(data_dir, "--set", 'node.persistence=["wal"]'))
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(b"GET key:1\r\nINFO persistence\r\nPING\r\nCLIENT ID\r\n")
        data = b""
        while data.count(b"-LOADING") < 2 or not re.search(rb":\d+\r\n$", data):
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
    lines = data.split(b"\r\n")
    assert lines[0] == b"-" + LOADING_ERROR.encode()
    info = data.decode()
    assert "loading:1" in info
    perc = float(re.search(r"loading_loaded_perc:([\d.]+)", info).group(1))
    assert 0 <= perc < 100
    assert re.search(r"loading_eta_seconds:\d+", info)
    assert re.search(r"loading_total_bytes:[1-9]\d*", info)
    # PING too, as in Redis 7; CLIENT ID runs (its subcommand is flagged loading, as Redis's).
    assert re.search(r"\r\n-" + LOADING_ERROR + r"\r\n:\d+\r\n$", info)
    r = client(proc)
    assert r.get("key:1") == b"v" * 16 and r.dbsize() == 300_000


def test_save_bgsave_lastsave_bgrewriteaof(tmp_path: Path, node_process, raw_client) -> None:
    proc = node_process(*serve_args(tmp_path / "none"))
    raw = raw_client(proc.port)
    raw.send(b"SAVE\r\nBGSAVE\r\nBGREWRITEAOF\r\n")
    replies = [str(reply) for reply in raw.replies(3)]
    assert replies == ["ERR no persistence plugin is configured (set node.persistence)"] * 2 + [
        'ERR no log is configured (add "wal" to node.persistence)']

    proc = node_process(*serve_args(tmp_path / "data", *WAL_ALWAYS))
    r = client(proc)
    raw = raw_client(proc.port)
    r.set("k", "v")
    before = r.lastsave()
    time.sleep(1.1)
    raw.send(b"SAVE\r\n")
    assert raw.reply() == b"OK"
    assert r.lastsave() > before
    raw.send(b"BGSAVE\r\nBGSAVE NOW\r\n")
    assert raw.replies(2)[0] == b"Background saving started"
    wait_idle(r, "rdb_bgsave_in_progress")
    raw.send(b"BGSAVE\r\nBGSAVE\r\n")  # the second finds the first still running
    first, second = raw.replies(2)
    assert first == b"Background saving started"
    assert str(second) == "ERR Background save already in progress" or second == first
    wait_idle(r, "rdb_bgsave_in_progress")
    raw.send(b"BGREWRITEAOF\r\n")
    assert raw.reply() == b"Background append only file rewriting started"
    wait_idle(r, "aof_rewrite_in_progress")
    fields = r.info("persistence")
    assert fields["rdb_last_bgsave_status"] == fields["aof_last_bgrewrite_status"] == "ok"
    assert fields["rdb_changes_since_last_save"] == 0
    assert fields["aof_rewrites"] >= 1
    _, bases = list_files(tmp_path / "data" / "wal")
    assert bases


def wait_idle(r: redis.Redis, field: str) -> None:
    deadline = time.monotonic() + 10
    while r.info("persistence")[field]:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_damaged_log_refuses_to_start_and_check_wal_repairs_it(tmp_path: Path, node_process,
                                                                 cli) -> None:
    data_dir = tmp_path / "data"
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    for index in range(100):
        r.set(f"k{index}", f"v{index}")
    proc.stop()
    logs, _ = list_files(data_dir / "wal")
    segment = logs[-1].path
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x20
    segment.write_bytes(bytes(data))

    done = cli("serve", *serve_args(data_dir, *WAL_ALWAYS), timeout=60)
    assert done.returncode == 2, done.stderr
    message = done.stderr
    assert str(segment) in message and re.search(r"offset \d+", message)
    assert f"distcache check-wal {data_dir / 'wal'} --repair" in message
    # It answered -LOADING while it read the log, but never said it was ready.
    assert "-LOADING on 127.0.0.1:" in done.stdout
    assert "listening" not in done.stdout

    repaired = cli("check-wal", str(data_dir / "wal"), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    kept = r.dbsize()
    assert 0 < kept < 100
    assert all(r.get(f"k{index}") == f"v{index}".encode() for index in range(kept))


def write_log_file(wal_dir: Path, count: int) -> Path:
    """A log segment of ``count`` SETs (16-byte keys, 32-byte values), written directly."""
    wal_dir.mkdir(parents=True)
    data = bytearray(segment_header(KIND_LOG, 1))
    for index in range(count):
        mutation = Mutation(Op.SET, 0, b"key:%012d" % index, b"v" * 32)
        mutation.seq = index + 1
        append_mutation(data, mutation)
    path = wal_dir / log_name(1)
    path.write_bytes(data)
    return path


def test_damage_deep_in_a_long_log_stops_the_node_after_loading_never_ready(
        tmp_path: Path, raw_client) -> None:
    """The node answers -LOADING while it replays, finds the damage far into the log, closes
    its clients' connections and exits 2 naming the file, the offset and the repair; its
    "listening" (ready) line never appears."""
    data_dir = tmp_path / "data"
    segment = write_log_file(data_dir / "wal", 200_000)
    data = bytearray(segment.read_bytes())
    damaged_at = len(data) * 9 // 10
    data[damaged_at] ^= 0x01
    segment.write_bytes(bytes(data))
    record_size = (len(data) - SEGMENT_HEADER_SIZE) // 200_000  # all records are alike
    record_offset = damaged_at - (damaged_at - SEGMENT_HEADER_SIZE) % record_size

    proc = subprocess.Popen(
        [sys.executable, "-m", "distcache_core.cli", "serve",
         *serve_args(data_dir, "--set", 'node.persistence=["wal"]')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        match = re.search(r"answering -LOADING on 127\.0\.0\.1:(\d+)", first)
        assert match, first
        raw = raw_client(int(match.group(1)))
        raw.send(b"GET key:000000000001\r\n")
        assert str(raw.reply()) == LOADING_ERROR
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, stderr
    assert "listening" not in first + stdout
    found = re.search(r"corrupt record at offset (\d+)", stderr)
    assert found, stderr
    assert int(found.group(1)) == record_offset
    assert str(segment) in stderr
    assert f"`distcache check-wal {data_dir / 'wal'} --repair`" in stderr
    with pytest.raises(ConnectionError):
        raw.reply()  # the node closed the connection as it stopped


def test_two_nodes_on_one_data_dir(tmp_path: Path, node_process, cli) -> None:
    data_dir = tmp_path / "data"
    first = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    done = cli("serve", *serve_args(data_dir, *WAL_ALWAYS), timeout=30)
    assert done.returncode == 2
    assert "is in use by another node" in done.stderr
    assert f"pid {first.proc.pid}" in done.stderr
    assert "listening" not in done.stdout  # refused before it listens


def test_a_data_dir_that_is_not_writable(tmp_path: Path, cli) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = cli("serve", *serve_args(blocker / "data", *WAL_ALWAYS), timeout=30)
    assert done.returncode == 2
    assert "node.data_dir" in done.stderr and str(blocker / "data") in done.stderr
    assert "listening" not in done.stdout


def test_shutdown_nosave_leaves_a_log_that_recovers(tmp_path: Path, node_process
                                                            ) -> None:
    data_dir = tmp_path / "data"
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    r.set("a", "1")
    try:
        r.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the node closes the connection as it stops, without a reply
    assert proc.proc.wait(10) == 0
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    assert client(proc).get("a") == b"1"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (needs root, as ``make test`` has in CI; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill_disk(filler: Path) -> None:
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def wait_write_status(r: redis.Redis, status: str) -> None:
    deadline = time.monotonic() + 10
    while r.info("persistence")["aof_last_write_status"] != status:
        assert time.monotonic() < deadline, f"aof_last_write_status never became {status}"
        time.sleep(0.02)


def assert_no_reply_yet(raw) -> None:
    raw.sock.settimeout(0.5)
    try:
        with pytest.raises(TimeoutError):
            raw.sock.recv(1)
    finally:
        raw.sock.settimeout(10)


ENOSPC = "MISCONF Errors writing to the AOF file: No space left on device"


def test_a_full_disk_refuses_writes_with_misconf_while_reads_go_on(small_disk: Path,
                                                                   node_process, raw_client
                                                                   ) -> None:
    """fsync = always on a full disk: the write whose record failed is neither acknowledged
    nor refused (it is applied and cannot be taken back): its reply waits until its record
    is on disk. Writes after that are refused with Redis's -MISCONF (in MULTI/EXEC and
    scripts too), reads go on, and freeing space lifts it all."""
    data_dir = small_disk / "data"
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    r.set("before", "1")
    transaction = raw_client(proc.port)
    transaction.send(b"MULTI\r\nSET tx 1\r\n")
    assert transaction.replies(2) == [b"OK", b"QUEUED"]
    filler = small_disk / "filler"
    fill_disk(filler)
    held = raw_client(proc.port)
    big = b"2" * 10_000  # more than the free room left in the log file's last page
    held.send(encode_request("SET", "during", big))
    wait_write_status(r, "err")
    assert_no_reply_yet(held)

    raw = raw_client(proc.port)
    raw.send(b"SET refused 3\r\nGET before\r\nINCR counter\r\nDBSIZE\r\nGET during\r\n")
    refused, value, incr, size, during = raw.replies(5)
    assert str(refused) == str(incr) == ENOSPC
    assert value == b"1" and size == 2
    assert during == big  # applied in memory, not yet acknowledged to its writer
    transaction.send(b"EXEC\r\n")
    assert str(transaction.reply()) == f"EXECABORT Transaction discarded because of: {ENOSPC}"
    raw.send(encode_request("EVAL", "return redis.call('SET', 'script', '1')", "0"))
    assert str(raw.reply()).startswith(ENOSPC)
    assert r.info("persistence")["aof_last_write_status"] == "err"
    assert_no_reply_yet(held)

    filler.unlink()
    held.sock.settimeout(10)  # the once-a-second retry writes the held record: OK at last
    assert held.reply() == b"OK"
    wait_write_status(r, "ok")
    raw.send(b"SET after 4\r\n")
    assert raw.reply() == b"OK"
    proc.stop()
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    assert r.mget("before", "during", "refused", "after", "tx", "script") == [
        b"1", big, None, b"4", None, None]


def test_a_write_held_on_a_full_disk_is_gone_if_the_node_stops_first(
        small_disk: Path, node_process, raw_client) -> None:
    """Its client never got a reply (the connection closes, as in a crash), and after the
    restart the write is not there: nobody was told it was."""
    data_dir = small_disk / "data"
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    r.set("before", "1")
    filler = small_disk / "filler"
    fill_disk(filler)
    held = raw_client(proc.port)
    held.send(encode_request("SET", "during", b"2" * 10_000))
    wait_write_status(r, "err")
    assert_no_reply_yet(held)
    proc.proc.terminate()
    proc.proc.wait(30)
    with pytest.raises(ConnectionError):
        held.reply()
    filler.unlink()
    proc = node_process(*serve_args(data_dir, *WAL_ALWAYS))
    r = client(proc)
    assert r.mget("before", "during") == [b"1", None]


def test_save_family_replies_match_redis(tmp_path: Path, make_node, redis_server) -> None:
    """With a WAL configured, SAVE, BGSAVE and BGREWRITEAOF answer as redis-server does,
    byte for byte, including while one of them runs."""
    node = make_node("node.persistence=['wal']", f"node.data_dir='{tmp_path / 'data'}'")

    def exchange(port: int, request: bytes) -> bytes:
        with RawSession(port) as session:
            session.sock.sendall(request)
            return session.read().raw

    def idle(port: int) -> None:
        deadline = time.monotonic() + 10
        while True:
            info = exchange(port, b"INFO persistence\r\n")
            if b"rdb_bgsave_in_progress:0" in info and b"aof_rewrite_in_progress:0" in info:
                return
            assert time.monotonic() < deadline
            time.sleep(0.02)

    for request in (b"SET k v\r\n", b"SAVE\r\n", b"BGSAVE\r\n", b"BGREWRITEAOF\r\n",
                    b"BGSAVE SCHEDULE\r\n", b"SAVE x\r\n"):
        replies = []
        for port in (redis_server.port, node.port):
            idle(port)
            replies.append(exchange(port, request))
        assert replies[0] == replies[1], request
    idle(redis_server.port)
    idle(node.port)


@pytest.mark.parametrize("snapshot", ["mmap_snapshot", "lmdb_snapshot"])
def test_snapshot_then_log_after_kill_9(tmp_path: Path, node_process, snapshot: str) -> None:
    """SAVE writes a snapshot; writes after it are only in the log; kill -9; the restart
    loads the snapshot, then replays the log from its sequence number."""
    data_dir = tmp_path / "data"
    args = serve_args(data_dir, "--set", f'node.persistence=["wal", "{snapshot}"]',
                      "--set", 'plugins.wal.fsync="always"')
    proc = node_process(*args)
    r = client(proc)
    pipe = r.pipeline(transaction=False)
    for index in range(2000):
        pipe.set(f"k{index}", f"v{index}", px=600_000 if index % 3 == 0 else None)
    pipe.execute()
    assert r.execute_command("SAVE")
    r.delete("k1", "k2")
    r.set("after", "save")
    r.incr("k5_counter")
    proc.proc.kill()
    proc.proc.wait(10)

    proc = node_process(*args)
    r = client(proc)
    assert r.dbsize() == 2000 - 2 + 2
    assert r.get("k1") is None and r.get("after") == b"save" and r.get("k0") == b"v0"
    assert 0 < r.pttl("k3") <= 600_000 and r.pttl("k4") == -1
    fields = r.info("persistence")
    assert fields["rdb_last_load_keys_loaded"] == 2000
    assert fields["last_recovery"]["records"] == 4  # two DELs, a SET, an INCR
    assert list((data_dir / snapshot).glob("snapshot-*"))


def test_a_damaged_only_snapshot_falls_back_to_the_whole_log(tmp_path: Path,
                                                              node_process) -> None:
    """One snapshot, taken after writes: compaction must not drop the log records it covers
    (they are its fallback), so damaging it costs no data on restart."""
    data_dir = tmp_path / "data"
    args = serve_args(data_dir, "--set", 'node.persistence=["wal", "mmap_snapshot"]',
                      "--set", 'plugins.wal.fsync="always"',
                      "--set", "plugins.wal.segment_max_bytes=4096")
    proc = node_process(*args)
    r = client(proc)
    for index in range(300):
        r.set(f"k{index}", f"v{index}" * 10)
    assert r.execute_command("SAVE")
    r.set("after", "save")
    proc.proc.kill()
    proc.proc.wait(10)
    (snapshot,) = (data_dir / "mmap_snapshot").glob("snapshot-*")
    damaged = bytearray(snapshot.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(damaged))

    proc = node_process(*args)
    r = client(proc)
    assert r.dbsize() == 301
    assert r.get("k0") == b"v0" * 10 and r.get("k299") == b"v299" * 10
    assert r.get("after") == b"save"

"""Issue 6, section 1: the durability barrier holds the replies of a batch that wrote until the
persistence side says the writes are safe; all writes of one loop turn share one barrier."""

from __future__ import annotations

import asyncio
import threading
import time

import redis


class ManualBarrier:
    """A barrier source that completes only when the test says so, counting its calls."""

    def __init__(self, node_thread) -> None:
        self.node_thread = node_thread
        self.calls = 0
        self.pending: list[asyncio.Future] = []
        self.fail = False

    def __call__(self) -> asyncio.Future:
        self.calls += 1
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def release_all(self) -> int:
        def release() -> int:
            done = 0
            for future in self.pending:
                if not future.done():
                    if self.fail:
                        future.set_exception(OSError(28, "No space left on device"))
                    else:
                        future.set_result(None)
                    done += 1
            self.pending.clear()
            return done
        return self.node_thread.call(release)


def test_write_replies_wait_for_the_barrier_and_reads_do_not(make_node):
    node = make_node()
    barrier = ManualBarrier(node)
    node.call(node.node.add_barrier_source, barrier)
    writer = redis.Redis(port=node.port, socket_timeout=5)
    reader = redis.Redis(port=node.port, socket_timeout=5)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(writer.set(b"k", b"v")))
    thread.start()
    time.sleep(0.3)
    assert result == []  # the write is applied but not acknowledged yet
    assert reader.get(b"k") == b"v"  # a read of another client is served meanwhile
    assert barrier.release_all() == 1
    thread.join(5)
    assert result == [True]


def test_writes_of_one_loop_turn_share_one_barrier(make_node):
    node = make_node()
    barrier = ManualBarrier(node)
    node.call(node.node.add_barrier_source, barrier)
    clients = [redis.Redis(port=node.port, socket_timeout=10) for _ in range(40)]
    for client in clients:
        client.ping()
    acknowledged: list[bool] = []
    start = threading.Barrier(len(clients))

    def write(i: int) -> None:
        start.wait()
        acknowledged.append(clients[i].set(b"key:%d" % i, b"v"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < len(clients) and time.monotonic() < deadline:
        time.sleep(0.05)
        barrier.release_all()
    for thread in threads:
        thread.join(5)
    assert acknowledged == [True] * len(clients)
    # 40 writes arriving together: far fewer barriers than writes (group commit).
    assert barrier.calls < len(clients) / 2, barrier.calls


def test_a_failed_barrier_turns_the_replies_into_errors(make_node):
    node = make_node()
    barrier = ManualBarrier(node)
    barrier.fail = True
    node.call(node.node.add_barrier_source, barrier)
    client = redis.Redis(port=node.port, socket_timeout=5)
    errors: list[Exception] = []

    def write() -> None:
        try:
            client.set(b"k", b"v")
        except redis.ResponseError as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.2)
    barrier.release_all()
    thread.join(5)
    assert len(errors) == 1
    assert str(errors[0]).startswith("MISCONF Errors writing to the persistence")
    other = redis.Redis(port=node.port, socket_timeout=5)
    assert other.ping() is True


def test_with_two_sources_a_write_waits_for_both(make_node):
    """Several sources are gathered (one source's future is waited for as it is): the write is
    acknowledged once both said its writes are safe, with a pipelined read behind it."""
    node = make_node()
    first, second = ManualBarrier(node), ManualBarrier(node)
    node.call(node.node.add_barrier_source, first)
    node.call(node.node.add_barrier_source, second)
    writer = redis.Redis(port=node.port, socket_timeout=5)
    result: list = []

    def write() -> None:
        pipe = writer.pipeline(transaction=False)
        pipe.set(b"k", b"v")
        pipe.get(b"k")
        result.append(pipe.execute())

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.3)
    assert first.release_all() == 1
    time.sleep(0.3)
    assert result == []  # the second source has not said so yet
    assert second.release_all() == 1
    thread.join(5)
    assert result == [[True, b"v"]]

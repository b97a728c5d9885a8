"""Fixtures that start real DistCache nodes on free loopback ports and talk to them with real
clients: redis-py, and raw sockets the way ``nc`` sends."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import hiredis
import pytest
import redis

from distcache_core.config import ConfigSources

REPO = Path(__file__).resolve().parent.parent
#: The ready line, or (a node with persistence) the earlier one it prints while it loads.
LISTENING_RE = re.compile(r"(?:listening|-LOADING) on (\S+):(\d+)")


class NodeThread:
    """A node running its own event loop in a background thread of the test process."""

    def __init__(self, sets: Sequence[str] = (), environ: dict[str, str] | None = None,
                 extra_plugins: Sequence[tuple[str, object]] = ()) -> None:
        self.sources = ConfigSources.gather(None, ["node.port=0", *sets],
                                            environ=environ if environ is not None else {})
        self.extra_plugins = list(extra_plugins)
        self.node = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            import uvloop
            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to the test by start()
            self._error = exc
            self._ready.set()
        finally:
            # A loop holds file descriptors (epoll, its wake-up pipe): hundreds of nodes in
            # one session would otherwise pass select()'s limit of 1024 (pexpect uses it).
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _main(self) -> None:
        from distcache_core.node import Node

        node = Node.from_sources(self.sources, extra_plugins=self.extra_plugins)
        await node.start()
        self.node = node  # published only once it listens, so other threads see a real port
        self._ready.set()
        await node.wait_stopped()

    def start(self) -> NodeThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("node did not start")
        if self._error is not None:
            raise self._error
        return self

    @property
    def port(self) -> int:
        assert self.node is not None
        return self.node.port

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the node's loop and return its result (for inspecting state
        without racing the loop)."""
        assert self.loop is not None
        done = threading.Event()
        box: list = []

        def runner() -> None:
            try:
                box.append(fn(*args))
            except BaseException as exc:  # pragma: no cover - re-raised below
                box.append(exc)
            done.set()

        self.loop.call_soon_threadsafe(runner)
        done.wait(5)
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def stop(self) -> None:
        if self.loop is not None and self.node is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.node.request_shutdown)
        self._thread.join(10)


class RawClient:
    """A plain TCP client that sends bytes as ``nc`` does and reads raw replies."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = hiredis.Reader()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self):
        """The next reply, parsed (errors come back as hiredis.ReplyError instances)."""
        while True:
            value = self.reader.gets()
            if value is not False:
                return value
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the node")
            self.reader.feed(chunk)

    def replies(self, n: int) -> list:
        return [self.reply() for _ in range(n)]

    def read_until_close(self, limit: int = 64 * 1024 * 1024) -> bytes:
        chunks = []
        total = 0
        while total < limit:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)

    def is_closed_by_peer(self, wait: float = 2.0) -> bool:
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def make_node() -> Iterator:
    """Factory: ``make_node("node.requirepass='x'", environ={...})`` starts a node in a thread."""
    nodes: list[NodeThread] = []

    def factory(*sets: str, environ: dict[str, str] | None = None,
                extra_plugins: Sequence[tuple[str, object]] = ()) -> NodeThread:
        node = NodeThread(sets, environ, extra_plugins).start()
        nodes.append(node)
        return node

    try:
        yield factory
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def node(make_node) -> NodeThread:
    return make_node()


@pytest.fixture
def r(node) -> Iterator[redis.Redis]:
    """A redis-py client on a fresh node."""
    client = redis.Redis(port=node.port, socket_timeout=5)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def raw(node) -> Iterator[RawClient]:
    client = RawClient(node.port)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def raw_client():
    """Factory for extra raw connections: ``raw_client(port)``."""
    clients: list[RawClient] = []

    def factory(port: int) -> RawClient:
        client = RawClient(port)
        clients.append(client)
        return client

    try:
        yield factory
    finally:
        for client in clients:
            client.close()


class NodeProcess:
    """``distcache serve`` as a real child process; ``port`` is read from its banner."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
                 ) -> None:
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distcache_core.cli", "serve", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd,
        )
        self.banner = self.proc.stdout.readline() if self.proc.stdout else ""
        match = LISTENING_RE.search(self.banner)
        if match is None:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise RuntimeError(f"node did not start: {self.banner!r} {err!r}")
        self.host, self.port = match.group(1), int(match.group(2))

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def node_process():
    procs: list[NodeProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
                ) -> NodeProcess:
        proc = NodeProcess(*args, env=env, cwd=cwd)
        procs.append(proc)
        return proc

    try:
        yield factory
    finally:
        for proc in procs:
            proc.stop()


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "distcache_core.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture
def cli():
    """``cli("plugins", "--json")`` runs the distcache command and returns the result."""
    return run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REDIS_SERVER_MISSING = (
    "redis-server is not installed and `make test` could not install it "
    "(tests/ensure_redis.sh: apt-get install redis-server redis-tools); the differential "
    "tests need a real Redis 7.0 to compare with")


class RedisServer:
    """A real ``redis-server`` on a free loopback port, configured as a cache like a node's
    defaults (no persistence, ``allkeys-lru``): the reference for differential tests."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / f"redis-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--maxmemory-policy", "allkeys-lru", "--dir", str(workdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16) == b"+PONG\r\n":
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """The reference redis-server, shared by the session; skips when it is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_SERVER_MISSING)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def builtin_node() -> Iterator[NodeThread]:
    """One node shared by a module's tests, with the default plugins only (entry-point
    plugins such as the example GREET are not loaded): for tests that compare with Redis."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISTCACHE_DISABLE_PLUGIN_AUTOLOAD", "1")  # read while the node starts
        node = NodeThread().start()
    try:
        yield node
    finally:
        node.stop()


# -- a real browser (the dashboard tests) ----------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        subprocess.run(["sh", str(Path(__file__).resolve().parent / "ensure_chromium.sh")],
                       check=False, timeout=900)
    if not os.path.exists(CHROMIUM) or shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed and tests/ensure_chromium.sh could not "
                    "install it (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()

"""`distcache ping`, the health check of the Dockerfile, docker-compose and Kubernetes: exit 0
only when a node answers PING, against real node processes and sockets."""

from __future__ import annotations

import socket
import threading
import time

from tests.conftest import free_port


def test_ping_a_serving_node(node_process, cli):
    proc = node_process("--port", "0")
    result = cli("ping", "--port", str(proc.port))
    assert (result.returncode, result.stdout) == (0, "PONG\n")


def test_nothing_listening_exits_1_naming_the_address(cli):
    port = free_port()
    result = cli("ping", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1 and result.stdout == ""
    assert f"no answer from 127.0.0.1:{port}: Connection refused" in result.stderr


def test_password_from_flag_or_the_nodes_own_env_var(node_process, cli):
    proc = node_process("--port", "0", env={"DISTCACHE_PASSWORD": "s3cret"})
    port = str(proc.port)
    result = cli("ping", "--port", port, env={"DISTCACHE_PASSWORD": ""})
    assert result.returncode == 1
    assert f"127.0.0.1:{port} answered NOAUTH Authentication required." in result.stderr
    assert cli("ping", "--port", port, env={"DISTCACHE_PASSWORD": "s3cret"}).returncode == 0
    assert cli("ping", "--port", port, "--password", "s3cret").returncode == 0
    wrong = cli("ping", "--port", port, "--password", "nope")
    assert wrong.returncode == 1 and "answered WRONGPASS" in wrong.stderr


def test_a_hung_node_fails_within_the_timeout(cli):
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # connections complete in the kernel; nothing ever answers
        started = time.monotonic()
        result = cli("ping", "--port", str(hung.getsockname()[1]), "--timeout", "0.5")
        assert result.returncode == 1 and "timed out" in result.stderr
        assert time.monotonic() - started < 10


def test_a_node_that_closes_the_connection(cli):
    with socket.socket() as closer:
        closer.bind(("127.0.0.1", 0))
        closer.listen(8)
        port = closer.getsockname()[1]

        def accept_and_close() -> None:
            conn, _ = closer.accept()
            conn.recv(1024)  # read the PING, so the close is a clean FIN, not a reset
            conn.close()

        thread = threading.Thread(target=accept_and_close)
        thread.start()
        result = cli("ping", "--port", str(port))
        thread.join(5)
    assert result.returncode == 1 and "answered nothing (connection closed)" in result.stderr

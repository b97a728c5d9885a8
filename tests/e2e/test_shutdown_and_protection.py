"""Issue 6, section 5: shutdown under load closes cleanly, protected mode refuses outsiders,
and the process title hides the command line."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import hiredis
import pytest

from distcache_core.protocol import encode_request


def _load(port: int, stop: threading.Event, outcome: list[str]) -> None:
    """Pipeline SETs as fast as the node answers until it goes away; record how it ended."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader = hiredis.Reader()
    batch = b"".join(encode_request(b"SET", b"k%d" % i, b"v" * 100) for i in range(50))
    try:
        while True:
            try:
                sock.sendall(batch)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The node half-closed after its last reply; a send after that may fail.
                if isinstance(exc, ConnectionResetError):
                    outcome.append("reset")
                    return
            got = 0
            while got < 50:
                reply = reader.gets()
                if reply is False:
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionResetError:
                        outcome.append("reset")
                        return
                    if not chunk:
                        outcome.append("clean" if reader.gets() is False else "partial")
                        return
                    reader.feed(chunk)
                    continue
                if reply != b"OK":
                    outcome.append(f"bad reply {reply!r}")
                    return
                got += 1
    finally:
        sock.close()


def test_sigterm_under_load_closes_every_client_cleanly(node_process):
    node = node_process("--port", "0")
    stop = threading.Event()
    outcome: list[str] = []
    clients = [threading.Thread(target=_load, args=(node.port, stop, outcome))
               for _ in range(50)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    node.proc.send_signal(signal.SIGTERM)
    for client in clients:
        client.join(15)
    assert node.proc.wait(15) == 0
    assert len(outcome) == 50
    assert outcome.count("clean") == 50, outcome


def _non_loopback_address() -> str | None:
    # A UDP "connect" sends nothing; it only asks the kernel which local address it would use.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_protected_mode_refuses_clients_off_the_loopback(node_process):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    node = node_process("--host", "0.0.0.0", "--port", "0")
    outside = socket.create_connection((address, node.port), timeout=5)
    reply = outside.recv(4096)
    assert reply.startswith(b"-DENIED DistCache is running in protected mode")
    assert outside.recv(1) == b""
    outside.close()
    inside = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    inside.sendall(b"PING\r\n")
    assert inside.recv(100) == b"+PONG\r\n"
    inside.close()
    # With a password, outsiders may connect (and must AUTH).
    guarded = node_process("--host", "0.0.0.0", "--port", "0",
                           "--set", "node.requirepass='s3cret'")
    outside = socket.create_connection((address, guarded.port), timeout=5)
    outside.sendall(b"PING\r\n")
    assert outside.recv(100) == b"-NOAUTH Authentication required.\r\n"
    outside.close()


def test_check_config_warns_about_an_open_address(cli):
    result = cli("check-config", "--host", "0.0.0.0")
    assert result.returncode == 0
    assert "protected mode refuses every client that is not on this machine" in result.stdout


def test_process_title_hides_the_password(node_process):
    node = node_process("--port", "0", "--node-id", "titled",
                        "--set", "node.requirepass='hunter2-secret'")
    cmdline = subprocess.run(["ps", "-o", "args=", "-p", str(node.proc.pid)],
                             capture_output=True, text=True).stdout
    assert "hunter2-secret" not in cmdline
    assert cmdline.strip() == f"distcache titled 127.0.0.1:{node.port}"

"""``distcache cluster up`` and ``distcache cluster status``.

``up`` starts N node processes on one machine (``node-1`` on the base port, ``node-2`` on the
next...), each with the others in ``CLUSTER_NODES``, a cluster secret generated for this run
and its files under ``<data-dir>/node-N``. It prints each endpoint once the node listens, streams
every node's output with its id in front, and on Ctrl-C, SIGINT or SIGTERM stops them all
(SIGTERM each, which is a node's graceful shutdown; SIGKILL after a deadline). The nodes run in
their own session, so a terminal's Ctrl-C reaches the launcher alone and it stops them in
order.

``status`` asks any member for ``CLUSTER NODES`` and ``CLUSTER INFO`` and prints one table.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import hiredis

from ..protocol import encode_request
from .membership import format_address

#: How long ``up`` waits for a node to listen, and for all to stop.
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class _Printer:
    """One lock for every node's output, so lines never interleave mid-line."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()


def _stream(proc: subprocess.Popen[str], prefix: str, printer: _Printer,
            listening: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on" in line:
            listening.set()
        printer.line(f"{prefix} {line.rstrip()}")


def cluster_up(*, nodes: int, base_port: int, replication_factor: int, host: str,
               data_dir: str, sets: Sequence[str], dashboard_base_port: int = 0,
               out: IO[str] = sys.stdout) -> int:
    printer = _Printer(out)
    secret = os.environ.get("DISTCACHE_CLUSTER_SECRET") or secrets.token_hex(16)
    ids = [f"node-{i}" for i in range(1, nodes + 1)]
    ports = [base_port + i for i in range(nodes)]
    peers = ",".join(f"{node_id}@{format_address(host, port)}"
                     for node_id, port in zip(ids, ports, strict=True))
    procs: list[tuple[str, subprocess.Popen[str], threading.Event]] = []
    stopping = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for node_id, port in zip(ids, ports, strict=True):
            folder = Path(data_dir) / node_id
            folder.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "distcache_core.cli", "serve",
                       "--node-id", node_id, "--host", host, "--port", str(port),
                       "--data-dir", str(folder),
                       "--set", f"cluster.replication_factor={replication_factor}"]
            if dashboard_base_port:
                command += ["--set", 'node.metrics=["dashboard"]', "--set",
                            f"plugins.dashboard.port={dashboard_base_port + len(procs)}"]
            for flag in sets:
                command += ["--set", flag]
            env = {**os.environ, "CLUSTER_NODES": peers, "NODE_ID": node_id,
                   "DISTCACHE_CLUSTER_SECRET": secret, "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, env=env,
                                    start_new_session=True)
            listening = threading.Event()
            threading.Thread(target=_stream, args=(proc, f"[{node_id}]", printer, listening),
                             daemon=True).start()
            procs.append((node_id, proc, listening))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for _node_id, proc, listening in procs:
            while not listening.wait(0.1):
                if stopping.is_set() or proc.poll() is not None \
                        or time.monotonic() > deadline:
                    break
        started = [(n, p) for n, p, ev in procs if ev.is_set() and p.poll() is None]
        if len(started) < len(procs) and not stopping.is_set():
            failed = [n for n, p, ev in procs if not ev.is_set() or p.poll() is not None]
            printer.line(f"distcache cluster: {', '.join(failed)} did not start; stopping")
            _stop_all(procs, printer)
            return 1
        if not stopping.is_set():
            printer.line(f"distcache cluster: {nodes} nodes up, replication factor "
                         f"{replication_factor} (Ctrl-C stops them all):")
            for index, (node_id, port) in enumerate(zip(ids, ports, strict=True)):
                web = format_address(host, dashboard_base_port + index)
                dashboard = f"    dashboard http://{web}/" if dashboard_base_port else ""
                printer.line(f"  {node_id}  redis-cli -h {host} -p {port}    data "
                             f"{Path(data_dir) / node_id}{dashboard}")
        while not stopping.is_set():
            if all(p.poll() is not None for _, p, _ in procs):
                printer.line("distcache cluster: every node has exited")
                return 1
            stopping.wait(0.2)
        _stop_all(procs, printer)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.kill()


def _stop_all(procs: list[tuple[str, subprocess.Popen[str], threading.Event]],
              printer: _Printer) -> None:
    printer.line("distcache cluster: stopping every node")
    for _, proc, _ in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for node_id, proc, _ in procs:
        try:
            code = proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            printer.line(f"distcache cluster: {node_id} did not stop in time: killed")
        else:
            printer.line(f"distcache cluster: {node_id} stopped (exit status {code})")


# -- status -------------------------------------------------------------------------------------


def _ask(host: str, port: int, password: str, timeout: float, *commands: tuple[str, ...]
         ) -> list[Any]:
    requests = ([encode_request("AUTH", password)] if password else []) + [
        encode_request(*command) for command in commands]
    reader = hiredis.Reader()
    replies: list[Any] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(requests))
        while len(replies) < len(requests):
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            reader.feed(data)
            while (value := reader.gets()) is not False:
                replies.append(value)
    replies = replies[len(requests) - len(commands):]
    for value in replies:
        if isinstance(value, hiredis.ReplyError):
            raise ConnectionError(str(value))
    return replies


def parse_node_line(line: str) -> dict[str, str]:
    """One ``CLUSTER NODES`` line as a dict (``id``, ``address``, ``flags`` and its
    ``key=value`` fields)."""
    parts = line.split()
    row = {"id": parts[0], "address": parts[1], "flags": parts[2]}
    for field in parts[3:]:
        key, _, value = field.partition("=")
        row[key] = value
    return row


def cluster_status(*, host: str, port: int, password: str, timeout: float,
                   out: IO[str] = sys.stdout) -> int:
    try:
        nodes_text, info_text = _ask(host, port, password, timeout, ("CLUSTER", "NODES"),
                                     ("CLUSTER", "INFO"))
    except OSError as exc:
        print(f"distcache: no answer from {format_address(host, port)}: "
              f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    info = dict(line.split(":", 1) for line in info_text.decode().splitlines() if ":" in line)
    rows = [parse_node_line(line) for line in nodes_text.decode().splitlines() if line.strip()]
    header = ("NODE", "ADDRESS", "STATE", "KEYS", "SHARE", "BREAKER", "HINTS")
    table = [header]
    for row in rows:
        flags = row["flags"].split(",")
        state = next((f for f in flags if f in ("alive", "suspect", "down")), flags[-1])
        name = row["id"] + (" *" if "myself" in flags else "")
        table.append((name, row["address"], state, row.get("keys", "?"),
                      f"{float(row.get('share', 0)) * 100:.1f}%", row.get("breaker", "-"),
                      row.get("hints", "0")))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"cluster {info.get('cluster_state', '?')}: {len(rows)} nodes, replication factor "
          f"{info.get('cluster_replication_factor', '?')}, write_ack "
          f"{info.get('cluster_write_ack', '?')}; rebalance "
          f"{info.get('cluster_rebalance_state', '?')} ("
          f"{info.get('cluster_rebalance_keys_moved', 0)} moved); asked "
          f"{format_address(host, port)} (*)", file=out)
    for row_values in table:
        print("  ".join(v.ljust(w) for v, w in zip(row_values, widths, strict=True)).rstrip(),
              file=out)
    return 0 if info.get("cluster_state") == "ok" else 2

"""Start, watch and stop the two servers under test (loopback only), and read their
CPU time and resident memory from /proc."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import resp

LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: "DistCache 0.1.0 node node-1 listening on 127.0.0.1:40123 (storage lru_ttl, ..., pid 42)"
BANNER = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)(?:.*\bpid (?P<pid>\d+))?")
#: Environment variables DistCache reads; dropped so both servers start from the defaults
#: (a password or a default TTL inherited from the shell would skew or break the run).
DISTCACHE_ENV = ("CACHE_CAPACITY", "TTL_DEFAULT", "DISTCACHE_PASSWORD", "NODE_ID")
START_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A failure worth one clear line and a non-zero exit, not a traceback."""


@dataclass
class Server:
    """A running server under test: its process and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    pid: int
    log_path: Path
    host: str = LOOPBACK
    stopped: bool = field(default=False)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with status {self.proc.returncode}; "
                             f"last log lines:\n{tail(self.log_path)}")

    def cpu_ticks(self) -> int:
        """utime + stime of the server (all threads), in clock ticks."""
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.pid))

    def rss_bytes(self) -> int:
        """VmRSS of the server process (plus any child processes it forked)."""
        return sum(_rss_bytes(pid) for pid in _process_tree(self.pid))

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _proc_stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()


def _cpu_ticks(pid: int) -> int:
    try:
        fields = _proc_stat_fields(pid)
    except (OSError, ValueError):
        return 0
    # After the name: state(3) ppid(4) ... utime(14) stime(15), so offsets 11 and 12.
    return int(fields[11]) + int(fields[12])


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (a server that forks workers is measured whole)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_proc_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# -- redis ------------------------------------------------------------------------------------

def ensure_redis_tools() -> None:
    """Install redis-server and redis-tools with apt-get when either binary is missing."""
    missing = [b for b in ("redis-server", "redis-benchmark") if shutil.which(b) is None]
    if not missing:
        return
    print(f"{' and '.join(missing)} not found: installing redis-server and redis-tools "
          "with apt-get ...", flush=True)
    if shutil.which("apt-get") is None:
        raise BenchError("apt-get is not available; install redis-server and redis-tools "
                         "(redis-benchmark) by hand and run again")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise BenchError("not root and sudo is missing; install redis-server and "
                             "redis-tools by hand and run again")
        prefix = ["sudo"]
    apt = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    if _run_apt([*apt, "update", "-q"]) != 0:
        print("apt-get update failed; trying the install with the package lists there are",
              flush=True)
    status = _run_apt([*apt, "install", "-y", "-q", "redis-server", "redis-tools"])
    if status != 0:
        raise BenchError(f"'apt-get install redis-server redis-tools' failed with status "
                         f"{status}; install them by hand and run again")
    still = [b for b in ("redis-server", "redis-benchmark") if shutil.which(b) is None]
    if still:
        raise BenchError(f"apt-get install succeeded but {', '.join(still)} is still missing")


def _run_apt(cmd: list[str]) -> int:
    try:
        return subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise BenchError(f"could not run {shlex.join(cmd)}: {exc}") from None


def tool_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out or "unknown"


def start_redis(workdir: Path, extra_args: Sequence[str] = ()) -> Server:
    """redis-server without persistence; ``extra_args`` come last and override (the
    durability table turns the AOF on and points ``--dir`` elsewhere)."""
    port = free_port()
    log_path = workdir / f"redis-{port}.log"
    cmd = ["redis-server", "--save", "", "--appendonly", "no", "--port", str(port),
           "--bind", LOOPBACK, "--daemonize", "no", "--dir", str(workdir), *extra_args]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = Server(name="redis", proc=proc, port=port, pid=proc.pid, log_path=log_path)
    _wait_until_ready(server)
    return server


# -- distcache --------------------------------------------------------------------------------

def distcache_binary(repo: Path) -> Path:
    for candidate in (Path(sys.executable).parent / "distcache", repo / ".venv/bin/distcache"):
        if candidate.exists():
            return candidate
    raise BenchError("the distcache console script is missing; run "
                     "`.venv/bin/pip install -e .` (or `make bench`) first")


def start_distcache(repo: Path, workdir: Path, extra_args: list[str]) -> Server:
    data_dir = workdir / f"distcache-data-{time.monotonic_ns()}"
    log_path = data_dir.with_suffix(".log")
    cmd = [str(distcache_binary(repo)), "serve", "--host", LOOPBACK, "--port", "0",
           "--data-dir", str(data_dir), "--set", "plugins.lru_ttl.capacity=0", *extra_args]
    env = {k: v for k, v in os.environ.items() if k not in DISTCACHE_ENV}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir, env=env)
    try:
        host, port, pid = _wait_for_banner(proc, log_path)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if host != LOOPBACK:
        proc.kill()
        proc.wait()
        raise BenchError(f"distcache listens on {host}, not {LOOPBACK}: check --distcache-args")
    server = Server(name="distcache", proc=proc, port=port, pid=pid or proc.pid,
                    log_path=log_path)
    _wait_until_ready(server)
    return server


def _wait_for_banner(proc: subprocess.Popen[bytes], log_path: Path) -> tuple[str, int, int]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        match = BANNER.search(log_path.read_text(errors="replace"))
        if match:
            pid = int(match["pid"]) if match["pid"] else 0
            return match["host"], int(match["port"]), pid
        if proc.poll() is not None:
            raise BenchError(f"distcache exited with status {proc.returncode} before "
                             f"listening; its output:\n{tail(log_path)}")
        time.sleep(0.05)
    raise BenchError(f"distcache printed no 'listening on HOST:PORT' line within "
                     f"{START_TIMEOUT_S:.0f} s; its output:\n{tail(log_path)}")


def _wait_until_ready(server: Server) -> None:
    """Return once the server answers PING; stop it (and raise) when it never does."""
    try:
        _poll_ping(server)
    except BaseException:
        server.stop()
        raise


def _poll_ping(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        server.check_alive()
        try:
            with resp.Client(server.host, server.port, timeout=2.0) as client:
                if client.command("PING") == b"PONG":
                    return
        except (OSError, resp.RespError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} on port {server.port} does not answer PING; "
                             f"last log lines:\n{tail(server.log_path)}")
        time.sleep(0.05)

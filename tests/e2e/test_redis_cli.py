"""Issue 7, section 1: the real redis-cli against a node, interactive (in a pseudo-terminal,
through the README's session) and with commands piped into it.

Interactive redis-cli reads COMMAND DOCS at start to build its help and hints and asserts on
every reply type there, so this is where a simple string instead of a bulk one shows up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pexpect
import pytest

from distcache_core.testing.differential import RawSession

README = Path(__file__).resolve().parents[2] / "README.md"
README_PROMPT = "127.0.0.1:6379> "

pytestmark = pytest.mark.skipif(
    shutil.which("redis-cli") is None,
    reason="redis-cli is not installed and `make test` could not install it "
           "(tests/ensure_redis.sh: apt-get install redis-tools)")


def readme_session() -> list[tuple[str, list[str]]]:
    """The README's ``redis-cli -p 6379`` session: (command line, expected output lines)."""
    text = README.read_text()
    block = text[text.index("$ redis-cli -p 6379"):]
    block = block[:block.index("```")]
    session: list[tuple[str, list[str]]] = []
    for line in block.splitlines()[1:]:
        if line.startswith(README_PROMPT):
            session.append((line[len(README_PROMPT):], []))
        elif line.strip():
            session[-1][1].append(line)
    assert len(session) >= 4, "the README's redis-cli session went missing"
    return session


def spawn_cli(port: int, *args: str, tmp_path: Path) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "HOME": str(tmp_path),
           "REDISCLI_HISTFILE": str(tmp_path / "history")}
    child = pexpect.spawn("redis-cli", ["-p", str(port), *args], encoding="utf-8", timeout=10,
                          env=env, dimensions=(50, 200))
    child.expect_exact(f"127.0.0.1:{port}> ")
    return child


def run_line(child: pexpect.spawn, port: int, line: str, expected: list[str]) -> None:
    """Type ``line`` and Enter (linenoise reads a raw terminal: Enter is CR), then expect
    exactly ``expected`` between the echoed line and the next prompt."""
    child.send(line + "\r")
    child.expect_exact("\r\n" + "\r\n".join(expected) + f"\r\n127.0.0.1:{port}> ")


def test_readme_interactive_session(node, tmp_path) -> None:
    child = spawn_cli(node.port, tmp_path=tmp_path)
    try:
        for line, expected in readme_session():
            run_line(child, node.port, line, expected)
        # The help redis-cli built from COMMAND DOCS at start.
        child.send("HELP GET\r")
        child.expect_exact("Returns the string value of a key.")
        child.expect(r"group:\S* string")
        run_line(child, node.port, "LPUSH list a",
                 ["(error) ERR unknown command 'LPUSH', with args beginning with: 'list' 'a' "])
        child.send("QUIT\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_interactive_resp3(node, tmp_path) -> None:
    """``redis-cli -3`` sends HELLO 3 first and then reads RESP3 maps and sets."""
    child = spawn_cli(node.port, "-3", tmp_path=tmp_path)
    try:
        run_line(child, node.port, "SET k v", ["OK"])
        run_line(child, node.port, "CONFIG GET maxmemory", ['1# "maxmemory" => "0"'])
        child.send("COMMAND INFO get\r")
        child.expect_exact('1) "get"')
        child.expect_exact("3) 1~ readonly")  # flags are a RESP3 set of status lines
        child.expect_exact("2~ fast")
        child.expect_exact(f"127.0.0.1:{node.port}> ")
        child.send("QUIT\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_commands_piped_into_redis_cli(node) -> None:
    script = "SET k v\nGET k\nINCR n\nINCRBYFLOAT f 1.5\nGET missing\nMGET k missing\nLPUSH l a\n"
    done = subprocess.run(["redis-cli", "-p", str(node.port)], input=script,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    # Piped, redis-cli prints a nil as an empty line and an error with a blank line after.
    assert done.stdout.splitlines() == [
        "OK", "v", "1", "1.5", "", "v", "",
        "ERR unknown command 'LPUSH', with args beginning with: 'l' 'a' ", "",
    ]


def test_one_shot_commands(node) -> None:
    def cli(*args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(node.port), *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout

    assert cli("SET", "greeting", "hi") == "OK\n"
    assert cli("--raw", "GET", "greeting") == "hi\n"
    assert re.fullmatch(r"\d+\n", cli("DBSIZE"))
    with RawSession(node.port) as session:
        assert session.request(b"GET greeting\r\n").value == b"hi"


NOT_SERVED = [("LPUSH", "queue", "job-1"), ("RPUSH", "l", "a"), ("LRANGE", "l", "0", "-1"),
              ("HSET", "h", "f", "v"), ("HGETALL", "h"), ("SADD", "s", "m"),
              ("ZADD", "z", "1", "m"), ("XADD", "x", "*", "f", "v")]


def test_data_types_not_served_are_unknown_commands_as_the_readme_shows(node) -> None:
    readme = README.read_text()
    with RawSession(node.port) as session:
        for args in NOT_SERVED:
            reply = session.request(" ".join(args).encode() + b"\r\n")
            quoted = "".join(f"'{a}' " for a in args[1:])
            assert reply.raw == (f"-ERR unknown command '{args[0]}', with args beginning "
                                 f"with: {quoted}\r\n").encode()
        assert session.request(b"PING\r\n").raw == b"+PONG\r\n"  # still usable
    shown = "(error) ERR unknown command 'LPUSH', with args beginning with: 'queue' 'job-1'"
    assert shown in readme


def test_readme_benchmark_invocation_runs_every_test(node) -> None:
    """The README's redis-benchmark line covers only commands the node serves."""
    line = next(line for line in README.read_text().splitlines()
                if line.startswith("redis-benchmark -p 6379"))
    args = line.split()[1:]
    args[args.index("6379")] = str(node.port)
    done = subprocess.run(["redis-benchmark", *args, "-n", "200", "-c", "2"],
                          capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout.replace("\r", "\n")
    assert done.returncode == 0 and "Error" not in output, output
    for name in ("PING_INLINE", "SET", "GET", "INCR", "MSET"):
        assert re.search(rf"^{name}.*requests per second", output, re.M), output

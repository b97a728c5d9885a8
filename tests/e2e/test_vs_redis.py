"""Issue 7, section 1: every reply the node sends is Redis's, byte for byte.

The corpus (``redis_corpus/*.py``, one module per command group) goes to a real redis-server
7.0 and to a node; ``distcache_core.testing.differential`` compares the raw replies and names
the few fields that legitimately differ. ``make test`` installs redis-server; without it these
tests skip, saying why.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from distcache_core.testing.differential import Case, RawSession, parse_reply, run_case

CORPUS_DIR = Path(__file__).parent / "redis_corpus"


def load_corpus() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS_DIR.glob("*.py")):
        module_cases = runpy.run_path(str(path))["CASES"]
        cases.extend(module_cases)
    names = [case.name for case in cases]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"case names must be unique: {sorted(duplicates)}"
    return cases


CORPUS = load_corpus()


def _params() -> list:
    params = []
    for case in CORPUS:
        marks = [pytest.mark.xfail(strict=True, reason=case.differs)] if case.differs else []
        for resp in case.resp:
            params.append(pytest.param(case, resp, id=f"{case.name}-resp{resp}", marks=marks))
    return params


@pytest.mark.parametrize(("case", "resp"), _params())
def test_same_replies_as_redis(case: Case, resp: int, redis_server, builtin_node) -> None:
    problems = run_case(case, redis_server.port, builtin_node.port, resp)
    assert not problems, "\n".join(problems)


def test_corpus_covers_every_command(redis_server, builtin_node) -> None:
    """Each command the node serves that Redis also has is in some case."""
    with RawSession(builtin_node.port) as session:
        listed = session.request(b"COMMAND LIST\r\n")
    served = {item.value.decode() for item in listed.items or () if item.value}
    with RawSession(redis_server.port) as session:
        redis_listed = session.request(b"COMMAND LIST\r\n")
    redis_commands = {item.value.decode() for item in redis_listed.items or () if item.value}
    covered = set().union(*(case.command_names() for case in CORPUS))
    missing = sorted((served & redis_commands) - covered)
    assert not missing, f"commands without a differential case: {missing}"


def test_parse_reply_splits_a_stream() -> None:
    stream = (b"+OK\r\n$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n%1\r\n$1\r\nk\r\n~1\r\n+f\r\n"
              b"=8\r\ntxt:abcd\r\n*-1\r\n_\r\n,1.5\r\n#t\r\n")
    kinds = []
    pos = 0
    while pos < len(stream):
        reply, pos = parse_reply(stream, pos)
        kinds.append(reply.kind)
    assert kinds == ["+", "$", "*", "%", "=", "*", "_", ",", "#"]
    nested, _ = parse_reply(b"%1\r\n$1\r\nk\r\n~1\r\n+f\r\n")
    assert nested.pairs()[0][1].items[0].value == b"f"


def test_protocol_errors_count_as_error_replies(redis_server, builtin_node) -> None:
    """A protocol error's reply counts in total_error_replies and errorstats, as in Redis."""
    infos = []
    for port in (redis_server.port, builtin_node.port):
        with RawSession(port) as control:
            assert control.request(b"CONFIG RESETSTAT\r\n").raw == b"+OK\r\n"
        with RawSession(port) as broken:
            reply = broken.request(b"*1\r\n$x\r\n")
            assert reply.raw == b"-ERR Protocol error: invalid bulk length\r\n"
        with RawSession(port) as control:
            text = (control.request(b"INFO errorstats\r\n").value or b"").decode()
            stats = (control.request(b"INFO stats\r\n").value or b"").decode()
        infos.append((text.splitlines()[1:], [line for line in stats.splitlines()
                                              if line.startswith("total_error_replies")]))
    assert infos[0] == infos[1] == (["errorstat_ERR:count=1"], ["total_error_replies:1"])

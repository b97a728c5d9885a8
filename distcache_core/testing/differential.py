"""Differential testing: the same requests to a real ``redis-server`` and to a node, compared
reply by reply on the raw bytes.

A corpus is a list of :class:`Case`: requests sent in order on one fresh connection (after
``HELLO 3`` when the case runs in RESP3). Each request is compared byte for byte unless it
names another :data:`Compare`; the few replies that legitimately differ (ids, clocks, versions,
memory figures, DistCache's own metadata) use the comparators below, each saying what it
ignores and why. A case the node does not match yet carries ``differs="reason"``; the test
expects it to fail, so the reason must be removed once it passes.

Everything here is sans-IO except :class:`RawSession`, a blocking socket that reads one whole
reply at a time with :func:`parse_reply`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence

import attrs

from ..protocol import encode_request

__all__ = [
    "Arg", "Case", "Compare", "Incomplete", "Pause", "RawSession", "Reply", "Req", "Request",
    "command_docs", "command_info", "exact", "info_fields", "map_keys", "masked", "parse_reply",
    "run_case", "scan_reply", "shape", "subset", "unordered",
]


# --- replies ----------------------------------------------------------------------------------

#: RESP3 aggregate type markers; a map or attribute has two children per entry.
AGGREGATES = frozenset("*%~|>")
SCALARS = frozenset("+-:$,#_(=!")


@attrs.frozen
class Reply:
    """One reply as it arrived: its type marker, its exact bytes, and either a scalar value
    (``None`` for a null bulk or null array) or its children."""

    kind: str
    raw: bytes
    value: bytes | None = None
    items: tuple[Reply, ...] | None = None

    def describe(self) -> str:
        return repr(self.raw if len(self.raw) <= 400 else self.raw[:400] + b"...")

    def pairs(self) -> list[tuple[Reply, Reply]]:
        """A map's entries; RESP2 sends a map as a flat array of key, value, key, value."""
        items = self.items or ()
        return [(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]


CLOSED = Reply("closed", b"")


class Incomplete(Exception):
    """The buffer ends before the reply does."""


def _line(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    return buf[pos:end], end + 2


def parse_reply(buf: bytes, pos: int = 0) -> tuple[Reply, int]:
    """Parse the reply starting at ``buf[pos]``: ``(reply, end)``, or :class:`Incomplete`."""
    if pos >= len(buf):
        raise Incomplete
    kind = chr(buf[pos])
    header, after = _line(buf, pos + 1)
    if kind in "$=!":
        length = int(header)
        if length < 0:
            return Reply(kind, buf[pos:after]), after
        end = after + length + 2
        if end > len(buf):
            raise Incomplete
        return Reply(kind, buf[pos:end], value=buf[after:after + length]), end
    if kind in AGGREGATES:
        count = int(header)
        if count < 0:
            return Reply(kind, buf[pos:after]), after
        if kind in "%|":
            count *= 2
        items = []
        cursor = after
        for _ in range(count):
            item, cursor = parse_reply(buf, cursor)
            items.append(item)
        return Reply(kind, buf[pos:cursor], items=tuple(items)), cursor
    if kind in SCALARS:
        return Reply(kind, buf[pos:after], value=header), after
    raise ValueError(f"not a RESP reply at offset {pos}: {buf[pos:pos + 40]!r}")


# --- comparators ------------------------------------------------------------------------------

#: ``compare(redis_reply, node_reply)`` -> None when they agree, else what differs.
Compare = Callable[[Reply, Reply], str | None]


def exact(expected: Reply, actual: Reply) -> str | None:
    """Byte for byte: the default."""
    if expected.raw == actual.raw:
        return None
    return f"redis {expected.describe()} != node {actual.describe()}"


def _shape_of(reply: Reply, path: str) -> list[str]:
    if reply.items is None:
        return [f"{path}{reply.kind}{'null' if reply.value is None and reply.kind in '$*' else ''}"]
    out = [f"{path}{reply.kind}{len(reply.items)}"]
    for index, item in enumerate(reply.items):
        out.extend(_shape_of(item, f"{path}{index}."))
    return out


def shape(expected: Reply, actual: Reply) -> str | None:
    """The same types and lengths at every level, any scalar values: for clocks and ids
    (TIME, CLIENT ID, LASTSAVE) and values that depend on the process (a port, a directory)."""
    if _shape_of(expected, "") == _shape_of(actual, ""):
        return None
    return f"shape differs: redis {expected.describe()} != node {actual.describe()}"


def unordered(expected: Reply, actual: Reply) -> str | None:
    """The same aggregate with the same elements in any order (KEYS: hash-table order)."""
    if expected.items is None or actual.items is None:
        return exact(expected, actual)
    if expected.kind == actual.kind and sorted(i.raw for i in expected.items) == sorted(
            i.raw for i in actual.items):
        return None
    return f"redis {expected.describe()} != node {actual.describe()} (in any order)"


def subset(expected: Reply, actual: Reply) -> str | None:
    """An aggregate whose elements Redis also sends (COMMAND LIST: Redis has more commands)."""
    if expected.items is None or actual.items is None:
        return exact(expected, actual)
    known = {item.raw for item in expected.items}
    missing = [item.raw for item in actual.items
               if item.raw not in known and item.value not in NODE_ONLY_SUBCOMMANDS
               and item.value not in NODE_ONLY_COMMANDS]
    if expected.kind != actual.kind or missing:
        return f"node sends {missing} that Redis does not (or type {actual.kind!r})"
    return None


def scan_reply(expected: Reply, actual: Reply) -> str | None:
    """SCAN: the same cursor and the same keys in any order (valid while one call returns
    every key, so the cursor is 0 on both)."""
    if (expected.items is None or actual.items is None or len(expected.items) != 2
            or len(actual.items) != 2):
        return exact(expected, actual)
    return exact(expected.items[0], actual.items[0]) or unordered(expected.items[1],
                                                                 actual.items[1])


def map_keys(expected: Reply, actual: Reply) -> str | None:
    """Maps with the same keys in the same order at every level and values of the same types,
    any scalar values: figures that are each process's own (MEMORY STATS: Redis's come from
    its allocator, a node's from its process and engine)."""
    if expected.kind != actual.kind or (expected.items is None) != (actual.items is None):
        return f"redis {expected.describe()} != node {actual.describe()}"
    if expected.items is None or actual.items is None:
        return None
    if expected.kind not in "%|" and not (expected.kind == "*" and len(expected.items) % 2 == 0
                                          and all(i.kind == "$" for i in expected.items[::2])):
        return shape(expected, actual)
    if len(expected.items) != len(actual.items):
        return f"redis {expected.describe()} != node {actual.describe()}"
    for (key_e, value_e), (key_a, value_a) in zip(expected.pairs(), actual.pairs(), strict=True):
        problem = exact(key_e, key_a) or map_keys(value_e, value_a)
        if problem:
            return f"at {key_e.value!r}: {problem}"
    return None


def masked(*keys: str) -> Compare:
    """A map whose ``keys`` are compared by :func:`shape` and the rest exactly (HELLO: the
    client id counts each server's own connections)."""
    wanted = {key.encode() for key in keys}

    def compare(expected: Reply, actual: Reply) -> str | None:
        if expected.items is None or actual.items is None:
            return exact(expected, actual)
        problem = shape(expected, actual)
        if problem:
            return problem
        for (key_e, value_e), (key_a, value_a) in zip(expected.pairs(), actual.pairs(),
                                                      strict=True):
            problem = exact(key_e, key_a) or (
                shape(value_e, value_a) if key_e.value in wanted else exact(value_e, value_a))
            if problem:
                return f"at {key_e.value!r}: {problem}"
        return None

    return compare


def info_fields(*fields: str) -> Compare:
    """INFO: the same reply type, ``# Section`` headers the node sends that Redis also
    sends, and equal values for ``fields`` (present in both, or absent from both). Every other
    field is the process's own (pid, memory, uptime, versions) or Redis-only."""

    def parse(reply: Reply) -> tuple[list[str], dict[str, str]]:
        text = (reply.value or b"").decode("utf-8", "replace")
        if reply.kind == "=":
            text = text[4:]  # the verbatim string's "txt:" format prefix
        sections, values = [], {}
        for line in text.split("\r\n"):
            if line.startswith("# "):
                sections.append(line[2:])
            elif ":" in line:
                key, _, value = line.partition(":")
                values[key] = value
        return sections, values

    def compare(expected: Reply, actual: Reply) -> str | None:
        if expected.kind != actual.kind:
            return f"type {expected.kind!r} != {actual.kind!r}"
        if expected.value is None or actual.value is None:
            return exact(expected, actual)
        redis_sections, redis_values = parse(expected)
        node_sections, node_values = parse(actual)
        extra = [s for s in node_sections if s not in redis_sections]
        if extra:
            return f"node sends sections Redis does not: {extra}"
        for field in fields:
            if redis_values.get(field) != node_values.get(field):
                return (f"{field}: redis {redis_values.get(field)!r} != "
                        f"node {node_values.get(field)!r}")
        return None

    return compare


def _by_name(entries: Sequence[Reply]) -> dict[bytes | None, Reply]:
    return {entry.items[0].value: entry for entry in entries if entry.items}


def _kinds(expected: Reply, actual: Reply) -> str | None:
    if expected.kind != actual.kind:
        return f"type {expected.kind!r} != {actual.kind!r}: redis {expected.describe()} " \
               f"!= node {actual.describe()}"
    return None


#: Subcommands a node serves that redis-server 7.0 does not know, and why.
NODE_ONLY_SUBCOMMANDS = {
    b"client|setinfo": "Redis 7.2's; redis-py 5 sends it on every new connection",
    b"cluster|keyowner": "DistCache's: the nodes holding a key (Redis Cluster has slots)",
}
#: Commands a node serves that Redis has no counterpart of, and why.
NODE_ONLY_COMMANDS = {
    b"dc.auth": "the cluster's internal peer commands (DESIGN.md section 5)",
    b"dc.heartbeat": "internal", b"dc.view": "internal", b"dc.apply": "internal",
    b"dc.count": "internal", b"dc.keys": "internal", b"dc.scan": "internal",
    b"dc.rebalanced": "internal",
}


def _key_specs(expected: Reply, actual: Reply) -> str | None:
    """Key specs alike but for Redis's ``notes`` (its documentation's wording)."""
    def fields(spec: Reply) -> list[tuple[bytes, bytes]]:
        return [(key.raw, value.raw) for key, value in spec.pairs() if key.value != b"notes"]
    problem = _kinds(expected, actual)
    if problem or expected.items is None or actual.items is None:
        return problem or exact(expected, actual)
    if len(expected.items) != len(actual.items) or any(
            fields(e) != fields(a) for e, a in zip(expected.items, actual.items, strict=True)):
        return f"redis {expected.describe()} != node {actual.describe()}"
    return None


def _command_entry(expected: Reply, actual: Reply) -> str | None:
    if expected.items is None or actual.items is None or len(expected.items) != len(
            actual.items):
        return exact(expected, actual)
    name = expected.items[0].value
    # name, arity, flags, first key, last key, key step, ACL categories, and the key specs
    # (their flags, and where the keys are): Redis's facts, which clients route and parse by.
    # Tips and subcommands: the types only (DistCache implements fewer subcommands). A command
    # with movable keys (EVAL's numkeys) finds them in code, so its key specs are typed only.
    for index in range(7):
        problem = exact(expected.items[index], actual.items[index])
        if problem:
            return f"{name!r} field {index}: {problem}"
    movable = any(flag.value == b"movablekeys" for flag in expected.items[2].items or ())
    problem = None if movable else _key_specs(expected.items[8], actual.items[8])
    if problem:
        return f"{name!r} key specs: {problem}"
    for index in range(7, len(expected.items)):
        problem = _kinds(expected.items[index], actual.items[index])
        if problem:
            return f"{name!r} field {index}: {problem}"
    subcommands = expected.items[-1].items or ()
    redis_subcommands = _by_name(subcommands)
    for entry in actual.items[-1].items or ():
        sub_name = entry.items[0].value if entry.items else None
        if sub_name in NODE_ONLY_SUBCOMMANDS:
            continue
        wanted = redis_subcommands.get(sub_name)
        if wanted is None:
            return f"{name!r}: subcommand {entry.describe()} is not Redis's"
        problem = _command_entry(wanted, entry)
        if problem:
            return problem
    return None


def command_info(expected: Reply, actual: Reply) -> str | None:
    """COMMAND and COMMAND INFO: each command the node reports is compared with Redis's
    entry of the same name (Redis knows more commands than a node serves)."""
    if expected.items is None or actual.items is None:
        return exact(expected, actual)
    problem = _kinds(expected, actual)
    if problem:
        return problem
    redis_entries = _by_name([e for e in expected.items if e.items])
    for position, entry in enumerate(actual.items):
        if entry.items is None:  # a command the node does not know: nil, as Redis sends
            problem = exact(expected.items[position], entry) if position < len(
                expected.items) else "node sent more entries"
        elif entry.items[0].value in NODE_ONLY_COMMANDS:
            continue
        else:
            wanted = redis_entries.get(entry.items[0].value)
            problem = (_command_entry(wanted, entry) if wanted is not None
                       else f"node reports {entry.items[0].value!r}, Redis does not")
        if problem:
            return problem
    return None


#: COMMAND DOCS fields compared by value; summary, since, complexity and the rest are the
#: documentation's wording, compared by type only (DistCache words its own docs).
DOC_FIELDS_EXACT = (b"group",)


def _docs_map(expected: Reply, actual: Reply, where: str) -> str | None:
    problem = _kinds(expected, actual)
    if problem:
        return f"{where}: {problem}"
    redis_docs = {key.value: (key, value) for key, value in expected.pairs()}
    for key, value in actual.pairs():
        if key.value not in redis_docs:
            return f"{where}: node sends {key.value!r}, Redis does not"
        redis_key, redis_value = redis_docs[key.value]
        problem = exact(redis_key, key) or _kinds(redis_value, value)
        if not problem and key.value in DOC_FIELDS_EXACT:
            problem = exact(redis_value, value)
        if not problem and key.value == b"subcommands":
            problem = _docs_table(redis_value, value)
        if problem:
            return f"{where} {key.value!r}: {problem}"
    return None


def _docs_table(expected: Reply, actual: Reply) -> str | None:
    problem = _kinds(expected, actual)
    if problem:
        return problem
    redis_docs = {key.value: (key, value) for key, value in expected.pairs()}
    for key, value in actual.pairs():
        if key.value in NODE_ONLY_SUBCOMMANDS or key.value in NODE_ONLY_COMMANDS:
            continue
        if key.value not in redis_docs:
            return f"node documents {key.value!r}, Redis does not"
        redis_key, redis_value = redis_docs[key.value]
        problem = exact(redis_key, key) or _docs_map(redis_value, value, repr(key.value))
        if problem:
            return problem
    return None


def command_docs(expected: Reply, actual: Reply) -> str | None:
    """COMMAND DOCS: a map of command name to a map of documentation fields. The node's
    commands and fields must be Redis's, with Redis's types; see :data:`DOC_FIELDS_EXACT`."""
    if expected.items is None or actual.items is None:
        return exact(expected, actual)
    return _docs_table(expected, actual)


# --- requests and cases -----------------------------------------------------------------------

Arg = bytes | str | int


@attrs.frozen
class Req:
    """One request and how its reply is compared. ``args`` are sent as a RESP multibulk
    request; ``bytes`` is sent as it is (inline commands, broken framing)."""

    args: tuple[Arg, ...] | bytes
    compare: Compare = exact
    #: Which of the case's connections sends it (0: the first; others open when first used,
    #: after ``HELLO 3`` in RESP3): for what one client sees of another (WATCH, SWAPDB).
    conn: int = 0

    def encode(self) -> bytes:
        if isinstance(self.args, bytes):
            return self.args
        return encode_request(*self.args)

    def label(self) -> str:
        if isinstance(self.args, bytes):
            return repr(self.args[:60])
        words = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)
                 for a in self.args]
        text = " ".join(w if len(w) <= 40 else w[:37] + "..." for w in words[:12])
        return text + (" ..." if len(words) > 12 else "")

    def command_names(self) -> set[str]:
        """The command's name and, for a container, ``name|subcommand`` (lowercase)."""
        if isinstance(self.args, bytes):
            words = [w.decode("utf-8", "replace") for w in self.args.split()[:2]]
        else:
            words = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)
                     for a in self.args[:2]]
        words = [w.lower() for w in words]
        if not words:
            return set()
        return {words[0], "|".join(words)} if len(words) == 2 else {words[0]}


@attrs.frozen
class Pause:
    """Not a request: wait this long before the next one (a key's expiry passing)."""

    seconds: float

    def command_names(self) -> set[str]:
        return set()


Request = Req | Pause | tuple[Arg, ...] | bytes


def _as_req(request: Request) -> Req | Pause:
    return request if isinstance(request, (Req, Pause)) else Req(request)


@attrs.frozen
class Case:
    """Requests sent in order on fresh connections to each server, after FLUSHALL: one
    connection unless a request names another (``Req(..., conn=1)``); :class:`Pause` waits.

    :param resp: the protocol versions to run in (RESP3 sends ``HELLO 3`` first).
    :param differs: why the node does not match Redis yet; the test then expects a mismatch.
    """

    name: str
    requests: tuple[Req | Pause, ...] = attrs.field(
        converter=lambda requests: tuple(_as_req(r) for r in requests))
    resp: tuple[int, ...] = (2, 3)
    differs: str = ""

    def command_names(self) -> set[str]:
        return set().union(*(request.command_names() for request in self.requests))


# --- running ----------------------------------------------------------------------------------


class RawSession:
    """A blocking client that sends raw requests and reads whole raw replies."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def request(self, data: bytes) -> Reply:
        self.sock.sendall(data)
        return self.read()

    def read(self) -> Reply:
        while True:
            if self.buffer:
                try:
                    reply, end = parse_reply(self.buffer)
                except Incomplete:
                    pass
                else:
                    self.buffer = self.buffer[end:]
                    return reply
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buffer:
                    raise ConnectionError(f"connection closed inside a reply: {self.buffer!r}")
                return CLOSED
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


HELLO_3 = Req(("HELLO", "3"), compare=masked("id", "version"))


def run_case(case: Case, redis_port: int, node_port: int, resp: int = 2) -> list[str]:
    """Run ``case`` against both servers; one line per request whose replies differ."""
    for port in (redis_port, node_port):
        with RawSession(port) as control:
            flushed = control.request(encode_request("FLUSHALL"))
            if flushed.raw != b"+OK\r\n":
                raise RuntimeError(f"FLUSHALL on port {port} failed: {flushed.describe()}")
    requests: Sequence[Req | Pause] = ((HELLO_3,) if resp == 3 else ()) + case.requests
    problems: list[str] = []
    sessions: dict[int, tuple[RawSession, RawSession]] = {}
    try:
        for index, request in enumerate(requests):
            if isinstance(request, Pause):
                time.sleep(request.seconds)
                continue
            pair = sessions.get(request.conn)
            if pair is None:
                pair = sessions[request.conn] = (RawSession(redis_port), RawSession(node_port))
                if resp == 3 and request.conn:
                    for session in pair:
                        session.request(HELLO_3.encode())
            data = request.encode()
            expected = pair[0].request(data)
            actual = pair[1].request(data)
            problem = request.compare(expected, actual)
            if problem:
                where = f" (connection {request.conn})" if request.conn else ""
                problems.append(f"#{index}{where} {request.label()}: {problem}")
            if expected is CLOSED or actual is CLOSED:
                break
    finally:
        for pair in sessions.values():
            for session in pair:
                session.close()
    return problems

"""Peer replies on the wire: split a byte stream into whole replies, kept as raw bytes.

A forwarded command's reply goes back to the client exactly as the owner wrote it, so the
forwarding node never decodes and re-encodes it: it only needs to know where each reply ends.
:class:`ReplySplitter` finds the ends (RESP2 and RESP3 types, nested aggregates). Replies the
router must combine (MGET parts, DBSIZE counts) are decoded from those bytes with hiredis by
:func:`decode`.
"""

from __future__ import annotations

import re
from typing import Any

import hiredis

from ..errors import CommandError
from ..protocol.encoder import BULK_HEADERS

_CRLF = b"\r\n"
#: First bytes of the replies that are one line: status, error, integer, and RESP3's null,
#: double, boolean and big number.
_LINE_TYPES = frozenset(b"+-:_,#(")
#: Bulk-like: a length line then that many bytes and CRLF (blob error, verbatim string too).
_BULK_TYPES = frozenset(b"$!=")
#: Aggregates of N elements (array, set, push) and of N pairs (map, attribute).
_ARRAY_TYPES = frozenset(b"*~>")
_PAIR_TYPES = frozenset(b"%|")


class ReplyProtocolError(Exception):
    """The peer sent bytes that are not RESP: the connection cannot be trusted any more."""


def reply_end(buf: bytes | bytearray, pos: int) -> int:
    """Where the reply starting at ``pos`` ends (the index after it), or -1 if ``buf`` does not
    hold all of it yet."""
    line_end = buf.find(_CRLF, pos)
    if line_end < 0:
        return -1
    kind = buf[pos]
    if kind in _LINE_TYPES:
        return line_end + 2
    try:
        count = int(buf[pos + 1:line_end])
    except ValueError:
        raise ReplyProtocolError(f"bad length line {bytes(buf[pos:line_end])[:64]!r}") from None
    if kind in _BULK_TYPES:
        if count < 0:
            return line_end + 2
        end = line_end + 4 + count
        return end if end <= len(buf) else -1
    if kind in _PAIR_TYPES:
        count *= 2
    elif kind not in _ARRAY_TYPES:
        raise ReplyProtocolError(f"unknown reply type {chr(kind)!r}")
    end = line_end + 2
    for _ in range(count):  # a null array (*-1) has no elements
        end = reply_end(buf, end)
        if end < 0:
            return -1
    if kind == 0x7C:  # an attribute '|' is followed by the reply it describes
        return reply_end(buf, end)
    return end


def _short_reply_pattern() -> bytes:
    """One reply that is a status, integer or error line, nil, or a bulk string of fewer than
    100 bytes, as a regular expression: the bulk's length is read digit by digit (a trie of
    alternatives), so the engine tries a few branches per reply."""
    lengths = [rb"0\r\n\r\n"]
    for tens in range(1, 10):
        options = [rb"\r\n.{%d}\r\n" % tens]
        options += [rb"%d\r\n.{%d}\r\n" % (unit, 10 * tens + unit) for unit in range(10)]
        lengths.append(rb"%d(?:%s)" % (tens, b"|".join(options)))
    return rb"(?:\$(?:-1\r\n|%s)|[+:\-][^\r\n]*\r\n)" % b"|".join(lengths)


_SHORT_REPLY = _short_reply_pattern()
#: count -> the ``match`` of a pattern of exactly that many short replies (compiled on first
#: use; counts up to :data:`SHORT_RUNS_MAX`).
_short_runs: dict[int, Any] = {}
SHORT_RUNS_MAX = 64


def skip_replies(buf: bytes, pos: int, count: int) -> tuple[int, int]:
    """Step over up to ``count`` whole replies from ``pos``: where the last one found ends and
    how many were found (fewer when ``buf`` ends first).

    The forwarding node pays this for every forwarded reply. When all ``count`` are short
    (status, integer, error, nil, a bulk string under 100 bytes) one regular expression
    steps over them (~850 instructions a reply, callgrind); otherwise a loop does, reading
    a bulk string's length byte by byte when it has one or two digits (~1,900 a reply;
    ``find`` and ``int``, each a C call with argument parsing, cost ~1,400 together). A bulk
    string's CRLF is checked either way, so a peer that breaks framing is caught."""
    run = _short_runs.get(count)
    if run is None and count <= SHORT_RUNS_MAX:
        run = _short_runs[count] = re.compile(rb"%s{%d}" % (_SHORT_REPLY, count),
                                              re.DOTALL).match
    if run is not None:
        match = run(buf, pos)
        if match is not None:
            return match.end(), count
    size = len(buf)
    found = 0
    try:
        while found < count:
            kind = buf[pos]
            if kind == 0x24:  # '$': a bulk string, the commonest forwarded reply
                if buf[pos + 2] == 0x0D:  # one digit: "$n\r\n", n bytes, CRLF (n + 6)
                    end = pos + buf[pos + 1] - 42
                elif buf[pos + 3] == 0x0D and buf[pos + 1] != 0x2D:  # two digits (not "$-1")
                    end = pos + buf[pos + 1] * 10 + buf[pos + 2] - 521
                else:
                    end = reply_end(buf, pos)
                    if end < 0:
                        break
                if end > size:
                    break
                if buf[end - 2] != 0x0D:
                    raise ReplyProtocolError(f"bad bulk reply {bytes(buf[pos:pos + 16])!r}")
            elif kind == 0x2B or kind == 0x3A:  # '+' status, ':' integer
                end = buf.find(_CRLF, pos) + 2
                if end < 2:
                    break
            else:
                end = reply_end(buf, pos)
                if end < 0:
                    break
            pos = end
            found += 1
    except IndexError:  # the buffer ends inside a reply's first line
        pass
    return pos, found


class ReplySplitter:
    """Feed bytes, get whole replies back as ``bytes`` (one per request, in order)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        append = out.append
        find = buf.find
        pos = 0
        size = len(buf)
        while pos < size:
            kind = buf[pos]
            if kind == 0x24:  # '$': a bulk string, the commonest forwarded reply, inline
                line_end = find(_CRLF, pos)
                if line_end < 0:
                    break
                length = int(buf[pos + 1:line_end])
                end = line_end + 2 if length < 0 else line_end + 4 + length
                if end > size:
                    break
            elif kind == 0x2B or kind == 0x3A:  # '+' status, ':' integer
                end = find(_CRLF, pos) + 2
                if end < 2:
                    break
            else:
                end = reply_end(buf, pos)
                if end < 0:
                    break
            append(buf[pos:end])
            pos = end
        self._buffer = buf[pos:] if pos < size else b""
        return out

    def pending_bytes(self) -> int:
        return len(self._buffer)


def decode(raw: bytes) -> Any:
    """One raw reply as Python values (hiredis): bulk and status replies are ``bytes``,
    integers ``int``, nil None, arrays lists; an error becomes a ``CommandError`` value
    (returned, not raised, so it can sit inside an array)."""
    reader = hiredis.Reader(replyError=CommandError)
    reader.feed(raw)
    value = reader.gets()
    if value is False:
        raise ReplyProtocolError("incomplete reply")
    return value


def is_error(raw: bytes) -> bool:
    return raw[:1] in (b"-", b"!")


def error_text(raw: bytes) -> str:
    """The message of an error reply (without the ``-`` and the CRLF)."""
    value = decode(raw)
    return value.message if isinstance(value, CommandError) else str(value)


def encode_command(*args: bytes | str | int) -> bytes:
    """A RESP array of bulk strings, as clients send requests (for internal commands)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


_ARRAY_HEADERS = [b"*%d\r\n" % n for n in range(16)]
#: One formatting call for the commonest requests (a key, a key and a value): measured about
#: twice as fast as building and joining the parts.
_TWO = b"*2\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
_THREE = b"*3\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"


def encode_argv(argv: list[bytes]) -> bytes:
    """A client's argument vector as a request again (to forward it)."""
    count = len(argv)
    if count == 2:
        a, b = argv
        return _TWO % (len(a), a, len(b), b)
    if count == 3:
        a, b, c = argv
        return _THREE % (len(a), a, len(b), b, len(c), c)
    parts = [_ARRAY_HEADERS[count] if count < 16 else b"*%d\r\n" % count]
    append = parts.append
    headers = BULK_HEADERS
    for arg in argv:
        size = len(arg)
        append(headers[size] if size < 1024 else b"$%d\r\n" % size)
        append(arg)
        append(_CRLF)
    return b"".join(parts)

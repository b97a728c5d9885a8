"""The reference RESP2 request parser: a pure-Python port of Redis 7's ``processInlineBuffer`` /
``processMultibulkBuffer`` (and of ``sdssplitargs`` and ``string2ll``).

It is the oracle in the tests, and :class:`~distcache_core.protocol.parser.RequestParser` hands
it inline requests, requests split across reads, and anything malformed.

Where Redis's outcome depends on how TCP split the bytes, both parsers give the outcome of a
client that sends one byte at a time, so the result never depends on the chunking: a line
(inline request, ``*`` or ``$`` header) whose bytes before its terminator exceed
``max_inline_len`` is refused even when it arrives whole.
"""

from __future__ import annotations

import io
import re

import attrs

__all__ = ["ProtocolLimits", "ReferenceParser", "split_args", "string2ll"]


@attrs.frozen(kw_only=True)
class ProtocolLimits:
    """Bounds on what a client may make the server buffer before a command is complete."""

    max_bulk_len: int = 512 * 1024 * 1024
    """Longest bulk argument in bytes (Redis ``proto-max-bulk-len``)."""
    max_multibulk_len: int = 1024 * 1024
    """Most arguments in one multibulk request (Redis 7 allows up to ``INT_MAX``)."""
    max_inline_len: int = 64 * 1024
    """Longest inline request or header line in bytes (Redis ``PROTO_INLINE_MAX_SIZE``)."""


_INT = re.compile(rb"0|-?[1-9][0-9]*").fullmatch
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def string2ll(text: bytes | bytearray) -> int | None:
    """Parse a signed 64-bit integer as Redis's ``string2ll`` does, or return None.

    No sign but ``-``, no leading zeros, no ``-0``, no spaces, at most 20 characters.
    """
    if not 0 < len(text) < 21 or _INT(text) is None:
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


_ISSPACE = frozenset(b" \t\n\r\x0b\x0c")  # C isspace(): skips blanks, may follow a closing quote
_TOKEN_END = frozenset(b" \n\r\t")  # but only these end an unquoted token (not \v, \f)
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_NEEDS_FULL_SPLIT = re.compile(rb"[\"'\x0b\x0c]").search


def split_args(line: bytes) -> list[bytes] | None:
    """Split an inline request as Redis's ``sdssplitargs``; None means unbalanced quotes.

    ``line`` never holds a NUL byte: Redis finds the end of an inline line with ``strchr``.
    """
    if _NEEDS_FULL_SPLIT(line) is None:
        return line.split()  # with no quote, \v or \f this splits on exactly _TOKEN_END
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _ISSPACE:
            i += 1
        if i >= n:
            return args
        token = bytearray()
        quote = 0  # the open quote character, 0 outside quotes
        while True:
            c = line[i] if i < n else 0
            if not quote:
                if i >= n or c in _TOKEN_END:
                    i += 1
                    break
                if c == 0x22 or c == 0x27:
                    quote = c
                else:
                    token.append(c)
            elif i >= n:
                return None  # unterminated quotes
            elif c == quote:  # a closing quote must be followed by a space or the end
                if i + 1 < n and line[i + 1] not in _ISSPACE:
                    return None
                i += 1
                break
            elif (c == 0x5C and quote == 0x22 and i + 3 < n and line[i + 1] == 0x78
                    and line[i + 2] in _HEX and line[i + 3] in _HEX):
                token.append(int(line[i + 2:i + 4], 16))  # "\xHH"
                i += 3
            elif c == 0x5C and i + 1 < n and (quote == 0x22 or line[i + 1] == 0x27):
                i += 1  # "\n" and friends in double quotes, only "\'" in single quotes
                token.append(_ESCAPES.get(line[i], line[i]) if quote == 0x22 else 0x27)
            else:
                token.append(c)
            i += 1
        args.append(bytes(token))


def _got_char(byte: int) -> str:
    """The ``%c`` of "expected '$', got '%c'": Redis maps CR/LF in errors to spaces and sends
    other bytes raw; a byte >= 0x80 becomes a lone surrogate that ``encode_error`` writes back."""
    if byte in (10, 13):
        return " "
    return bytes((byte,)).decode("utf-8", "surrogateescape")


_IDLE, _INLINE, _MULTIBULK = 0, 1, 2
_BIG_BULK = 32 * 1024  # Redis's PROTO_MBULK_BIG_ARG


class ReferenceParser:
    """Pure-Python RESP2 request parser; same API and results as :class:`RequestParser`."""

    def __init__(self, limits: ProtocolLimits = ProtocolLimits()) -> None:
        self.limits = limits
        self.authenticated = True
        """False applies Redis's limits for clients that have not passed AUTH (at most 10
        arguments, bulks of at most 16384 bytes). Redis parses and runs one command at a time,
        so an AUTH changes the limits for the very next request, even one in the same read:
        a request past these limits that follows a complete request in the same call is
        therefore not refused yet: parsing stops before it (:attr:`waiting`), the caller runs
        what it got and calls again, and the limits then in force decide."""
        self.error: str | None = None
        """Set when framing is lost: the text after ``-ERR Protocol error: ``."""
        self._buf = bytearray()  # unparsed input; index 0 is the start of the current line
        self._reqtype = _IDLE
        self._scanned = 0  # bytes after the line start known to hold no terminator; -1: a NUL
        self._argc = 0  # bulks still to read in the current multibulk request
        self._bulklen = -1  # length of the bulk being read, -1 while its header is pending
        self._args: list[bytes] = []
        # A large bulk that is still arriving is written into a BytesIO as it comes, and the
        # BytesIO hands its buffer over as the value without copying it (``getvalue`` on an
        # unshared buffer): the value's memory grows with what arrived, by realloc (mremap for
        # a large block, no copy), and never exists twice. Joining the reads instead held them
        # and the joined copy at once: a 100 MB SET peaked at 2x its size, and the freed reads
        # left 90 MB in the heap. (Growing the bytearray and slicing it out copied three times:
        # 10 MB in 64 KB reads took 17 ms.)
        self._big: io.BytesIO | None = None
        self._big_missing = 0  # bytes of the large bulk still to come, its 2 trailing ones too
        self._request_start = 0  # where the multibulk request being read began in the buffer
        self.waiting = False
        """True when :meth:`parse` stopped early, before the bytes it holds are used up: call
        it again (with ``b""``) once the commands it returned have run. See ``authenticated``."""

    @property
    def idle(self) -> bool:
        """True at a request boundary with nothing buffered."""
        return not self._reqtype and not self._buf

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Return the commands completed by ``data``; see :meth:`RequestParser.feed` (and
        :attr:`waiting`)."""
        return self.parse(data, handoff=False)[0]

    def parse(self, data: bytes, *, handoff: bool) -> tuple[list[list[bytes]], bytes]:
        """Parse ``data``; with ``handoff``, stop at the first request boundary after at least
        one request where a multibulk request starts, and return the bytes from there."""
        self.waiting = False
        if self.error is not None:
            return [], b""
        commands: list[list[bytes]] = []
        finished = False  # a request completed in this call, so handing off makes progress
        if self._big_missing:
            data = self._feed_big(data)
            if not self._argc:
                commands.append(self._args)
                self._args = []
                self._reqtype = _IDLE
                finished = True
        buf = self._buf
        buf += data
        pos = 0
        while pos < len(buf):
            if not self._reqtype:
                if buf[pos] == 0x2A:  # '*'
                    if handoff and (pos or finished):
                        rest = bytes(buf[pos:])
                        buf.clear()
                        return commands, rest
                    self._reqtype = _MULTIBULK
                else:
                    self._reqtype = _INLINE
            if self._reqtype == _INLINE:
                pos = self._inline(buf, pos, commands)
            else:
                pos = self._multibulk(buf, pos, commands)
            if self._reqtype or self.error is not None or self.waiting:
                break
        if self.error is not None:
            buf.clear()
        else:
            del buf[:pos]  # O(1) for a bytearray: it only moves its start
        return commands, b""

    def _feed_big(self, data: bytes) -> bytes:
        """Take the next bytes of a large bulk from ``data``; return what follows it."""
        missing = self._big_missing
        big = self._big
        assert big is not None
        if missing > 2:
            big.write(data[:missing - 2] if len(data) > missing - 2 else data)
        if len(data) < missing:
            self._big_missing = missing - len(data)
            return b""
        self._args.append(big.getvalue())
        self._big = None
        self._big_missing = 0
        self._bulklen = -1
        self._argc -= 1
        return data[missing:]

    def _fail(self, message: str) -> int:  # returns -1 so a caller can return it
        self.error = message
        return -1

    def _unauthenticated(self, message: str, commands: list[list[bytes]]) -> int:
        """A request past the unauthenticated limits: an error, unless a request completed
        before it in this call (an AUTH, perhaps): then stop before it and wait."""
        if not commands:
            return self._fail(message)
        self.waiting = True
        self._reqtype = _IDLE
        self._argc = 0
        self._bulklen = -1
        self._args = []
        self._scanned = 0
        return self._request_start

    def _line_end(self, buf: bytearray, pos: int, terminator: bytes) -> int:
        """Index of ``terminator`` after ``pos`` as C ``strchr`` finds it, or -1.

        ``strchr`` stops at a NUL, so a NUL before the terminator hides it for good; the scan
        resumes where the last one stopped so a long line fed byte by byte is not rescanned.
        """
        if self._scanned < 0:
            return -1
        start = pos + self._scanned
        end = buf.find(terminator, start)
        if buf.find(b"\0", start, len(buf) if end < 0 else end) >= 0:
            self._scanned = -1
            return -1
        if end < 0:
            self._scanned = len(buf) - pos
        return end

    def _header_end(self, buf: bytearray, pos: int, too_big: str) -> int:
        """Index of the CR ending the ``*`` or ``$`` line at ``pos``, or -1 (wait or error).
        Redis skips the byte after that CR unchecked, but it must have arrived."""
        cr = self._line_end(buf, pos, b"\r")
        if (len(buf) if cr < 0 else cr) - pos > self.limits.max_inline_len:
            return self._fail(too_big)
        if cr < 0 or cr > len(buf) - 2:
            return -1
        self._scanned = 0
        return cr

    def _inline(self, buf: bytearray, pos: int, commands: list[list[bytes]]) -> int:
        newline = self._line_end(buf, pos, b"\n")
        if (len(buf) if newline < 0 else newline) - pos > self.limits.max_inline_len:
            return self._fail("too big inline request")
        if newline < 0:
            return pos
        end = newline - 1 if newline > pos and buf[newline - 1] == 0x0D else newline
        args = split_args(bytes(buf[pos:end]))
        if args is None:
            return self._fail("unbalanced quotes in request")
        if args:  # a blank line is no command and gets no reply
            commands.append(args)
        self._reqtype = _IDLE
        self._scanned = 0
        return newline + 1

    def _multibulk(self, buf: bytearray, pos: int, commands: list[list[bytes]]) -> int:
        limits = self.limits
        if not self._argc:
            cr = self._header_end(buf, pos, "too big mbulk count string")
            if cr < 0:
                return pos
            count = string2ll(buf[pos + 1:cr])
            if count is None or count > limits.max_multibulk_len:
                return self._fail("invalid multibulk length")
            self._request_start = pos
            if count > 10 and not self.authenticated:
                return self._unauthenticated("unauthenticated multibulk length", commands)
            pos = cr + 2
            if count <= 0:  # "*0" and "*-1" are no command
                self._reqtype = _IDLE
                return pos
            self._argc = count
            self._args = []
        args = self._args
        while self._argc:
            if self._bulklen < 0:
                cr = self._header_end(buf, pos, "too big bulk count string")
                if cr < 0:
                    return pos
                if buf[pos] != 0x24:  # '$'
                    return self._fail(f"expected '$', got '{_got_char(buf[pos])}'")
                length = string2ll(buf[pos + 1:cr])
                if length is None or length < 0 or length > limits.max_bulk_len:
                    return self._fail("invalid bulk length")
                if length > 16384 and not self.authenticated:
                    return self._unauthenticated("unauthenticated bulk length", commands)
                pos = cr + 2
                self._bulklen = length
            end = pos + self._bulklen
            if len(buf) < end + 2:  # the two bytes after the data are skipped unchecked
                if self._bulklen >= _BIG_BULK:
                    self._big = big = io.BytesIO()
                    big.write(memoryview(buf)[pos:end])
                    self._big_missing = end + 2 - len(buf)
                    return len(buf)
                return pos
            args.append(bytes(buf[pos:end]))
            pos = end + 2
            self._bulklen = -1
            self._argc -= 1
        commands.append(args)
        self._args = []  # the request belongs to the caller now: nothing here outlives it
        self._reqtype = _IDLE
        return pos

"""Sans-IO RESP2 request parsing for the server, at hiredis speed with Redis 7's behaviour.

:class:`RequestParser` hands whole multibulk requests to ``hiredis.Reader`` and proves each batch
it gets back is exactly what the reference parser (:mod:`.reference`, a port of Redis's own
code) would have produced; whenever it cannot (a partial request at the end of a read, a hiredis
error, an odd reply type), the reference parser re-parses from the last proven boundary.

Where Redis's outcome depends on how TCP split the bytes, both parsers give the outcome of a
client that sends one byte at a time, so the result never depends on the chunking: a line
(inline request, ``*`` or ``$`` header) whose bytes before its terminator exceed
``max_inline_len`` is refused even when it arrives whole.

hiredis allocates an aggregate's slots when it reads the header: ``*2147483647`` (14 bytes)
made it calloc 16 GB and take 12 s to free it, freezing every client (``>`` took a minute and
16 GB of RSS). Its C reader has a limit on elements per aggregate that hiredis-py does not
expose; :func:`new_reader` sets it (``HIREDIS_MAX_ELEMENTS``) through the reader's C struct
once a probe at import has proven the layout, so a bigger header is a hiredis protocol error and
the reference parser, which allocates only for what arrives, takes the request from there. No
cost per request. Where the probe fails (another hiredis-py), every read is scanned before
hiredis sees it instead (:func:`_hiredis_safe_length`, ~2,500 instructions a pipelined command).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from itertools import chain
from typing import Any

import hiredis

from .reference import ProtocolLimits, ReferenceParser, split_args, string2ll

__all__ = ["ProtocolLimits", "ReferenceParser", "RequestParser", "split_args", "string2ll"]

# Reply types hiredis turns into bytes elements ('+', '=', '(') or list-like top-level replies
# ('~', '>', '%', '|' attributes): their absence from a read, plus every element being bytes,
# proves each reply came from '*' and '$' alone. A value holding one only costs the exact check.
_PROBE = b"*0\r\n"
_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command  # the stub says a 1-tuple


#: Most elements hiredis may allocate for one aggregate header (8 bytes each). A request with
#: more arguments is parsed by the reference parser: slower, but rare (MSET of 512+ pairs).
HIREDIS_MAX_ELEMENTS = 1024

# The C ``redisReader`` (hiredis read.h): ``maxbuf`` and then ``maxelements`` follow ``err``,
# ``errstr[128]``, ``buf``, ``pos`` and ``len``; hiredis-py's reader object holds a pointer
# to it right after the object header.
_READER_POINTER_OFFSET = 16
_MAXBUF_OFFSET = 160
_MAXELEMENTS_OFFSET = 168
_HIREDIS_DEFAULT_MAX_ELEMENTS = (1 << 32) - 1
_READER_OBJECT_SIZE = 96


def _cap_elements(reader: hiredis.Reader) -> None:
    struct = ctypes.c_void_p.from_address(id(reader) + _READER_POINTER_OFFSET).value
    if struct:  # hiredis-py allocates it with the reader; never NULL once constructed
        ctypes.c_longlong.from_address(struct + _MAXELEMENTS_OFFSET).value = HIREDIS_MAX_ELEMENTS


def _probe_cap() -> bool:
    """True when this hiredis-py's reader has the layout :func:`_cap_elements` writes to and
    the cap then works. Reads before it writes: the object's size, then a ``maxbuf`` set
    through the API and the default ``maxelements`` at their offsets."""
    try:
        if type(hiredis.Reader()).__basicsize__ != _READER_OBJECT_SIZE:
            return False
        reader = hiredis.Reader()
        reader.setmaxbuf(123_457)
        struct = ctypes.c_void_p.from_address(id(reader) + _READER_POINTER_OFFSET).value
        if not struct or ctypes.c_size_t.from_address(struct + _MAXBUF_OFFSET).value != 123_457:
            return False
        if (ctypes.c_longlong.from_address(struct + _MAXELEMENTS_OFFSET).value
                != _HIREDIS_DEFAULT_MAX_ELEMENTS):
            return False
        _cap_elements(reader)
        reader.feed(b"*%d\r\n" % HIREDIS_MAX_ELEMENTS)
        if reader.gets() is not False:
            return False
        reader = hiredis.Reader()
        _cap_elements(reader)
        reader.feed(b"*%d\r\n" % (HIREDIS_MAX_ELEMENTS + 1))
        try:
            reader.gets()
        except hiredis.ProtocolError:
            return True
        return False
    except Exception:  # no ctypes, an odd platform: scan instead
        return False


#: Whether readers from :func:`new_reader` refuse big aggregate headers themselves.
CAPPED = _probe_cap()


def new_reader() -> hiredis.Reader:
    """A hiredis reader that refuses an aggregate of more than ``HIREDIS_MAX_ELEMENTS``."""
    reader = hiredis.Reader()
    if CAPPED:
        _cap_elements(reader)
    return reader


#: An aggregate header with a count of four digits or more (or zero-padded).
_BIG_COUNT = re.compile(rb"[*~>|][0-9]{4,}").search


def _hiredis_safe_length(data: bytes) -> int:
    """Without :data:`CAPPED`: the length of the longest prefix of ``data`` hiredis may parse,
    up to the first aggregate header whose count is larger than a quarter of the bytes after it
    (each element takes at least four) or has more than ten digits."""
    pos = 0
    while (match := _BIG_COUNT(data, pos)) is not None:
        start, end = match.span()
        if end - start > 11 or int(data[start + 1:end]) > (len(data) - end) >> 2:
            return start
        pos = end
    return len(data)


def _only_leading_star(data: bytes) -> bool:
    """True when the only marker byte (:data:`_MARKERS`) of ``data`` is its leading ``*``:
    a scan for each marker (``43 in data`` is a memchr; ``b"+" in data`` would set up a
    substring search).

    :meth:`RequestParser.feed` asks this of reads over 128 bytes only. A shorter one (a GET, a
    SET of a small value) is copied without the markers by one ``translate`` and its length
    compared, ~4x fewer instructions than five scans; but ``translate`` costs ~1.3 ns a byte
    against a memchr's ~0.1."""
    return not (data.find(42, 1) >= 0 or 43 in data or 61 in data or 40 in data
                or 124 in data)


#: Every byte but ``*$`` and the digits, CR and LF that a lone request's headers are made of
#: could be an item hiredis turns into ``bytes`` other than ``$`` (``+``, ``=``, ``(``) or a
#: second request or nested array (``*``), or an attribute (``|``): see :meth:`RequestParser.feed`.
_MARKERS = b"*+=(|"


def _encoded_length(commands: list[list[bytes]]) -> int:
    """Length of ``commands`` encoded canonically (``*N``, then ``$L``, data, CRLF per argument)."""
    lengths = list(map(len, chain.from_iterable(commands)))
    counts = list(map(len, commands))
    digits = len(b"%d" * len(lengths) % tuple(lengths)) + len(b"%d" * len(counts) % tuple(counts))
    return sum(lengths) + 5 * len(lengths) + 3 * len(counts) + digits


def _looks_canonical(data: bytes, commands: list[list[bytes]]) -> bool:
    """True when ``commands`` are lists of bytes parsed from ``*`` / ``$`` items only."""
    # Byte values, not one-byte needles: a memchr each (see _only_leading_star).
    if (43 in data or 61 in data or 40 in data or 126 in data or 62 in data or 37 in data
            or 124 in data):
        try:
            return b"".join(map(_pack, map(tuple, commands))) == data
        except Exception:  # a None or nested element: not a request
            return False
    if len(data) > 65536:  # join would copy large values; a type scan does not
        try:
            return set(map(type, chain.from_iterable(commands))) == {bytes}
        except TypeError:
            return False
    try:  # raises on any element that is not bytes (or a top-level reply that is not a list)
        b"".join(chain.from_iterable(commands))
    except TypeError:
        return False
    return True


class RequestParser:
    """RESP2 request parser for the server: hiredis speed, Redis 7 behaviour.

    Measured (Python 3.11, hiredis 3.5, best of runs): a 16-command GET/SET pipeline parses in
    0.32 us a command (hiredis drain 0.16, proof 0.05: 7 ``bytes.find`` and one ``b"".join``,
    where re-encoding with ``hiredis.pack_command`` and comparing, still the check when a value
    holds a marker byte, costs 0.33); one GET a read 1.2 us; the pure-Python parser 4.4 us.
    ``has_data()`` is False at a boundary but also when hiredis has swallowed the headers of a
    partial array, so a read that ends cleanly is confirmed by feeding ``*0\\r\\n`` (a no-op
    request): only a reader at a boundary answers ``[]``. A partial request ending a read goes to
    the Python parser, which checks its headers at once and hands back at the next boundary
    (a pipeline cut into 16 KB reads: 0.5 us a command); a large value streamed over many reads
    is kept as the reads themselves and joined once (10 MB in 64 KB reads: 1.4 ms).
    """

    def __init__(self, limits: ProtocolLimits = ProtocolLimits()) -> None:
        self.limits = limits
        self.error: str | None = None
        """Set when framing is lost: the text after ``-ERR Protocol error: ``."""
        self._slow = ReferenceParser(limits)
        self._reader = new_reader()
        # A complete request can break a limit only in a read at least this long.
        self._check_above = min(limits.max_bulk_len, 6 * limits.max_multibulk_len)
        self._exact_below = min(4096, self._check_above)  # re-encoding larger reads costs more
        # A read that may be one request, proven inline (see feed). Never without the hiredis
        # element cap: a scan for huge counts must come first then.
        self._lone_below = self._exact_below if CAPPED else 0
        self.settled = True
        """True while the parser needs nothing from its connection after a feed: the client
        is authenticated, framing holds (no :attr:`error`) and nothing is :attr:`waiting`.
        A plain attribute, so the one-request-a-read path checks it in one load; when it is
        False, look at the reasons."""

    @property
    def authenticated(self) -> bool:
        """False applies Redis's limits for clients that have not passed AUTH (at most 10
        arguments, bulks of at most 16384 bytes); such requests are parsed in Python."""
        return self._slow.authenticated

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        self._slow.authenticated = value
        self.settled = value and self.error is None and self._slow.idle

    @property
    def waiting(self) -> bool:
        """True when the last :meth:`feed` stopped before using up what it was given: an
        unauthenticated client sent a request past the unauthenticated limits behind another
        request (an AUTH, perhaps) in the same read. Run the commands it returned, then call
        ``feed(b"")``: the limits in force by then decide (Redis runs an AUTH before it parses
        the next request)."""
        return self._slow.waiting

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Return every command completed by ``data``, each a list of arguments, name first.

        If ``data`` breaks framing, return the commands before the bad bytes and set
        :attr:`error`; from then on every call returns ``[]``. Never raises on bad input.
        ``feed(b"")`` continues where a feed stopped early (:attr:`waiting`).
        """
        if self.settled and len(data) <= self._lone_below and data[:1] == b"*":
            # One request a read is the common case for clients that wait for each reply:
            # parsed and proven here without the general path's list and calls. Proven when
            # hiredis's one reply is a list, nothing of ``data`` is left in the reader, the
            # only marker byte is the leading ``*`` (no second request, no nested array, no
            # ``+``, ``=``, ``(`` or ``|`` item that hiredis would also give as bytes; padded
            # or signed lengths hiredis refuses itself) and every element is bytes (the join
            # raises otherwise). A value that holds a marker is proven by re-encoding instead.
            reader = self._reader
            reader.feed(data)
            try:
                first = reader.gets()
                if type(first) is list and first and not reader.has_data():
                    size = len(data)
                    if (len(data.translate(None, _MARKERS)) == size - 1 if size <= 128
                            else _only_leading_star(data)):
                        b"".join(first)
                        return [first]
                    if _pack(tuple(first)) == data:
                        return [first]
                commands, rest = self._drain(data, [] if first is False else [first])
            except Exception:  # hiredis.ProtocolError, a non-bytes element, a huge count
                commands, rest = self._recover(data, [])
            if not rest:
                return commands
            return self._mixed(commands, rest)
        if self.settled and data[:1] == b"*":
            commands, rest = self._fast(data)
            if not rest:
                return commands
            return self._mixed(commands, rest)
        return self._mixed([], data)

    def _mixed(self, commands: list[list[bytes]], data: bytes) -> list[list[bytes]]:
        """Alternate between the Python parser and hiredis until ``data`` is used up."""
        slow = self._slow
        resume = slow.waiting  # feed(b"") after a stop: parse what the Python parser holds
        while (data or resume) and self.error is None:
            resume = False
            parsed, data = slow.parse(data, handoff=slow.authenticated)
            commands += parsed
            if slow.error is not None:
                self.error = slow.error
            elif data:
                parsed, data = self._fast(data)
                commands += parsed
        self.settled = self.error is None and slow.authenticated and slow.idle
        return commands

    def _fast(self, data: bytes) -> tuple[list[list[bytes]], bytes]:
        """Parse ``data`` (at a boundary, starting with ``*``) with hiredis; return the proven
        commands and the bytes the Python parser must take from there."""
        if not CAPPED:
            safe = _hiredis_safe_length(data)
            if safe < len(data):
                # hiredis gets the part before the big count; the rest goes to Python.
                if not safe:
                    return [], data
                commands, rest = self._fast(data[:safe])
                return commands, rest + data[safe:]
        self._reader.feed(data)
        return self._drain(data, [])

    def _drain(self, data: bytes, commands: list[list[bytes]]
               ) -> tuple[list[list[bytes]], bytes]:
        """Take the rest of the replies of ``data`` from the reader (``commands`` holds those
        already taken) and prove them, as :meth:`_fast` describes."""
        reader = self._reader
        gets = reader.gets
        append = commands.append
        try:
            while (reply := gets()) is not False:
                append(reply)
            if len(commands) == 1 and len(data) <= self._exact_below:
                # One command a read (a client without pipelining): re-encoding it (~0.3 us)
                # is cheaper than the marker scan and probe below, and equality also proves
                # the read ended cleanly.
                if commands[0] and _pack(tuple(commands[0])) == data:
                    return commands, b""
            # "*0", "*-1", or a top-level reply that is falsy: let the exact path sort it out.
            elif all(commands) and (len(data) <= self._check_above
                                    or self._within_limits(commands)):
                if _looks_canonical(data, commands):
                    if not reader.has_data():
                        reader.feed(_PROBE)
                        if reader.gets() == []:
                            return commands, b""
                    # A partial request ends the read; every reply before it is canonical, so
                    # its start is their encoded length (~0.2 us a command, against ~0.45 us
                    # to re-encode them with pack_command).
                    self._reader = new_reader()
                    return commands, data[_encoded_length(commands):]
        except Exception:  # hiredis.ProtocolError, or MemoryError for a huge "*" count
            pass
        return self._recover(data, commands)

    def _within_limits(self, commands: list[list[bytes]]) -> bool:
        try:
            limits = self.limits
            return (max(map(len, commands), default=0) <= limits.max_multibulk_len
                    and max(map(len, chain.from_iterable(commands)), default=0)
                    <= limits.max_bulk_len)
        except (TypeError, ValueError):
            return False

    def _recover(self, data: bytes, replies: list[list[bytes]]) -> tuple[list[list[bytes]], bytes]:
        """Keep the replies whose exact encoding starts ``data``; return them and the rest."""
        self._reader = new_reader()
        check_limits = len(data) > self._check_above
        commands: list[list[bytes]] = []
        offset = 0
        for reply in replies:
            if reply is None and data.startswith(b"*-1\r\n", offset):
                offset += 5
                continue
            if type(reply) is not list or (check_limits and not self._within_limits([reply])):
                break
            try:
                encoded = _pack(tuple(reply))
            except Exception:  # an element that is not bytes, str, int or float
                break
            if not data.startswith(encoded, offset):
                break
            offset += len(encoded)
            if reply:
                commands.append(reply)
        return commands, data[offset:]


class _DrainedParser:
    """The parser of a connection whose node is shutting down: every read is dropped (see
    ``ClientConnection.shut_down``). Stateless, so one serves every connection."""

    error: str | None = None
    waiting = False
    settled = True

    @property
    def authenticated(self) -> bool:
        return True

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        pass

    def feed(self, data: bytes) -> list[list[bytes]]:
        return []


DRAINED: Any = _DrainedParser()

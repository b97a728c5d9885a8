"""The RESP2 request parsers against Redis 7's networking.c behaviour, without sockets.

:class:`ReferenceParser` is the oracle: the unit tests pin it (and the accelerated parser) to
Redis's behaviour, and the property tests check that :class:`RequestParser` agrees with it on
any bytes, split anywhere.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distcache_core.protocol import (
    ProtocolLimits,
    ReferenceParser,
    RequestParser,
    encode_error,
    encode_request,
    split_args,
    string2ll,
)

PARSERS = [RequestParser, ReferenceParser]
SMALL = ProtocolLimits(max_bulk_len=40, max_multibulk_len=6, max_inline_len=32)


def feed_all(parser: RequestParser | ReferenceParser, chunks: list[bytes]) -> list[list[bytes]]:
    """Feed each chunk, and go on after a feed that stopped early (``waiting``), as the server
    does once it has run the commands that feed returned."""
    commands: list[list[bytes]] = []
    for chunk in chunks:
        commands += parser.feed(chunk)
        while parser.waiting:
            commands += parser.feed(b"")
    return commands


def leading(data: bytes) -> list[list[bytes]]:
    """The commands that the ERRORS cases put before their bad request."""
    return [[b"a"], [b"b"]] if data.startswith(b"*1\r\n$1\r\na\r\n*1\r\n$1\r\nb") else (
        [[b"a"]] if data.startswith(b"*1\r\n$1\r\na\r\n*") else [])


def run(cls: type, data: bytes, *, authenticated: bool = True,
        limits: ProtocolLimits = ProtocolLimits()) -> tuple[list[list[bytes]], str | None]:
    parser = cls(limits)
    parser.authenticated = authenticated
    commands = feed_all(parser, [data])
    return commands, parser.error


def run_bytewise(cls: type, data: bytes, **kwargs: object) -> tuple[list[list[bytes]], str | None]:
    parser = cls(kwargs.get("limits", ProtocolLimits()))
    parser.authenticated = kwargs.get("authenticated", True)
    commands = feed_all(parser, [data[i:i + 1] for i in range(len(data))])
    return commands, parser.error


# -- requests that parse ----------------------------------------------------------------------

VALID = [
    (b"*1\r\n$4\r\nPING\r\n", [[b"PING"]]),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\nb\0\r\n", [[b"SET", b"k", b"a\r\nb\0"]]),
    (b"*1\r\n$0\r\n\r\n", [[b""]]),
    (b"PING\r\n", [[b"PING"]]),
    (b"PING\n", [[b"PING"]]),
    (b"set  a\tb\r\n", [[b"set", b"a", b"b"]]),
    (b"a\r\r\n", [[b"a"]]),  # only one CR is taken off; the other is a separator
    (b"\r\n\n   \r\n\t\n", []),  # blank inline lines are no command and get no reply
    (b"*0\r\n*-1\r\n*-7\r\n", []),  # a count <= 0 is no command
    (b"*0\r\nPING\r\n", [[b"PING"]]),
    # A multibulk and inline mix, even in one read (hiredis alone rejects the inline part).
    (b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n",
     [[b"GET", b"a"], [b"PING"], [b"QUIT"]]),
    # Redis never checks the two bytes after bulk data, nor the byte after a header's CR.
    (b"*1\r\n$3\r\nfooXY*1\r\n$1\r\nb\r\n", [[b"foo"], [b"b"]]),
    (b"*1\rX$3\r\nfoo\r\n", [[b"foo"]]),
    # Replies hiredis would accept at the top level are inline requests to Redis.
    (b"$3\r\nfoo\r\n", [[b"$3"], [b"foo"]]),
    (b"+OK\r\n:1\r\n", [[b"+OK"], [b":1"]]),
    (b"~1\r\n$1\r\na\r\n", [[b"~1"], [b"$1"], [b"a"]]),
    (b"*2\r\n$3\r\nSET\r\n$4\r\na+=b\r\n", [[b"SET", b"a+=b"]]),  # marker bytes in a value
    # hiredis returns a bulk reply for the third request; Redis reads two inline ones.
    (b"*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n$1\r\nc\r\n", [[b"a"], [b"b"], [b"$1"], [b"c"]]),
]


@pytest.mark.parametrize("cls", PARSERS)
@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid_requests(cls: type, data: bytes, expected: list[list[bytes]]) -> None:
    assert run(cls, data) == (expected, None)
    assert run_bytewise(cls, data) == (expected, None)


@pytest.mark.parametrize("cls", PARSERS)
def test_binary_values_are_kept_exactly(cls: type) -> None:
    value = bytes(range(256)) * 3 + b"\r\n*1\r\n$0\r\n\r\n\0"
    data = encode_request(b"SET", b"k\0\r\n", value) * 3
    assert run(cls, data) == ([[b"SET", b"k\0\r\n", value]] * 3, None)


@pytest.mark.parametrize("cls", PARSERS)
def test_large_value_streamed_in_chunks(cls: type) -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = encode_request(b"SET", b"k", value) + encode_request(b"GET", b"k") + b"PING\r\n"
    parser = cls()
    chunks = [data[i:i + 7001] for i in range(0, len(data), 7001)]
    assert feed_all(parser, chunks) == [[b"SET", b"k", value], [b"GET", b"k"], [b"PING"]]
    assert parser.error is None


@pytest.mark.parametrize("cls", PARSERS)
def test_long_pipeline_split_across_reads(cls: type) -> None:
    requests = [encode_request(b"SET", b"key:%d" % i, b"v+%d=" % i if i % 3 else b"v") for i in
                range(3000)]
    data = b"".join(requests)
    for size in (1, 100, 1500, 16384, 65536):
        parser = cls()
        commands = feed_all(parser, [data[i:i + size] for i in range(0, len(data), size)])
        assert len(commands) == 3000 and parser.error is None
        assert commands[-1] == [b"SET", b"key:2999", b"v+2999="]
        if cls is ReferenceParser and size < 1000:
            break  # slow in pure Python; one small size is enough


@pytest.mark.parametrize("cls", PARSERS)
def test_partial_request_waits(cls: type) -> None:
    parser = cls()
    assert parser.feed(b"*2\r\n$3\r\nGET\r\n$1\r") == []
    assert parser.feed(b"\nk") == []
    assert parser.feed(b"\r\n*1\r\n$4\r\nPING\r\nPI") == [[b"GET", b"k"], [b"PING"]]
    assert parser.feed(b"NG\r\n") == [[b"PING"]]
    assert parser.error is None


# -- protocol errors --------------------------------------------------------------------------

K64 = 64 * 1024
ERRORS = [
    (b"A" * (K64 + 1), "too big inline request"),
    (b"A" * (K64 + 1) + b"\r\n", "too big inline request"),
    (b"GET a\0b" + b"x" * K64, "too big inline request"),  # strchr stops at NUL: no newline
    (b'SET k "v\r\n', "unbalanced quotes in request"),
    (b'SET k "v"x\r\n', "unbalanced quotes in request"),
    (b"SET k 'v\r\n", "unbalanced quotes in request"),
    (b"*" + b"1" * K64, "too big mbulk count string"),
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*\r\n", "invalid multibulk length"),
    (b"*01\r\n", "invalid multibulk length"),
    (b"*+1\r\n", "invalid multibulk length"),
    (b"*-0\r\n", "invalid multibulk length"),
    (b"*1 \r\n", "invalid multibulk length"),
    (b"*1048577\r\n", "invalid multibulk length"),
    (b"*2147483647\r\n", "invalid multibulk length"),  # hiredis may raise MemoryError first
    (b"*4294967296\r\n", "invalid multibulk length"),
    (b"*1\n$4\r\nPING\r\n", "invalid multibulk length"),  # the line runs to the first CR
    (b"*1\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n+OK\r\n", "expected '$', got '+'"),
    (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
    (b"*1\r\n\r\n", "expected '$', got ' '"),  # Redis maps CR/LF in errors to spaces
    (b"*1\r\n$" + b"1" * K64, "too big bulk count string"),
    (b"*1\r\n$01\r\nx\r\n", "invalid bulk length"),
    (b"*1\r\n$+1\r\nx\r\n", "invalid bulk length"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$\r\n", "invalid bulk length"),
    (b"*1\r\n$99999999999\r\n", "invalid bulk length"),  # over proto-max-bulk-len at once
    (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),  # over int64
    (b"*1\r\n$1\r\na\r\n*1\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*0\r\n*1\r\n$1\r\nc\r\n", "expected '$', got '*'"),
    (b"*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n*1\r\n%1\r\n+a\r\n+b\r\n", "expected '$', got '%'"),
]


@pytest.mark.parametrize("cls", PARSERS)
@pytest.mark.parametrize(("data", "error"), ERRORS)
def test_protocol_errors(cls: type, data: bytes, error: str) -> None:
    assert run(cls, data) == (leading(data), error)
    if len(data) < 1000:
        assert run_bytewise(cls, data) == (leading(data), error)


@pytest.mark.parametrize("cls", PARSERS)
def test_commands_before_the_error_are_returned_and_later_feeds_ignored(cls: type) -> None:
    parser = cls()
    good = encode_request(b"SET", b"a", b"1") + b"PING\r\n"
    assert parser.feed(good + b"*1\r\n$x\r\n" + good) == [[b"SET", b"a", b"1"], [b"PING"]]
    assert parser.error == "invalid bulk length"
    assert parser.feed(good) == []
    assert parser.error == "invalid bulk length"


@pytest.mark.parametrize("cls", PARSERS)
def test_huge_bulk_header_fails_before_its_data(cls: type) -> None:
    parser = cls()
    assert parser.feed(b"*1\r\n") == []
    assert parser.error is None
    assert parser.feed(b"$536870913\r\n") == []  # one byte over 512 MiB
    assert parser.error == "invalid bulk length"
    parser = cls()
    assert parser.feed(b"*1\r\n$536870912\r\n") == []  # exactly the limit waits for its data
    assert parser.error is None


@pytest.mark.parametrize("cls", PARSERS)
def test_inline_line_limit_counts_bytes_before_the_newline(cls: type) -> None:
    assert run(cls, b"A" * K64 + b"\n")[1] is None
    assert run(cls, b"A" * (K64 - 1) + b"\r\n")[1] is None
    assert run(cls, b"A" * K64 + b"\r\n")[1] == "too big inline request"  # as byte-by-byte
    assert run(cls, b"A" * K64)[1] is None  # still waiting at exactly the limit


@pytest.mark.parametrize("cls", PARSERS)
def test_nul_before_a_header_cr_hides_it(cls: type) -> None:
    parser = cls()
    assert parser.feed(b"*1\0\r\n$4\r\nPING\r\n") == []
    assert parser.error is None
    parser.feed(b"x" * K64)
    assert parser.error == "too big mbulk count string"


@pytest.mark.parametrize("cls", PARSERS)
def test_expected_dollar_error_keeps_a_raw_byte(cls: type) -> None:
    commands, error = run(cls, b"*1\r\n\xe9\r\n")
    assert error is not None
    assert encode_error("ERR Protocol error: " + error) == (
        b"-ERR Protocol error: expected '$', got '\xe9'\r\n")


@pytest.mark.parametrize("cls", PARSERS)
def test_unauthenticated_limits(cls: type) -> None:
    ten = encode_request(*[b"x"] * 10)
    assert run(cls, ten, authenticated=False) == ([[b"x"] * 10], None)
    assert run(cls, b"*11\r\n", authenticated=False) == ([], "unauthenticated multibulk length")
    assert run(cls, b"*1\r\n$16385\r\n", authenticated=False) == (
        [], "unauthenticated bulk length")
    value = b"v" * 16384
    assert run(cls, encode_request(value), authenticated=False) == ([[value]], None)
    assert run(cls, b"*1\r\n$16385\r\n")[1] is None  # no limit once authenticated
    # The flag is read when each header arrives.
    parser = cls()
    parser.authenticated = False
    assert parser.feed(encode_request(b"AUTH", b"pw")) == [[b"AUTH", b"pw"]]
    parser.authenticated = True
    big = encode_request(*[b"x"] * 20)
    assert parser.feed(big) == [[b"x"] * 20]
    assert parser.error is None


def test_authenticated_defaults_to_true() -> None:
    assert RequestParser().authenticated is True
    assert ReferenceParser().authenticated is True


@pytest.mark.parametrize("cls", PARSERS)
def test_large_read_with_a_bad_element(cls: type) -> None:
    data = encode_request(b"SET", b"k", b"v" * 70000) * 2 + b"*1\r\n:1\r\n"
    assert run(cls, data) == ([[b"SET", b"k", b"v" * 70000]] * 2, "expected '$', got ':'")


@pytest.mark.parametrize("cls", PARSERS)
def test_custom_limits(cls: type) -> None:
    limits = ProtocolLimits(max_bulk_len=5, max_multibulk_len=2, max_inline_len=8)
    assert run(cls, encode_request(b"a", b"12345"), limits=limits) == ([[b"a", b"12345"]], None)
    assert run(cls, encode_request(b"123456"), limits=limits)[1] == "invalid bulk length"
    assert run(cls, encode_request(b"a", b"b", b"c"), limits=limits)[1] == (
        "invalid multibulk length")
    assert run(cls, b"1234567\r\n", limits=limits) == ([[b"1234567"]], None)
    assert run(cls, b"12345678\n", limits=limits) == ([[b"12345678"]], None)
    assert run(cls, b"123456789\n", limits=limits)[1] == "too big inline request"
    assert run(cls, b"*1\r\n$" + b"1" * 8 + b"\r\n", limits=limits)[1] == (
        "too big bulk count string")
    assert run(cls, b"*1\r\n$1\r\na\r\n*2\r\n:1\r\n$1\r\nb\r\n" * 3, limits=limits) == (
        [[b"a"]], "expected '$', got ':'")
    # A read big enough to hold a violation is checked on the fast path too.
    many = encode_request(b"a", b"b") * 100 + encode_request(b"a", b"b", b"c")
    assert run(cls, many, limits=limits) == ([[b"a", b"b"]] * 100, "invalid multibulk length")


# -- inline splitting and integers -------------------------------------------------------------

SPLITS = [
    (b"", []),
    (b"  a  b  ", [b"a", b"b"]),
    (b'a "b c\\x41\\n\\r\\t\\b\\a\\\\\\"" d', [b"a", b"b cA\n\r\t\b\a\\\"", b"d"]),
    (b'"\\x4"', [b"x4"]),  # not two hex digits: "\\x" is just "x"
    (b'"\\q"', [b"q"]),
    (b"'it\\'s' 'a\\nb'", [b"it's", b"a\\nb"]),  # single quotes only unescape \\'
    (b'ab"cd"', [b"abcd"]),  # a quote may open inside a token
    (b'"a" "b"', [b"a", b"b"]),
    (b'""', [b""]),
    (b"a\x0bb \x0c c", [b"a\x0bb", b"c"]),  # \v and \f skip as blanks but do not end a token
    (b'"a"\x0bb', [b"a", b"b"]),  # ...and may follow a closing quote
    (b'"a"b', None),
    (b"'a'b", None),
    (b'"abc', None),
    (b'"abc\\"', None),
    (b"'abc", None),
]


@pytest.mark.parametrize(("line", "expected"), SPLITS)
def test_split_args(line: bytes, expected: list[bytes] | None) -> None:
    assert split_args(line) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (b"0", 0), (b"12", 12), (b"-12", -12), (b"9223372036854775807", 2**63 - 1),
    (b"-9223372036854775808", -(2**63)), (b"9223372036854775808", None),
    (b"", None), (b"-", None), (b"-0", None), (b"01", None), (b"+1", None), (b" 1", None),
    (b"1 ", None), (b"1\n", None), (b"1.0", None), (b"00000000000000000000001", None),
])
def test_string2ll(text: bytes, expected: int | None) -> None:
    assert string2ll(text) == expected


# -- properties -------------------------------------------------------------------------------

INLINE_TOKEN = st.binary(min_size=1, max_size=6).filter(
    lambda token: not any(byte in b" \t\r\n\x0b\x0c\0\"'" for byte in token))


@st.composite
def valid_stream(draw: st.DrawFn) -> tuple[bytes, list[list[bytes]]]:
    """A stream of well-formed requests (multibulk, inline, no-ops) and the commands in it."""
    data, commands = b"", []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["multibulk", "multibulk", "inline", "noop"]))
        if kind == "multibulk":
            args = draw(st.lists(st.binary(max_size=40) | st.sampled_from(
                [b"\r\n", b"\0", b"*1\r\n$1\r\na\r\n", b"+=(~>%|", b"v" * 40000]),
                min_size=1, max_size=5))
            data += encode_request(*args)
            commands.append(args)
        elif kind == "inline":
            tokens = draw(st.lists(INLINE_TOKEN, min_size=1, max_size=4))
            if tokens[0].startswith(b"*"):
                tokens[0] = b"x" + tokens[0]
            data += b" ".join(tokens) + draw(st.sampled_from([b"\r\n", b"\n"]))
            commands.append(tokens)
        else:
            data += draw(st.sampled_from([b"*0\r\n", b"*-1\r\n", b"\r\n", b"\n", b"  \r\n"]))
    return data, commands


def split_points(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_valid_streams_split_anywhere(data: st.DataObject) -> None:
    stream, expected = data.draw(valid_stream())
    chunks = split_points(data.draw, stream)
    for cls in PARSERS:
        whole = cls()
        assert whole.feed(stream) == expected
        parts = cls()
        assert feed_all(parts, chunks) == expected
        assert whole.error is None and parts.error is None


NOISE = st.sampled_from([b"*", b"$", b"\r", b"\n", b"\r\n", b"0", b"1", b"9", b"-", b"+", b":",
                         b" ", b'"', b"'", b"\\", b"x", b"\0", b"a", b"\xe9", b"*0\r\n", b"*-1\r\n",
                         b"~", b"=", b"(", b"%", b"|", b">", b"#", b",", b"_", b"!"])


@st.composite
def damaged_stream(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid stream with bytes inserted, deleted or replaced."""
    if draw(st.booleans()):
        return b"".join(draw(st.lists(NOISE | st.binary(max_size=3), max_size=40)))
    data = bytearray(draw(valid_stream())[0])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        noise = draw(NOISE)
        if action == "insert":
            data[at:at] = noise
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 3))]
        else:
            data[at:at + len(noise)] = noise
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([ProtocolLimits(), SMALL]), st.booleans())
def test_damaged_streams_agree_with_the_reference(
        data: st.DataObject, limits: ProtocolLimits, authenticated: bool) -> None:
    stream = data.draw(damaged_stream())
    chunks = split_points(data.draw, stream)
    reference = ReferenceParser(limits)
    reference.authenticated = authenticated
    expected = feed_all(reference, [stream])
    for parser, parts in ((ReferenceParser(limits), chunks), (RequestParser(limits), chunks),
                          (RequestParser(limits), [stream])):
        parser.authenticated = authenticated
        assert feed_all(parser, parts) == expected  # never raises
        assert parser.error == reference.error


@pytest.mark.parametrize("first_read,second_read", [
    (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n", b"$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n$5\r\nab", b"cde\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n:12", b"\r\n"),
    (b"*2\r\n$3\r\nGET\r\n+k\r\n", b"*1\r\n$4\r\nPING\r\n"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n$-1\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n$1\r\n*\r\n", b"PING\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$3\r\n+=|\r\n", b"PING\r\n"),
    (b"*1\r\n$4\r\nPING\r\nPING\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n=7\r\ntxt:abc\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n(123\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n|1\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nk\r\n", b""),
    # Over 128 bytes the markers are scanned for instead of deleted (see RequestParser.feed).
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200\r\n" + b"x" * 200 + b"\r\n", b""),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200\r\n" + b"+=(|*" * 40 + b"\r\n", b""),
    (b"*3\r\n$3\r\nSET\r\n$200\r\n" + b"k" * 200 + b"\r\n+v\r\n", b""),
    (b"*3\r\n$3\r\nSET\r\n$200\r\n" + b"k" * 200 + b"\r\n:1\r\n", b""),
    (b"*2\r\n$3\r\nGET\r\n$200\r\n" + b"k" * 200 + b"\r\nPING\r\n", b""),
])
def test_a_lone_request_read_is_proven_like_the_reference(first_read, second_read):
    # One multibulk request per read is the fast path's shortcut; whatever trails it in the
    # same read (a partial next request, an odd item type) must give the reference's result.
    fast, reference = RequestParser(), ReferenceParser()
    got = fast.feed(first_read) + fast.feed(second_read)
    expected = reference.feed(first_read) + reference.feed(second_read)
    assert (got, fast.error) == (expected, reference.error)

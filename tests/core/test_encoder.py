"""Reply encoding against the table in distcache_core.replies, checked by parsing it back with
hiredis (the reader redis-py uses), and request encoding against the request parser."""

from __future__ import annotations

import enum
import math
from typing import Any

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_core.protocol import (
    RequestParser,
    encode_error,
    encode_request,
    encode_resp2,
    encode_resp3,
    format_double,
)
from distcache_core.replies import NO_REPLY, NULL_ARRAY, OK, ErrorReply, SetReply, VerbatimReply


class Color(enum.IntEnum):
    RED = 7


class Tag(str):
    pass


EXACT = [
    # reply, RESP2, RESP3
    (b"v\r\n\0", b"$4\r\nv\r\n\0\r\n", b"$4\r\nv\r\n\0\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (b"x" * 2000, b"$2000\r\n" + b"x" * 2000 + b"\r\n", b"$2000\r\n" + b"x" * 2000 + b"\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-1, b":-1\r\n", b":-1\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    ("a\r\nb", b"+a  b\r\n", b"+a  b\r\n"),  # a status line can never break framing
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (3.0, b"$1\r\n3\r\n", b",3\r\n"),
    (math.inf, b"$3\r\ninf\r\n", b",inf\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", None, 1, [b"b"]], b"*4\r\n$1\r\na\r\n$-1\r\n:1\r\n*1\r\n$1\r\nb\r\n",
     b"*4\r\n$1\r\na\r\n_\r\n:1\r\n*1\r\n$1\r\nb\r\n"),
    ((b"t",), b"*1\r\n$1\r\nt\r\n", b"*1\r\n$1\r\nt\r\n"),
    ({b"k": 1}, b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    ([ErrorReply("ERR bad\nthing")], b"*1\r\n-ERR bad thing\r\n", b"*1\r\n-ERR bad thing\r\n"),
    (bytearray(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    (memoryview(b"ab"), b"$2\r\nab\r\n", b"$2\r\nab\r\n"),
    (Color.RED, b":7\r\n", b":7\r\n"),  # subclasses fall back to their base type
    ([Tag("x")], b"*1\r\n+x\r\n", b"*1\r\n+x\r\n"),
    # Map keys are bulk strings even when given as str (HELLO, CONFIG GET), as Redis sends them.
    ({"proto": 3, "k": "v"}, b"*4\r\n$5\r\nproto\r\n:3\r\n$1\r\nk\r\n+v\r\n",
     b"%2\r\n$5\r\nproto\r\n:3\r\n$1\r\nk\r\n+v\r\n"),
    (SetReply(("write", "fast")), b"*2\r\n+write\r\n+fast\r\n", b"~2\r\n+write\r\n+fast\r\n"),
    ([SetReply()], b"*1\r\n*0\r\n", b"*1\r\n~0\r\n"),
    (VerbatimReply(b"a:1\r\n"), b"$5\r\na:1\r\n\r\n", b"=9\r\ntxt:a:1\r\n\r\n"),
]


@pytest.mark.parametrize(("reply", "resp2", "resp3"), EXACT)
def test_exact_encoding(reply: object, resp2: bytes, resp3: bytes) -> None:
    assert encode_resp2(reply) == resp2
    assert encode_resp3(reply) == resp3


def test_no_reply_writes_nothing_and_only_at_top_level() -> None:
    assert encode_resp2(NO_REPLY) == b"" and encode_resp3(NO_REPLY) == b""
    with pytest.raises(TypeError):
        encode_resp2([NO_REPLY])


def test_unknown_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="object"):
        encode_resp2(object())
    with pytest.raises(TypeError):
        encode_resp3([{1, 2}])


def test_encode_error_replaces_newlines() -> None:
    assert encode_error("ERR one\r\ntwo") == b"-ERR one  two\r\n"
    assert encode_error("WRONGTYPE x") == b"-WRONGTYPE x\r\n"


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, b"0"), (-0.0, b"-0"), (3.0, b"3"), (-2.5, b"-2.5"), (0.1, b"0.1"), (1 / 3, None),
    (1e-5, b"0.00001"), (1.5e-7, b"1.5e-7"), (1e-7, b"1e-7"), (123456.789, b"123456.789"),
    (2.0**62, b"4611686018427387904"), (5e18, b"5e+18"), (1e21, b"1e+21"),
    (1.5e300, b"1.5e+300"), (-1.7976931348623157e308, b"-1.7976931348623157e+308"),
    (1000000000000000.5, b"1000000000000000.5"), (math.nan, b"nan"), (-math.inf, b"-inf"),
    # fpconv goes scientific past 6 decimals unless 1e-3 <= |x| < 1e4, unlike repr
    (901689.2339069416, b"9.016892339069416e+5"), (1234.5678901, b"1234.5678901"),
    (0.00012, b"0.00012"), (0.00012345678, b"1.2345678e-4"), (-57055.6412, b"-57055.6412"),
])
def test_format_double(value: float, expected: bytes | None) -> None:
    text = format_double(value)
    if expected is not None:
        assert text == expected
    if math.isfinite(value):
        assert float(text) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_round_trips(value: float) -> None:
    text = format_double(value)
    assert float(text) == value
    assert not text.endswith(b".0")  # Redis trims an integral double to an integer


def replies(resp3: bool) -> st.SearchStrategy[Any]:
    scalars = (st.binary(max_size=20) | st.none() | st.integers(-(2**63), 2**63 - 1)
               | st.booleans() | st.text(alphabet="abcxyz OK", max_size=8)
               | st.floats(allow_nan=False) | st.just(NULL_ARRAY)
               | st.builds(ErrorReply, st.text(alphabet="ERR bad", min_size=1, max_size=8)))
    return st.recursive(scalars, lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner)
        | st.dictionaries(st.binary(max_size=4), inner, max_size=3)), max_leaves=12)


def expected(reply: Any, resp3: bool) -> Any:
    """What hiredis reads back for ``reply`` (errors compared by their text)."""
    if isinstance(reply, ErrorReply):
        return ("error", str(reply))
    if reply is NULL_ARRAY:
        return None
    if isinstance(reply, bool):
        return reply if resp3 else int(reply)
    if isinstance(reply, str):
        return reply.encode()
    if isinstance(reply, float):
        return reply if resp3 else format_double(reply)
    if isinstance(reply, (list, tuple)):
        return [expected(item, resp3) for item in reply]
    if isinstance(reply, dict):
        if resp3:
            return {key: expected(value, resp3) for key, value in reply.items()}
        return [expected(item, resp3) for pair in reply.items() for item in pair]
    return reply


def normalise(value: Any) -> Any:
    if isinstance(value, hiredis.ReplyError):
        return ("error", str(value))
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    return value


def read_back(data: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(data)
    value = reader.gets()
    assert reader.gets() is False  # exactly one reply, nothing left over
    return normalise(value)


@settings(max_examples=300)
@given(replies(resp3=False))
def test_resp2_round_trip_through_hiredis(reply: Any) -> None:
    assert read_back(encode_resp2(reply)) == expected(reply, resp3=False)


@settings(max_examples=300)
@given(replies(resp3=True))
def test_resp3_round_trip_through_hiredis(reply: Any) -> None:
    assert read_back(encode_resp3(reply)) == expected(reply, resp3=True)


def test_top_level_error_reply() -> None:
    assert read_back(encode_resp2(ErrorReply("ERR x"))) == ("error", "ERR x")


def test_encode_request() -> None:
    assert encode_request(b"SET", "ké", 10, 1.5) == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$2\r\n10\r\n$3\r\n1.5\r\n")
    assert encode_request() == b"*0\r\n"
    with pytest.raises(TypeError):
        encode_request(True)
    with pytest.raises(TypeError):
        encode_request(None)  # type: ignore[arg-type]


@given(st.lists(st.binary(max_size=30), min_size=1, max_size=6))
def test_encode_request_round_trips_through_the_parser(args: list[bytes]) -> None:
    parser = RequestParser()
    assert parser.feed(encode_request(*args)) == [args]
    assert encode_request(*args) == hiredis.pack_command(tuple(args))

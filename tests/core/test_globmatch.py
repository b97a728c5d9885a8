"""distcache_core.globmatch against a line-by-line port of Redis's ``stringmatchlen``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distcache_core.globmatch import compile_glob, glob_match


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def redis_stringmatchlen(pattern: bytes, string: bytes) -> bool:
    """Port of ``stringmatchlen_impl`` (Redis 7.2 ``src/util.c``, nocase=0), kept as close to the
    C as Python allows; slow and exponential on purpose-built patterns, fine for short inputs.
    ``char`` is signed, as on x86-64."""
    p, plen, s, slen = 0, len(pattern), 0, len(string)

    def at(buf: bytes, i: int) -> int:
        # C strings here are not NUL-terminated slices; reading one past the end yields 0 in
        # the only place Redis does it (pattern[1] == '*' with patternLen == 1).
        return buf[i] if i < len(buf) else 0

    while plen and slen:
        c = pattern[p]
        if c == ord("*"):
            while plen and at(pattern, p + 1) == ord("*"):
                p += 1
                plen -= 1
            if plen == 1:
                return True
            while slen:
                if redis_stringmatchlen(pattern[p + 1 : p + plen], string[s : s + slen]):
                    return True
                s += 1
                slen -= 1
            return False
        elif c == ord("?"):
            s += 1
            slen -= 1
        elif c == ord("["):
            p += 1
            plen -= 1
            negate = bool(plen) and pattern[p] == ord("^")
            if negate:
                p += 1
                plen -= 1
            match = False
            while True:
                if plen >= 2 and pattern[p] == ord("\\"):
                    p += 1
                    plen -= 1
                    if pattern[p] == string[s]:
                        match = True
                elif plen == 0:
                    p -= 1
                    plen += 1
                    break
                elif pattern[p] == ord("]"):
                    break
                elif plen >= 3 and pattern[p + 1] == ord("-"):
                    start, end = _signed(pattern[p]), _signed(pattern[p + 2])
                    if start > end:
                        start, end = end, start
                    p += 2
                    plen -= 2
                    if start <= _signed(string[s]) <= end:
                        match = True
                elif pattern[p] == string[s]:
                    match = True
                p += 1
                plen -= 1
            if negate:
                match = not match
            if not match:
                return False
            s += 1
            slen -= 1
        else:
            if c == ord("\\") and plen >= 2:
                p += 1
                plen -= 1
            if pattern[p] != string[s]:
                return False
            s += 1
            slen -= 1
        p += 1
        plen -= 1
        if slen == 0:
            while plen and pattern[p] == ord("*"):
                p += 1
                plen -= 1
            break
    return plen == 0 and slen == 0


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        (b"*", b"anything", True),
        (b"*", b"", False),  # Redis quirk: KEYS/SCAN special-case "*" before matching
        (b"", b"", True),
        (b"h?llo", b"hello", True),
        (b"h?llo", b"hllo", False),
        (b"h*llo", b"heeeello", True),
        (b"h[ae]llo", b"hallo", True),
        (b"h[ae]llo", b"hillo", False),
        (b"h[^e]llo", b"hallo", True),
        (b"h[^e]llo", b"hello", False),
        (b"h[a-b]llo", b"hbllo", True),
        (b"h[b-a]llo", b"hallo", True),  # reversed range ends
        (b"h\\*llo", b"h*llo", True),
        (b"h\\*llo", b"hello", False),
        (b"[]", b"]", False),  # empty class matches nothing
        (b"[^]", b"x", True),
        (b"[ab", b"b", True),  # open class ends at the end of the pattern
        (b"a\\", b"a\\", True),  # trailing backslash is literal
        (b"k\x00*\r\n", b"k\x00zz\r\n", True),
        (b"*a*b", b"xxaxxb", True),
        (b"*a*b", b"xxbxxa", False),
    ],
)
def test_examples(pattern: bytes, key: bytes, expected: bool) -> None:
    assert glob_match(pattern, key) is expected
    assert redis_stringmatchlen(pattern, key) is expected


def test_pathological_pattern_is_fast() -> None:
    # CVE-2022-36021: this takes exponential time in a naive backtracking matcher.
    match = compile_glob(b"*a" * 30 + b"*b")
    assert match(b"a" * 5000) is False


_ALPHABET = b"ab-^]\\[*?\x00\xff\n"


@settings(max_examples=3000, deadline=None)
@given(
    pattern=st.binary(max_size=8).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)),
    key=st.binary(max_size=8).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)),
)
def test_agrees_with_redis(pattern: bytes, key: bytes) -> None:
    assert glob_match(pattern, key) == redis_stringmatchlen(pattern, key)


@settings(max_examples=1000, deadline=None)
@given(pattern=st.binary(max_size=6), key=st.binary(max_size=6))
def test_agrees_with_redis_on_any_bytes(pattern: bytes, key: bytes) -> None:
    assert glob_match(pattern, key) == redis_stringmatchlen(pattern, key)

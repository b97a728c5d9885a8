"""Glob-style matching of binary keys, with the rules of Redis's ``stringmatchlen``.

KEYS, SCAN MATCH (and anything else that takes a Redis pattern) use these rules:

* ``*`` any run of bytes, ``?`` exactly one byte;
* ``[abc]`` one byte of the set, ``[^abc]`` one byte not in it, ``[a-z]`` a range (the ends may
  come in either order), ``\\x`` inside a class is the literal ``x``;
* ``\\x`` outside a class is the literal ``x``; a trailing lone backslash is a literal backslash;
* a class left open at the end of the pattern ends there (``[ab`` is ``[ab]``); ``[]`` matches
  nothing and ``[^]`` any byte.

Quirks kept on purpose so clients see what redis-server does (``src/util.c``, Redis 7.2):

* an empty string matches only the empty pattern: ``stringmatchlen("*", "")`` is false. KEYS and
  SCAN special-case the pattern ``*`` to mean "every key" before they call the matcher, and so
  does the storage engine; this module stays faithful to the function.
* range ends compare as C ``char``, which is signed on x86-64: ``[a-\\xff]`` covers bytes
  ``0x00``-``0x61`` and ``0xff``, not ``0x61``-``0xff``.

Redis backtracks on ``*`` (made polynomial by the fix for CVE-2022-36021). Here a pattern is cut
at its stars into fixed-width segments: the first must match at the start, the last at the end,
and each middle one is placed at its leftmost match, which is always optimal for fixed-width
segments. Matching is therefore O(len(pattern) * len(key)) with no backtracking, whatever the
pattern.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

__all__ = ["compile_glob", "glob_match"]

_ALL_BYTES = frozenset(range(256))


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


# A segment is a list of single-byte matchers, each a frozenset of the byte values it accepts.
_Segment = list[frozenset[int]]


def _parse(pattern: bytes) -> list[_Segment]:
    """Split ``pattern`` at its stars into segments, walking it exactly as ``stringmatchlen``
    does (so escapes, open classes and ranges resolve the same way)."""
    segments: list[_Segment] = [[]]
    index, length = 0, len(pattern)
    while index < length:
        char = pattern[index]
        if char == 0x2A:  # '*'
            if segments[-1]:
                segments.append([])
            elif len(segments) == 1:
                # A leading star: keep the empty first segment (anchored at the start) and open
                # the next one, so consecutive stars collapse into one.
                segments.append([])
            index += 1
            continue
        if char == 0x3F:  # '?'
            segments[-1].append(_ALL_BYTES)
            index += 1
            continue
        if char == 0x5B:  # '['
            accepted, index = _parse_class(pattern, index + 1)
            segments[-1].append(accepted)
            continue
        if char == 0x5C and index + 1 < length:  # '\\' escapes the next byte
            index += 1
        segments[-1].append(frozenset((pattern[index],)))
        index += 1
    return segments


def _parse_class(pattern: bytes, index: int) -> tuple[frozenset[int], int]:
    """Parse a class whose ``[`` is just before ``index``; return the accepted bytes and the
    index after the closing ``]`` (or the end of the pattern for an open class)."""
    length = len(pattern)
    negate = index < length and pattern[index] == 0x5E  # '^'
    if negate:
        index += 1
    members: set[int] = set()
    while index < length:
        remaining = length - index
        char = pattern[index]
        if char == 0x5C and remaining >= 2:  # escaped member
            members.add(pattern[index + 1])
            index += 2
        elif char == 0x5D:  # ']'
            index += 1
            break
        elif remaining >= 3 and pattern[index + 1] == 0x2D:  # 'x-y' range
            start, end = _signed(char), _signed(pattern[index + 2])
            if start > end:
                start, end = end, start
            members.update(b for b in range(256) if start <= _signed(b) <= end)
            index += 3
        else:
            members.add(char)
            index += 1
    accepted = _ALL_BYTES - members if negate else frozenset(members)
    return accepted, index


def _segment_regex(segment: _Segment) -> re.Pattern[bytes] | bytes:
    """A literal ``bytes`` when every position takes one byte (fast ``find``/``startswith``),
    else a compiled fixed-width regex."""
    if all(len(accepted) == 1 for accepted in segment):
        return bytes(next(iter(accepted)) for accepted in segment)
    parts = []
    for accepted in segment:
        if len(accepted) == 256:
            parts.append(b".")
        elif not accepted:
            parts.append(b"(?!)")
        else:
            parts.append(b"[" + b"".join(b"\\x%02x" % byte for byte in sorted(accepted)) + b"]")
    return re.compile(b"".join(parts), re.DOTALL)


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: bytes) -> Callable[[bytes], bool]:
    """Return a predicate telling whether a key matches ``pattern`` (see the module docstring).

    Compiled patterns are cached, so calling this per KEYS/SCAN request is cheap.
    """
    segments = _parse(pattern)
    matchers = [_segment_regex(segment) for segment in segments]
    widths = [len(segment) for segment in segments]
    if pattern == b"":
        return _is_empty

    if len(segments) == 1:
        only, width = matchers[0], widths[0]
        if isinstance(only, bytes):
            literal = only

            def match_literal(key: bytes) -> bool:
                return key == literal

            return match_literal
        fullmatch = only.fullmatch

        def match_whole(key: bytes) -> bool:
            return len(key) == width and fullmatch(key) is not None

        return match_whole

    first, last = matchers[0], matchers[-1]
    first_width, last_width = widths[0], widths[-1]
    middles = list(zip(matchers[1:-1], widths[1:-1], strict=True))
    minimum_length = sum(widths)

    def match_starred(key: bytes) -> bool:
        key_length = len(key)
        # Redis: the string running out before the pattern is a mismatch, even against "*".
        if key_length == 0 or key_length < minimum_length:
            return False
        if not _matches_at(first, key, 0):
            return False
        position = first_width
        tail_start = key_length - last_width
        for matcher, width in middles:
            found = _find(matcher, key, position, tail_start)
            if found < 0:
                return False
            position = found + width
        return position <= tail_start and _matches_at(last, key, tail_start)

    return match_starred


def _is_empty(key: bytes) -> bool:
    return not key


def _matches_at(matcher: re.Pattern[bytes] | bytes, key: bytes, position: int) -> bool:
    if isinstance(matcher, bytes):
        return key.startswith(matcher, position)
    return matcher.match(key, position) is not None


def _find(matcher: re.Pattern[bytes] | bytes, key: bytes, position: int, end: int) -> int:
    """Leftmost start >= ``position`` of a match lying wholly before ``end``, or -1."""
    if isinstance(matcher, bytes):
        return key.find(matcher, position, end)
    found = matcher.search(key, position, end)
    return -1 if found is None else found.start()


def glob_match(pattern: bytes, key: bytes) -> bool:
    """True if ``key`` matches the Redis glob ``pattern``."""
    return compile_glob(pattern)(key)

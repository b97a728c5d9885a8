"""LCS: the longest common subsequence of two string values (``lcsCommand`` in Redis 7.0).

Redis fills an (len(a)+1) x (len(b)+1) table of prefix LCS lengths and walks it back from the
end; the walk's tie-breaking decides which subsequence and which ranges are reported, so the
same walk is done here. The table is not built cell by cell (too slow in Python): each row is
one integer bit vector computed with Hyyrö's bit-parallel recurrence, iterating over the
shorter string, and a cell is read back with one shift and one popcount. Two 10 kB strings take
a few tens of milliseconds instead of minutes.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import SYNTAX, CommandError
from .arguments import MAX_STRING_BYTES, parse_int

_ZEROS: Final = bytearray(b"0" * 256)


class PrefixLcs:
    """``length(i, j)``: the LCS length of ``a[:i]`` and ``b[:j]``."""

    __slots__ = ("_rows", "_row_bits", "_a_is_rows")

    def __init__(self, a: bytes, b: bytes) -> None:
        self._a_is_rows = len(a) <= len(b)
        rows, columns = (a, b) if self._a_is_rows else (b, a)
        width = len(columns)
        full = (1 << width) - 1
        # match[x]: bit k set when columns[k] == x (bit 0 is the first byte).
        match: dict[int, int] = {}
        for byte in set(rows):
            table = bytearray(_ZEROS)
            table[byte] = 0x31
            digits = columns.translate(table)[::-1]
            match[byte] = int(digits, 2) if digits else 0
        vector = full
        vectors = [vector]
        for byte in rows:
            u = vector & match[byte]
            vector = ((vector + u) | (vector - u)) & full
            vectors.append(vector)
        #: Row r's vector has a 0 bit at each column where the row's prefix LCS grows by one.
        self._rows = vectors
        self._row_bits = [v.bit_count() for v in vectors]

    def length(self, i: int, j: int) -> int:
        row, column = (i, j) if self._a_is_rows else (j, i)
        vector = self._rows[row]
        ones_before = self._row_bits[row] - (vector >> column).bit_count()
        return column - ones_before


def lcs_command(conn: Any, argv: list[bytes]) -> Any:
    engine = conn.engine
    # Both keys are read before the options are parsed (a missing key is an empty string).
    a = engine.get(argv[1]) or b""
    b = engine.get(argv[2]) or b""
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    i = 3
    argc = len(argv)
    while i < argc:
        option = argv[i].upper()
        if option == b"IDX":
            get_idx = True
        elif option == b"LEN":
            get_len = True
        elif option == b"WITHMATCHLEN":
            with_match_len = True
        elif option == b"MINMATCHLEN" and i + 1 < argc:
            min_match_len = max(parse_int(argv[i + 1]), 0)
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if get_len and get_idx:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    # Redis refuses a table (uint32 cells) larger than proto-max-bulk-len.
    if (len(a) + 1) * (len(b) + 1) * 4 > MAX_STRING_BYTES:
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds "
                           "proto-max-bulk-len")
    table = PrefixLcs(a, b)
    total = table.length(len(a), len(b))
    if get_len and not get_idx:
        return total
    return _walk_back(a, b, table, total, get_idx, with_match_len, min_match_len)


def _walk_back(a: bytes, b: bytes, table: PrefixLcs, total: int, get_idx: bool,
               with_match_len: bool, min_match_len: int) -> Any:
    """The subsequence (or, with IDX, its matching ranges, last first) exactly as Redis's
    backward walk finds it."""
    length = table.length
    result = bytearray(total)
    matches: list[list[Any]] = []
    alen = len(a)
    idx = total
    a_start = alen  # alen: no range open
    a_end = b_start = b_end = 0
    i, j = alen, len(b)
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1  # the range extends backwards
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if length(i - 1, j) > length(i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if get_idx and (min_match_len == 0 or match_len >= min_match_len):
                entry: list[Any] = [[a_start, a_end], [b_start, b_end]]
                if with_match_len:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    if get_idx:
        return {b"matches": matches, b"len": total}
    return bytes(result)

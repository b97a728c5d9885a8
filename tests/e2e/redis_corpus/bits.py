"""Bit commands: SETBIT GETBIT BITCOUNT (BYTE/BIT) BITPOS BITOP, and LCS."""

from distcache_core.testing.differential import Case

CASES = [
    Case("setbit-getbit", [
        ("SETBIT", "k", "7", "1"), ("SETBIT", "k", "7", "1"), ("SETBIT", "k", "100", "1"),
        ("GET", "k"), ("GETBIT", "k", "7"), ("GETBIT", "k", "99999"), ("GETBIT", "nokey", "0"),
        ("SETBIT", "k", "0", "0"), ("SETBIT", "fresh", "9", "0"), ("GET", "fresh"),
        ("SET", "t", "a", "EX", "100"), ("SETBIT", "t", "1", "0"), ("TTL", "t")]),
    Case("setbit-getbit-errors", [
        ("SETBIT", "k", "-1", "1"), ("SETBIT", "k", "1", "2"), ("SETBIT", "k", "x", "1"),
        ("SETBIT", "k", "4294967296", "1"), ("SETBIT", "k", "+1", "1"), ("SETBIT", "k"),
        ("GETBIT", "k"), ("SETBIT", "k", "1", "-0"), ("SETBIT", "k", "1", " 1"),
        ("SETBIT", "k", "1", "-1"), ("GETBIT", "k", "1.5"), ("GETBIT", "k", "-1"),
        ("EXISTS", "k")]),
    Case("bitcount", [
        ("SET", "s", "foobar"), ("BITCOUNT", "s"), ("BITCOUNT", "s", "1", "1"),
        ("BITCOUNT", "s", "0"), ("BITCOUNT", "s", "0", "1", "2"),
        ("BITCOUNT", "s", "0", "1", "BIT"), ("BITCOUNT", "s", "5", "30", "BIT"),
        ("BITCOUNT", "s", "0", "1", "bYtE"), ("BITCOUNT", "s", "0", "1", "x"),
        ("BITCOUNT", "s", "x", "1"), ("BITCOUNT", "s", "1", "x"), ("BITCOUNT", "nokey", "x", "y"),
        ("BITCOUNT", "s", "-100", "100"), ("BITCOUNT", "s", "-1", "-2"),
        ("BITCOUNT", "s", "9223372036854775807", "-1"),
        ("BITCOUNT", "s", "-9223372036854775808", "9223372036854775807", "BIT"),
        ("BITCOUNT",), ("SET", "e", ""), ("BITCOUNT", "e", "0", "-1"), ("BITCOUNT", "e")]),
    Case("bitpos", [
        ("SET", "s", "foobar"), ("BITPOS", "s"), ("BITPOS", "s", "2"), ("BITPOS", "s", "x"),
        ("BITPOS", "s", "1"), ("BITPOS", "s", "0", "2"), ("BITPOS", "nokey", "1"),
        ("BITPOS", "nokey", "0"), ("BITPOS", "nokey", "3"), ("BITPOS", "s", "1", "x"),
        ("BITPOS", "s", "1", "0", "x"), ("BITPOS", "s", "1", "0", "1", "y"),
        ("BITPOS", "s", "1", "0", "1", "BIT", "extra"), ("SET", "ones", b"\xff\xff\xff"),
        ("BITPOS", "ones", "0"), ("BITPOS", "ones", "0", "1"), ("BITPOS", "ones", "0", "1", "-1"),
        ("BITPOS", "ones", "0", "3", "100", "BIT"), ("BITPOS", "ones", "0", "0", "-1", "BIT"),
        ("SET", "zeros", b"\x00\x00"), ("BITPOS", "zeros", "1"), ("BITPOS", "zeros", "0"),
        ("SET", "e", ""), ("BITPOS", "e", "0"), ("BITPOS", "e", "1"),
        ("SET", "m", b"\x00\xff\xf0"), ("BITPOS", "m", "1", "7", "15", "BIT"),
        ("BITPOS", "m", "1", "2", "-1", "BYTE")]),
    Case("bitop", [
        ("SET", "a", b"\x01\x02\xff"), ("SET", "b", b"\x80"),
        ("BITOP", "AND", "d", "a", "b"), ("GET", "d"), ("BITOP", "or", "d", "a", "b", "nokey"),
        ("GET", "d"), ("BITOP", "XoR", "d", "a", "a"), ("GET", "d"), ("BITOP", "NOT", "d", "a"),
        ("GET", "d"), ("BITOP", "NOT", "d", "a", "b"), ("BITOP", "NAND", "d", "a"),
        ("SET", "d", "x", "EX", "100"), ("BITOP", "AND", "d", "a"), ("TTL", "d"),
        ("BITOP", "AND", "d", "nokey"), ("EXISTS", "d"), ("BITOP", "AND", "d"),
        ("BITOP", "AND")]),
    Case("lcs", [
        ("SET", "x", "ohmytext"), ("SET", "y", "mynewtext"), ("LCS", "x", "y"),
        ("LCS", "x", "y", "LEN"), ("LCS", "x", "y", "IDX"),
        ("LCS", "x", "y", "idx", "withmatchlen"),
        ("LCS", "x", "y", "IDX", "MINMATCHLEN", "3"), ("LCS", "x", "y", "IDX", "MINMATCHLEN", "-3"),
        ("LCS", "x", "y", "MINMATCHLEN", "x"), ("LCS", "x", "y", "MINMATCHLEN"),
        ("LCS", "x", "y", "LEN", "IDX"), ("LCS", "x", "y", "foo"), ("LCS", "x", "nokey"),
        ("LCS", "nokey", "nokey2", "IDX"), ("LCS", "x"), ("LCS", "x", "x", "LEN", "WITHMATCHLEN"),
        ("SET", "big", "x" * 12000), ("LCS", "big", "big", "LEN")]),
]

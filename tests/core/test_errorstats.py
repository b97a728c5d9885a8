"""ErrorStats: INFO's total_error_replies and errorstats, as Redis files error lines."""

from __future__ import annotations

from distcache_core.errorstats import MAX_ERROR_CODES, ErrorStats, error_code


def test_error_code_is_the_first_word_else_err() -> None:
    assert error_code("ERR syntax error") == "ERR"
    assert error_code("WRONGTYPE Operation against a key holding the wrong kind of value") \
        == "WRONGTYPE"
    assert error_code("NOAUTH Authentication required.") == "NOAUTH"
    assert error_code("NOSPACEINTHISERROR") == "ERR"  # no space: Redis falls back to ERR
    assert error_code("A" * 40 + " late space") == "ERR"  # searched within 32 characters
    assert error_code(" leading space") == "ERR"


def test_counts_total_and_per_code() -> None:
    stats = ErrorStats()
    stats.count("ERR syntax error")
    stats.count("NOPROTO unsupported protocol version")
    stats.count("ERR value is not an integer or out of range")
    stats.count("BUSY Redis is busy running a script.")
    assert stats.total == 4
    # Sorted bytewise, as Redis's radix tree lists them.
    assert stats.info_fields() == [("errorstat_BUSY", "count=1"), ("errorstat_ERR", "count=2"),
                                   ("errorstat_NOPROTO", "count=1")]
    stats.reset()
    assert stats.total == 0 and stats.info_fields() == []


def test_distinct_codes_are_capped_but_still_counted_in_total() -> None:
    stats = ErrorStats()
    for index in range(MAX_ERROR_CODES + 10):
        stats.count(f"CODE{index} message")
    assert stats.total == MAX_ERROR_CODES + 10
    assert len(stats.info_fields()) == MAX_ERROR_CODES
    stats.count("CODE0 again")
    assert ("errorstat_CODE0", "count=2") in stats.info_fields()

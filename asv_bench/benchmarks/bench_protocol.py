"""The RESP wire protocol, sans IO: request parsing and reply encoding as the server calls them.

A ``time_*`` call is one ``RequestParser.feed`` or one ``encode_resp2``, except the chunked
stream (one call feeds a whole 64-command stream). Parsers and payloads are built in
``__init__``, not ``setup``, so that asv batches these sub-microsecond calls (see
``benchmarks/__init__.py``); every feed ends at a request boundary, so a parser can be reused.
"""

from __future__ import annotations

from distcache_core.protocol import RequestParser, encode_request, encode_resp2

VALUE = b"v" * 32
CHUNK_SIZES = [16, 512]


def key(index: int) -> bytes:
    return b"key:%010d" % index


def get_set_pipeline(commands: int) -> tuple[bytes, list[list[bytes]]]:
    """SET and GET alternating over distinct keys: the bytes a pipelining client sends, and the
    commands they parse into."""
    argvs = [[b"SET", key(i), VALUE] if i % 2 == 0 else [b"GET", key(i - 1)]
             for i in range(commands)]
    return b"".join(encode_request(*argv) for argv in argvs), argvs


PIPELINE_16, PIPELINE_16_COMMANDS = get_set_pipeline(16)
STREAM_64, STREAM_64_COMMANDS = get_set_pipeline(64)
SINGLE_GET = encode_request(b"GET", key(1))

BULK_REPLY = VALUE
INTEGER_REPLY = 1_234_567
#: A SCAN reply: the next cursor, then a page of ten keys.
NESTED_ARRAY_REPLY = [b"1703", [key(i) for i in range(10)]]


class RequestParsing:
    def __init__(self) -> None:
        self.parser = RequestParser()
        assert self.parser.feed(PIPELINE_16) == PIPELINE_16_COMMANDS
        assert self.parser.feed(SINGLE_GET) == [[b"GET", key(1)]]

    def time_pipeline_16_get_set_one_feed(self) -> None:
        self.parser.feed(PIPELINE_16)

    def time_single_get_per_feed(self) -> None:
        self.parser.feed(SINGLE_GET)


class ChunkedStreamParsing:
    """A 64-command GET/SET stream (3.4 KB) arriving in reads of ``chunk_bytes``: requests cut
    at every possible place, as slow links and small socket buffers deliver them."""

    params = CHUNK_SIZES
    param_names = ["chunk_bytes"]

    def __init__(self) -> None:
        self.parser = RequestParser()
        self.chunks = {size: [STREAM_64[i:i + size] for i in range(0, len(STREAM_64), size)]
                       for size in CHUNK_SIZES}
        for chunks in self.chunks.values():
            parsed = [argv for chunk in chunks for argv in self.parser.feed(chunk)]
            assert parsed == STREAM_64_COMMANDS

    def time_stream_64_commands_chunked(self, chunk_bytes: int) -> None:
        feed = self.parser.feed
        for chunk in self.chunks[chunk_bytes]:
            feed(chunk)


class ReplyEncoding:
    def time_encode_bulk(self) -> None:
        encode_resp2(BULK_REPLY)

    def time_encode_integer(self) -> None:
        encode_resp2(INTEGER_REPLY)

    def time_encode_nested_array(self) -> None:
        encode_resp2(NESTED_ARRAY_REPLY)

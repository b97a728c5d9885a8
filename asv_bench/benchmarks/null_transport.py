"""A client connection of a node with no socket behind it, for the benchmarks that drive the
request path in process (``bench_dispatch``, ``bench_dashboard``); not a benchmark itself."""

from __future__ import annotations

from typing import Any

from distcache_core.node import Node


class NullTransport:
    """What ``ClientConnection`` calls on an asyncio transport; writes are counted and the last
    one kept, never buffered, so the connection never sees back-pressure."""

    def __init__(self) -> None:
        self.bytes_written = 0
        self.last_write = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        self.last_write = data

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def connect(node: Node) -> tuple[Any, NullTransport]:
    """A new client connection of ``node`` (as if a client had connected) and its transport."""
    transport = NullTransport()
    conn = node.server.protocol_factory()
    conn.connection_made(transport)
    return conn, transport

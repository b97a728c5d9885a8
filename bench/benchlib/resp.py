"""Just enough RESP2 to ping, flush, count and bulk-load a server without dependencies."""

from __future__ import annotations

import socket
from types import TracebackType

Reply = bytes | int | None | list["Reply"]


class RespError(Exception):
    """An error reply, or a reply this small client does not understand."""


def encode(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Client:
    """One blocking connection: ``command()`` for single calls, ``pipeline_ok()`` for bulk."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.sock.close()

    def command(self, *args: bytes | str | int) -> Reply:
        self.sock.sendall(encode(*args))
        return self._read_reply()

    def pipeline_ok(self, payload: bytes, count: int) -> None:
        """Send ``count`` pipelined commands at once; every reply must be ``+OK``."""
        self.sock.sendall(payload)
        expected = b"+OK\r\n" * count
        while len(self.buf) < len(expected):
            self._fill()
            if not expected.startswith(bytes(self.buf[:len(expected)])):
                break
        got, self.buf = bytes(self.buf[:len(expected)]), self.buf[len(expected):]
        if got != expected:
            bad = next((line for line in got.split(b"\r\n") if line != b"+OK"), got)
            raise RespError(f"bulk load got {bad[:200]!r} instead of +OK")

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RespError("connection closed by the server")
        self.buf += chunk

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line, self.buf = bytes(self.buf[:end]), self.buf[end + 2:]
        return line

    def _read_reply(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buf) < size + 2:
                self._fill()
            data, self.buf = bytes(self.buf[:size]), self.buf[size + 2:]
            return data
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read_reply() for _ in range(size)]
        raise RespError(f"unexpected reply {line[:200]!r}")

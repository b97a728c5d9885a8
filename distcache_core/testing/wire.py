"""Helpers for end-to-end tests that talk to a node the way clients do."""

from __future__ import annotations

from typing import Any

import pytest
import redis


def error_line(exc: redis.ResponseError) -> str:
    """The whole error line as the node sent it (without ``-``): redis-py moves a known
    leading code such as ``ERR`` into ``status_code`` and keeps the rest as the message."""
    code = getattr(exc, "status_code", None)
    return f"{code} {exc}" if code else str(exc)


def assert_error(r: redis.Redis, expected: str, *args: object) -> None:
    """``r.execute_command(*args)`` fails with exactly the error line ``expected``."""
    with pytest.raises(redis.ResponseError) as info:
        r.execute_command(*args)
    assert error_line(info.value) == expected


def exchange(raw: Any, request: bytes, expected: bytes) -> None:
    """Send ``request`` on a raw client (``raw.send``, ``raw.sock``) and check that the reply
    bytes are exactly ``expected``."""
    raw.send(request)
    received = b""
    while len(received) < len(expected):
        chunk = raw.sock.recv(65536)
        if not chunk:
            break
        received += chunk
    assert received == expected

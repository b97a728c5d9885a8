"""The wire protocol: sans-IO RESP2 request parsing and RESP2/RESP3 reply encoding."""

from __future__ import annotations

from distcache_core.protocol.encoder import (
    encode_error,
    encode_request,
    encode_resp2,
    encode_resp3,
    format_double,
)
from distcache_core.protocol.parser import (
    ProtocolLimits,
    ReferenceParser,
    RequestParser,
    split_args,
    string2ll,
)

__all__ = [
    "ProtocolLimits",
    "ReferenceParser",
    "RequestParser",
    "encode_error",
    "encode_request",
    "encode_resp2",
    "encode_resp3",
    "format_double",
    "split_args",
    "string2ll",
]

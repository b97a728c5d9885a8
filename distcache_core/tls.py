"""TLS for the RESP port (clients and peers) from ``node.tls_cert_file``, ``tls_key_file`` and
``tls_ca_file``.

With a certificate the node serves TLS only (as Redis does with ``tls-port`` and ``port 0``):
``redis-cli --tls --cacert ca.pem`` and redis-py's ``ssl=True`` connect. With a CA file too,
a client that presents a certificate has it verified against that CA, and peers always present
theirs: a peer connection without a certificate the CA signed is refused internal commands,
and a node verifies each peer's certificate against the CA before it sends anything. Host
names are not checked (peers are reached by whatever names the config uses; the CA is what is
trusted).
"""

from __future__ import annotations

import ssl
from typing import Any

from .errors import ConfigError


def _load(context: ssl.SSLContext, cfg: Any) -> None:
    try:
        context.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file or None)
        if cfg.tls_ca_file:
            context.load_verify_locations(cfg.tls_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"node.tls_cert_file / tls_key_file / tls_ca_file: cannot be used: "
                          f"{exc}") from None


def server_context(cfg: Any) -> ssl.SSLContext | None:
    """The listening side's context; None for plain TCP (no certificate configured)."""
    if not cfg.tls_cert_file:
        if cfg.tls_key_file or cfg.tls_ca_file:
            raise ConfigError("node.tls_key_file / tls_ca_file are set but node.tls_cert_file "
                              "is not: TLS needs a certificate")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load(context, cfg)
    if cfg.tls_ca_file:
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def peer_context(cfg: Any) -> ssl.SSLContext | None:
    """The context a node connects to its peers with: presents its own certificate and
    verifies theirs against the CA (the system's CAs when no CA file is set)."""
    if not cfg.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    _load(context, cfg)
    context.verify_mode = ssl.CERT_REQUIRED
    return context

"""The ``[plugins.dashboard]`` config table."""

from __future__ import annotations

from typing import Any

import attrs


def _port(instance: Any, attribute: attrs.Attribute[int], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ValueError(f"{attribute.name} must be a port number from 0 to 65535, "
                         f"got {value!r}")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{attribute.name} must be a positive number, got {value!r}")


def _namespace(instance: Any, attribute: attrs.Attribute[str], value: Any) -> None:
    if not isinstance(value, str) or not value.replace("_", "a").isalnum() \
            or value[0].isdigit():
        raise ValueError(f"{attribute.name} must be a Prometheus name prefix "
                         f"([a-zA-Z_][a-zA-Z0-9_]*), got {value!r}")


@attrs.frozen(kw_only=True)
class DashboardSettings:
    """Where the dashboard listens and what it keeps (enabled by ``node.metrics``)."""

    #: Address of the HTTP server; loopback unless opened on purpose (it is read-only, but
    #: shows the node's keyspace figures and slow commands).
    host: str = "127.0.0.1"
    #: HTTP port; 0 picks a free one. ``distcache cluster up`` gives node N port 8080+N-1.
    port: int = attrs.field(default=8080, validator=_port)
    #: Prefix of the Prometheus metric names (the Redis exporter's ``redis`` by default, so
    #: Grafana dashboards made for it work unchanged).
    metrics_namespace: str = attrs.field(default="redis", validator=_namespace)
    #: How much history the page's charts get, and at what resolution.
    history_seconds: int = attrs.field(default=600, validator=_positive)
    sample_interval_seconds: float = attrs.field(default=1.0, validator=_positive)

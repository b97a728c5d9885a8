"""Metrics sinks named by ``node.metrics`` are built from their plugin's factory, started once
the node listens and stopped when it shuts down; an unknown name stops the node at start."""

from __future__ import annotations

import pytest

from distcache_core.errors import ConfigError
from distcache_core.hookspecs import hookimpl


class RecordingSink:
    events: list[str] = []

    def __init__(self, settings) -> None:
        self.settings = settings

    async def start(self, node) -> None:
        RecordingSink.events.append(f"start {node.node_id} port={node.port}")

    async def stop(self) -> None:
        RecordingSink.events.append("stop")


class SinkPlugin:
    @hookimpl
    def distcache_register_metrics_sinks(self, register) -> None:
        register("recording", RecordingSink)


def test_a_sink_starts_with_the_node_and_stops_with_it(make_node) -> None:
    RecordingSink.events = []
    node = make_node('node.metrics=["recording"]', extra_plugins=[("sink", SinkPlugin())])
    assert RecordingSink.events == [f"start node-1 port={node.port}"]
    assert isinstance(node.node.metrics_sinks["recording"], RecordingSink)
    node.stop()
    assert RecordingSink.events[-1] == "stop"


def test_an_unknown_sink_is_a_config_error(make_node) -> None:
    with pytest.raises(ConfigError, match="node.metrics: no plugin registers 'nosuch'"):
        make_node('node.metrics=["nosuch"]')

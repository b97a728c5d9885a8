"""A connection accepted while the node changes its barrier or gates picks the change up.

uvloop builds the protocol when it accepts and calls ``connection_made`` a loop turn later;
``add_barrier_source`` and ``set_node_gate`` update the connections registered at that
moment. A connection in between used to keep ``_barrier_enabled = False``: its writes were
acknowledged before they were durable (found by a kill -9 test that connected during
recovery).
"""

from __future__ import annotations

import asyncio
import socket


def test_a_connection_made_after_a_barrier_source_arrives_waits_for_it(node) -> None:
    async def scenario() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        server = node.node.server
        ours, theirs = socket.socketpair()
        protocol = server.protocol_factory()  # accepted: built, not yet connection_made
        node.node.add_barrier_source(lambda: _done(loop))
        server.set_node_gate("test", lambda conn, command, argv: None)
        await loop.connect_accepted_socket(lambda: protocol, sock=ours)
        try:
            return protocol._barrier_enabled, protocol.gated
        finally:
            server.set_node_gate("test", None)
            protocol.transport.close()
            theirs.close()

    barrier_enabled, gated = asyncio.run_coroutine_threadsafe(scenario(), node.loop).result(10)
    assert barrier_enabled and gated


def _done(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    future: asyncio.Future[None] = loop.create_future()
    future.set_result(None)
    return future

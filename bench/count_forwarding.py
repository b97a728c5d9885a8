"""Instructions per pipelined GET on a node of a cluster, counted by callgrind: the forwarding
node's side of issue 9's pipelined target (a non-owner serves at least half the owner's
throughput), without the noise of a shared machine.

One node in process (default plugins, uvloop) whose ring also holds ``node-2``; its link to
node-2 has a fake transport. Each read is a client's pipeline of 16 GETs, then a loop turn
(the link writes them), then node-2's 16 replies fed to the link. Cases:

- ``forwarded``: the 16 keys are node-2's, so every GET is sent on and its reply handed back;
- ``owned``: the 16 keys are this node's (the router finds the owner, then the GET runs here);
  the same loop turn per read, no peer traffic;
- ``served``: the owner's side of ``forwarded``: the same 16 GETs of this node's keys, read on
  a connection that authenticated as node-2's link (``DC.AUTH``, mode ``peer``), whose
  commands are routed once more (in case node-2's view of the ring is older) and run here.

``forwarded`` minus ``owned`` is what forwarding adds to a GET on the node the client talks to;
``forwarded`` plus ``served`` is what a forwarded GET costs the two nodes, against ``owned``
when the client asks the owner. As ``bench/count_instructions.py`` (both use
``benchlib/callgrind.py``), two runs per case and the difference per extra command:

    .venv/bin/python bench/count_forwarding.py [forwarded|owned|served]
"""

from __future__ import annotations

import sys

from benchlib.callgrind import DRIVER_TRANSPORTS, run_cases

CASES = ("forwarded", "owned", "served")

DRIVER = DRIVER_TRANSPORTS + """
import asyncio, sys
import uvloop
from distcache_core.cluster.peer import MODE_PEER, PeerLink
from distcache_core.config import ConfigSources
from distcache_core.node import Node
from distcache_core.protocol import encode_request

async def main(reads, case):
    forwarded = case == "forwarded"
    node = Node.from_sources(ConfigSources.gather(
        None, ["node.port=0", "node.slowlog_log_slower_than_us=-1"], environ={}))
    cluster = node.cluster
    cluster.router.build(node.commands)
    cluster.strategy.add_node("node-2")
    peer = cluster.pool.add("node-2", "127.0.0.1", 1)
    link = PeerLink(peer, MODE_PEER, 2)
    peer._links[(MODE_PEER, 2)] = link
    link.connection_made(RecordingTransport())
    link.data_received(b"+OK\\r\\n" * len(link.waiting))  # the handshake's replies
    assert link.connected
    cluster.router.install(node.commands)
    owner = cluster.strategy.owner
    names = [b"key:%06d" % i for i in range(1000)]
    keys = [k for k in names if (owner(k) == "node-2") == forwarded][:16]
    for key in keys:
        node.engine.set(key, b"xxx")
    data = b"".join(encode_request(b"GET", key) for key in keys)
    replies = b"$3\\r\\nxxx\\r\\n" * 16
    conn = node.server.protocol_factory()
    client = RecordingTransport()
    conn.connection_made(client)
    if case == "served":
        conn.data_received(encode_request(b"DC.AUTH", b"", b"node-2", b"peer"))
        assert client.written == [b"+OK\\r\\n"], client.written
        client.written.clear()
    received = conn.data_received
    feed = link.data_received
    for _ in range(reads):
        received(data)
        await asyncio.sleep(0)
        if forwarded:
            feed(replies)
    assert b"".join(client.written).count(b"xxx") == 16 * reads

uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
"""

PER_READ = 16


def main() -> int:
    return run_cases(
        __doc__.split("\n\n")[0],
        {name: (DRIVER.replace("sys.argv[2]", repr(name)), PER_READ) for name in CASES},
        default="all", line="{name:10} {count:10,.0f} instructions per pipelined GET")


if __name__ == "__main__":
    sys.exit(main())

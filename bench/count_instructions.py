"""Instructions per command on the request path, counted by valgrind's callgrind.

Wall-clock timings on a shared 2-core VM move by 10-30% from run to run; instruction counts do
not (the same build, inputs and environment give the same total). This runs a node's
``ClientConnection.data_received`` (fake transport, default plugins) twice per case, with a
short and a long loop, and reports the difference divided by the extra commands: the startup
cancels out. Use it to check that a change to the hot path really saves work:

    .venv/bin/python bench/count_instructions.py          # all cases
    .venv/bin/python bench/count_instructions.py get-pipeline
    .venv/bin/python bench/count_instructions.py --hash-seed 7 get

String hashing is randomised per process unless ``PYTHONHASHSEED`` is set, and the dict probe
sequences it decides moved the counts by up to 8% between runs of unchanged code (18.2k-19.8k
for GET). The measured processes therefore run with a fixed seed (0 unless ``--hash-seed`` or
``PYTHONHASHSEED`` says otherwise), printed with the counts, so a count repeats exactly.

Needs valgrind (``apt-get install valgrind``); about 30 s per case.
"""

from __future__ import annotations

import sys

from benchlib.callgrind import DRIVER_TRANSPORTS, run_cases

CASES = {
    # name: (request bytes expression, commands per read)
    "get": ("encode_request(b'GET', b'key:000012')", 1),
    "set": ("encode_request(b'SET', b'key:000012', b'xxx')", 1),
    "get-pipeline": ("b''.join(encode_request(b'GET', b'key:%06d' % i) for i in range(16))", 16),
    "set-pipeline": (
        "b''.join(encode_request(b'SET', b'key:%06d' % i, b'xxx') for i in range(16))", 16),
}

DRIVER = DRIVER_TRANSPORTS + """
import sys
from distcache_core.config import ConfigSources
from distcache_core.node import Node
from distcache_core.protocol import encode_request

# The slow log off: under callgrind a read is ~50x slower, and on a loaded machine one that is
# descheduled for 10 ms would take the slow log's path (a real slow read's cost, not the
# request path's); the per-read compare with the threshold is counted all the same.
node = Node.from_sources(ConfigSources.gather(
    None, ["node.port=0", "node.slowlog_log_slower_than_us=-1"], environ={}))
conn = node.server.protocol_factory()
conn.connection_made(Transport())
for i in range(100):
    node.engine.set(b"key:%06d" % i, b"x" * 32)
data = {request}
received = conn.data_received
for _ in range(int(sys.argv[1])):
    received(data)
"""

def main() -> int:
    return run_cases(
        __doc__.split("\n\n")[0],
        {name: (DRIVER.replace("{request}", request), per_read)
         for name, (request, per_read) in CASES.items()},
        default="all", line="{name:14} {count:10,.0f} instructions per command")


if __name__ == "__main__":
    sys.exit(main())

"""Counting instructions with valgrind's callgrind (``bench/count_instructions.py``,
``bench/count_forwarding.py``): each case's driver script runs twice, with a short and a long
loop, and the difference divided by the extra commands is the count per command (the startup
cancels out). The measured processes run with a fixed ``PYTHONHASHSEED``: string hashing
decides dict probe sequences, which moved counts by up to 8% between runs of unchanged code.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping

SHORT, LONG = 200, 1200

#: Source of the fake transports the driver scripts give a node's connections (put before a
#: driver's own code): ``Transport`` drops what is written, so a count holds the request path
#: only; ``RecordingTransport`` keeps it, for drivers that check the replies.
DRIVER_TRANSPORTS = """
class Transport:
    def write(self, data): pass
    def get_extra_info(self, name, default=None): return ("127.0.0.1", 1)
    def set_write_buffer_limits(self, **limits): pass
    def pause_reading(self): pass
    def resume_reading(self): pass
    def is_closing(self): return False
    def close(self): pass
    def get_write_buffer_size(self): return 0

class RecordingTransport(Transport):
    def __init__(self): self.written = []
    def write(self, data): self.written.append(data)
"""


def instructions(script: str, reads: int, hash_seed: str) -> int:
    """Instructions callgrind counts for ``python -c script reads``."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", script, str(reads)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": hash_seed})
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no total:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def per_command(script: str, per_read: int, hash_seed: str) -> float:
    """Instructions per command of a driver that handles ``per_read`` commands a read."""
    extra = instructions(script, LONG, hash_seed) - instructions(script, SHORT, hash_seed)
    return extra / ((LONG - SHORT) * per_read)


def run_cases(description: str, cases: Mapping[str, tuple[str, int]], *, default: str,
              line: str) -> int:
    """The command line of a counting script: ``cases`` maps each name to its driver script
    and commands per read; ``default`` says which run without arguments (``all``, ``both``);
    ``line`` formats a result from ``name`` and ``count``."""
    parser = argparse.ArgumentParser(description=description)
    # No ``choices`` here: argparse checks a ``nargs="*"`` default against them as one value
    # and fails when run without arguments ("invalid choice: [...]").
    parser.add_argument("cases", nargs="*", metavar="case",
                        help=f"any of {', '.join(cases)} (default: {default})")
    parser.add_argument("--hash-seed", default=os.environ.get("PYTHONHASHSEED") or "0",
                        help="PYTHONHASHSEED of the measured processes (default: "
                             "$PYTHONHASHSEED, else 0)")
    args = parser.parse_args()
    unknown = [name for name in args.cases if name not in cases]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r} (choose from {', '.join(cases)})")
    if not args.hash_seed.isdigit():
        parser.error(f"--hash-seed must be an integer, got {args.hash_seed!r}: a random "
                     "seed is what makes the counts move")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 1
    print(f"PYTHONHASHSEED={args.hash_seed}", flush=True)
    for name in args.cases or list(cases):
        script, per_read = cases[name]
        print(line.format(name=name, count=per_command(script, per_read, args.hash_seed)),
              flush=True)
    return 0

"""Helpers of ``bench/run_bench.py``: server processes, a tiny RESP client, the report."""

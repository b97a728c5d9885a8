"""asv benchmarks for DistCache, one module per component (see ``asv_bench/README.md``).

Each module calls the component's objects directly, as the request path does: no pluggy hook
per operation, no subprocess. ``bench_roundtrip`` alone goes through a real socket.

Why state is built where it is: asv_runner (0.3.2, what asv 0.6.6 installs) re-runs ``setup``
before *every* timed call of a benchmark that has one, and then times one call per sample. So
a benchmark whose call is a loop over 10,000 operations (the engine) builds its fixture in
``setup``, memoised per process; one whose call is a single sub-microsecond operation
(protocol, dispatch) builds cheap state in ``__init__`` instead, and asv batches many calls
per sample.
"""

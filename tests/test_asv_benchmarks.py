"""Every asv benchmark runs once, as asv runs it: ``setup_cache``, ``setup(*params)``, the
benchmark, ``teardown``, for each parameter combination.

``make test`` also runs ``asv run --quick`` (which exits non-zero when a benchmark raises), but
asv records a ``track_*`` benchmark that returns None as merely "failed" and exits 0; here it
must return a positive finite number.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARK_DIR = Path(__file__).resolve().parent.parent / "asv_bench" / "benchmarks"
# asv_runner's name patterns for benchmark functions and methods.
BENCHMARK_NAME = re.compile(r"^(time|timeraw|track|mem|peakmem)_")


def load(path: Path) -> ModuleType:
    """Import a benchmark file as asv does: a module of the ``benchmarks`` package, with the
    package's parent folder on ``sys.path`` (so a benchmark can import a helper module of the
    package, ``from .null_transport import connect``)."""
    if str(path.parent.parent) not in sys.path:
        sys.path.insert(0, str(path.parent.parent))
    return importlib.import_module(f"{path.parent.name}.{path.stem}")


MODULES = {path.stem: load(path) for path in sorted(BENCHMARK_DIR.glob("bench_*.py"))}


def param_combinations(owner: Any) -> list[tuple[Any, ...]]:
    params = getattr(owner, "params", [])
    if not params:
        return [()]
    if not isinstance(params[0], (list, tuple)):
        params = [params]
    return list(itertools.product(*params))


def case_id(*parts: Any) -> str:
    name = ".".join(str(part) for part in parts[:-1] if part is not None)
    return f"{name}{list(parts[-1])}" if parts[-1] else name


def benchmark_cases() -> Iterator[Any]:
    for module_name, module in MODULES.items():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                for attr in dir(obj):
                    if BENCHMARK_NAME.match(attr):
                        for params in param_combinations(obj):
                            yield pytest.param(module_name, name, attr, params,
                                               id=case_id(module_name, name, attr, params))
            elif inspect.isfunction(obj) and BENCHMARK_NAME.match(name):
                for params in param_combinations(obj):
                    yield pytest.param(module_name, None, name, params,
                                       id=case_id(module_name, name, params))


def hooks(owner: Any, name: str) -> list[Any]:
    hook = getattr(owner, name, None)
    return [hook] if callable(hook) else []


def test_every_component_has_benchmarks() -> None:
    assert {"bench_engine", "bench_protocol", "bench_dispatch", "bench_roundtrip",
            "bench_persistence"} <= set(MODULES)
    for module_name in MODULES:
        assert any(case.values[0] == module_name for case in benchmark_cases()), module_name


@pytest.mark.parametrize(("module_name", "class_name", "name", "params"),
                         list(benchmark_cases()))
def test_benchmark_runs_once(module_name: str, class_name: str | None, name: str,
                             params: tuple[Any, ...]) -> None:
    module = MODULES[module_name]
    if class_name is None:
        owner: Any = module
        func = getattr(module, name)
        setups, teardowns = hooks(module, "setup"), hooks(module, "teardown")
    else:
        owner = getattr(module, class_name)()
        func = getattr(owner, name)
        setups = hooks(module, "setup") + hooks(owner, "setup")
        teardowns = hooks(owner, "teardown") + hooks(module, "teardown")
    args = params
    setup_cache = getattr(owner, "setup_cache", None)
    if setup_cache is not None:
        args = (setup_cache(), *params)
    for setup in setups:
        setup(*args)
    try:
        result = func(*args)
    finally:
        for teardown in teardowns:
            teardown(*args)
    if name.startswith("track_"):
        assert isinstance(result, (int, float)) and not isinstance(result, bool), result
        assert math.isfinite(result) and result > 0, result


@pytest.fixture(scope="module", autouse=True)
def _free_benchmark_fixtures() -> Iterator[None]:
    """The engine benchmarks keep 1M-key engines per process (functools.cache); let them go."""
    yield
    for module in MODULES.values():
        for obj in vars(module).values():
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()

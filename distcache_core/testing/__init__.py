"""Test helpers for plugin authors: contract suites every implementation of a kind must pass.

Subclass :class:`StorageEngineContract` in a test module (named ``Test...``) and implement
``make_engine``; see its docstring. :class:`HashStrategyContract` (``make_strategy``) does the
same for hash strategies, :class:`PersistenceContract` (``make_plugin``) for persistence
plugins.
"""

from __future__ import annotations

try:
    import pytest
except ImportError:  # the helpers stay importable outside a test run
    pass
else:
    # Plain asserts in the contract modules get pytest's detailed failure messages, as they
    # would in a test module; this must run before the modules are imported.
    pytest.register_assert_rewrite("distcache_core.testing.storage_engine_contract",
                                   "distcache_core.testing.storage_engine_mutations",
                                   "distcache_core.testing.hash_strategy_contract",
                                   "distcache_core.testing.persistence_contract")

from .hash_strategy_contract import HashStrategyContract  # noqa: E402
from .persistence_contract import PersistenceContract  # noqa: E402
from .storage_engine_contract import FakeClock, StorageEngineContract  # noqa: E402

__all__ = ["FakeClock", "HashStrategyContract", "PersistenceContract", "StorageEngineContract"]

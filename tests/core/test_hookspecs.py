"""Every hook is documented, typed, and exercised (datasette's meta-test)."""

from __future__ import annotations

import inspect
from pathlib import Path

from distcache_core import hookspecs

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
HOOKS = [name for name in dir(hookspecs) if name.startswith("distcache_")]


def test_there_are_hooks():
    assert len(HOOKS) >= 11


def test_every_hook_is_documented_for_plugin_authors():
    missing = [name for name in HOOKS if f"`{name}(" not in DOCS]
    assert missing == []


def test_every_hook_has_a_docstring_and_typed_arguments():
    for name in HOOKS:
        function = getattr(hookspecs, name)
        assert function.__doc__ and len(function.__doc__.strip()) > 20, name
        signature = inspect.signature(function)
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)

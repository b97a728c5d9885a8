"""docs/plugins.md stays true: every Command field is documented, and every engine method it
offers handlers exists in the contract and on the default engine."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from distcache_core.command_table import Command, Subcommand
from distcache_core.contracts import StorageEngine
from distcache_plugins.lru_ttl.engine import LruTtlEngine

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()


def _section(title: str) -> str:
    start = DOCS.index(title)
    end = DOCS.find("\n#", start + len(title))
    return DOCS[start:end if end > 0 else None]


def test_every_command_field_is_documented() -> None:
    table = _section("#### `Command` fields")
    fields = [f.name for f in attrs.fields(Command) if f.init]
    missing = [name for name in fields if f"`{name}`" not in table]
    assert missing == []
    for name in (f.name for f in attrs.fields(Subcommand) if f.init):
        assert f"{name}=" in table, name


def test_engine_methods_offered_to_handlers_exist() -> None:
    section = _section("#### What a handler may use")
    table = section[section.index("| method | does |"):]
    offered = set(re.findall(r"`(\w+)\(", table)) - {"len"}
    assert {"get", "set", "incr_by", "scan", "stats"} <= offered
    for name in offered:
        assert hasattr(StorageEngine, name), name
        assert callable(getattr(LruTtlEngine, name, None)), name

"""Every config key a node reads: its table, default, environment variable and meaning.

``distcache config-keys`` prints them; the core tables come from :class:`~.config.Config`'s
attrs classes and the plugin tables from the classes loaded plugins registered, so the list
cannot drift from what the node validates. Each key's meaning is the ``#:`` comment above its
field in the class's source.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .config import CORE_ENV, Config

__all__ = ["ConfigKey", "config_keys", "format_toml_value"]


@attrs.frozen
class ConfigKey:
    """One key: ``node.port``, its default as TOML, its env var (or ""), its meaning."""

    key: str
    default: str
    env: str
    doc: str
    section: str


def format_toml_value(value: Any) -> str:
    """``value`` as it would be written in the TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {format_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the ``#:`` comment lines just above it in ``cls``'s source."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    docs: dict[str, str] = {}
    text_lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            comment: list[str] = []
            index = node.lineno - 2
            while index >= 0 and text_lines[index].strip().startswith("#:"):
                comment.insert(0, text_lines[index].strip()[2:].strip())
                index -= 1
            if comment:
                docs[node.target.id] = " ".join(comment)
    return docs


def _table_keys(section: str, cls: type, env_by_field: Mapping[str, str]) -> Iterator[ConfigKey]:
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        key = f"{section}.{field.name}"
        nested = hints.get(field.name)
        if nested is not None and attrs.has(nested):  # a nested table
            yield from _table_keys(key, nested, {})
            continue
        default: Any = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        yield ConfigKey(key=key, default=format_toml_value(default),
                        env=env_by_field.get(field.name, ""), doc=docs.get(field.name, ""),
                        section=section)


def config_keys(plugin_sections: Mapping[str, Any]) -> list[ConfigKey]:
    """The core tables (each attrs-class field of :class:`Config`), then each plugin's
    ``[plugins.<name>]`` table.

    :param plugin_sections: section name -> registration with ``obj`` (the attrs class) and
        ``env`` (environment variable -> field name), as ``Registry.config_sections``.
    """
    keys: list[ConfigKey] = []
    hints = typing.get_type_hints(Config)
    for field in attrs.fields(Config):
        table = hints.get(field.name)
        if table is not None and attrs.has(table):
            env = {path.split(".", 1)[1]: var for var, path in CORE_ENV.items()
                   if path.split(".", 1)[0] == field.name}
            keys.extend(_table_keys(field.name, table, env))
    for name in sorted(plugin_sections):
        registration = plugin_sections[name]
        env = {field: var for var, field in registration.env.items()}
        keys.extend(_table_keys(f"plugins.{name}", registration.obj, env))
    return keys

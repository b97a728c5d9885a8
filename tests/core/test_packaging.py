"""The distribution ships every package: plugins/ is mapped to distcache_plugins by hand, so a
new plugin folder must be listed in pyproject.toml or a real install would miss it."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def importable_packages() -> set[str]:
    found = set()
    for root, name in (("distcache_core", "distcache_core"), ("plugins", "distcache_plugins")):
        for init in (REPO / root).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / root)
            found.add(".".join((name, *relative.parts)))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == importable_packages()
    assert config["package-dir"] == {"distcache_core": "distcache_core",
                                     "distcache_plugins": "plugins"}


def test_default_plugins_are_entry_points_too():
    from distcache_core.plugins import DEFAULT_PLUGINS

    entry_points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "entry-points"]["distcache"]
    assert sorted(entry_points.values()) == sorted(DEFAULT_PLUGINS)

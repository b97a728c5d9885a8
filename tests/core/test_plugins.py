"""Plugin loading: defaults, entry points, config-named modules, duplicates, failures."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from distcache_core import Command, hookimpl
from distcache_core.errors import PluginError
from distcache_core.plugins import DEFAULT_PLUGINS, Registry, autoload_enabled, load_plugins


class EchoTwicePlugin:
    """An inline plugin, registered as a third party would be."""

    @hookimpl
    def distcache_register_commands(self, register):
        register(Command(name="echotwice", handler=lambda conn, argv: argv[1] * 2, arity=2))


class ShadowPingPlugin:
    @hookimpl
    def distcache_register_commands(self, register):
        register(Command(name="ping", handler=lambda conn, argv: "NOPE", arity=1))


class MisspeltHookPlugin:
    @hookimpl
    def distcache_register_comands(self, register):  # noqa: D401 - misspelt on purpose
        pass


def test_defaults_load_and_register_builtin_commands_and_engine():
    host = load_plugins(autoload=False)
    assert list(host.origins)[: len(DEFAULT_PLUGINS)] == list(DEFAULT_PLUGINS)
    registry = Registry.collect(host.pm)
    assert "lru_ttl" in registry.storage_engines
    assert registry.storage_engines["lru_ttl"].plugin == "distcache_plugins.lru_ttl"
    assert registry.commands["ping"].plugin == "distcache_core.builtin.connection"
    assert registry.commands["get"].plugin == "distcache_core.builtin.strings"
    assert "lru_ttl" in registry.config_sections


def test_inline_plugin_adds_a_command():
    host = load_plugins(autoload=False, extra_objects=[("echotwice", EchoTwicePlugin())])
    registry = Registry.collect(host.pm)
    assert registry.commands["echotwice"].plugin == "echotwice"
    assert host.origins["echotwice"] == "embedded"


def test_duplicate_command_names_both_plugins():
    host = load_plugins(autoload=False, extra_objects=[("shadow", ShadowPingPlugin())])
    with pytest.raises(PluginError) as err:
        Registry.collect(host.pm)
    message = str(err.value)
    assert "command 'ping'" in message
    assert "distcache_core.builtin.connection" in message and "'shadow'" in message


def test_misspelt_hook_fails_loudly():
    with pytest.raises(PluginError, match="distcache_register_comands"):
        load_plugins(autoload=False, extra_objects=[("typo", MisspeltHookPlugin())])


def test_config_named_module_is_loaded(tmp_path, monkeypatch):
    (tmp_path / "my_dc_plugin.py").write_text(textwrap.dedent("""
        from distcache_core import Command, hookimpl

        @hookimpl
        def distcache_register_commands(register):
            register(Command(name="mine", handler=lambda conn, argv: b"mine", arity=1))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    host = load_plugins(["my_dc_plugin"], autoload=False)
    assert host.origins["my_dc_plugin"] == "config node.plugins"
    assert Registry.collect(host.pm).commands["mine"].plugin == "my_dc_plugin"


def test_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken_dc_plugin.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"plugin 'broken_dc_plugin' .*failed to import: "
                                          r"RuntimeError: boom"):
        load_plugins(["broken_dc_plugin"], autoload=False)
    with pytest.raises(PluginError, match="'no_such_dc_plugin'.*ModuleNotFoundError"):
        load_plugins(["no_such_dc_plugin"], autoload=False)
    sys.modules.pop("broken_dc_plugin", None)


def test_autoload_switch(monkeypatch):
    assert autoload_enabled({})
    assert not autoload_enabled({"DISTCACHE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert autoload_enabled({"DISTCACHE_DISABLE_PLUGIN_AUTOLOAD": "0"})


def test_entry_point_plugin_is_autoloaded_and_can_be_switched_off():
    # examples/hello_plugin is installed into the venv by `make test`.
    host = load_plugins(autoload=True)
    assert host.origins["hello"].startswith("entry point of distcache-hello")
    assert Registry.collect(host.pm).commands["greet"].plugin == "hello"
    off = load_plugins(autoload=False)
    assert "hello" not in off.origins


def test_cli_plugins_lists_what_each_plugin_registers(cli):
    result = cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["distcache_plugins.lru_ttl"]["origin"] == "default"
    assert "storage engine lru_ttl" in rows["distcache_plugins.lru_ttl"]["registers"]
    assert "command get" in rows["distcache_core.builtin.strings"]["registers"]
    assert rows["hello"]["registers"] == ["command greet"]
    text = cli("plugins").stdout
    assert "distcache_plugins.lru_ttl  (default)" in text
    assert "storage engine: lru_ttl" in text
    assert "hello  (entry point of distcache-hello 0.1.0)" in text


def test_cli_plugins_with_autoload_off(cli):
    result = cli("plugins", "--json", env={"DISTCACHE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    names = [row["name"] for row in json.loads(result.stdout)]
    assert "hello" not in names and "distcache_plugins.lru_ttl" in names

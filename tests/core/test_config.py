"""Configuration layers, types and error messages."""

from __future__ import annotations

import attrs
import pytest

from distcache_core.config import (
    ConfigSources,
    NodeConfig,
    build_config,
    parse_set_flag,
    parse_toml_value,
    structure_node,
)
from distcache_core.errors import ConfigError
from distcache_core.plugins import Registration


@attrs.frozen(kw_only=True)
class DemoSettings:
    capacity: int = 10
    ratio: float = 0.5
    label: str = "x"


SECTIONS = {
    "demo": Registration("demo", DemoSettings, "demo-plugin", {"DEMO_CAPACITY": "capacity"}),
}


def sources(tmp_path, text: str = "", sets=(), environ=None) -> ConfigSources:
    path = None
    if text:
        path = tmp_path / "distcache.toml"
        path.write_text(text)
    return ConfigSources.gather(path, list(sets), environ=environ or {})


def test_defaults_match_the_documented_table(tmp_path):
    node = structure_node(sources(tmp_path))
    assert node == NodeConfig()
    assert (node.id, node.host, node.port, node.storage) == ("node-1", "127.0.0.1", 6379, "lru_ttl")
    assert node.persistence == () and node.plugins == () and node.requirepass == ""
    assert node.maxclients == 10000
    assert str(node.resolved_data_dir()) == "data/node-1"


def test_file_then_env_then_flags_each_override_the_one_before(tmp_path):
    text = '[node]\nid = "from-file"\nport = 7000\nrequirepass = "file"\n'
    env = {"NODE_ID": "from-env", "DISTCACHE_PASSWORD": "env"}
    node = structure_node(sources(tmp_path, text, ["node.id=from-flag"], env))
    assert node.id == "from-flag"
    assert node.requirepass == "env"
    assert node.port == 7000


def test_set_flag_values_are_toml(tmp_path):
    node = structure_node(sources(tmp_path, sets=['node.persistence=["wal", "mmap_snapshot"]',
                                                  "node.port=7001", "node.host=localhost"]))
    assert node.persistence == ("wal", "mmap_snapshot")
    assert node.port == 7001
    assert node.host == "localhost"  # a bare word is a string


def test_parse_toml_value_falls_back_to_text():
    assert parse_toml_value("42") == 42
    assert parse_toml_value("true") is True
    assert parse_toml_value("hello world") == "hello world"
    assert parse_toml_value('"quoted"') == "quoted"


@pytest.mark.parametrize("flag", ["nokey", "=3", "node..port=1"])
def test_bad_set_flag(flag):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_set_flag(flag)


def test_wrong_type_in_file_names_key_value_and_expectation(tmp_path):
    with pytest.raises(ConfigError) as err:
        structure_node(sources(tmp_path, '[node]\nport = "6379"\n'))
    message = str(err.value)
    assert "node.port" in message and "'6379'" in message and "expected an integer" in message


def test_bool_is_not_an_integer(tmp_path):
    with pytest.raises(ConfigError, match="node.maxclients = True .*expected an integer"):
        structure_node(sources(tmp_path, "[node]\nmaxclients = true\n"))


def test_out_of_range_value(tmp_path):
    with pytest.raises(ConfigError, match=r"node.port = 70000 .*port number from 0 to 65535"):
        structure_node(sources(tmp_path, "[node]\nport = 70000\n"))


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"node.prot: unknown key \(from .*distcache.toml; "
                                          r"known keys: id, host, port,") as err:
        structure_node(sources(tmp_path, "[node]\nprot = 1\n"))
    assert "log_level" in str(err.value)
    with pytest.raises(ConfigError, match=r"node.colour: unknown key \(from --set node.colour"):
        structure_node(sources(tmp_path, sets=["node.colour=1"]))


def test_unknown_table(tmp_path):
    with pytest.raises(ConfigError, match="nodes: unknown table"):
        structure_node(sources(tmp_path, "[nodes]\nport = 1\n"))


def test_invalid_toml_file(tmp_path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        structure_node(sources(tmp_path, "[node\nport = 1\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ConfigSources.gather(tmp_path / "nope.toml")


def test_env_error_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins.demo.capacity = 'lots' \(from env "
                                          r"DEMO_CAPACITY\): expected an integer"):
        build_config(sources(tmp_path, environ={"DEMO_CAPACITY": "lots"}), SECTIONS)


def test_plugin_section_env_and_flag_precedence(tmp_path):
    text = "[plugins.demo]\ncapacity = 1\nlabel = 'file'\n"
    config = build_config(sources(tmp_path, text, environ={"DEMO_CAPACITY": "2"}), SECTIONS)
    assert config.plugin_settings("demo") == DemoSettings(capacity=2, label="file")
    config = build_config(sources(tmp_path, text, ["plugins.demo.capacity=3"],
                                  {"DEMO_CAPACITY": "2"}), SECTIONS)
    assert config.plugin_settings("demo").capacity == 3


def test_plugin_section_integer_accepted_for_float(tmp_path):
    config = build_config(sources(tmp_path, "[plugins.demo]\nratio = 1\n"), SECTIONS)
    assert config.plugin_settings("demo").ratio == 1


def test_unknown_plugin_section(tmp_path):
    with pytest.raises(ConfigError, match="plugins.nosuch: no loaded plugin"):
        build_config(sources(tmp_path, "[plugins.nosuch]\nx = 1\n"), SECTIONS)


def test_list_of_wrong_items(tmp_path):
    with pytest.raises(ConfigError, match=r"node.plugins.1|node.plugins\[1\]|expected a string"):
        structure_node(sources(tmp_path, '[node]\nplugins = ["a", 3]\n'))


def _at_most_100(instance, attribute, value):
    # A third-party validator: a plain ValueError that names no key.
    if value > 100:
        raise ValueError(f"must be at most 100, got {value}")


@attrs.frozen(kw_only=True)
class LimitedSettings:
    low: int = attrs.field(default=1, validator=_at_most_100)
    high: int = attrs.field(default=2, validator=_at_most_100)


LIMITED = {"limited": Registration("limited", LimitedSettings, "limited-plugin",
                                   {"LIMITED_HIGH": "high"})}


@pytest.mark.parametrize(("text", "sets", "environ", "expected"), [
    ("", [], {"LIMITED_HIGH": "500"},
     "plugins.limited.high = 500 (from env LIMITED_HIGH): must be at most 100, got 500"),
    ("", ["plugins.limited.low=200"], {},
     "plugins.limited.low = 200 (from --set plugins.limited.low): must be at most 100, got 200"),
    ("[plugins.limited]\nhigh = 300\n", [], {},
     "plugins.limited.high = 300 (from {file}): must be at most 100, got 300"),
    # Two bad values: the one attrs checked first is reported, with its own source.
    ("[plugins.limited]\nhigh = 300\n", ["plugins.limited.low=200"], {},
     "plugins.limited.low = 200 (from --set plugins.limited.low): must be at most 100, got 200"),
])
def test_plugin_validator_errors_name_the_key_and_its_source(tmp_path, text, sets, environ,
                                                              expected):
    with pytest.raises(ConfigError) as info:
        build_config(sources(tmp_path, text, sets, environ), LIMITED)
    assert str(info.value) == expected.format(file=tmp_path / "distcache.toml")


def test_source_of_each_key(tmp_path):
    config = build_config(sources(tmp_path, "[node]\nport = 7000\n[plugins.demo]\nlabel = 'a'\n",
                                  ["node.id=n7"], {"DEMO_CAPACITY": "3"}), SECTIONS)
    path = tmp_path / "distcache.toml"
    assert config.source_of("node.port") == f"from {path}"
    assert config.source_of("plugins.demo.label") == f"from {path}"
    assert config.source_of("node.id") == "from --set node.id"
    assert config.source_of("plugins.demo.capacity") == "from env DEMO_CAPACITY"
    assert config.source_of("node.storage") == "default"

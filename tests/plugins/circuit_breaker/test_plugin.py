"""circuit_breaker is loaded as a default plugin: its factory, its config table and the seed's
CIRCUIT_BREAKER_THRESHOLD variable."""

from __future__ import annotations

import pytest

from distcache_core.config import ConfigSources, build_config
from distcache_core.errors import ConfigError
from distcache_core.plugins import Registry, load_plugins
from distcache_plugins.circuit_breaker import (
    OPEN,
    CircuitBreakerPolicy,
    CircuitBreakerSettings,
)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.collect(load_plugins(autoload=False).pm)


def settings_from(registry: Registry, sets=(), environ=None) -> CircuitBreakerSettings:
    sources = ConfigSources.gather(None, list(sets), environ=environ or {})
    return build_config(sources, registry.config_sections).plugin_settings("circuit_breaker")


def test_registered_by_the_default_plugin_with_the_documented_defaults(registry):
    registration = registry.fault_policies["circuit_breaker"]
    assert registration.plugin == "distcache_plugins.circuit_breaker"
    settings = settings_from(registry)
    assert (settings.failure_threshold, settings.reset_timeout_ms) == (5, 5000)
    policy = registration.obj(settings)
    assert isinstance(policy, CircuitBreakerPolicy)
    guard = policy.for_peer("node-2")
    assert (guard.failure_threshold, guard.reset_timeout_ms) == (5, 5000)


def test_threshold_from_env_and_flags(registry):
    settings = settings_from(registry, ["plugins.circuit_breaker.reset_timeout_ms=250"],
                             {"CIRCUIT_BREAKER_THRESHOLD": "2"})
    assert (settings.failure_threshold, settings.reset_timeout_ms) == (2, 250)
    guard = registry.fault_policies["circuit_breaker"].obj(settings).for_peer("p")
    guard.on_failure()
    guard.on_failure()
    assert guard.state == OPEN
    assert settings_from(registry, ["plugins.circuit_breaker.failure_threshold=9"],
                         {"CIRCUIT_BREAKER_THRESHOLD": "2"}).failure_threshold == 9


@pytest.mark.parametrize("environ,sets,expected", [
    ({"CIRCUIT_BREAKER_THRESHOLD": "0"}, [],
     "plugins.circuit_breaker.failure_threshold = 0 (from env CIRCUIT_BREAKER_THRESHOLD): "
     "expected a positive integer"),
    ({"CIRCUIT_BREAKER_THRESHOLD": "five"}, [],
     "plugins.circuit_breaker.failure_threshold = 'five' (from env CIRCUIT_BREAKER_THRESHOLD): "
     "expected an integer"),
    ({}, ["plugins.circuit_breaker.reset_timeout_ms=-5"],
     "plugins.circuit_breaker.reset_timeout_ms = -5 (from --set "
     "plugins.circuit_breaker.reset_timeout_ms): expected a positive integer"),
])
def test_bad_values_name_the_key_and_source(registry, environ, sets, expected):
    with pytest.raises(ConfigError) as info:
        settings_from(registry, sets, environ)
    assert expected in str(info.value)


def test_cli_lists_the_policy_and_rejects_a_bad_threshold(cli):
    assert "distcache_plugins.circuit_breaker  (default)\n    fault policy: circuit_breaker\n" \
        in cli("plugins").stdout
    result = cli("serve", "--port", "0", env={"CIRCUIT_BREAKER_THRESHOLD": "0"})
    assert result.returncode == 2 and "listening" not in result.stdout
    assert "(from env CIRCUIT_BREAKER_THRESHOLD)" in result.stderr

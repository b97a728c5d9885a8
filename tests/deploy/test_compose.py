"""docker-compose.yml, without a Docker engine: valid against the Compose Specification's JSON
schema (tests/deploy/data/), laid out as issue 9 asks, and each node's environment accepted by
a real `distcache` with the image's own command."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from distcache_core.config import ConfigSources, build_config
from distcache_core.plugins import Registry, load_plugins
from tests.conftest import run_cli
from tests.deploy.deployfiles import (
    COMPOSE_SCHEMA,
    Dockerfile,
    copied_files,
    load_compose,
    runnable,
)

CLUSTER = ["node-1", "node-2", "node-3"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The file names draft 2019-09 with a trailing "#" jsonschema does not look up by itself.
    assert schema["$schema"].startswith("http://json-schema.org/draft/2019-09/schema")
    cls = jsonschema.Draft201909Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_valid_against_the_compose_specification(validator):
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}"
              for e in validator.iter_errors(load_compose())]
    assert errors == []


@pytest.mark.parametrize("break_it", [
    lambda c: c["services"]["node-1"].update(healtcheck={"test": ["CMD", "true"]}),
    lambda c: c["services"]["node-2"].update(ports=6380),
    lambda c: c["services"]["node-3"]["healthcheck"].update(retries="three"),
    lambda c: c.update(volume={}),
])
def test_the_schema_catches_mistakes(validator, break_it):
    compose = copy.deepcopy(load_compose())
    break_it(compose)
    assert list(validator.iter_errors(compose))


def test_three_nodes_with_their_ports_volumes_and_ids():
    compose = load_compose()
    services = compose["services"]
    always_on = [name for name, s in services.items() if "profiles" not in s]
    assert always_on == CLUSTER
    volumes = set()
    for index, name in enumerate(CLUSTER):
        service = services[name]
        # On the host's loopback: the nodes run without protected mode (see the file).
        assert service["ports"] == [f"127.0.0.1:{6379 + index}:6379",
                                    f"127.0.0.1:{8080 + index}:8080"]
        assert service["restart"] == "unless-stopped"
        assert service["build"] == "." and service["hostname"] == name
        assert service["environment"]["NODE_ID"] == name
        [volume] = service["volumes"]
        source, target = volume.split(":")
        assert target == "/data" and source in compose["volumes"]
        volumes.add(source)
        peers = service["environment"]["CLUSTER_NODES"].split(",")
        assert peers == [f"{peer}@{peer}:6379" for peer in CLUSTER]
        assert service["healthcheck"]["test"] == ["CMD", "distcache", "health", "--port", "8080"]
    assert len(volumes) == 3  # a volume per node


def test_a_fourth_node_joins_through_the_seeds():
    node4 = load_compose()["services"]["node-4"]
    assert node4["profiles"] == ["grow"]
    assert node4["environment"]["NODE_ID"] == "node-4"
    assert node4["environment"]["CLUSTER_NODES"].split(",") == [f"{n}:6379" for n in CLUSTER]
    assert node4["ports"] == ["127.0.0.1:6382:6379", "127.0.0.1:8083:8080"]


@pytest.mark.parametrize("name", [*CLUSTER, "node-4"])
def test_each_nodes_settings_are_accepted_by_distcache(name, tmp_path):
    service = load_compose({"DISTCACHE_PASSWORD": "pw", "DISTCACHE_CLUSTER_SECRET": "s"})[
        "services"][name]
    dockerfile = Dockerfile()
    command = runnable(service.get("command", dockerfile.cmd), dockerfile)
    assert command[0] == "serve"
    result = run_cli("check-config", *command[1:],
                     env={**dockerfile.env, **service["environment"]})
    assert result.returncode == 0, result.stderr
    assert f"config OK: node {name} on 0.0.0.0:6379" in result.stdout


def test_the_nodes_config_is_a_cluster_of_the_listed_peers():
    """What each container's node reads: image config file plus the service's environment."""
    dockerfile = Dockerfile()
    config_file = copied_files(dockerfile)[dockerfile.cmd[-1]]
    sections = Registry.collect(load_plugins(autoload=False).pm).config_sections
    services = load_compose()["services"]
    for name, service in services.items():
        sources = ConfigSources.gather(config_file, [], environ=service["environment"])
        config = build_config(sources, sections)
        assert config.node.id == name
        assert config.cluster.peers == tuple(service["environment"]["CLUSTER_NODES"].split(","))
        assert config.cluster.replication_factor == 2
        assert (config.node.host, config.node.port, config.node.data_dir) == \
            ("0.0.0.0", 6379, "/data")
        assert config.node.protected_mode is False

"""The `distcache` command as operators use it: real node processes, real signals."""

from __future__ import annotations

import json
import signal
import socket

import attrs
import pytest
import redis

from distcache_core.config import NodeConfig


def test_serve_prints_where_it_listens_and_serves_nc_style(node_process):
    proc = node_process("--port", "0", "--node-id", "cli-node")
    assert "node cli-node listening on 127.0.0.1:" in proc.banner
    sock = socket.create_connection((proc.host, proc.port), timeout=5)
    sock.sendall(b"SET k v\r\nGET k\r\n")
    sock.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    assert data == b"+OK\r\n$1\r\nv\r\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_on_signals(node_process, sig):
    proc = node_process("--port", "0")
    client = redis.Redis(port=proc.port)
    assert client.ping()
    proc.proc.send_signal(sig)
    assert proc.proc.wait(10) == 0
    assert "stopped" in proc.proc.stderr.read()


def test_config_file_env_and_flags(node_process, tmp_path):
    config = tmp_path / "node.toml"
    config.write_text('[node]\nid = "from-file"\nport = 0\n\n[plugins.lru_ttl]\ncapacity = 3\n')
    proc = node_process("--config", str(config), env={"CACHE_CAPACITY": "5"})
    client = redis.Redis(port=proc.port)
    assert client.info("server")["node_id"] == "from-file"
    for i in range(10):
        client.set(f"k{i}", i)
    assert client.dbsize() == 5  # the env var beat the file


def test_example_plugin_served_by_a_node_process(node_process, cli):
    proc = node_process("--port", "0")
    assert redis.Redis(port=proc.port).execute_command("GREET", "Ada") == b"Hello, Ada!"
    assert "hello  (entry point of distcache-hello" in cli("plugins").stdout


@pytest.mark.parametrize("args,env,expected", [
    (["--port", "http"], {}, "node.port = 'http' (from --set node.port): expected an integer"),
    (["--set", "node.maxclients=0"], {}, "node.maxclients = 0"),
    (["--set", "node.colour=1"], {}, "node.colour: unknown key"),
    ([], {"CACHE_CAPACITY": "many"},
     "plugins.lru_ttl.capacity = 'many' (from env CACHE_CAPACITY): expected an integer"),
    # The plugin's own validator: the key and its source, not the whole table (issue 7).
    ([], {"CACHE_CAPACITY": "-5"}, "distcache: config error: plugins.lru_ttl.capacity = -5 "
     "(from env CACHE_CAPACITY): capacity must be a non-negative integer, got -5"),
    (["--set", "plugins.lru_ttl.default_ttl_seconds=-1"], {},
     "plugins.lru_ttl.default_ttl_seconds = -1 (from --set plugins.lru_ttl.default_ttl_seconds)"),
    (["--set", "node.storage=nosuch"], {}, "node.storage = 'nosuch': no storage engine"),
    (["--set", "node.plugins=['no_such_module_x']"], {}, "'no_such_module_x'"),
])
def test_bad_config_exits_2_with_one_line_before_listening(cli, args, env, expected):
    result = cli("serve", *args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "listening" not in result.stdout


def test_bad_config_file(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[node\n")
    result = cli("serve", "--config", str(bad))
    assert result.returncode == 2 and "is not valid TOML" in result.stderr
    result = cli("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_check_config(cli):
    result = cli("check-config", "--port", "7777")
    assert result.returncode == 0 and "127.0.0.1:7777" in result.stdout


def test_port_in_use_exits_1(node_process, cli):
    proc = node_process("--port", "0")
    result = cli("serve", "--port", str(proc.port))
    assert result.returncode == 1 and "cannot listen" in result.stderr


def test_config_keys_lists_every_key_with_default_and_env(cli):
    result = cli("config-keys")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "node.port = 6379" in lines
    assert 'node.id = "node-1"  (env NODE_ID)' in lines
    assert "plugins.lru_ttl.capacity = 10000  (env CACHE_CAPACITY)" in lines
    assert "plugins.lru_ttl.default_ttl_seconds = 0  (env TTL_DEFAULT)" in lines
    assert "    Name of the storage engine plugin." in lines  # the field's #: comment
    listed = {key["key"]: key for key in json.loads(cli("config-keys", "--json").stdout)}
    # Every key the node validates, no more: NodeConfig's fields and each plugin's table.
    assert {k for k in listed if k.startswith("node.")} == {
        f"node.{field.name}" for field in attrs.fields(NodeConfig)}
    assert listed["plugins.lru_ttl.capacity"]["env"] == "CACHE_CAPACITY"
    assert listed["node.persistence"]["default"] == "[]"


def test_serve_help_points_to_config_keys(cli):
    result = cli("serve", "--help")
    assert result.returncode == 0
    assert "distcache config-keys" in " ".join(result.stdout.split())

"""The ``distcache`` command: ``serve``, ``plugins``, ``check-config``, ``ping``, ``health``,
``config-keys``, ``check-wal``, ``check-snapshot`` and ``cluster`` (``up``, ``status``).

Only this module turns errors into exit codes: 2 for a bad configuration or plugin (before
anything listens), 1 for a failure while running.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import socket
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from . import __version__
from .cluster.launcher import cluster_status, cluster_up
from .cluster.membership import parse_address
from .config import ConfigSources, structure_node
from .config_keys import config_keys
from .errors import ConfigError, PersistenceError, PluginError
from .node import Node
from .plugins import Registry, load_plugins
from .protocol import encode_request

EXIT_CONFIG = 2


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="PATH", help="TOML config file")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config key; VALUE is read as TOML (repeatable)")
    parser.add_argument("--host", help="shortcut for --set node.host=HOST")
    parser.add_argument("--port", help="shortcut for --set node.port=PORT")
    parser.add_argument("--data-dir", help="shortcut for --set node.data_dir=DIR")
    parser.add_argument("--node-id", help="shortcut for --set node.id=ID")


CONFIG_EPILOG = (
    "Configuration: a TOML file (--config), then environment variables, then --set flags, "
    "each overriding the one before. `distcache config-keys` lists every key with its "
    "default, its environment variable (CACHE_CAPACITY, TTL_DEFAULT, NODE_ID, ...) and what "
    "it does, including the tables of the plugins that are loaded.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distcache",
        description="DistCache: a Redis-protocol cache node built from plugins.")
    parser.add_argument("--version", action="version", version=f"distcache {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a node in the foreground", epilog=CONFIG_EPILOG)
    _add_config_options(serve)
    serve.add_argument("--join", action="append", default=[], metavar="HOST:PORT",
                       help="join the running cluster of this member (repeatable)")
    plugins = sub.add_parser("plugins", help="list loaded plugins and what they register")
    _add_config_options(plugins)
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    check = sub.add_parser("check-config", help="validate the configuration and exit",
                           epilog=CONFIG_EPILOG)
    _add_config_options(check)
    ping = sub.add_parser("ping", help="exit 0 when a node answers PING (health checks)")
    ping.add_argument("--host", default="127.0.0.1")
    ping.add_argument("--port", type=int, default=6379)
    ping.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS")
    ping.add_argument("--password", help="AUTH first (default: env DISTCACHE_PASSWORD)")
    health = sub.add_parser(
        "health", help="exit 0 when a node's dashboard answers /health with 200 (probes)",
        description="GET http://HOST:PORT/health from the dashboard plugin: exit 0 on 200 "
                    "(serving), 1 on 503 (loading its data, or stopping) or no answer.")
    health.add_argument("--host", default="127.0.0.1")
    health.add_argument("--port", type=int, default=8080, help="the dashboard's port")
    health.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS")
    keys = sub.add_parser(
        "config-keys", help="list every config key, its default and environment variable",
        description="Every config key the node reads (core and loaded plugins' tables), "
                    "with its default as TOML, its environment variable and its meaning.")
    keys.add_argument("--config", "-c", metavar="PATH",
                      help="TOML config file (its node.plugins add plugin tables)")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    check_wal = sub.add_parser("check-wal", help="verify a write-ahead log (exit 1: corrupt)")
    check_wal.add_argument("path", metavar="PATH", help="the WAL directory or one of its files")
    check_wal.add_argument("--repair", action="store_true",
                           help="keep the records before the first bad one (backups are kept)")
    check_snapshot = sub.add_parser("check-snapshot", help="verify a snapshot (exit 1: bad)")
    check_snapshot.add_argument("path", metavar="PATH", help="a snapshot file or directory")
    cluster = sub.add_parser("cluster", help="run a local cluster, or show one's state")
    actions = cluster.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start N nodes here and stream their logs (Ctrl-C "
                                       "stops them all)")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--base-port", type=int, default=6379)
    up.add_argument("--replication-factor", type=int, default=2)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--data-dir", default="data", help="node N keeps its files in DIR/node-N")
    up.add_argument("--dashboard-base-port", type=int, default=0, metavar="PORT",
                    help="node N serves its dashboard on PORT+N-1 (node.metrics=[dashboard])")
    up.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for every node (repeatable)")
    status = actions.add_parser("status", help="print the cluster as one table, from any "
                                               "member")
    status.add_argument("--host", default="127.0.0.1")
    status.add_argument("--port", type=int, default=6379)
    status.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS")
    status.add_argument("--password", help="AUTH first (default: env DISTCACHE_PASSWORD)")
    return parser


def _sources(args: argparse.Namespace) -> ConfigSources:
    sets = list(args.sets)
    # Shortcuts are strings as typed; quoting them as TOML strings keeps `--host ::1` and
    # `--node-id 7` strings, while --port stays a bare TOML value (an integer).
    for flag, key, quoted in ((args.host, "node.host", True), (args.port, "node.port", False),
                              (args.data_dir, "node.data_dir", True),
                              (args.node_id, "node.id", True)):
        if flag is not None:
            sets.append(f"{key}={json.dumps(flag) if quoted else flag}")
    return ConfigSources.gather(args.config, sets)


def _build_node(args: argparse.Namespace) -> Node:
    node = Node.from_sources(_sources(args))
    joins = getattr(args, "join", None) or []
    if joins:
        try:
            node.cluster.join([parse_address(address) for address in joins])
        except ValueError:
            raise ConfigError(f"--join {joins!r}: expected HOST:PORT") from None
    return node


def _warnings(node: Node) -> list[str]:
    """What an operator should hear before the node listens."""
    cfg = node.config.node
    found = []
    if cfg.protected_mode and not cfg.requirepass and not _is_loopback_host(cfg.host):
        found.append(f"node.host = {cfg.host!r} is not a loopback address and no "
                     "node.requirepass is set: protected mode refuses every client that is not "
                     "on this machine (set node.requirepass, or node.protected_mode = false if "
                     "the network is trusted)")
    elif not cfg.protected_mode and not cfg.requirepass and not _is_loopback_host(cfg.host):
        found.append(f"node.host = {cfg.host!r} with protected mode off and no "
                     "node.requirepass: anyone who can reach this port can use the node")
    return found


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    node = _build_node(args)
    for warning in _warnings(node):
        print(f"distcache: warning: {warning}", file=sys.stderr)
    logging.basicConfig(
        level=node.config.node.log_level.upper(),
        format=f"%(asctime)s {node.node_id} %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(node.serve_forever())
    except OSError as exc:  # address in use, permission denied
        print(f"distcache: cannot listen on {node.config.node.host}:{node.config.node.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    node = _build_node(args)
    registered = node.registry.by_plugin()
    rows: list[dict[str, Any]] = []
    for name, origin in node.plugin_host.origins.items():
        rows.append({"name": name, "origin": origin,
                     "registers": [f"{kind} {item}" for kind, item in registered.get(name, [])]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}  ({row['origin']})")
        kinds: dict[str, list[str]] = {}
        for kind, item in registered.get(row["name"], []):
            kinds.setdefault(kind, []).append(item)
        for kind, items in kinds.items():
            label = kind if len(items) == 1 else kind + "s"
            print(f"    {label}: {', '.join(sorted(items))}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    node = _build_node(args)
    for warning in _warnings(node):
        print(f"warning: {warning}")
    print(f"config OK: node {node.node_id} on {node.config.node.host}:{node.config.node.port}, "
          f"storage {node.config.node.storage}")
    return 0


def cmd_ping(args: argparse.Namespace) -> int:
    # The node's own password variable, so a container's health check needs no extra setting.
    password = args.password if args.password is not None else \
        os.environ.get("DISTCACHE_PASSWORD", "")
    requests = [encode_request("AUTH", password)] if password else []
    requests.append(encode_request("PING"))
    where = f"{args.host}:{args.port}"
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
            sock.sendall(b"".join(requests))
            with sock.makefile("rb") as replies:
                lines = [replies.readline().rstrip(b"\r\n") for _ in requests]
    except OSError as exc:
        print(f"distcache: no answer from {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if lines[-1] != b"+PONG":
        bad = next((line for line in lines if not line.startswith(b"+")), lines[-1])
        said = bad[1:].decode(errors="replace") if bad else "nothing (connection closed)"
        print(f"distcache: {where} answered {said}", file=sys.stderr)
        return 1
    print("PONG")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    url = f"http://{args.host}:{args.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            body = response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:  # 503 while loading or stopping: the body says which
        said = exc.read().decode(errors="replace").strip()
        print(f"distcache: {url} answered {exc.code} {said}", file=sys.stderr)
        return 1
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"distcache: no answer from {url}: {reason}", file=sys.stderr)
        return 1
    print(body.strip())
    return 0


def cmd_config_keys(args: argparse.Namespace) -> int:
    sources = ConfigSources.gather(args.config, [])
    host = load_plugins(structure_node(sources).plugins)
    keys = config_keys(Registry.collect(host.pm).config_sections)
    if args.json:
        print(json.dumps([attrs.asdict(key) for key in keys], indent=2))
        return 0
    section = ""
    for key in keys:
        if key.section != section:
            section = key.section
            print(f"{'' if key is keys[0] else chr(10)}[{section}]")
        env = f"  (env {key.env})" if key.env else ""
        print(f"{key.key} = {key.default}{env}")
        if key.doc:
            print(textwrap.fill(key.doc, width=96, initial_indent="    ",
                                subsequent_indent="    "))
    return 0


def _run_checker(kind: str, path: str, repair: bool) -> int:
    """Hand ``path`` to the persistence plugin that checks files of ``kind`` and knows it."""
    registry = Registry.collect(load_plugins().pm)
    checkers = [reg.obj for reg in registry.persistence.values()
                if getattr(reg.obj, "check_kind", None) == kind]
    for checker in checkers:
        if len(checkers) == 1 or checker.recognizes(Path(path)):
            status: int = checker.check(Path(path), repair, sys.stdout)
            return status
    print(f"distcache: no loaded persistence plugin recognizes {path!r}", file=sys.stderr)
    return 2


def cmd_check_wal(args: argparse.Namespace) -> int:
    return _run_checker("log", args.path, args.repair)


def cmd_check_snapshot(args: argparse.Namespace) -> int:
    return _run_checker("snapshot", args.path, False)


def cmd_cluster(args: argparse.Namespace) -> int:
    if args.action == "up":
        if args.nodes < 1 or not 0 < args.base_port < 65536 - args.nodes:
            raise ConfigError(f"--nodes {args.nodes} --base-port {args.base_port}: expected "
                              "at least one node on ports that exist")
        if not 1 <= args.replication_factor:
            raise ConfigError(f"--replication-factor {args.replication_factor}: expected a "
                              "positive integer")
        return cluster_up(nodes=args.nodes, base_port=args.base_port,
                          replication_factor=args.replication_factor, host=args.host,
                          data_dir=args.data_dir, sets=args.sets,
                          dashboard_base_port=args.dashboard_base_port)
    password = args.password if args.password is not None else \
        os.environ.get("DISTCACHE_PASSWORD", "")
    return cluster_status(host=args.host, port=args.port, password=password,
                          timeout=args.timeout)


COMMANDS = {"serve": cmd_serve, "plugins": cmd_plugins, "check-config": cmd_check_config,
            "ping": cmd_ping, "health": cmd_health, "config-keys": cmd_config_keys,
            "check-wal": cmd_check_wal, "check-snapshot": cmd_check_snapshot,
            "cluster": cmd_cluster}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"distcache: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PluginError as exc:
        print(f"distcache: plugin error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PersistenceError as exc:  # data dir unusable or locked, a log that needs repair
        print(f"distcache: persistence error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

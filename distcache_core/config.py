"""Configuration: a TOML file, then environment variables, then ``--set`` flags.

Each layer overrides the one before. Values are structured into frozen attrs classes by one
cattrs converter that rejects unknown keys and refuses to coerce types (``port = "80"`` in a
file is an error, not 80). Every error names the key path, where the value came from, the
value, and what was expected.

Plugin tables ``[plugins.<name>]`` are validated by the attrs class the plugin registered
through ``distcache_config_sections``, so they can only be checked once plugins are loaded:
:func:`load_config` reads the ``[node]`` table first (it names extra plugins), loads plugins,
then validates the rest.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs

from .errors import ConfigError

MAX_PORT = 65535


class FieldValueError(ValueError):
    """A validator's complaint about one field; the error report adds the field to the key
    path (attrs validators run inside ``__init__``, where cattrs only knows the table)."""

    def __init__(self, attribute: attrs.Attribute, message: str) -> None:
        super().__init__(message)
        self.field = attribute.name


def non_negative(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 0:
        raise FieldValueError(attribute, "expected a non-negative integer")


def positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise FieldValueError(attribute, "expected a positive integer")


def _at_least_minus_one(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < -1:
        raise FieldValueError(attribute, "expected an integer of at least -1")


def _port(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not 0 <= value <= MAX_PORT:
        raise FieldValueError(attribute, f"expected a port number from 0 to {MAX_PORT}")


def _no_whitespace(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise FieldValueError(attribute, "expected a non-empty name without spaces")


def one_of(*choices: str) -> Any:
    def validator(instance: Any, attribute: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise FieldValueError(attribute, f"expected one of {', '.join(choices)}")

    return validator


@attrs.frozen(kw_only=True)
class NodeConfig:
    """The ``[node]`` table."""

    #: This node's name in the cluster, in logs and in INFO.
    id: str = attrs.field(default="node-1", validator=_no_whitespace)
    #: Address to listen on. Loopback unless the operator opens it up on purpose.
    host: str = "127.0.0.1"
    #: RESP port; 0 picks a free port (the node prints the one it got).
    port: int = attrs.field(default=6379, validator=_port)
    #: Where persistence plugins keep their files; empty means ``./data/<id>``.
    data_dir: str = ""
    #: Name of the storage engine plugin.
    storage: str = "lru_ttl"
    #: Names of persistence plugins, applied in order.
    persistence: tuple[str, ...] = ()
    #: Extra plugin modules to import, beyond defaults and entry points.
    plugins: tuple[str, ...] = ()
    #: Password clients must AUTH with; empty disables authentication.
    requirepass: str = ""
    #: Connections beyond this many are refused with ``-ERR max number of clients reached``.
    maxclients: int = attrs.field(default=10000, validator=positive)
    #: Close a client idle for this long; 0 never does (Redis ``timeout``).
    idle_timeout_seconds: int = attrs.field(default=0, validator=non_negative)
    #: Largest bulk string a request may carry (Redis ``proto-max-bulk-len``).
    max_bulk_bytes: int = attrs.field(default=512 * 1024 * 1024, validator=positive)
    #: Most arguments one request may carry.
    max_arguments: int = attrs.field(default=1024 * 1024, validator=positive)
    #: Longest inline command line (Redis ``PROTO_INLINE_MAX_SIZE``).
    max_inline_bytes: int = attrs.field(default=64 * 1024, validator=positive)
    #: Stop reading from a client whose unsent replies pass this many bytes; resume once the
    #: client has read them. Bounds the memory a client that never reads can cost.
    reply_buffer_high_water_bytes: int = attrs.field(default=1024 * 1024, validator=positive)
    #: A Lua script running longer than this makes other clients get ``-BUSY`` until it ends
    #: or SCRIPT KILL stops it (Redis ``lua-time-limit``); 0: no limit.
    lua_time_limit_ms: int = attrs.field(default=5000, validator=non_negative)
    #: Metrics sinks to start (plugin names, e.g. ``["dashboard"]``).
    metrics: tuple[str, ...] = ()
    #: Log commands slower than this to the slow log; negative: never, 0: every command
    #: (Redis ``slowlog-log-slower-than``, also settable with CONFIG SET).
    slowlog_log_slower_than_us: int = attrs.field(default=10000, validator=_at_least_minus_one)
    #: Slow log entries kept (Redis ``slowlog-max-len``).
    slowlog_max_len: int = attrs.field(default=128, validator=non_negative)
    #: Log level name (debug, info, warning, error).
    log_level: str = attrs.field(
        default="info",
        validator=one_of("debug", "info", "warning", "error"),
    )
    #: Refuse clients that are not on the loopback interface while no ``requirepass`` is set
    #: (Redis ``protected-mode``); matters only when ``host`` is not a loopback address.
    protected_mode: bool = True
    #: Logical databases (SELECT 0 .. databases-1), as Redis's ``databases``.
    databases: int = attrs.field(default=16, validator=positive)
    #: Most bytes one client's MULTI may queue (arguments plus a fixed overhead per command
    #: and argument); past it the transaction is discarded at EXEC. The default fits any one
    #: request ``max_bulk_bytes`` allows.
    transaction_max_bytes: int = attrs.field(default=576 * 1024 * 1024, validator=positive)
    #: Allow DEBUG (SLEEP, OBJECT): off by default, as Redis 7's ``enable-debug-command``.
    enable_debug_command: bool = False
    #: TLS for clients and peers: certificate, key and the CA peers are verified against.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else Path("data") / self.id


def _peer_list(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    for peer in value:
        if not peer or any(c.isspace() for c in peer):
            raise FieldValueError(attribute, f"expected \"id@host:port\" or \"host[:port]\", "
                                             f"not {peer!r}")


@attrs.frozen(kw_only=True)
class ClusterConfig:
    """The ``[cluster]`` table (see the README's Cluster section)."""

    #: Other members, ``"id@host:port"`` or ``"host[:port]"``; empty for a single node.
    peers: tuple[str, ...] = attrs.field(default=(), validator=_peer_list)
    #: Copies of each key: the owner and the next ``replication_factor - 1`` nodes.
    replication_factor: int = attrs.field(default=1, validator=positive)
    #: Which acknowledgements a write waits for.
    write_ack: str = attrs.field(default="one", validator=one_of("one", "quorum", "all"))
    #: Name of the hash strategy plugin.
    hashing: str = "vnode_ring"
    #: Name of the fault policy plugin.
    fault_policy: str = "circuit_breaker"
    heartbeat_interval_ms: int = attrs.field(default=500, validator=positive)
    failure_timeout_ms: int = attrs.field(default=3000, validator=positive)
    request_timeout_ms: int = attrs.field(default=1000, validator=positive)
    #: Forget a node that has been down this long; 0 keeps it until CLUSTER FORGET.
    remove_after_ms: int = attrs.field(default=0, validator=non_negative)
    #: Peers must authenticate with this before internal commands; empty leaves them open.
    secret: str = ""
    hint_window_ms: int = attrs.field(default=10_800_000, validator=non_negative)
    max_hints_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=non_negative)


@attrs.frozen(kw_only=True)
class Config:
    """The whole, validated configuration of one node."""

    node: NodeConfig = NodeConfig()
    cluster: ClusterConfig = ClusterConfig()
    #: plugin section name -> instance of the attrs class that plugin registered.
    plugins: Mapping[str, Any] = attrs.field(factory=dict)
    #: dotted key -> where its value came from (the file's path, ``env NAME``, ``--set key``);
    #: keys left at their default are absent. For error messages raised after validation.
    origins: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def plugin_settings(self, name: str) -> Any:
        return self.plugins.get(name)

    def source_of(self, key: str) -> str:
        """Where ``key`` (``node.storage``) got its value: ``from <file>``, ``from env NAME``,
        ``from --set key`` or ``default``, for messages such as
        ``node.storage = 'x' (from env ...): ...``."""
        origin = self.origins.get(key)
        return f"from {origin}" if origin else "default"


#: Environment variables of the core, with the key each sets.
CORE_ENV: dict[str, str] = {
    "NODE_ID": "node.id",
    "DISTCACHE_PASSWORD": "node.requirepass",
    "CLUSTER_NODES": "cluster.peers",
    "DISTCACHE_CLUSTER_SECRET": "cluster.secret",
}


# --- the converter ----------------------------------------------------------------------------


def _strict(expected: type, label: str) -> Any:
    def structure(value: Any, _: type) -> Any:
        # bool is an int subclass; a TOML `true` is never a valid port or capacity.
        if type(value) is not expected and not (expected is float and type(value) is int):
            raise ValueError(f"expected {label}")
        return value

    return structure


def make_converter() -> cattrs.Converter:
    """The one converter all config goes through: unknown keys and loose types are errors."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(float, _strict(float, "a number"))
    return converter


_CONVERTER = make_converter()


# --- layers -----------------------------------------------------------------------------------


@attrs.frozen
class Assignment:
    """One ``key = value`` from the environment or a flag, with where it came from."""

    path: tuple[str, ...]
    value: Any
    source: str


def parse_toml_value(text: str) -> Any:
    """A flag value read as a TOML value; a bare word that is not valid TOML is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set_flag(flag: str) -> Assignment:
    key, sep, value = flag.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {flag!r}: expected dotted.key=value")
    return Assignment(tuple(key.split(".")), parse_toml_value(value.strip()), f"--set {key}")


def read_toml_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


def _field_type(cls: type, path: Sequence[str]) -> Any:
    """The declared type at ``path`` inside attrs class ``cls`` (None when unknown)."""
    current: Any = cls
    for part in path:
        if not attrs.has(current):
            return None
        hints = typing.get_type_hints(current)
        if part not in hints:
            return None
        current = hints[part]
    return current


def coerce_env_value(raw: str, target: Any) -> Any:
    """An environment string turned into the field's type; left as text when it does not
    parse, so the converter reports it with the expected type."""
    if target is str:
        return raw
    if typing.get_origin(target) in (tuple, list):
        # A list from the environment is comma-separated (CLUSTER_NODES=a:1,b:2).
        return [item.strip() for item in raw.split(",") if item.strip()]
    if target is int and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
        return int(raw)
    return parse_toml_value(raw)


def _assign(tree: dict[str, Any], assignment: Assignment, sources: dict[tuple[str, ...], str]
            ) -> None:
    node = tree
    for depth, part in enumerate(assignment.path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(assignment.path[: depth + 1])
            raise ConfigError(f"{assignment.source}: {where} is not a table")
        node = child
    node[assignment.path[-1]] = assignment.value
    sources[assignment.path] = assignment.source


@attrs.define
class ConfigSources:
    """The raw layers, kept apart so plugin environment variables can be applied once the
    plugins that declare them are loaded, still below ``--set`` flags."""

    file_data: dict[str, Any] = attrs.Factory(dict)
    file_name: str = "defaults"
    environ: Mapping[str, str] = attrs.Factory(dict)
    sets: list[Assignment] = attrs.Factory(list)

    @classmethod
    def gather(
        cls,
        config_path: str | os.PathLike[str] | None = None,
        set_flags: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> ConfigSources:
        file_data = read_toml_file(config_path) if config_path else {}
        return cls(
            file_data=file_data,
            file_name=str(config_path) if config_path else "defaults",
            environ=dict(os.environ if environ is None else environ),
            sets=[parse_set_flag(flag) for flag in set_flags],
        )

    def merged(self, env_map: Mapping[str, tuple[str, ...]], types: Mapping[str, type]
               ) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
        """The merged raw tree and, for each assigned path, where its value came from."""
        tree = _deep_copy(self.file_data)
        sources: dict[tuple[str, ...], str] = {}
        for var, path in env_map.items():
            if var in self.environ:
                target = _field_type(types.get(path[0], type(None)), path[1:]) \
                    if path[0] != "plugins" else _field_type(types.get(path[1], type(None)),
                                                             path[2:])
                value = coerce_env_value(self.environ[var], target)
                _assign(tree, Assignment(path, value, f"env {var}"), sources)
        for assignment in self.sets:
            _assign(tree, assignment, sources)
        return tree, sources


def _deep_copy(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


_PATH_RE = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _lookup(tree: Any, path: Sequence[Any]) -> Any:
    for part in path:
        try:
            tree = tree[part]
        except (KeyError, IndexError, TypeError):
            return None
    return tree


def _describe_errors(
    exc: Exception, cls: type, prefix: tuple[str, ...], tree: Mapping[str, Any],
    sources: Mapping[tuple[str, ...], str], file_name: str,
) -> str:
    """One line per problem: key, source, value and what was expected."""
    lines = []
    for message in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
        text, _, where = message.rpartition(" @ ")
        steps: list[Any] = list(prefix)
        for name, index in _PATH_RE.findall(where[1:]):
            steps.append(name if name else int(index))
        if text.startswith(_FIELD_MARK):
            field, _, text = text[len(_FIELD_MARK):].partition("\x00")
            steps.append(field)
        table_type = _field_type(cls, [str(s) for s in steps[len(prefix):]]) \
            if len(steps) > len(prefix) else cls
        if (not text.startswith(("unknown key", "required key", "expected a table"))
                and attrs.has(table_type)):
            # A plain ValueError from a plugin's attrs validator names no field (it is raised
            # inside __init__): find the field whose validator refuses its value.
            blamed = _blame_field(table_type, _lookup(tree, steps), text)
            if blamed is not None:
                steps.append(blamed)
        key = ".".join(str(s) for s in steps)
        if text.startswith("unknown key"):
            names = text.partition("(")[2].rstrip(")")
            first = names.split(", ")[0]
            source = sources.get((*(str(s) for s in steps), first), file_name)
            lines.append(f"{key + '.' if key else ''}{names}: unknown key (from {source}; "
                         f"known keys: {_known_keys(cls, steps[len(prefix):])})")
            continue
        source = sources.get(tuple(str(s) for s in steps), file_name)
        value = _lookup(tree, steps)
        lines.append(f"{key} = {value!r} (from {source}): {text}")
    return "; ".join(lines)


def _blame_field(cls: type, table: Any, message: str) -> str | None:
    """The field of attrs class ``cls`` whose validator, run alone on its value in ``table``,
    raises ``message`` (else the first whose validator refuses its value, in the order attrs
    runs them), or None."""
    if not isinstance(table, Mapping):
        return None
    refused = []
    for field in attrs.fields(cls):
        if field.validator is None or field.name not in table:
            continue
        try:
            field.validator(None, field, table[field.name])
        except Exception as exc:
            if str(exc) == message:
                return str(field.name)
            refused.append(str(field.name))
    return refused[0] if refused else None


def _known_keys(cls: type, path: Sequence[Any]) -> str:
    """The field names of the table at ``path`` inside ``cls``."""
    table = _field_type(cls, [str(step) for step in path]) if path else cls
    return ", ".join(f.name for f in attrs.fields(table)) if attrs.has(table) else "see the docs"


_FIELD_MARK = "\x00field:"


def _format_exception(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, FieldValueError):
        return f"{_FIELD_MARK}{exc.field}\x00{exc}"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key ({', '.join(sorted(exc.extra_fields))})"
    if isinstance(exc, KeyError):
        return "required key is missing"
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    if isinstance(exc, TypeError) and type_ is not None:
        if attrs.has(type_):
            return "expected a table"
        origin = typing.get_origin(type_)
        if origin in (tuple, list):
            return "expected a list"
    if type_ is not None and attrs.has(type_):
        return "expected a table"
    return f"invalid value: {exc}"


def _structure(cls: type, data: Any, prefix: tuple[str, ...], tree: Mapping[str, Any],
               sources: Mapping[tuple[str, ...], str], file_name: str) -> Any:
    if not isinstance(data, dict):
        key = ".".join(prefix)
        raise ConfigError(f"{key} = {data!r} (from {sources.get(prefix, file_name)}): "
                          "expected a table")
    try:
        return _CONVERTER.structure(data, cls)
    except Exception as exc:
        raise ConfigError(_describe_errors(exc, cls, prefix, tree, sources, file_name)) from None


def structure_node(sources: ConfigSources) -> NodeConfig:
    """The ``[node]`` table alone, with core environment variables applied."""
    env_map = {var: tuple(path.split(".")) for var, path in CORE_ENV.items()}
    tree, where = sources.merged(env_map, {"node": NodeConfig, "cluster": ClusterConfig})
    _check_top_level(tree, allowed=TOP_LEVEL_TABLES, file_name=sources.file_name)
    return _structure(NodeConfig, tree.get("node", {}), ("node",), tree, where, sources.file_name)


def build_config(sources: ConfigSources, sections: Mapping[str, Any]) -> Config:
    """The whole configuration, once plugins are loaded.

    :param sections: plugin section name -> registration with ``obj`` (the attrs class) and
        ``env`` (environment variable -> field name).
    """
    env_map = {var: tuple(path.split(".")) for var, path in CORE_ENV.items()}
    for name, registration in sections.items():
        for var, field in registration.env.items():
            env_map[var] = ("plugins", name, field)
    types = {"node": NodeConfig, "cluster": ClusterConfig,
             **{name: reg.obj for name, reg in sections.items()}}
    tree, where = sources.merged(env_map, types)
    _check_top_level(tree, allowed=TOP_LEVEL_TABLES, file_name=sources.file_name)
    node = _structure(NodeConfig, tree.get("node", {}), ("node",), tree, where, sources.file_name)
    cluster = _structure(ClusterConfig, tree.get("cluster", {}), ("cluster",), tree, where,
                         sources.file_name)
    raw_plugins = tree.get("plugins", {})
    if not isinstance(raw_plugins, dict):
        raise ConfigError(f"plugins = {raw_plugins!r}: expected a table of plugin tables")
    unknown = sorted(set(raw_plugins) - set(sections))
    if unknown:
        raise ConfigError(
            f"plugins.{unknown[0]}: no loaded plugin has a config section of that name "
            f"(sections: {', '.join(sorted(sections)) or 'none'})"
        )
    plugins = {
        name: _structure(reg.obj, raw_plugins.get(name, {}), ("plugins", name), tree, where,
                         sources.file_name)
        for name, reg in sections.items()
    }
    origins = {".".join(path): sources.file_name for path in _leaf_paths(sources.file_data)}
    origins.update((".".join(path), origin) for path, origin in where.items())
    return Config(node=node, cluster=cluster, plugins=plugins, origins=origins)


def _leaf_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()
                ) -> Iterator[tuple[str, ...]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaf_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


TOP_LEVEL_TABLES = frozenset({"node", "cluster", "plugins"})


def _check_top_level(tree: Mapping[str, Any], allowed: frozenset[str],
                     file_name: str) -> None:
    for key in tree:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown table in {file_name} "
                              f"(known: {', '.join(sorted(allowed))})")

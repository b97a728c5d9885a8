"""DistCache core: the plugin API, config, wire protocol, command table and server.

Plugin authors import from here: ``hookimpl``, ``Command``, ``CommandError`` and the contracts.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: The Redis version whose command semantics DistCache follows (reported as redis_version).
REDIS_COMPAT_VERSION = "7.0.15"

from .command_table import Command, Subcommand, subcommand_handler  # noqa: E402
from .errors import CommandError, ConfigError, DistcacheError, PluginError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .replies import NULL_ARRAY, OK, ErrorReply, SetReply, VerbatimReply  # noqa: E402

__all__ = [
    "Command",
    "CommandError",
    "ConfigError",
    "DistcacheError",
    "ErrorReply",
    "NULL_ARRAY",
    "OK",
    "PluginError",
    "REDIS_COMPAT_VERSION",
    "SetReply",
    "Subcommand",
    "VerbatimReply",
    "__version__",
    "hookimpl",
    "subcommand_handler",
]

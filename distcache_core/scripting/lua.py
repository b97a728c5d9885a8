"""One Lua 5.1 state (``lupa.lua51``, the Lua version Redis embeds) with the sandbox of
``sandbox.lua`` installed, and the conversions between Lua values and reply values.

Nothing Python is reachable from a script: the runtime registers neither ``python.eval`` nor
the builtins, every attribute access on a Python object is refused, the real global table is
emptied once the sandbox is built (so even the ``python`` module table lupa registers is gone),
and the Python callbacks the sandbox holds as upvalues never raise (a Python exception crossing
into Lua would arrive there as a Python object).

Conversions follow Redis 7.0 (``script_lua.c``): a script's reply goes Lua -> RESP as
``luaReplyToRedisReply`` does (numbers truncated to integers, ``true`` is 1, ``false`` and
``nil`` are null, a table is an array up to its first nil unless it has an ``err``, ``ok``,
``double``, ``map`` or ``set`` field); a command's reply comes back to the script as
``redisProtocolToLuaType`` does (null is ``false``, a status is ``{ok=...}``, an error is
``{err=...}``).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

import lupa.lua51 as lupa  # type: ignore[import-untyped]

from .. import REDIS_COMPAT_VERSION
from ..errors import CommandError
from ..protocol.encoder import format_double
from ..replies import NO_REPLY, NULL_ARRAY, ErrorReply, SetReply, VerbatimReply

log = logging.getLogger("distcache.scripting")

LLONG_MIN: Final = -(1 << 63)
LLONG_MAX: Final = (1 << 63) - 1
#: The count hook runs every this many Lua instructions (Redis uses the same period); it
#: is where a SCRIPT KILL takes effect.
HOOK_PERIOD: Final = 100_000
#: The Lua heap of one node may not grow past this: a script that allocates without bound
#: gets "not enough memory" instead of exhausting the machine.
DEFAULT_MAX_MEMORY_BYTES: Final = 1024 * 1024 * 1024

# Tokens of a flattened script reply (sandbox.lua's flatten()).
(T_BULK, T_NUMBER, T_TRUE, T_NULL, T_STATUS, T_ERROR, T_ARRAY, T_DOUBLE, T_MAP, T_SET, T_FALSE,
 T_VERBATIM) = range(1, 13)

_SANDBOX_CODE: Final = resources.files(__package__).joinpath("sandbox.lua").read_bytes()
_SANDBOX_NAME: Final = "=[distcache sandbox]"
#: The libraries besides the sandbox, in the order sandbox.lua takes them.
_LIBRARIES: Final = tuple(
    (resources.files(__package__).joinpath(f"{name}.lua").read_bytes(), f"=[distcache {name}]")
    for name in ("cjson", "bit", "ieee754", "struct", "cmsgpack"))
#: redis.log levels (LL_DEBUG .. LL_WARNING) as logging levels.
_LOG_LEVELS: Final = (logging.DEBUG, logging.DEBUG, logging.INFO, logging.WARNING)


def _no_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python objects are not accessible from scripts")


def _version_number(version: str) -> int:
    major, minor, patch = (int(part) for part in version.split(".")[:3])
    return major << 16 | minor << 8 | patch


def lua_number_to_integer(value: float) -> int:
    """``(long long)`` of a Lua number as x86-64 does it: truncation toward zero, and
    ``LLONG_MIN`` for NaN, infinities and anything out of range."""
    if isinstance(value, int):
        return value if LLONG_MIN <= value <= LLONG_MAX else LLONG_MIN
    if math.isnan(value) or math.isinf(value):
        return LLONG_MIN
    result = int(value)
    return result if LLONG_MIN <= result <= LLONG_MAX else LLONG_MIN


def format_17g(value: float) -> bytes:
    """A double as Redis 7.0's ``addReplyDouble`` prints it (``%.17g``; x86's ``-nan``)."""
    if math.isnan(value):
        return b"-nan" if math.copysign(1.0, value) < 0 else b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


class ScriptFailed(CommandError):
    """A script raised an error (or was killed); the message is the whole error line."""


class LuaSandbox:
    """A Lua state with the sandbox installed. Not thread-safe: one script at a time.

    ``call(argv)`` runs a command for ``redis.call`` and returns its reply value (or raises
    ``CommandError``); ``interrupted()`` is polled by the count hook; both are set by whoever
    runs the script, before ``run``.
    """

    def __init__(self, *, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> None:
        self.call: Callable[[tuple[bytes, ...]], Any] = _no_call
        self.interrupted: Callable[[], bool] = _never
        self.acl_known: Callable[[bytes], bool] = _never_known
        #: RESP version of the script's commands (redis.setresp); reset before each run.
        self.resp = 2
        self._caller_resp = 2
        runtime = lupa.LuaRuntime(
            encoding=None, register_eval=False, register_builtins=False,
            unpack_returned_tuples=True, attribute_filter=_no_attributes,
            max_memory=max_memory_bytes)
        self._runtime = runtime
        self._table_from = runtime.table_from
        setup = runtime.compile(_SANDBOX_CODE, name=_SANDBOX_NAME)
        self._compile, self._run, self._array, self._error_table, _ = setup(
            self._py_call, self._py_setresp, self._py_log, self._py_sha1hex,
            self._py_interrupted, self._py_acl_check, HOOK_PERIOD,
            REDIS_COMPAT_VERSION.encode(), _version_number(REDIS_COMPAT_VERSION),
            *(runtime.compile(code, name=name) for code, name in _LIBRARIES))
        # Scripts run against the sandbox's globals; the real table (standard library, lupa's
        # `python` module) is emptied so nothing can reach it again.
        real_globals = runtime.globals()
        for name in list(real_globals):
            real_globals[name] = None

    # -- compiling and running --------------------------------------------------------------------

    def compile(self, body: bytes) -> Any:
        """The script body as a sandboxed Lua function; ``CommandError`` on a syntax error."""
        function, message = self._compile(body)
        if function is None:
            text = _text(message)
            raise CommandError(f"ERR Error compiling script (new function): {text}")
        return function

    def run(self, function: Any, sha: str, keys: list[bytes], args: list[bytes],
            caller_resp: int = 2) -> Any:
        """Run a compiled script with ``KEYS`` and ``ARGV``; its reply value (for a client
        speaking ``caller_resp``), or :class:`ScriptFailed` with Redis's error line."""
        self.resp = 2
        self._caller_resp = caller_resp
        result = self._run(function, self._table_from(keys), self._table_from(args))
        if not result[0]:
            raise ScriptFailed(_failure_line(result, sha))
        if result[1] is not None:
            return self._scalar(result[1], result[2] if len(result) > 2 else None)
        tokens = list(result[2].values())
        reply, _ = self._from_tokens(tokens, 0)
        return reply

    def memory_used(self) -> int:
        return self._runtime.get_memory_used() or 0

    # -- Lua -> reply values ----------------------------------------------------------------------

    def _scalar(self, tag: int, value: Any) -> Any:
        if tag == T_BULK:
            return value
        if tag == T_NUMBER:
            return lua_number_to_integer(value)
        if tag == T_TRUE:
            return True if self.resp == 3 else 1
        if tag == T_FALSE:
            return False if self.resp == 3 else None
        return None

    def _from_tokens(self, tokens: list[Any], at: int) -> tuple[Any, int]:
        tag = tokens[at]
        if tag == T_ARRAY or tag == T_SET:
            count = tokens[at + 1]
            at += 2
            items = []
            for _ in range(count):
                item, at = self._from_tokens(tokens, at)
                items.append(item)
            return (SetReply(items) if tag == T_SET else items), at
        if tag == T_MAP:
            count = tokens[at + 1]
            at += 2
            pairs = []
            for _ in range(count * 2):
                item, at = self._from_tokens(tokens, at)
                pairs.append(item)
            try:
                return dict(zip(pairs[::2], pairs[1::2], strict=True)), at
            except TypeError:  # a key that is itself an array: send the pairs flat
                return pairs, at
        if tag == T_STATUS:
            return _text(tokens[at + 1]), at + 2
        if tag == T_ERROR:
            return ErrorReply(_text(tokens[at + 1])), at + 2
        if tag == T_DOUBLE:
            # Redis 7.0 prints doubles with %.17g; RESP3 gets a double (the encoder's digits).
            value = float(tokens[at + 1])
            return (value if self._caller_resp == 3 else format_17g(value)), at + 2
        if tag == T_VERBATIM:
            return VerbatimReply(tokens[at + 1]), at + 2
        if tag == T_BULK or tag == T_NUMBER:
            return self._scalar(tag, tokens[at + 1]), at + 2
        return self._scalar(tag, None), at + 1

    # -- reply values -> Lua (redis.call) ---------------------------------------------------------

    def to_lua(self, reply: Any) -> Any:
        """A command's reply value as ``redis.call`` hands it to the script."""
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        converted = self._convert(reply, self.resp == 3)
        if isinstance(converted, (list, dict)):
            return self._table_from(converted, recursive=True)
        return converted

    def _convert(self, reply: Any, resp3: bool) -> Any:
        kind = type(reply)
        if kind is bytes or kind is int:
            return reply
        if reply is None or reply is NULL_ARRAY or reply is NO_REPLY:
            return None if resp3 else False
        if kind is bool:
            return reply if resp3 else int(reply)
        if isinstance(reply, VerbatimReply):
            if resp3:
                return {b"verbatim_string": {b"format": b"txt", b"string": bytes(reply)}}
            return bytes(reply)
        if isinstance(reply, SetReply):
            if resp3:
                return {b"set": {self._convert(item, resp3): True for item in reply}}
            return [self._convert(item, resp3) for item in reply]
        if isinstance(reply, ErrorReply):
            return {b"err": _error_text(str(reply))}
        if isinstance(reply, str):
            return {b"ok": reply.encode("utf-8", "surrogateescape")}
        if isinstance(reply, float):
            return {b"double": reply} if resp3 else format_double(reply)
        if isinstance(reply, dict):
            if resp3:
                return {b"map": {self._convert(k, resp3): self._convert(v, resp3)
                                 for k, v in reply.items()}}
            return [self._convert(item, resp3) for pair in reply.items() for item in pair]
        if isinstance(reply, (list, tuple)):
            return [self._convert(item, resp3) for item in reply]
        if isinstance(reply, (bytearray, memoryview)):
            return bytes(reply)
        if isinstance(reply, int):  # an IntEnum or another int subclass
            return int(reply)
        raise TypeError(f"reply of type {kind.__name__} cannot be handed to a script")

    # -- callbacks from the sandbox (never raise) --------------------------------------------

    def _py_call(self, *argv: bytes) -> tuple[int, Any]:
        try:
            reply = self.call(argv)
            return 0, self.to_lua(reply)
        except CommandError as exc:
            return 1, _error_text(exc.message)
        except BaseException:  # a Python exception must never reach the script
            log.exception("command %r called from a script failed", argv[:1])
            return 1, b"-ERR internal error while running the command (see node log)"

    def _py_setresp(self, resp: Any) -> None:
        self.resp = 3 if resp == 3 else 2

    def _py_log(self, level: Any, message: bytes) -> None:
        try:
            log.log(_LOG_LEVELS[int(level)], "script: %s", _text(message))
        except BaseException:
            pass

    def _py_sha1hex(self, text: bytes) -> bytes:
        return hashlib.sha1(bytes(text)).hexdigest().encode()

    def _py_interrupted(self) -> bool:
        try:
            return bool(self.interrupted())
        except BaseException:
            return False

    def _py_acl_check(self, name: bytes) -> bool:
        try:
            return bool(self.acl_known(name))
        except BaseException:
            return False


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _error_text(message: str) -> bytes:
    """An error line as the sandbox's error_table() reads it: with a leading ``-`` so the
    first word is kept as the code."""
    return b"-" + message.encode("utf-8", "surrogateescape")


def _failure_line(result: tuple[Any, ...], sha: str) -> str:
    """The error line of a failed script (luaCallFunction): the error table's message, then
    where it was raised."""
    message = result[1] if len(result) > 1 else None
    if message is None:
        return "ERR Error running script, the error object has no message"
    text = _text(message)
    source = result[2] if len(result) > 2 else None
    line = result[3] if len(result) > 3 else None
    if source is not None and line is not None:
        text += f" script: {sha}, on {_text(source)}:{lua_number_to_integer(line)}."
    return text


def _no_call(argv: tuple[bytes, ...]) -> Any:
    raise CommandError("ERR redis.call/pcall can only be called inside a script invocation")


def _never() -> bool:
    return False


def _never_known(name: bytes) -> bool:
    return False

"""One request, from its argument vector to its reply bytes: the only dispatch function.

:func:`dispatch` looks the command up, checks its arity and the client's authentication,
calls the handler and encodes the reply, turning a :class:`CommandError` into an error line and
any other exception into a logged internal error. Single requests and pipelines both go
through it. It returns the reply as ``bytes``, or, when the handler returned an awaitable (an
``async def`` handler: a forwarded command, a replicated write, a script), a
:class:`asyncio.Future` that resolves to the reply bytes; the connection keeps replies in
request order (see :mod:`distcache_core.replyqueue`).

Ordering choice for async handlers: the commands that follow an async one in a pipeline are
*run* at once, in order; only their *replies* wait behind it. That is what Redis does for the
commands it runs (they run in the order they arrive), it is what lets a pipelining client keep
many forwarded commands in flight to a peer, and per key it keeps order, because a key's
commands all go to the same place in the same order. An async handler should therefore apply
its local effect before its first ``await`` (a write is applied, then its replication is
awaited), so the next command of the pipeline sees it.

Requests that need more than this fast path (a client that has not authenticated, a client
inside MULTI, a node that is loading or running a long script) set ``conn.gated``; they take
:func:`_slow`, which checks authentication and hands the request to ``conn.gate(conn, command,
argv)`` when there is one, which decides (queue it, refuse it, run it). A request
refused by the checks before the gate (unknown command, arity, authentication) while the
client is in MULTI flags its transaction, so EXEC aborts.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Awaitable, Generator, Sequence
from typing import Any

from . import transactions
from .errors import NOAUTH, CommandError
from .protocol import encode_error
from .protocol.encoder import BULK_HEADERS as _BULK_HEADERS
from .replies import OK
from .replyqueue import HELD_REPLY_COST, ReplyFuture

log = logging.getLogger("distcache.dispatch")

OK_LINE = b"+OK\r\n"


def unknown_command_error(argv: list[bytes]) -> CommandError:
    """Redis's wording: ``ERR unknown command 'foo', with args beginning with: 'a' 'b' ``."""
    name = argv[0].decode("utf-8", "replace")[:128]
    args = "".join(f"'{a.decode('utf-8', 'replace')[:128]}' " for a in argv[1:])
    return CommandError(f"ERR unknown command '{name}', with args beginning with: {args}")


def arity_error(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def error_reply(conn: Any, message: str) -> bytes:
    """The one place an error reply is encoded: counts it (INFO ``total_error_replies`` and,
    by its code, ``errorstats``) and returns ``-<message>\r\n``."""
    conn.error_replies += 1
    conn.server.error_stats.count(message)
    return encode_error(message)


def internal_error(conn: Any, argv: list[bytes]) -> bytes:
    # A handler bug must not take the node or this client down: log it, answer, go on.
    log.exception("command %r failed", argv[0][:64])
    return error_reply(conn, "ERR internal error while running the command (see node log)")


def dispatch(conn: Any, requests: Sequence[list[bytes]], out: list[bytes]) -> int:
    """Run ``requests`` for ``conn`` in order and append their replies' bytes to ``out`` (as
    parts that the caller joins into one write); return how many ran.

    It stops early once the replies pass the connection's high-water mark or a command asked
    for the connection to close; the caller keeps the rest. A reply that is not ready (an
    async handler) is handed to ``conn.hold(out, future)``, which moves what ``out`` holds so
    far and the future to the connection's reply queue, keeping request order, and returns
    what the wait costs against the high-water mark.

    The loop is the request path of every client, single requests included (a list of one):
    the common case (known command, arity fits, not gated, a plain reply) runs
    inline; everything else goes through :func:`_slow`.
    """
    append = out.append
    command_get = conn.command_get
    high_water = conn.server.high_water
    size = 0
    done = 0
    held = None  # the ReplyFuture held last: a forwarded batch answers many commands
    for argv in requests:
        done += 1
        command = command_get(argv[0])
        if (command is not None and command.min_args <= len(argv) <= command.max_args
                and not conn.gated):
            reply = None
            try:
                reply = command.handler(conn, argv)
                # Counted once the handler returned, as Redis does (INFO does not count
                # itself); see distcache_core.metrics.recorder.
                command.stats.calls += 1
                if type(reply) is bytes:
                    # A bulk reply (GET) goes out as header, value and CRLF parts of the one
                    # final join: no encoder call, no copy (-11% instructions a GET).
                    length = len(reply)
                    append(_BULK_HEADERS[length] if length < 1024 else b"$%d\r\n" % length)
                    append(reply)
                    append(b"\r\n")
                    size += length
                elif reply is OK:  # SET, MSET...: the literal "OK" is interned
                    append(OK_LINE)
                elif type(reply) is ReplyFuture:  # a forwarded command: its reply waits
                    if reply is held and not out:
                        size += HELD_REPLY_COST  # one more command of that batch (as hold)
                    else:
                        size += conn.hold(out, reply)
                        held = reply
                else:
                    # Looked up after the handler ran: HELLO switches the encoder for its reply.
                    encoded = conn.encode(reply)
                    append(encoded)
                    size += len(encoded)
            except CommandError as exc:
                command.stats.calls += 1
                command.stats.failed += 1
                append(error_reply(conn, exc.message))
            except TypeError:
                if isinstance(reply, Awaitable):  # an async handler: the encoder refused it
                    result = defer(conn, argv, reply)
                    if type(result) is bytes:
                        append(result)
                        size += len(result)
                    else:
                        size += conn.hold(out, result)
                else:
                    command.stats.calls += 1
                    command.stats.failed += 1
                    append(internal_error(conn, argv))
            except Exception:
                command.stats.calls += 1
                command.stats.failed += 1
                append(internal_error(conn, argv))
        else:
            encoded_or_future = _slow(conn, command, argv)
            if type(encoded_or_future) is bytes:
                append(encoded_or_future)
                size += len(encoded_or_future)
            else:
                size += conn.hold(out, encoded_or_future)
        if size > high_water or conn.close_requested:
            break
    return done


def dispatch_one(conn: Any, argv: list[bytes]) -> bytes | asyncio.Future[bytes]:
    """Run one request for ``conn``: its reply bytes, or a future of them (an async
    handler). The entry point for a read that carried one request (a client waiting for each
    reply): the same checks and reply rules as :func:`dispatch`, sharing :func:`_slow` and
    :func:`call_handler` for everything but the common case.

    Why two entry points over one common case. A batch loop (:func:`dispatch`) for a lone
    request costs its set-up (bound methods, counters, the parts join): 21,399 instructions a
    GET against 19,193 here (callgrind, ``bench/count_instructions.py``); calling this function
    per request of a pipeline costs a Python call each: 11,563 instructions a pipelined GET
    against 10,314 in the loop. The common case (call the handler, encode a bulk or OK reply)
    is therefore written in both, and nothing else is.
    """
    command = conn.command_get(argv[0])
    if (command is None or not command.min_args <= len(argv) <= command.max_args
            or conn.gated):
        return _slow(conn, command, argv)
    reply = None
    try:
        reply = command.handler(conn, argv)
        command.stats.calls += 1  # once it returned, as in dispatch()
        # The two commonest replies skip the encoder's two calls (-1,600 instructions a GET).
        if type(reply) is bytes and len(reply) < 1024:
            return _BULK_HEADERS[len(reply)] + reply + b"\r\n"
        if reply is OK:
            return OK_LINE
        if type(reply) is ReplyFuture:  # a forwarded command: its reply waits
            return reply
        # Looked up after the handler ran: HELLO switches the encoder for its own reply.
        return conn.encode(reply)
    except CommandError as exc:
        command.stats.calls += 1
        command.stats.failed += 1
        return error_reply(conn, exc.message)
    except TypeError:
        if isinstance(reply, Awaitable):  # an async handler: the encoder refused it
            return defer(conn, argv, reply)
        command.stats.calls += 1
        command.stats.failed += 1
        return internal_error(conn, argv)
    except Exception:
        command.stats.calls += 1
        command.stats.failed += 1
        return internal_error(conn, argv)


def _slow(conn: Any, command: Any, argv: list[bytes]) -> bytes | asyncio.Future[bytes]:
    """Everything but the common case: casing the fast lookup missed, unknown commands,
    arity, authentication, gates."""
    if command is None:
        command = conn.command_lookup(argv[0])
    try:
        if command is None:
            raise unknown_command_error(argv)
        if not command.min_args <= len(argv) <= command.max_args:
            raise arity_error(command.name)
        if not conn.authenticated and "noauth" not in command.flags:
            raise CommandError(NOAUTH)
        if conn.gate is not None:
            return conn.gate(conn, command, argv)  # type: ignore[no-any-return]
    except CommandError as exc:
        if command is not None:
            command.stats.rejected += 1
        # Inside MULTI this also makes EXEC abort (Redis's flagTransaction).
        return error_reply(conn, transactions.refused(conn, command, exc.message))
    return call_handler(conn, command, argv)


def proceed(conn: Any, command: Any, argv: list[bytes]) -> bytes | asyncio.Future[bytes]:
    """What a node gate (loading, a busy script) does with a request it lets through: what
    would have happened without it, that is queue it when the client is in MULTI (Redis makes
    those checks before queueing), else run it."""
    if conn.transaction is not None:
        return transactions.multi_gate(conn, command, argv)  # type: ignore[no-any-return]
    return call_handler(conn, command, argv)


def call_handler(conn: Any, command: Any, argv: list[bytes]) -> bytes | asyncio.Future[bytes]:
    """Run an already checked command (for gates: EXEC, a node that finished loading):
    the same reply rules as :func:`dispatch` after its checks."""
    try:
        reply = command.handler(conn, argv)
        command.stats.calls += 1
        if reply is OK:
            return OK_LINE
        if type(reply) is bytes:
            return _BULK_HEADERS[len(reply)] + reply + b"\r\n" if len(reply) < 1024 \
                else b"$%d\r\n%b\r\n" % (len(reply), reply)
        if isinstance(reply, Awaitable):
            return defer(conn, argv, reply)
        return conn.encode(reply)
    except CommandError as exc:
        command.stats.calls += 1
        command.stats.failed += 1
        return error_reply(conn, exc.message)
    except Exception:
        command.stats.calls += 1
        command.stats.failed += 1
        return internal_error(conn, argv)


def defer(conn: Any, argv: list[bytes], awaitable: Awaitable[Any]
          ) -> bytes | asyncio.Future[bytes]:
    """Finish an async handler: its reply bytes if it completes without waiting, else a
    future of them.

    A coroutine is started *eagerly*: its body runs now, up to its first real wait, as a
    synchronous handler would (Python 3.12's eager tasks, by hand for 3.11). So an async
    handler's local effect (the write, before it awaits replication) is applied in request
    order, before the next command of the pipeline runs. The rest runs in a task that is
    never cancelled when the client goes away: what the handler started may matter to other
    clients; its reply is then simply dropped.

    A :class:`~distcache_core.replyqueue.ReplyFuture` already resolves to the reply's bytes
    (a forwarded command): it is queued as it is.
    """
    if type(awaitable) is ReplyFuture:
        return awaitable
    if isinstance(awaitable, types.CoroutineType):
        try:
            first = awaitable.send(None)
        except StopIteration as stop:
            return _encode_result(conn, argv, stop.value)
        except CommandError as exc:
            return error_reply(conn, exc.message)
        except Exception:
            return internal_error(conn, argv)
        awaitable = _resume(awaitable, first)
    return asyncio.ensure_future(_finish(conn, argv, awaitable))


@types.coroutine
def _resume(coro: Any, yielded: Any) -> Generator[Any, Any, Any]:
    """Carry on a coroutine that :func:`defer` has already stepped once: hand what it yielded
    to the task driving us, and what the task sends or throws back to it."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # cancellation and errors go to the handler
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _encode_result(conn: Any, argv: list[bytes], reply: Any) -> bytes:
    try:
        if reply is OK:
            return OK_LINE
        return conn.encode(reply)  # type: ignore[no-any-return]
    except Exception:
        return internal_error(conn, argv)


async def _finish(conn: Any, argv: list[bytes], awaitable: Awaitable[Any]) -> bytes:
    try:
        reply = await awaitable
    except CommandError as exc:
        return error_reply(conn, exc.message)
    except Exception:
        return internal_error(conn, argv)
    return _encode_result(conn, argv, reply)

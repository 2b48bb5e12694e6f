"""Plain line mode, for scripts and bots: ``chat-tui HOST --nick bot < lines``.

Each input line is sent with the same slash-command mapping as the
full-screen view; everything that happens is printed as one readable line on
standard output.  At the end of input the client sends QUIT and reads through
the server's BYE.  While the server keeps answering (it paces fast senders),
the client keeps waiting; after ``idle`` seconds of silence it gives up.

Against a chatd 1.1 server the times printed are the server's (``TIME ON``),
and ``--history N`` prints the last N lines said before the login first,
between ``-- history --`` and ``-- end of history (N lines) --``; input is
sent only once that replay has ended.

There is no reconnect here: a script is better told (exit status 1) than
left running against a server that went away.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from chatclient import render
from chatclient.client import QUIT, Client, Recorder, Send
from chatclient.connection import Connection
from chatclient.state import ClientState, Line, Link, Phase
from chatd import wire


class PlainSession:
    """One plain-mode run: a client, its printer, and what the waits watch.

    The session builds its ``Client`` around ``state`` and ``send`` so the
    client reports to ``print_lines`` from the start."""

    def __init__(self, state: ClientState, send: Send, out: TextIO, *, history: int = 0,
                 log: Recorder | None = None) -> None:
        self.out = out
        self.changed = asyncio.Event()
        self.last_heard = time.monotonic()
        self.lost = False
        self.client = Client(state, send, self.print_lines, history=history, log=log)

    def print_lines(self, lines: list[Line]) -> None:
        for line in lines:
            print(render.plain(line), file=self.out, flush=True)
        self.changed.set()

    # Connection listener: forwards to the client, noting activity.

    def connection_made(self) -> None:
        self.client.connection_made()

    def message_received(self, message: wire.ServerMessage, stamp: str | None = None) -> None:
        self.last_heard = time.monotonic()
        self.client.message_received(message, stamp)

    def connection_lost(self, reason: str) -> None:
        self.lost = True
        self.client.connection_lost(reason)

    def reconnecting(self, delay: float, attempt: int, failure: str | None) -> None:
        pass  # pragma: no cover - plain mode does not reconnect

    async def wait_for(self, done: Callable[[], object], idle: float) -> bool:
        """Wait until ``done()`` or the connection ends; False after ``idle``
        seconds with nothing from the server."""
        while not done() and not self.lost:
            self.changed.clear()
            remaining = self.last_heard + idle - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass
        return bool(done())


INPUT_AHEAD = 256  # input lines read ahead of what has been sent


def _read_lines(queue: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop,
                source: TextIO) -> None:
    """Feed the input to the loop from a daemon thread: a blocked read must
    not keep the process alive after /quit.  The queue is bounded and the
    thread waits for room, so an endless input costs bounded memory."""
    try:
        for line in source:
            asyncio.run_coroutine_threadsafe(queue.put(line), loop).result()
        asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
    except RuntimeError:
        pass  # the loop has closed: the run is over


async def run_plain(args: argparse.Namespace, tls: ssl.SSLContext | None, *,
                    source: TextIO | None = None, out: TextIO | None = None,
                    idle: float = 3.0, log: Recorder | None = None) -> int:
    """Log in as ``--nick``, send every input line, quit at the end; the exit status."""
    source = source if source is not None else sys.stdin
    out = out if out is not None else sys.stdout
    if not args.nick:
        print("chat-tui: plain line mode (input is not a terminal) needs --nick NAME",
              file=sys.stderr)
        return 2
    connection = Connection(args.host, args.port, tls=tls, reconnect=False)
    await connection.open()
    state = ClientState(f"{args.host}:{args.port}", nick=args.nick)
    session = PlainSession(state, connection.send, out, history=args.history or 0, log=log)
    connection.start(session)
    try:
        return await _converse(session, connection, source, idle)
    finally:
        await connection.close(grace=0)


async def _converse(session: PlainSession, connection: Connection, source: TextIO,
                    idle: float) -> int:
    state, client = session.client.state, session.client
    logged_in = await session.wait_for(
        lambda: state.phase is Phase.IN or state.login_error is not None, idle * 3)
    if not logged_in or state.login_error:
        print(f"chat-tui: could not log in as {state.wanted_nick}: "
              f"{state.login_error or 'no answer from the server'}", file=sys.stderr)
        return 1
    # The replay (--history) prints before anything this run says.
    await session.wait_for(lambda: not state.replay_pending, idle)
    queue: asyncio.Queue[str | None] = asyncio.Queue(INPUT_AHEAD)
    threading.Thread(target=_read_lines, args=(queue, asyncio.get_running_loop(), source),
                     daemon=True).start()
    while not session.lost:
        line = await _next(queue, session)
        if line is None or client.submit(line) == QUIT:
            break
        await connection.drain()  # the server's flood lag paces us, not our memory
    if session.lost and not state.quitting:
        print("chat-tui: the connection was lost", file=sys.stderr)
        return 1
    client.quit()
    await session.wait_for(lambda: state.link is Link.CLOSED, idle)
    return 0


async def _next(queue: asyncio.Queue[str | None], session: PlainSession) -> str | None:
    """The next input line, or None at its end or when the connection drops."""
    getter = asyncio.ensure_future(queue.get())
    dropped = asyncio.ensure_future(session.wait_for(lambda: False, float("inf")))
    await asyncio.wait((getter, dropped), return_when=asyncio.FIRST_COMPLETED)
    dropped.cancel()
    if getter.done():
        return getter.result()
    getter.cancel()
    return None

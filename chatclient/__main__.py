"""``chat-tui HOST [PORT]``: the command line, and the choice of mode.

A terminal gets the full-screen view; anything else (a pipe, a file) gets
plain line mode, which bots and scripts use.  Connecting happens before the
screen is taken, so a refused connection or an unknown host is one line on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from chatclient.chatlog import ChatLog, default_directory, file_name
from chatclient.client import HISTORY_LINES
from chatclient.connection import ConnectError, Connection
from chatclient.state import ClientState
from chatd.argtypes import non_negative_int, remote_port
from chatd.nicks import NICK_RULES, is_valid_nick
from chatd.wire import DEFAULT_PORT


def _nick(text: str) -> str:
    if not is_valid_nick(text):
        raise argparse.ArgumentTypeError(f"{text!r} cannot be used as a nick: {NICK_RULES}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-tui",
        description="A full-screen terminal client for chatd. With standard input not a "
                    "terminal, it runs in plain line mode: each input line is sent, events "
                    "are printed as text.",
        epilog="Keys and commands: docs/client.md, or /help once connected.")
    parser.add_argument("host", help="the chatd server, e.g. localhost")
    parser.add_argument("port", nargs="?", type=remote_port, default=DEFAULT_PORT,
                        help=f"its port (default {DEFAULT_PORT})")
    parser.add_argument("--nick", type=_nick, help="log in as NICK without asking")
    parser.add_argument("--no-bell", action="store_true",
                        help="do not ring the terminal bell for mentions, private messages, WALLs")
    parser.add_argument("--no-members", action="store_true",
                        help="start with the member list hidden (F2 shows it)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca-file", metavar="PEM",
                        help="trust the certificate authorities in PEM (implies --tls)")
    parser.add_argument("--plain", action="store_true",
                        help="plain line mode even on a terminal")
    parser.add_argument("--history", metavar="N", type=non_negative_int,
                        help="after each login to a chatd 1.1 server, show the last N lines "
                             f"said before you came (default {HISTORY_LINES} on the full screen, "
                             "0 in plain mode); after a reconnect, only those you missed")
    parser.add_argument("--log", action="store_true",
                        help="append every line shown, with its server time, to a log file "
                             "per server in $XDG_STATE_HOME/chatd/logs (or "
                             "~/.local/state/chatd/logs); off unless asked")
    parser.add_argument("--log-dir", metavar="DIR", type=Path,
                        help="keep the chat log in DIR instead (implies --log)")
    return parser


def chat_log(args: argparse.Namespace) -> ChatLog | None:
    """The chat log the options ask for, or None (no log by default)."""
    if args.log_dir is None and not args.log:
        return None
    directory = args.log_dir or default_directory(os.environ, Path.home())
    return ChatLog(directory, file_name(args.host, args.port))


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context the options ask for, or None for plain TCP."""
    if not (args.tls or args.ca_file):
        return None
    return ssl.create_default_context(cafile=args.ca_file)


async def run_tui(args: argparse.Namespace, tls: ssl.SSLContext | None,
                  log: ChatLog | None = None) -> int:
    """Connect, then run the full-screen view until the user leaves."""
    from chatclient.ui import build_app  # prompt_toolkit's app only for a terminal

    connection = Connection(args.host, args.port, tls=tls)
    await connection.open()
    state = ClientState(f"{args.host}:{args.port}", nick=args.nick)
    history = HISTORY_LINES if args.history is None else args.history
    view = build_app(state, connection.send, connection.close, bell=not args.no_bell,
                     members=not args.no_members, history=history,
                     log=log.record if log is not None else None)
    connection.start(view.client)
    try:
        await view.app.run_async()
    finally:
        await connection.close(grace=0)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The ``chat-tui`` console script."""
    args = build_parser().parse_args(argv)
    try:
        tls = tls_context(args)
    except (OSError, ssl.SSLError) as error:
        sys.exit(f"chat-tui: cannot use CA file {args.ca_file}: {error}")
    plain = args.plain or not sys.stdin.isatty()
    log = chat_log(args)
    try:
        if plain:
            from chatclient.plain import run_plain
            status = asyncio.run(run_plain(args, tls, log=log.record if log else None))
        else:
            status = asyncio.run(run_tui(args, tls, log))
    except ConnectError as error:
        print(f"chat-tui: cannot connect: {error}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        status = 130
    finally:
        if log is not None:
            log.close()
    sys.exit(status)


if __name__ == "__main__":
    main()

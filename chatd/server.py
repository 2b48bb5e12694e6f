"""The ``chatd`` program: listen where told, log, and shut down gracefully."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from twisted.internet import defer, endpoints, error, task
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)

from chatd import __version__
from chatd.config import Config, ConfigError, parse_config
from chatd.protocol import ChatFactory, log


def log_observer(config: Config, stream: TextIO) -> ILogObserver:
    """Info and above, as text or JSON lines."""
    observer = (jsonFileLogObserver(stream) if config.log_format == "json"
                else textFileLogObserver(stream))
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(LogLevel.info)])


async def listen(reactor: Any, factory: ChatFactory, description: str) -> Any:
    """Listen on one endpoint string, turning every failure into ``SystemExit``
    with a one-line message (never a traceback)."""
    try:
        endpoint = endpoints.serverFromString(reactor, description)
    except Exception as exc:  # Twisted raises ValueError, KeyError, ImportError...
        print(f"chatd: bad listen endpoint {description!r}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        return await endpoint.listen(factory)
    except error.CannotListenError as exc:
        why = exc.socketError.strerror if exc.socketError is not None else str(exc)
        print(f"chatd: cannot listen on {description}: {why}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:
        print(f"chatd: cannot listen on {description}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


async def main(reactor: Any, argv: Sequence[str]) -> None:
    """Run until SIGINT or SIGTERM; then WALL, BYE and close everyone."""
    try:
        config = parse_config(argv)
    except ConfigError as exc:
        print(f"chatd: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    globalLogBeginner.beginLoggingTo([log_observer(config, sys.stderr)],
                                     redirectStandardIO=False)
    factory = ChatFactory(config, reactor)
    for description in config.listen:
        port = await listen(reactor, factory, description)
        address = port.getHost()
        print(f"chatd {__version__} listening on {address.host}:{address.port} ({description})",
              flush=True)
        log.info("listening on {host}:{port}", host=address.host, port=address.port)
    reactor.addSystemEventTrigger("before", "shutdown", factory.shutdown)
    await defer.Deferred()  # until the reactor stops: task.react then exits 0


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    task.react(main, [sys.argv[1:] if argv is None else list(argv)])

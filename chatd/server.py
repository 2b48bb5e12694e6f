"""The ``chatd`` program: listen where told, log, and shut down gracefully."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from twisted.internet import defer, endpoints, error, task
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    PredicateResult,
    formatEvent,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)
from zope.interface import implementer

from chatd import __version__
from chatd.config import BACKLOG, Config, ConfigError, parse_config
from chatd.origins import OriginPolicy, loopback_origins
from chatd.transports.reuseport import reuse_port_endpoint
from chatd.transports.tcp import ChatFactory, log


def log_observer(config: Config, stream: TextIO) -> ILogObserver:
    """Info and above, as text or JSON lines."""
    # JSON: one object per line, without the RFC 7464 record separator
    # Twisted puts before each, so `json.loads` per line works.
    observer = (jsonFileLogObserver(stream, recordSeparator="") if config.log_format == "json"
                else textFileLogObserver(stream))
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(LogLevel.info),
                                           drop_port_chatter])


@implementer(ILogFilterPredicate)
class _DropPortChatter:
    """Twisted's TCP port logs "ChatFactory starting on 8123" and "(TCP Port
    8123 Closed)" through the legacy log, whatever the factory's ``noisy``;
    chatd's own "listening on" line already says it.  Every other event passes."""

    # constantly's constants are untyped; named here with their type.
    _no: PredicateResult = PredicateResult.no
    _maybe: PredicateResult = PredicateResult.maybe
    _chatter = re.compile(r"\S+ starting on \d+|\(\S+ Port \d+ Closed\)")

    def __call__(self, event: LogEvent) -> PredicateResult:
        if event.get("log_namespace") == "log_legacy" and self._chatter.fullmatch(
                formatEvent(event) or ""):
            return self._no
        return self._maybe


drop_port_chatter = _DropPortChatter()


async def listen(reactor: Any, factory: Any, description: str, *, reuse_port: bool = False) -> Any:
    """Listen on one endpoint string, turning every failure into ``SystemExit``
    with a one-line message (never a traceback).  With ``reuse_port`` the
    (``tcp:``) listener is bound with SO_REUSEPORT, shared with the other
    chatd processes on the port."""
    try:
        endpoint = (reuse_port_endpoint(reactor, description) if reuse_port
                    else endpoints.serverFromString(reactor, description))
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


async def main(reactor: Any, config: Config) -> None:
    """Run until SIGINT or SIGTERM; then WALL, BYE and close everyone."""
    # task.react calls main before reactor.run installs the SIGTERM/SIGINT
    # handlers; waiting one turn means nobody sees "listening" while a signal
    # would still kill the process without its WALL and BYE.
    await task.deferLater(reactor, 0, lambda: None)
    factory = ChatFactory(config, reactor)
    link = await join_redis(factory, config)
    for description in config.listen:
        port = await listen(reactor, factory, description, reuse_port=config.reuse_port)
        address = port.getHost()
        print(f"chatd {__version__} listening on {address.host}:{address.port} ({description})",
              flush=True)
        log.info("listening on {host}:{port}", host=address.host, port=address.port)
    await listen_web(reactor, factory, config)
    await listen_irc(reactor, factory, config)
    # Only now: a server that cannot start says one line, not a log.  Events
    # logged so far are buffered and replayed here.
    globalLogBeginner.beginLoggingTo([log_observer(config, sys.stderr)],
                                     redirectStandardIO=False)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(stop(factory, link)))
    await defer.Deferred()  # until the reactor stops: task.react then exits 0


async def join_redis(factory: ChatFactory, config: Config) -> Any:
    """With ``--redis``: register this node and read back the room before
    any door opens, so the first user already sees the whole room."""
    if config.redis is None:
        return None
    from chatd.redisbus import RedisBus
    from chatd.transports.redis import RedisLink, RedisUnavailable

    bus = factory.node.bus
    assert isinstance(bus, RedisBus)
    link = RedisLink(bus, config.redis, lease=config.redis_lease, beat=config.redis_beat,
                     history=config.history, log=log)
    try:
        await defer.Deferred.fromFuture(asyncio.ensure_future(link.start()))
    except RedisUnavailable as exc:
        print(f"chatd: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"chatd {__version__} sharing the room through {config.redis} as node {bus.node}",
          flush=True)
    return link


async def stop(factory: ChatFactory, link: Any) -> None:
    """Close every connection (their PARTs go to the room), then leave Redis."""
    await factory.shutdown()
    if link is not None:
        await defer.Deferred.fromFuture(asyncio.ensure_future(link.stop()))


def with_backlog(description: str) -> str:
    """A ``tcp:`` or ``ssl:`` endpoint asks for chatd's listen backlog unless
    it names one: Twisted's default of 50 makes a login storm to the page's
    WebSocket wait on SYN retransmits."""
    kind = description.partition(":")[0]
    if kind in ("tcp", "ssl") and "backlog=" not in description:
        return f"{description}:backlog={BACKLOG}"
    return description


async def listen_web(reactor: Any, factory: ChatFactory, config: Config) -> None:
    """The page and /ws on each ``--web`` endpoint, /healthz and /metrics on
    those and on each ``--metrics`` endpoint."""
    from chatd.transports import web

    if config.web:
        origins = OriginPolicy(config.web_origins)
        site, _door = web.web_site(factory.node, origins, reactor)
        for description in config.web:
            address = (await listen(reactor, site, with_backlog(description),
                                    reuse_port=config.reuse_port)).getHost()
            scheme = "https" if description.startswith(("ssl:", "tls:")) else "http"
            origins.allow(loopback_origins(scheme, address.port))
            shown = "localhost" if address.host in ("0.0.0.0", "::") else address.host
            print(f"chatd {__version__} serving the page on {scheme}://{shown}:"
                  f"{address.port}/ ({description})", flush=True)
            log.info("page and WebSocket on {host}:{port}", host=address.host,
                     port=address.port)
    # A scrape now and then: Twisted's backlog will do.  Never SO_REUSEPORT:
    # each process's figures are its own, on a port of its own.
    for description in config.metrics:
        address = (await listen(reactor, web.metrics_site(factory.node, reactor),
                                description)).getHost()
        print(f"chatd {__version__} serving /metrics on {address.host}:{address.port} "
              f"({description})", flush=True)


async def listen_irc(reactor: Any, factory: ChatFactory, config: Config) -> None:
    """The IRC listener on each ``--irc`` endpoint: the same room, as one channel."""
    if not config.irc:
        return
    door = factory.door_factory("irc")
    for description in config.irc:
        address = (await listen(reactor, door, with_backlog(description),
                                reuse_port=config.reuse_port)).getHost()
        print(f"chatd {__version__} IRC listening on {address.host}:{address.port} "
              f"({description}) as {config.irc_server_name}, channel {config.irc_channel}",
              flush=True)
        log.info("IRC on {host}:{port}", host=address.host, port=address.port)


def install_reactor(name: str) -> None:
    """Install the chosen reactor; must run before anything imports
    ``twisted.internet.reactor``."""
    if name == "default":
        return
    import asyncio

    from twisted.internet import asyncioreactor

    if name == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)


def raise_file_limit() -> None:
    """Allow as many open files as the hard limit does: the default soft limit
    (often 1024) is far below ``--max-clients``."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        config = parse_config(sys.argv[1:] if argv is None else list(argv))
    except ConfigError as exc:
        print(f"chatd: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise_file_limit()
    install_reactor(config.reactor)
    task.react(main, [config])

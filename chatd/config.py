"""Everything an operator can set, parsed from the command line once.

Pure: argparse and the environment in, a frozen ``Config`` out, so that the
``chatd`` script and the ``twistd chatd`` plugin share one parser.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chatd import __version__
from chatd.argtypes import non_negative_int, port, positive_float, positive_int
from chatd.origins import OriginError, normalize_origin
from chatd.tcp_endpoint import parse_tcp_endpoint
from chatd.wire import DEFAULT_PORT

# Twisted's default listen backlog is 50: a burst of connects past it waits
# for SYN retransmits (a second or more each), so ask for more.
BACKLOG = 1024
OPER_PASSWORD_ENV = "CHATD_OPER_PASSWORD"
REDIS_ENV = "CHATD_REDIS"
MAX_HISTORY = 10_000  # lines: a HISTORY reply is one write, so keep it a sane size


def history_lines(text: str) -> int:
    """``--history``: 0 (off) up to ``MAX_HISTORY``."""
    value = non_negative_int(text)
    if value > MAX_HISTORY:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_HISTORY}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The server's settings; defaults are what ``chatd`` alone gives."""

    listen: tuple[str, ...] = (f"tcp:{DEFAULT_PORT}:backlog={BACKLOG}",)
    reuse_port: bool = False  # SO_REUSEPORT on the TCP listeners and --web: processes share them
    max_line: int = 1024
    max_sendq: int = 256 * 1024
    max_recvq: int = 128 * 1024
    flood_burst: int = 10
    flood_rate: float = 5.0  # 0 turns flood control off
    max_clients: int = 10_000
    max_per_ip: int = 16
    limit_loopback: bool = False
    register_timeout: float = 120.0
    keepalive: bool = True
    socket_sndbuf: int = 0  # 0 leaves the kernel's send-buffer autotuning on
    oper_password: str | None = None
    history: int = 100  # SAY lines kept for HISTORY; 0 turns history off
    history_bytes: int = 64 * 1024
    web: tuple[str, ...] = ()  # endpoints serving the page, /ws, /healthz and /metrics
    web_origins: tuple[str, ...] = ()  # extra origins allowed to open /ws
    web_trust_proxy: bool = False
    web_ping: float = 30.0
    metrics: tuple[str, ...] = ()  # endpoints serving only /healthz and /metrics
    log_format: str = "text"
    log_messages: bool = False
    reactor: str = "default"
    redis: str | None = None  # a Redis URL: share the room with the other nodes on it
    redis_lease: float = 10.0  # seconds a node counts as alive after its last heartbeat
    redis_beat: float = 2.0  # seconds between heartbeats
    redis_log: int = 100_000  # room events kept in the shared stream (MAXLEN ~)
    irc: tuple[str, ...] = ()  # endpoints of the IRC listener (docs/irc.md)
    irc_channel: str = "#chat"  # the room, as IRC clients see it
    irc_server_name: str = "chatd"  # the IRC server's name (default: the host name)


class ConfigError(Exception):
    """A setting that cannot work; the message is for the operator."""


def build_parser(prog: str = "chatd") -> argparse.ArgumentParser:
    """The command line of ``chatd`` (and of ``twistd chatd``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A one-room chat server with a line protocol you can speak with nc or telnet.",
        epilog="Protocol reference: docs/protocol.md.  Operations: docs/operations.md.",
    )
    parser.add_argument("--version", action="version", version=f"chatd {__version__}")
    where = parser.add_argument_group("where to listen")
    where.add_argument("--port", type=port, help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)")
    where.add_argument("--host", help="interface address to listen on (default: all IPv4 interfaces)")
    where.add_argument(
        "--listen", action="append", default=[], metavar="ENDPOINT",
        help="a Twisted endpoint string, repeatable, e.g. tcp:8123:interface=127.0.0.1 or "
             "ssl:8443:privateKey=key.pem:certKey=cert.pem; with --listen, --port/--host "
             "add a TCP listener only when given",
    )
    where.add_argument(
        "--reuse-port", action="store_true",
        help="share the listening ports (--port/--host, tcp: --listen and --web endpoints) "
             "with other chatd processes started alike, via SO_REUSEPORT: the kernel spreads "
             "new connections over them (Linux). TCP only, not ssl: or unix:; needs --redis, "
             "so that they serve one room. See docs/deploy.md",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-line", type=positive_int, default=1024, metavar="BYTES",
                        help="longest accepted line, without its line end (default 1024)")
    limits.add_argument("--max-sendq", type=positive_int, default=256 * 1024, metavar="BYTES",
                        help="bytes waiting to be sent to one connection before it is cut "
                             "(default 262144)")
    limits.add_argument("--max-recvq", type=positive_int, default=128 * 1024, metavar="BYTES",
                        help="bytes of already-read, not yet handled input (a flood backlog) "
                             "before the connection is cut with BYE flood (default 131072)")
    limits.add_argument("--flood-burst", type=positive_int, default=10, metavar="LINES",
                        help="lines a connection may send at once (default 10)")
    limits.add_argument("--flood-rate", type=positive_float, default=5.0, metavar="LINES_PER_S",
                        help="lines per second after the burst; faster input is delayed, "
                             "not dropped (default 5)")
    limits.add_argument("--no-flood-limit", action="store_true",
                        help="turn flood control off (for benchmarks)")
    limits.add_argument("--max-clients", type=positive_int, default=10_000, metavar="N",
                        help="connections at once (default 10000)")
    limits.add_argument("--max-per-ip", type=positive_int, default=16, metavar="N",
                        help="connections at once from one address (default 16)")
    limits.add_argument("--limit-loopback", action="store_true",
                        help="apply --max-per-ip to loopback addresses too (exempt by default)")
    limits.add_argument("--register-timeout", type=positive_float, default=120.0,
                        metavar="SECONDS",
                        help="close connections that have not sent NICK by then (default 120)")
    limits.add_argument("--socket-sndbuf", type=positive_int, default=0, metavar="BYTES",
                        help="fix each connection's kernel send buffer (default: the kernel "
                             "autotunes it, up to net.ipv4.tcp_wmem's maximum per stalled "
                             "reader, before --max-sendq starts counting)")
    limits.add_argument("--no-keepalive", action="store_true",
                        help="do not probe idle connections with TCP keepalive")
    web = parser.add_argument_group("the browser page and operations over HTTP")
    web.add_argument("--web", action="append", default=[], metavar="ENDPOINT",
                     help="serve the page, its WebSocket /ws, /healthz and /metrics on this "
                          "Twisted endpoint, repeatable, e.g. tcp:8080 or "
                          "ssl:8443:privateKey=key.pem:certKey=cert.pem (default: off)")
    web.add_argument("--web-origin", action="append", default=[], metavar="URL",
                     help="a page origin allowed to open /ws, repeatable, e.g. "
                          "https://chat.example.org (always allowed: the page's own origins "
                          "on loopback)")
    web.add_argument("--web-trust-proxy", action="store_true",
                     help="take the client's address from the last X-Forwarded-For entry "
                          "(only behind a proxy that sets it)")
    web.add_argument("--web-ping", type=positive_float, default=30.0, metavar="SECONDS",
                     help="ping a WebSocket silent this long; cut it after three such "
                          "silences (default 30)")
    web.add_argument("--metrics", action="append", default=[], metavar="ENDPOINT",
                     help="serve only /healthz and /metrics on this endpoint, repeatable")
    history = parser.add_argument_group("history (protocol 1.1's HISTORY)")
    history.add_argument("--history", type=history_lines, default=100, metavar="LINES",
                         help="SAY lines the room keeps for HISTORY, in memory; 0 turns "
                              f"history off (default 100, at most {MAX_HISTORY})")
    history.add_argument("--history-bytes", type=positive_int, default=64 * 1024,
                         metavar="BYTES",
                         help="most bytes of kept lines; the oldest go first (default 65536)")
    access = parser.add_argument_group("operators")
    access.add_argument("--oper-password-file", metavar="PATH",
                        help=f"file whose first line is the operator password (or set "
                             f"{OPER_PASSWORD_ENV}); when set, WALL needs OPER first")
    parser.add_argument("--reactor", choices=("default", "asyncio", "uvloop"), default="default",
                        help="Twisted's event loop: its default (epoll on Linux), asyncio's, "
                             "or asyncio on uvloop (default: default)")
    nodes = parser.add_argument_group("many nodes (Redis): docs/scaling.md")
    nodes.add_argument("--redis", metavar="URL",
                       help="share the room with the other chatd nodes on this Redis "
                            f"(redis://host:port/db; or set {REDIS_ENV}); off by default")
    nodes.add_argument("--redis-lease", type=positive_float, default=10.0, metavar="SECONDS",
                       help="a node silent this long is taken for dead and its users "
                            "leave the room (default 10)")
    nodes.add_argument("--redis-beat", type=positive_float, default=2.0, metavar="SECONDS",
                       help="how often this node renews its lease (default 2)")
    nodes.add_argument("--redis-log", type=positive_int, default=100_000, metavar="EVENTS",
                       help="room events kept in Redis, for history and for a node that "
                            "reconnects (default 100000)")
    ircs = parser.add_argument_group("IRC clients in the room: docs/irc.md")
    ircs.add_argument("--irc", action="append", default=[], metavar="ENDPOINT",
                      help="let IRC clients in on this Twisted endpoint, repeatable, e.g. "
                           "tcp:6667 or ssl:6697:privateKey=key.pem:certKey=cert.pem "
                           "(default: off)")
    ircs.add_argument("--irc-channel", default="#chat", metavar="NAME",
                      help="the room's name as an IRC channel (default #chat)")
    ircs.add_argument("--irc-server-name", metavar="NAME",
                      help="the IRC server's name in its replies (default: the host name)")
    logs = parser.add_argument_group("logging")
    logs.add_argument("--log-format", choices=("text", "json"), default="text",
                      help="log lines as text or as JSON objects, on stderr (default text)")
    logs.add_argument("--log-messages", action="store_true",
                      help="also log what users say (off by default)")
    return parser


def _listen(args: argparse.Namespace) -> tuple[str, ...]:
    endpoints = list(args.listen)
    if not endpoints or args.port is not None or args.host is not None:
        port = DEFAULT_PORT if args.port is None else args.port
        tcp = f"tcp:{port}:backlog={BACKLOG}"
        if args.host:
            tcp += ":interface=" + args.host.replace(":", r"\:")
        endpoints.append(tcp)
    return tuple(endpoints)


def _reuse_port(args: argparse.Namespace, redis: str | None) -> bool:
    """``--reuse-port``, refused where it cannot do what it says: several
    processes each with its own room would split the users silently, and
    only TCP listeners are bound with SO_REUSEPORT (an ``ssl:`` one would
    fail to bind in the second process)."""
    if not args.reuse_port:
        return False
    if redis is None:
        raise ConfigError(f"--reuse-port needs --redis: the processes sharing the port must "
                          f"share one room, or each would be a room of its own (set --redis URL "
                          f"or {REDIS_ENV})")
    for option, description in [*(("--listen", d) for d in _listen(args)),
                                *(("--web", d) for d in args.web),
                                *(("--irc", d) for d in args.irc)]:
        try:
            parse_tcp_endpoint(description)
        except ValueError as exc:
            raise ConfigError(f"--reuse-port takes only tcp: and tcp6: endpoints; {option} "
                              f"{description!r}: {exc}") from None
    return True


def _oper_password(path: str | None, environ: Mapping[str, str]) -> str | None:
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                password = handle.readline().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the operator password file {path}: {exc.strerror}") from None
        if not password:
            raise ConfigError(f"the operator password file {path} is empty")
        return password
    return environ.get(OPER_PASSWORD_ENV) or None


def _origin(url: str) -> str:
    """``--web-origin``: a browser origin, ``scheme://host[:port]``, no path."""
    try:
        return normalize_origin(url)
    except OriginError as exc:
        raise ConfigError(f"--web-origin {url!r}: {exc}") from None


def _irc_names(args: argparse.Namespace) -> tuple[str, str]:
    """``--irc-channel`` and ``--irc-server-name``, checked; the server's
    name defaults to the host name (or ``chatd``, if that is not a name)."""
    from chatd.dialects.irc import valid_channel, valid_server_name

    if not valid_channel(args.irc_channel):
        raise ConfigError(f"--irc-channel {args.irc_channel!r}: a channel is # and up to 49 "
                          "printable ASCII characters, without spaces, commas or colons")
    name = args.irc_server_name
    if name is None:
        host = platform.node()
        name = host if valid_server_name(host) else "chatd"
    elif not valid_server_name(name):
        raise ConfigError(f"--irc-server-name {name!r}: give a host name, such as "
                          "irc.example.org")
    return args.irc_channel, name


def parse_config(argv: Sequence[str], environ: Mapping[str, str] | None = None,
                 *, prog: str = "chatd") -> Config:
    """Parse the command line; a bad option exits 2 with argparse's message,
    an unusable setting raises ``ConfigError``."""
    args = build_parser(prog).parse_args(list(argv))
    environ = os.environ if environ is None else environ
    redis = args.redis or environ.get(REDIS_ENV) or None
    if redis is not None and not redis.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--redis {redis!r}: give a URL such as redis://127.0.0.1:6379/0")
    if args.redis_beat >= args.redis_lease:
        raise ConfigError("--redis-beat must be shorter than --redis-lease")
    irc_channel, irc_server_name = _irc_names(args)
    return Config(
        listen=_listen(args),
        reuse_port=_reuse_port(args, redis),
        max_line=args.max_line,
        max_sendq=args.max_sendq,
        max_recvq=args.max_recvq,
        flood_burst=args.flood_burst,
        flood_rate=0.0 if args.no_flood_limit else args.flood_rate,
        max_clients=args.max_clients,
        max_per_ip=args.max_per_ip,
        limit_loopback=args.limit_loopback,
        register_timeout=args.register_timeout,
        keepalive=not args.no_keepalive,
        socket_sndbuf=args.socket_sndbuf,
        oper_password=_oper_password(args.oper_password_file, environ),
        web=tuple(args.web),
        web_origins=tuple(_origin(url) for url in args.web_origin),
        web_trust_proxy=args.web_trust_proxy,
        web_ping=args.web_ping,
        metrics=tuple(args.metrics),
        history=args.history,
        history_bytes=args.history_bytes,
        log_format=args.log_format,
        log_messages=args.log_messages,
        # The Redis client runs on asyncio: Twisted's asyncio reactor then.
        reactor="asyncio" if redis is not None and args.reactor == "default" else args.reactor,
        redis=redis,
        redis_lease=args.redis_lease,
        redis_beat=args.redis_beat,
        redis_log=args.redis_log,
        irc=tuple(args.irc),
        irc_channel=irc_channel,
        irc_server_name=irc_server_name,
    )

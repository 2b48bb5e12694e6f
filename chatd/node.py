"""One chatd node: the pieces joined once, from the settings and a clock.

Like magic-wormhole's ``wire()``, this is the one place that knows how the
parts fit: the hub (every connection), the fan-out (one encoder and outbox
per dialect), the bus (``LocalBus``, or ``RedisBus`` with ``--redis``), the history
(``--history``) and the room.
Transport adapters hand their connections to ``connect``; nothing here does
I/O, so the whole server runs in tests on a ``MemoryReactorClock``.
"""

from __future__ import annotations

from collections.abc import Callable

from chatd.bus import Bus, LocalBus
from chatd.config import Config
from chatd.connection import Connection, Dialect, Link
from chatd.dialects import irc, line
from chatd.fanout import Fanout
from chatd.history import History
from chatd.hub import SHUTDOWN, Hub
from chatd.limits import Clock
from chatd.nicks import SERVER_NICK
from chatd.redisbus import RedisBus
from chatd.room import EventLog, NullLog, Room
from chatd.stats import Stats


class Node:
    """A room served on this process, with every door's connections."""

    def __init__(self, config: Config, clock: Clock, *, log: EventLog | None = None,
                 bus: Bus | None = None) -> None:
        self.config = config
        self.clock = clock
        self.log: EventLog = log if log is not None else NullLog()
        self.stats = Stats()
        self.hub = Hub(clock, max_clients=config.max_clients, max_per_ip=config.max_per_ip,
                       limit_loopback=config.limit_loopback,
                       register_timeout=config.register_timeout, log=self.log,
                       stats=self.stats)
        # The IRC face, with --irc: its encoder beside v1's, and its
        # speakers not sent their own lines back.
        self.irc: irc.IrcServer | None = None
        encoders = dict(line.ENCODERS)
        if config.irc:
            self.irc = irc.IrcServer(config.irc_server_name, config.irc_channel,
                                     created=clock.seconds())
            encoders[irc.NAME] = self.irc.encode
            encoders[irc.TIMED] = self.irc.encode_timed
        self.fanout = Fanout(encoders, self.hub.sessions,
                             schedule=lambda flush: clock.callLater(0, flush), stats=self.stats,
                             no_echo=(irc.NAME, irc.TIMED))
        if bus is None:
            bus = (RedisBus(maxlen=config.redis_log, clock=clock.seconds) if config.redis
                   else LocalBus(clock.seconds))
        self.bus: Bus = bus
        self.history: History | None = None
        if config.history:
            self.history = History(config.history, config.history_bytes)
            self.bus.subscribe(self.history.hear)
            if isinstance(bus, RedisBus):
                bus.keep = self.history.hear  # the lines said before this node came
        self.room = Room(self.bus, self.fanout, log=self.log, log_messages=config.log_messages,
                         oper_password=config.oper_password, history=self.history,
                         stats=self.stats)

    def make_dialect(self, connection: Connection) -> Dialect:
        """The dialect a new connection speaks: IRC by the IRC door,
        protocol v1 by every other."""
        if connection.door == irc.DOOR:
            assert self.irc is not None
            return irc.IrcDialect(self.room, connection, self.clock.seconds, self.irc)
        return line.LineDialect(self.room, connection, self.clock.seconds)

    def max_line(self, door: str) -> int:
        """The longest line a connection by ``door`` may send: IRC's own 510
        bytes (512 with CR LF), ``--max-line`` for every other."""
        return irc.MAX_LINE if door == irc.DOOR else self.config.max_line

    def connect(self, link: Link, *, host: str | None, door: str = "tcp") -> Connection:
        """A transport opened a connection: greet it, admit it or refuse it.
        ``host`` is the peer's address, for the per-address cap; ``door``
        names the transport, for ``/metrics``."""
        connection = Connection(self, link, door)
        connection.opened(host)
        return connection

    def shutdown(self, done: Callable[[], None], *, reason: str = SHUTDOWN,
                 grace: float = 3.0) -> None:
        """``WALL *`` and ``BYE`` to every connection; ``done`` once all are
        closed or ``grace`` seconds have passed."""
        self.hub.shutdown(lambda text: self.room.wall(SERVER_NICK, text), done,
                          reason=reason, grace=grace)



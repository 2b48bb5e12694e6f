"""The hub: every connection of every transport, from admission to shutdown.

Whatever door a connection came in by, it is counted here against
``--max-clients`` and the per-address cap, given a registration deadline,
and closed here at shutdown (``WALL *``, then ``BYE``, then a grace period
before the stragglers are aborted).  A transport added later gets all of
this by handing its connections to the hub; it writes none of it again.
Pure: time is the injected clock.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from chatd.limits import Clock, Deadline
from chatd.stats import Stats

if TYPE_CHECKING:
    from chatd.connection import Connection
    from chatd.session import Session

SERVER_FULL = "server is full, try again later"
TOO_MANY_FROM_ADDRESS = "too many connections from your address"
REGISTRATION_TIMEOUT = "registration timeout: no NICK"
SHUTDOWN = "server shutting down"


def address_key(host: str) -> str:
    """The address a connection counts against: an IPv4 peer seen through a
    dual-stack IPv6 listener (``::ffff:10.1.1.1``) is the IPv4 address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def counts_per_address(host: str | None, limit_loopback: bool) -> bool:
    """Whether a connection from ``host`` counts toward the per-address cap:
    loopback is exempt unless asked (local tests, bouncers, the benchmark)."""
    if host is None:
        return False
    if limit_loopback:
        return True
    try:
        return not ipaddress.ip_address(address_key(host)).is_loopback
    except ValueError:
        return True


class Hub:
    """The open connections, their admission, deadlines and shutdown."""

    def __init__(self, clock: Clock, *, max_clients: int, max_per_ip: int,
                 limit_loopback: bool = False, register_timeout: float = 120.0,
                 log: Any = None, stats: Stats | None = None) -> None:
        self._clock = clock
        self.stats = stats if stats is not None else Stats()
        self._max_clients = max_clients
        self._max_per_ip = max_per_ip
        self._limit_loopback = limit_loopback
        self._register_timeout = register_timeout
        self._log = log
        self._connections: dict[Connection, None] = {}
        self._counted: dict[Connection, str] = {}
        self._per_address: Counter[str] = Counter()
        # Connections still to log in, with the time they must by.  Every
        # deadline is the same timeout after admission, so insertion order
        # is due order: one timer for the earliest serves them all, where a
        # timer per connection cost each of ten thousand logins a
        # DelayedCall to make and cancel.
        self._unregistered: dict[Connection, float] = {}
        self._sweep: Deadline | None = None
        self._drained: list[Callable[[], None]] = []
        self.closing = False  # shutdown has begun (``/healthz`` says 503)

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections))

    def by_door(self) -> Counter[str]:
        """Open connections by the door they came in by (``tcp``, ``websocket``)."""
        return Counter(connection.door for connection in self._connections)

    def sessions(self) -> list[Session]:
        """Every connection's session, logged in or not (``WALL`` goes to all)."""
        return [connection.session for connection in self._connections]

    # --- admission ---

    def admit(self, connection: Connection, host: str | None) -> str | None:
        """Count a new connection from ``host``; the reason to refuse it, if
        any.  A refused connection is counted too until it closes, so it is
        closed at shutdown."""
        full = len(self._connections) >= self._max_clients
        self._connections[connection] = None
        if full:
            self.stats.refusals[SERVER_FULL] += 1
            return SERVER_FULL
        if counts_per_address(host, self._limit_loopback):
            assert host is not None
            host = address_key(host)
            if self._per_address[host] >= self._max_per_ip:
                self.stats.refusals[TOO_MANY_FROM_ADDRESS] += 1
                return TOO_MANY_FROM_ADDRESS
            self._per_address[host] += 1
            self._counted[connection] = host
        self._unregistered[connection] = self._clock.seconds() + self._register_timeout
        if self._sweep is None:
            self._sweep = Deadline(self._clock, self._register_timeout, self._expire_due)
        return None

    def registered(self, connection: Connection) -> None:
        """The connection logged in: its deadline is met (saying it twice is harmless)."""
        if self._unregistered:
            self._unregistered.pop(connection, None)
            if not self._unregistered and self._sweep is not None:
                self._sweep.cancel()  # nobody left to time out
                self._sweep = None

    def _expire_due(self) -> None:
        """Close every connection whose deadline has passed, then wait for the next."""
        self._sweep = None
        now = self._clock.seconds()
        while self._unregistered:
            connection, due = next(iter(self._unregistered.items()))
            if due > now:
                self._sweep = Deadline(self._clock, due - now, self._expire_due)
                return
            del self._unregistered[connection]
            if connection.session.nick is None:
                if self._log is not None:
                    self._log.info("closing {peer}: {why}", peer=connection.peer,
                                   why=REGISTRATION_TIMEOUT)
                self.stats.refusals[REGISTRATION_TIMEOUT] += 1
                connection.session.close(REGISTRATION_TIMEOUT)

    def release(self, connection: Connection) -> None:
        """Forget a closed connection; tell ``shutdown`` waiters at the last."""
        self._connections.pop(connection, None)
        self.registered(connection)
        host = self._counted.pop(connection, None)
        if host is not None:
            self._per_address[host] -= 1
            if not self._per_address[host]:
                del self._per_address[host]
        if not self._connections:
            drained, self._drained = self._drained, []
            for done in drained:
                done()

    # --- shutdown ---

    def shutdown(self, announce: Callable[[str], None], done: Callable[[], None], *,
                 reason: str = SHUTDOWN, grace: float = 3.0) -> None:
        """``announce(reason)`` (the ``WALL *``), ``BYE`` to every connection,
        close them all, and call ``done`` once they are closed or ``grace``
        seconds have passed (the rest are aborted then)."""
        self.closing = True
        if not self._connections:
            done()
            return
        if self._log is not None:
            self._log.info("shutting down: closing {count} connections",
                           count=len(self._connections))
        announce(reason)
        for connection in self:
            connection.session.close(reason)
        if not self._connections:
            done()
            return
        finished = False

        def drained() -> None:
            nonlocal finished
            if not finished:
                finished = True
                timer.cancel()
                done()

        def give_up() -> None:
            """Grace is over: abort whoever is still sending, and finish."""
            nonlocal finished
            if finished:
                return
            finished = True
            self._drained.remove(drained)
            for connection in self:
                connection.link.abort()
            done()

        self._drained.append(drained)
        timer = Deadline(self._clock, grace, give_up)

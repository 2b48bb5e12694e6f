"""Helpers for end-to-end tests of chatd's IRC listener (``chatd --irc``).

``IrcClient`` is a raw socket that speaks IRC the way a client's wire does:
it sends exactly the bytes it is given (``register`` replays a real client's
opening from ``tests/irc_openings.py`` and answers nothing itself), and reads
the server's lines as parsed ``Message``s.  Every line read is checked
against what IRC promises every client: it ends in CR LF, is UTF-8 and is at
most 512 bytes with its CR LF (tags aside).  Every read is bounded by the
client's timeout; nothing sleeps for a fixed time.

``Clients`` opens IRC and line (protocol v1) clients to a server and closes
them all at the end of a test; its ``irc_user``/``line_user`` log one in and
let every member already there read its JOIN, so that a test starts with
nothing pending anywhere.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.irc_openings import opening
from tests.support import LineClient, RunningServer, start_chatd, wait_room_empty

SERVER_NAME = "irc.test"
CHANNEL = "#chat"
LINE_BYTES = 512  # the most an IRC line may have, CR LF included
MAX_INPUT = 510  # the most a client's line may have, without its CR LF
# The listener on 127.0.0.1 with a known server name; start_chatd(...,
# listeners=2) then reads both "listening on" lines.
IRC_ARGS: tuple[str, ...] = ("--irc", "tcp:0:interface=127.0.0.1", "--irc-server-name", SERVER_NAME)


def mask(nick: str) -> str:
    """Every member's IRC prefix: ``nick!nick@chatd``."""
    return f"{nick}!{nick}@chatd"


def irc_address(server: RunningServer) -> tuple[str, int]:
    """Where ``server``'s IRC listener is (its second ``listening on`` line)."""
    assert len(server.ports) >= 2, server.ports
    host, port, _ = server.ports[1]
    return host, port


def start_irc_chatd(*args: str, env: dict[str, str] | None = None) -> RunningServer:
    """A chatd with a line listener and an IRC listener, both on 127.0.0.1."""
    return start_chatd(*IRC_ARGS, *args, env=env, listeners=2)


# --- IRC lines ------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One IRC line, parsed as RFC 1459/IRCv3 say.  Two messages are equal
    when their source, command and parameters are: ``QUIT :bye`` and
    ``QUIT bye`` are the same message."""

    source: str | None
    command: str
    params: tuple[str, ...]
    line: str = field(default="", compare=False)  # as received, without CR LF
    tags: str | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        """The last parameter (a message's text, a numeric's words)."""
        return self.params[-1] if self.params else ""

    def __repr__(self) -> str:
        return repr(self.line)


def parse(line: str) -> Message:
    """``line`` (no CR LF) as a ``Message``; for expected lines in tests too."""
    rest, tags, source = line, None, None
    if rest.startswith("@"):
        tags, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        raise ValueError(f"no command in {line!r}")
    head, colon, trailing = rest.partition(" :")
    words = [word for word in head.split(" ") if word]
    if not words:
        raise ValueError(f"no command in {line!r}")
    params = words[1:] + ([trailing] if colon else [])
    return Message(source, words[0].upper(), tuple(params), line, tags)


Match = str | Callable[[Message], bool]


def _matcher(match: Match) -> Callable[[Message], bool]:
    if callable(match):
        return match
    return lambda message: message.command == match.upper()


# --- the client -----------------------------------------------------------------


class IrcClient:
    """A raw IRC connection: lines out with CR LF, parsed lines in."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0,
                 sock: socket.socket | None = None) -> None:
        self.sock = sock if sock is not None else socket.create_connection((host, port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.nick: str | None = None
        self._buffer = b""

    # --- sending ---

    def send(self, *lines: str) -> None:
        """Send ``lines``, each ended with CR LF."""
        self.send_raw(b"".join(line.encode("utf-8") + b"\r\n" for line in lines))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # --- reading ---

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"nothing more within {self.timeout}s; unread: {self._buffer!r}")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; unread: {self._buffer!r}")
        self._buffer += chunk

    def read_raw(self) -> bytes:
        """The next line as sent, CR LF included; checks it is a valid IRC line."""
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buffer:
            self._fill(deadline)
        raw, self._buffer = self._buffer.split(b"\n", 1)
        raw += b"\n"
        check_line(raw)
        return raw

    def read_message(self) -> Message:
        """The next line from the server, parsed."""
        return parse(self.read_raw()[:-2].decode("utf-8"))

    def read_messages(self, count: int) -> list[Message]:
        return [self.read_message() for _ in range(count)]

    def read_until(self, match: Match) -> list[Message]:
        """Messages up to and including the first that ``match`` (a command,
        like ``"366"`` or ``"PONG"``, or a predicate) accepts."""
        accept = _matcher(match)
        messages = []
        while True:
            message = self.read_message()
            messages.append(message)
            if accept(message):
                return messages

    def expect(self, *lines: str) -> None:
        """The next messages are exactly ``lines`` (compared parsed)."""
        got, wanted = self.read_messages(len(lines)), [parse(line) for line in lines]
        assert got == wanted, f"got {got}, expected {wanted}"

    def sync(self, token: str = "sync") -> list[Message]:
        """Every message the server sent before answering ``PING token``.

        The server handles a connection's lines in order and writes a reply
        only after what that connection was owed, so the PONG vouches that
        nothing else was on its way (on one node)."""
        self.send(f"PING {token}")
        messages = self.read_until(
            lambda message: message.command == "PONG" and message.text == token)
        assert messages[-1] == Message(SERVER_NAME, "PONG", (SERVER_NAME, token)), messages
        return messages[:-1]

    def lines_until_eof(self) -> list[Message]:
        """Every remaining message until the server closes the connection."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._fill(deadline)
            except EOFError:
                break
        data, self._buffer = self._buffer, b""
        assert not data or data.endswith(b"\r\n"), data
        lines = [line + b"\r\n" for line in data.split(b"\r\n")[:-1]]
        for line in lines:
            check_line(line)
        return [parse(line[:-2].decode("utf-8")) for line in lines]

    # --- registration ---

    def register(self, nick: str, client: str = "irssi") -> list[Message]:
        """Send ``client``'s real opening with ``nick`` in it, all at once and
        answering nothing, and read through the 366 that ends the names of
        the channel; every message read, the greeting included."""
        self.send_raw(opening(client, nick))
        messages = self.read_until(lambda message: message.command in ("366", "432", "433"))
        assert messages[-1].command == "366", messages
        assert Message(mask(nick), "JOIN", (CHANNEL,)) in messages, messages
        self.nick = nick
        return messages

    def close(self) -> None:
        self.sock.close()


def check_line(raw: bytes) -> None:
    """What every line an IRC server sends must be: CR LF at its end and
    nowhere else, UTF-8 (chatd says UTF8ONLY), and at most 512 bytes with its
    CR LF, not counting IRCv3 tags."""
    assert raw.endswith(b"\r\n"), raw
    body = raw[:-2]
    assert b"\r" not in body and b"\n" not in body and b"\x00" not in body, raw
    body.decode("utf-8")  # raises on an invalid byte
    if body.startswith(b"@"):
        body = body.partition(b" ")[2]
    assert len(body) + 2 <= LINE_BYTES, (len(body) + 2, raw)


# --- many clients of a test --------------------------------------------------------


class Clients:
    """The IRC and line clients a test opens; every one is closed by ``close_all``."""

    def __init__(self, server: RunningServer, *, timeout: float = 10.0) -> None:
        self.server = server
        self.timeout = timeout
        self._opened: list[IrcClient | LineClient] = []
        # Logged-in members, with their nicks, in the order they came.
        self.members: list[tuple[IrcClient | LineClient, str]] = []

    def raw_irc(self, server: RunningServer | None = None) -> IrcClient:
        """An IRC connection, nothing read or sent."""
        host, port = irc_address(server or self.server)
        client = IrcClient(host, port, timeout=self.timeout)
        self._opened.append(client)
        return client

    def raw_line(self, server: RunningServer | None = None) -> LineClient:
        """A protocol v1 connection, nothing read or sent."""
        server = server or self.server
        client = LineClient(server.host, server.port, timeout=self.timeout)
        self._opened.append(client)
        return client

    def irc_user(self, nick: str, client: str = "irssi", *,
                 server: RunningServer | None = None) -> IrcClient:
        """An IRC user registered with ``client``'s opening; every member
        already here has read its JOIN."""
        irc = self.raw_irc(server)
        irc.register(nick, client)
        self._joined(irc, nick)
        return irc

    def line_user(self, nick: str, *, server: RunningServer | None = None) -> LineClient:
        """A logged-in line user; every member already here has read its JOIN."""
        line = self.raw_line(server)
        line.login(nick)
        self._joined(line, nick)
        return line

    def _joined(self, newcomer: IrcClient | LineClient, nick: str) -> None:
        for member, _ in self.members:
            if isinstance(member, IrcClient):
                member.expect(f":{mask(nick)} JOIN {CHANNEL}")
            else:
                assert member.read_line() == f"JOIN {nick}"
        self.members.append((newcomer, nick))

    def close_all(self) -> None:
        for client in self._opened:
            try:
                client.close()
            except OSError:
                pass
        self._opened.clear()
        self.members.clear()

    def close_and_wait_empty(self) -> None:
        """Close everything, then wait until the server's room is empty
        (closing a socket does not mean the server has seen it close)."""
        self.close_all()
        wait_room_empty(self.server.host, self.server.port)

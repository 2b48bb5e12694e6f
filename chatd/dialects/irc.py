"""IRC, the second dialect: the room as one IRC channel (``docs/irc.md``).

An IRC client (irssi, WeeChat, HexChat, a bot) registers as RFC 1459 and
IRCv3 say, is joined to the one channel, and speaks to the same room as
every v1 connection: ``PRIVMSG #chat`` is ``SAY``, ``PRIVMSG nick`` is
``TELL``, ``NICK`` is a rename, ``QUIT`` a ``PART``.  The room's rules stay
the room's: the nick syntax, one nick per person across every door, UTF-8
only, text hygiene, flood lag; chatd's errors become the numerics IRC
clients know.

Parsing a line is irctokens' (the IRC grammar, tags, the trailing
parameter); deciding what it does and wording the answers is this module's.
Like the line dialect it is pure: the connection is reached through
``Peer``, the time through the clock it is given.

A room event is worded once for every IRC connection on the node
(``IrcServer.encode``, the fan-out's encoder), so prefixes come from the
event alone: every member is ``nick!nick@chatd``, whatever its door.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from irctokens.line import build, tokenise

from chatd import __version__
from chatd.dialects.line import Peer
from chatd.errors import ChatError, ErrorCode
from chatd.events import Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.nicks import NICK_MAX, NICK_RULES, SERVER_NICK, is_valid_nick, nick_key
from chatd.room import Room
from chatd.session import DEFAULT_QUIT_REASON, Session
from chatd.wire import clean_text, format_time

NAME: Final = "irc"
TIMED: Final = "irc+time"  # after CAP REQ :server-time: every event tagged @time=
SERVER_TIME: Final = "server-time"  # the one IRCv3 capability offered
DOOR: Final = "irc"
MAX_LINE: Final = 510  # RFC 1459: 512 bytes with the CR LF
LINE_BYTES: Final = 512
MASK_HOST: Final = "chatd"  # every member's host: no door's addresses are shown
DEFAULT_CHANNEL: Final = "#chat"
NETWORK: Final = "chatd"
CHANNEL_MODES: Final = "+nt"
TOPIC_LEN: Final = 390
HEADS_KEPT: Final = 4096  # PRIVMSG heads kept, one per recent speaker
REPLAY_ON_JOIN: Final = 20  # lines said before one joined, played back after the names
ACTION: Final = "* "  # how a CTCP ACTION reads to chatd users: ``SAY ann * waves``
_CTCP: Final = "\x01"

# mIRC formatting: bold, colour (with up to two numbers), hex colour, reset,
# monospace, reverse, italic, strikethrough, underline.  Removed before the
# room's own hygiene, which would leave a colour's digits behind.
_FORMATTING: Final = re.compile(
    "\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?"
    "|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    "|[\x02\x0f\x11\x16\x1d\x1e\x1f]")
_CHANNEL_NAME: Final = re.compile(r"#[\x21-\x2b\x2d-\x39\x3b-\x7e]{1,49}\Z")  # no , or :
_CUTTERS: Final = {0: None, 13: None}  # NUL, CR
_NOT_WORD: Final = re.compile(r"[\x00-\x20\x7f]")
_SERVER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}\Z")

# chatd's error codes as the numerics IRC clients expect.
NUMERICS: Final = {
    ErrorCode.NICK_TAKEN: "433",
    ErrorCode.BAD_NICK: "432",
    ErrorCode.NO_SUCH_USER: "401",
    ErrorCode.NEED_NICK: "451",
    ErrorCode.MISSING_ARGUMENT: "461",
    ErrorCode.UNKNOWN_COMMAND: "421",
    ErrorCode.NOT_PERMITTED: "481",
    ErrorCode.LINE_TOO_LONG: "417",
}


def strip_formatting(text: str) -> str:
    """Text without IRC colour and formatting codes, and then without what
    the room removes from every line (``wire.clean_text``)."""
    return clean_text(_FORMATTING.sub("", text))


def valid_channel(name: str) -> bool:
    """What ``--irc-channel`` accepts: ``#`` and up to 49 printable ASCII
    characters, no comma or colon."""
    return _CHANNEL_NAME.match(name) is not None


def valid_server_name(name: str) -> bool:
    """What ``--irc-server-name`` accepts: a host name."""
    return _SERVER_NAME.match(name) is not None


def mask(nick: str) -> str:
    """A member's IRC prefix, the same on every node: ``nick!nick@chatd``."""
    return f"{nick}!{nick}@{MASK_HOST}"


def _cut(data: bytes, room: int) -> int:
    """Where to end a piece of at most ``room`` bytes of UTF-8 ``data``:
    never inside a character, at a space in the last quarter if there is one."""
    if len(data) <= room:
        return len(data)
    end = room
    while end > 0 and data[end] & 0xC0 == 0x80:  # a continuation byte
        end -= 1
    space = data.rfind(b" ", end - room // 4, end)
    return space + 1 if space > 0 else end


def split_text(text: str, room: int) -> list[bytes]:
    """``text`` as UTF-8 pieces of at most ``room`` bytes each, cut at
    character boundaries: nothing lost, no invalid byte."""
    data = text.encode("utf-8")
    room = max(room, 4)  # a character is at most 4 bytes: always progress
    pieces = []
    while data:
        end = _cut(data, room)
        pieces.append(data[:end])
        data = data[end:]
    return pieces


def cut_text(text: str, room: int) -> str:
    """``text`` cut to at most ``room`` bytes of UTF-8, at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= room:
        return text
    end = room
    while end > 0 and data[end] & 0xC0 == 0x80:
        end -= 1
    return data[:end].decode("utf-8")


def _lines(count: int) -> str:
    return "line" if count == 1 else f"{count} lines"


def word(value: str) -> str:
    """``value`` as a middle parameter: a name a client sent may hold a
    space, a leading colon or nothing, which would break the line (or
    irctokens' formatting); its first word, else ``*``."""
    first = value.lstrip(" ").split(" ", 1)[0] if value else ""
    return _NOT_WORD.sub("", first).lstrip(":")[:50] or "*"


def _line(source: str | None, command: str, *params: str) -> bytes:
    """One IRC line, formatted by irctokens, with its CR LF; every
    parameter but the last is made a safe word first."""
    safe = [word(param) for param in params[:-1]]
    if params:
        safe.append(params[-1])
    return (build(command, safe, source=source).format() + "\r\n").encode()


@dataclass(slots=True)
class Ident:
    """What an IRC member said of itself at registration, for ``WHOIS``."""

    user: str
    realname: str
    signon: float
    spoke: float


@dataclass(slots=True)
class IrcServer:
    """The IRC face of one node: its names, the events as IRC lines, and
    what its IRC members told at registration."""

    name: str
    channel: str = DEFAULT_CHANNEL
    created: float = 0.0  # when the room opened, from the node's clock (329, 003)
    idents: dict[Session, Ident] = field(default_factory=dict)
    # ``:nick!nick@chatd PRIVMSG #chat :`` by nick: the hot path's one format.
    _heads: dict[str, bytes] = field(default_factory=dict)

    @property
    def isupport(self) -> tuple[str, ...]:
        """The ``005`` tokens: what this server really does."""
        return ("AWAYLEN=200", "CASEMAPPING=ascii", "CHANLIMIT=#:1", "CHANMODES=,,,nt",
                f"CHANNELLEN={len(self.channel)}", "CHANTYPES=#", "MODES=0",
                f"NETWORK={NETWORK}", f"NICKLEN={NICK_MAX}", "PREFIX=(o)@",
                "TARGMAX=PRIVMSG:1,NOTICE:1,WHOIS:1,NAMES:1,JOIN:1", f"TOPICLEN={TOPIC_LEN}",
                "UTF8ONLY")

    def is_channel(self, target: str) -> bool:
        """Whether ``target`` names the room (CASEMAPPING=ascii)."""
        return target.isascii() and target.lower() == self.channel.lower()

    # --- the fan-out's encoder: one event, the same bytes for every IRC member ---

    def encode(self, stamped: Stamped) -> bytes:
        event = stamped.event
        if type(event) is Said:
            return self._said(event.nick, event.text)
        if type(event) is Joined:
            return _line(mask(event.nick), "JOIN", self.channel)
        if type(event) is Parted:
            return _line(mask(event.nick), "QUIT", event.reason or DEFAULT_QUIT_REASON)
        if type(event) is Renamed:
            return _line(mask(event.old), "NICK", event.new)
        if type(event) is Told:
            return self._message(mask(event.nick), "PRIVMSG", event.target, event.text)
        assert type(event) is Walled
        text = event.text if event.nick == SERVER_NICK else f"WALL from {event.nick}: {event.text}"
        return self._message(self.name, "NOTICE", self.channel, text)

    def _said(self, nick: str, text: str) -> bytes:
        """A ``Said`` as one PRIVMSG to the channel: the head kept per nick,
        so the common line (not an action, within 512 bytes) is one
        ``encode`` and two concatenations; every other goes the long way."""
        head = self._heads.get(nick)
        if head is None:
            if len(self._heads) >= HEADS_KEPT:
                self._heads.clear()
            head = self._heads[nick] = f":{mask(nick)} PRIVMSG {self.channel} :".encode()
        data = text.encode()
        if len(head) + len(data) <= MAX_LINE and not text.startswith(ACTION):
            return head + data + b"\r\n"
        return self._message(mask(nick), "PRIVMSG", self.channel, text)

    def encode_timed(self, stamped: Stamped) -> bytes:
        """``encode``, each line tagged with the time the bus stamped
        (IRCv3 server-time; tags do not count toward the 512 bytes)."""
        tag = f"@time={format_time(stamped.time)} ".encode("ascii")
        data = self.encode(stamped)
        return tag + data[:-2].replace(b"\r\n", b"\r\n" + tag) + b"\r\n"

    def _message(self, source: str, command: str, target: str, text: str) -> bytes:
        """A PRIVMSG or NOTICE, split into lines of at most 512 bytes at
        character boundaries: a longer line from another door loses nothing."""
        head, tail = f":{source} {command} {target} :", ""
        if command == "PRIVMSG" and text.startswith(ACTION) and text[len(ACTION):].strip():
            head, tail, text = head + "\x01ACTION ", _CTCP, text[len(ACTION):]
        room = LINE_BYTES - 2 - len(head.encode()) - len(tail)
        ends = (tail + "\r\n").encode()
        start = head.encode()
        return b"".join(start + piece + ends for piece in split_text(text, room))

    def room_for(self, nick: str, target: str, text: str) -> int:
        """The most bytes of ``text`` that, relayed from ``nick`` to
        ``target``, fit one IRC line: what an IRC sender's text is cut to,
        as IRC servers cut what only the sender's prefix made too long."""
        head = f":{mask(nick)} PRIVMSG {target} :"
        extra = len("\x01ACTION \x01") - len(ACTION) if text.startswith(ACTION) else 0
        return LINE_BYTES - 2 - len(head.encode()) - extra

    def hist_lines(self, stamped: Stamped) -> bytes:
        """A line said before one joined, as a NOTICE from the server that
        names its time and speaker (history on join; IRC has no replay
        without IRCv3's chathistory)."""
        event = stamped.event
        assert type(event) is Said
        when = time.strftime("%H:%M UTC", time.gmtime(stamped.time))
        if event.text.startswith(ACTION):
            line = f"[{when}] * {event.nick} {event.text[len(ACTION):]}"
        else:
            line = f"[{when}] <{event.nick}> {event.text}"
        return self._message(self.name, "NOTICE", self.channel, line)


MOTD: Final = (
    "This is chatd: one room, whatever door you came by.",
    "Everyone here is in {channel}: telnet and nc users, chat-tui, the browser page",
    "and IRC clients all hear everyone. It is the only channel; /quit leaves.",
    "/msg <nick> speaks privately; /nick renames you; /wallops alerts everyone",
    "(operators only when the server has an operator password: /oper any <password>).",
    "Nicks: " + NICK_RULES.removeprefix("a nick is ") + ".",
)


# --- one connection ---------------------------------------------------------


class IrcDialect:
    """IRC for one connection: registration, then the room's commands."""

    __slots__ = ("session", "_peer", "_clock", "_server", "_wanted", "_user", "_realname",
                 "_capping", "_welcomed", "_claiming")

    def __init__(self, room: Room, peer: Peer, clock: Callable[[], float],
                 server: IrcServer) -> None:
        self._peer = peer
        self._clock = clock
        self._server = server
        self.session = Session(room, self, dialect=NAME, write=peer.write)
        self._wanted: str | None = None  # the NICK given before registration
        self._user: tuple[str, str] | None = None  # USER's name and real name
        self._capping = False  # between CAP LS and CAP END registration waits
        self._welcomed = False  # 001 went out
        self._claiming: str | None = None  # the nick asked for, until answered

    @property
    def _me(self) -> str:
        """The target of numerics: the nick, or ``*`` before there is one."""
        return self.session.nick or "*"

    def _send(self, *lines: bytes) -> None:
        self._peer.send(b"".join(lines))

    def _numeric(self, code: str, *params: str) -> bytes:
        return _line(self._server.name, code, self._me, *params)

    def _notice(self, text: str) -> bytes:
        return _line(self._server.name, "NOTICE", self._me, text)

    # --- from the connection ---

    def greet(self) -> None:
        self._send(self._notice(f"*** chatd {__version__}: one room, {self._server.channel}; "
                                "register with NICK and USER"))

    def line_received(self, raw: bytes) -> None:
        """Act on one line; refusals become numerics, never a closed connection."""
        if self.session.closed:
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            verb = raw.lstrip(b" ").partition(b" ")[0].decode("ascii", "replace").upper()
            if not verb.isascii() or not verb.isalnum():
                verb = "*"  # a prefix, tags or bytes that are no command
            self._send(_line(self._server.name, "FAIL", verb[:32], "INVALID_UTF8",
                             "Messages must be UTF-8; this one was dropped"))
            return
        # irctokens cuts a line at a NUL or CR; the room would only remove
        # them from the text anyway, so they go first and the rest is kept.
        text = text.translate(_CUTTERS)
        if not text.strip(" "):
            return
        try:
            line = tokenise(text)
        except (ValueError, IndexError):
            return  # a prefix or tags and no command: IRC servers ignore it
        try:
            self._dispatch(line.command, line.params)
        except ChatError as error:
            self._refuse(error, line.command, line.params)

    def line_too_long(self) -> None:
        self._send(self._numeric("417", "Input line was too long; it was dropped"))

    def flooding(self, rate: float) -> None:
        self._send(self._notice(f"*** you are sending more than {rate:g} lines a second; "
                                "the rest are delayed, not lost"))

    # --- commands ---

    def _dispatch(self, command: str, params: list[str]) -> None:
        if not self._welcomed:
            handler = _BEFORE.get(command)
            if handler is None:
                if command in _AFTER:
                    self._send(self._numeric("451", "You have not registered"))
                    return
                raise ChatError(ErrorCode.UNKNOWN_COMMAND, "Unknown command")
            handler(self, params)
            return
        handler = _AFTER.get(command) or _BEFORE.get(command)
        if handler is None:
            raise ChatError(ErrorCode.UNKNOWN_COMMAND, "Unknown command")
        handler(self, params)

    def _refuse(self, error: ChatError, command: str, params: list[str]) -> None:
        """A chatd refusal as the numeric an IRC client expects."""
        if command == "NOTICE":
            return  # no automatic replies to a NOTICE
        code = error.code
        if code is ErrorCode.BAD_ENCODING:
            self._send(_line(self._server.name, "FAIL", command, "INVALID_UTF8", error.text))
        elif code is ErrorCode.FLOOD:
            self._send(self._notice(error.text))
        elif code is ErrorCode.UNKNOWN_COMMAND:
            self._send(self._numeric("421", command[:32], error.text))
        elif code in (ErrorCode.BAD_NICK, ErrorCode.NICK_TAKEN):
            self._send(self._numeric(NUMERICS[code], (params[0] if params else "*")[:32],
                                     error.text))
        elif code is ErrorCode.NO_SUCH_USER:
            self._send(self._numeric("401", params[0] if params else "*",
                                     "No such nick/channel"))
        elif code is ErrorCode.MISSING_ARGUMENT:
            self._send(self._numeric("461", command, "Not enough parameters"))
        else:
            self._send(self._numeric(NUMERICS.get(code, "400"), error.text))

    @property
    def timed(self) -> bool:
        """Whether this connection asked for server-time."""
        return self.session.dialect == TIMED

    def _cap(self, params: list[str]) -> None:
        """IRCv3 capability negotiation; ``server-time`` is the one offered."""
        sub = params[0].upper() if params else ""
        if sub == "LS":
            if not self._welcomed:
                self._capping = True
            self._send(_line(self._server.name, "CAP", self._me, "LS", SERVER_TIME))
        elif sub == "LIST":
            self._send(_line(self._server.name, "CAP", self._me, "LIST",
                             SERVER_TIME if self.timed else ""))
        elif sub == "REQ":
            if not self._welcomed:
                self._capping = True
            self._request(params[1] if len(params) > 1 else "")
        elif sub == "END":
            self._capping = False
            self._register()
        else:
            self._send(self._numeric("410", sub[:32] or "*", "Invalid CAP command"))

    def _request(self, asked: str) -> None:
        """``CAP REQ``: all of it is acknowledged, or none (IRCv3)."""
        wanted = asked.split()
        if not wanted or any(cap.lstrip("-") != SERVER_TIME for cap in wanted):
            self._send(_line(self._server.name, "CAP", self._me, "NAK", asked[:400]))
            return
        # The last word decides (``server-time -server-time`` turns it off).
        self._peer.speak(NAME if wanted[-1].startswith("-") else TIMED)
        self._send(_line(self._server.name, "CAP", self._me, "ACK", " ".join(wanted)))

    def _nick(self, params: list[str]) -> None:
        if not params or not params[0]:
            self._send(self._numeric("431", "No nickname given"))
            return
        name = params[0]
        if not is_valid_nick(name):
            shown = name if len(name) <= 2 * NICK_MAX else name[:NICK_MAX] + "..."
            self._send(self._numeric("432", shown, f"Erroneous nickname: {NICK_RULES}"))
            return
        if not self._welcomed:
            self._wanted = name
            self._register()
            return
        self._claiming = name
        self.session.change_nick(name)

    def _user_command(self, params: list[str]) -> None:
        if self._welcomed:
            self._send(self._numeric("462", "You may not reregister"))
            return
        if len(params) < 4 or not params[0]:
            self._send(self._numeric("461", "USER", "Not enough parameters"))
            return
        self._user = (clean_text(params[0])[:NICK_MAX] or "user", strip_formatting(params[3])[:100])
        self._register()

    def _pass(self, params: list[str]) -> None:
        if self._welcomed:
            self._send(self._numeric("462", "You may not reregister"))
        # Before registration a password is accepted and ignored: the room
        # has no accounts (OPER is how an operator proves who it is).

    def _register(self) -> None:
        """With a nick and a user, and no CAP negotiation open: claim the nick."""
        if (self._welcomed or self._capping or self._wanted is None or self._user is None
                or self._claiming is not None):
            return
        self._claiming = self._wanted
        self.session.change_nick(self._wanted)

    def _ping(self, params: list[str]) -> None:
        if not params:
            self._send(self._numeric("409", "No origin specified"))
            return
        self._send(_line(self._server.name, "PONG", self._server.name, params[0]))

    def _ignore(self, params: list[str]) -> None:
        """``PONG`` and the like: nothing to answer."""

    def _quit(self, params: list[str]) -> None:
        reason = strip_formatting(params[0]).strip() if params else ""
        self.session.close(reason or DEFAULT_QUIT_REASON)

    def _privmsg(self, params: list[str], command: str = "PRIVMSG") -> None:
        if not params or not params[0]:
            if command == "PRIVMSG":  # a NOTICE is never answered
                self._send(self._numeric("411", f"No recipient given ({command})"))
            return
        target = params[0].split(",")[0]
        raw = params[1] if len(params) > 1 else ""
        text = self._text(raw, command)
        if text is None:
            return
        if self._server.is_channel(target):
            self.session.say(cut_text(text, self._server.room_for(self._me, self._server.channel,
                                                                  text)))
            self._spoke()
        elif target.startswith("#"):
            if command == "PRIVMSG":
                self._send(self._numeric("403", target, "No such channel"))
        else:
            self.session.tell(target, cut_text(text, self._server.room_for(self._me, target, text)))
            self._spoke()

    def _notice_command(self, params: list[str]) -> None:
        self._privmsg(params, "NOTICE")

    def _text(self, raw: str, command: str) -> str | None:
        """The text to relay: a CTCP ACTION as ``* text``, other CTCPs not
        relayed, formatting removed; None (and why, to a PRIVMSG) if nothing is left."""
        if raw.startswith(_CTCP):
            body = raw.strip(_CTCP)
            verb, _, rest = body.partition(" ")
            if verb.upper() != "ACTION":
                if command == "PRIVMSG":
                    self._send(self._notice(f"*** CTCP {verb[:32].upper()} is not relayed here"))
                return None
            raw = ACTION + rest
        text = strip_formatting(raw)
        if not text.strip(" \t") or text == ACTION:
            if command == "PRIVMSG":
                self._send(self._numeric("412", "No text to send"))
            return None
        return text

    def _spoke(self) -> None:
        ident = self._server.idents.get(self.session)
        if ident is not None:
            ident.spoke = self._clock()

    def _join(self, params: list[str]) -> None:
        if not params or not params[0]:
            self._send(self._numeric("461", "JOIN", "Not enough parameters"))
            return
        for name in params[0].split(","):
            if self._server.is_channel(name):
                nick = self.session.nick or "*"
                self._send(_line(mask(nick), "JOIN", self._server.channel))
                self._names()
            elif name == "0":
                self._part([self._server.channel])
            else:
                self._send(self._numeric("403", name[:50],
                                         f"No such channel; {self._server.channel} is the only one"))

    def _part(self, params: list[str]) -> None:
        if not params or not params[0]:
            self._send(self._numeric("461", "PART", "Not enough parameters"))
            return
        for name in params[0].split(","):
            if self._server.is_channel(name):
                self._send(self._notice(f"*** {self._server.channel} is the whole room here; "
                                        "use /quit to leave it"))
            else:
                self._send(self._numeric("442", name[:50], "You're not on that channel"))

    def _names(self, params: list[str] | None = None) -> None:
        channel = self._server.channel
        if params and not self._server.is_channel(params[0].split(",")[0]):
            self._send(self._numeric("366", params[0][:50], "End of /NAMES list"))
            return
        head = f":{self._server.name} 353 {self._me} = {channel} :"
        room = LINE_BYTES - 2 - len(head)
        lines = [head.encode() + piece.rstrip(b" ") + b"\r\n"
                 for piece in split_text(" ".join(self.session.who()), room)]
        lines.append(self._numeric("366", channel, "End of /NAMES list"))
        self._send(*lines)

    def _who(self, params: list[str]) -> None:
        target = params[0] if params else "*"
        if target in ("*", "0") or self._server.is_channel(target):
            nicks: Iterable[str] = self.session.who()
        else:
            found = self._roster_nick(target) if is_valid_nick(target) else None
            nicks = [found] if found is not None else []
        channel, server = self._server.channel, self._server.name
        lines = []
        for nick in nicks:
            user, realname = self._ident(nick)
            lines.append(self._numeric("352", channel, user, MASK_HOST, server, nick, "H",
                                       f"0 {realname}"))
        lines.append(self._numeric("315", target[:50], "End of /WHO list"))
        self._send(*lines)

    def _roster_nick(self, nick: str) -> str | None:
        """``nick`` as the room knows it, on any node; None if not here."""
        key = nick_key(nick)
        return next((known for known in self.session.who() if nick_key(known) == key), None)

    def _ident(self, nick: str) -> tuple[str, str]:
        """A member's user name and real name: what an IRC member on this
        node gave in ``USER``; the nick and the room's name for the others."""
        member = self.session.room.find(nick)
        ident = self._server.idents.get(member) if isinstance(member, Session) else None
        if ident is None:
            return nick, "a chatd user"
        return ident.user, ident.realname

    def _whois(self, params: list[str]) -> None:
        if not params:
            self._send(self._numeric("431", "No nickname given"))
            return
        asked = params[-1].split(",")[0]
        nick = self._roster_nick(asked) if is_valid_nick(asked) else None
        if nick is None:
            self._send(self._numeric("401", asked[:50], "No such nick/channel"),
                       self._numeric("318", asked[:50], "End of /WHOIS list"))
            return
        user, realname = self._ident(nick)
        lines = [self._numeric("311", nick, user, MASK_HOST, "*", realname),
                 self._numeric("319", nick, self._server.channel),
                 self._numeric("312", nick, self._server.name, f"chatd {__version__}")]
        member = self.session.room.find(nick)
        if isinstance(member, Session):
            if member.is_oper:
                lines.append(self._numeric("313", nick, "is an IRC operator"))
            ident = self._server.idents.get(member)
            if ident is not None:
                idle = max(0, int(self._clock() - ident.spoke))
                lines.append(self._numeric("317", nick, str(idle), str(int(ident.signon)),
                                           "seconds idle, signon time"))
        lines.append(self._numeric("318", nick, "End of /WHOIS list"))
        self._send(*lines)

    def _mode(self, params: list[str]) -> None:
        if not params:
            self._send(self._numeric("461", "MODE", "Not enough parameters"))
            return
        target, changes = params[0], params[1:]
        if self._server.is_channel(target):
            channel = self._server.channel
            if not changes:
                self._send(self._numeric("324", channel, CHANNEL_MODES),
                           self._numeric("329", channel, str(int(self._server.created))))
            elif changes[0].lstrip("+") in ("b", "e", "I"):
                end = {"b": ("368", "ban"), "e": ("349", "exception"),
                       "I": ("347", "invite")}[changes[0].lstrip("+")]
                self._send(self._numeric(end[0], channel, f"End of channel {end[1]} list"))
            else:
                self._send(self._numeric("482", channel, "You're not a channel operator"))
        elif nick_key(target) == nick_key(self._me):
            modes = "+o" if self.session.is_oper else "+"
            if not changes or not changes[0].strip("+-"):
                self._send(self._numeric("221", modes))
            elif set(changes[0]) <= set("+-iw"):
                self._send(self._numeric("221", modes))  # nothing to hide in one room
            else:
                self._send(self._numeric("501", "Unknown MODE flag"))
        elif target.startswith("#"):
            self._send(self._numeric("403", target[:50], "No such channel"))
        elif self._roster_nick(target) is not None:
            self._send(self._numeric("502", "Can't change mode for other users"))
        else:
            self._send(self._numeric("401", target[:50], "No such nick/channel"))

    def _topic(self, params: list[str]) -> None:
        if not params:
            self._send(self._numeric("461", "TOPIC", "Not enough parameters"))
        elif not self._server.is_channel(params[0]):
            self._send(self._numeric("403", params[0][:50], "No such channel"))
        elif len(params) > 1:
            self._send(self._numeric("482", self._server.channel, "You're not a channel operator"))
        else:
            self._send(self._numeric("331", self._server.channel, "No topic is set"))

    def _ison(self, params: list[str]) -> None:
        asked = [nick for param in params for nick in param.split(" ") if nick]
        here = {nick_key(nick): nick for nick in self.session.who()}
        found = [here[nick_key(nick)] for nick in asked[:64] if nick_key(nick) in here]
        self._send(self._numeric("303", " ".join(found)))

    def _userhost(self, params: list[str]) -> None:
        replies = []
        for asked in [nick for param in params for nick in param.split(" ") if nick][:5]:
            nick = self._roster_nick(asked) if is_valid_nick(asked) else None
            if nick is not None:
                member = self.session.room.find(nick)
                oper = "*" if isinstance(member, Session) and member.is_oper else ""
                replies.append(f"{nick}{oper}=+{self._ident(nick)[0]}@{MASK_HOST}")
        self._send(self._numeric("302", " ".join(replies)))

    def _oper(self, params: list[str]) -> None:
        if len(params) < 2:
            self._send(self._numeric("461", "OPER", "Not enough parameters"))
            return
        if self.session.room.oper_password is None:
            self._send(self._numeric("491", "No O-lines for your host: this server has no "
                                     "operator password"))
            return
        try:
            self.session.oper(params[1])
        except ChatError:
            self._send(self._numeric("464", "Password incorrect"))
            return
        nick = self._me
        self._send(self._numeric("381", "You are now an IRC operator"),
                   _line(mask(nick), "MODE", nick, "+o"))

    def _wallops(self, params: list[str]) -> None:
        if not params or not params[-1].strip():
            self._send(self._numeric("461", "WALLOPS", "Not enough parameters"))
            return
        try:
            self.session.wall(strip_formatting(params[-1]))
        except ChatError as error:
            if error.code is not ErrorCode.NOT_PERMITTED:
                raise
            self._send(self._numeric("481", "Permission Denied- only operators may WALL on "
                                     "this server; use /oper"))

    def _away(self, params: list[str]) -> None:
        if params and params[0]:
            self._send(self._numeric("306", "You have been marked as being away"))
        else:
            self._send(self._numeric("305", "You are no longer marked as being away"))

    def _motd(self, params: list[str] | None = None) -> None:
        server = self._server
        lines = [self._numeric("375", f"- {server.name} Message of the day - ")]
        lines += [self._numeric("372", "- " + text.format(channel=server.channel))
                  for text in MOTD]
        lines.append(self._numeric("376", "End of /MOTD command."))
        self._send(*lines)

    def _lusers(self, params: list[str] | None = None, *, joining: bool = False) -> None:
        count = str(len(self.session.room) + joining)  # joining: its JOIN is yet to come
        self._send(self._numeric("251", f"There are {count} users and 0 invisible on 1 servers"),
                   self._numeric("254", "1", "channels formed"),
                   self._numeric("255", f"I have {count} clients and 1 servers"))

    def _version(self, params: list[str]) -> None:
        self._send(self._numeric("351", f"chatd-{__version__}", self._server.name,
                                 "one room for every door"),
                   self._numeric("005", *self._server.isupport, "are supported by this server"))

    def _time(self, params: list[str]) -> None:
        now = self._clock()
        self._send(self._numeric("391", self._server.name,
                                 time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(now))))

    def _list(self, params: list[str]) -> None:
        self._send(self._numeric("321", "Channel", "Users  Name"),
                   self._numeric("322", self._server.channel, str(len(self.session.who())), ""),
                   self._numeric("323", "End of /LIST"))

    def _history(self, params: list[str]) -> None:
        """``/quote HISTORY [n]``: the lines said before one logged in, as
        NOTICEs with their times (the v1 command, for IRC)."""
        count = 20
        if params and params[0].isdigit():
            count = min(int(params[0][:9]), 10**6)
        said = self.session.history(count)
        lines = [self._server.hist_lines(stamped) for stamped in said]
        lines.append(self._notice(f"*** end of history: {len(said)} lines"))
        self._send(*lines)

    # --- from the session (``session.Replies``) ---

    def nick_ok(self, nick: str) -> None:
        self._claiming = None
        if self._welcomed:
            return  # the NICK everyone hears says it
        self._welcomed = True
        user, realname = self._user or (nick, nick)
        now = self._clock()
        self._server.idents[self.session] = Ident(user, realname, now, now)
        server = self._server
        created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(server.created))
        self._send(
            self._numeric("001", f"Welcome to the {NETWORK} IRC network, {mask(nick)}"),
            self._numeric("002", f"Your host is {server.name}, running version chatd-{__version__}"),
            self._numeric("003", f"This server was created {created}"),
            self._numeric("004", server.name, f"chatd-{__version__}", "o", "nt"),
            self._numeric("005", *server.isupport, "are supported by this server"),
        )
        self._lusers(joining=True)
        self._motd()

    def refused(self, error: ChatError) -> None:
        name, self._claiming = self._claiming or "*", None
        if error.code is ErrorCode.NICK_TAKEN:
            self._send(self._numeric("433", name, "Nickname is already in use"))
            if not self._welcomed:
                self._wanted = None  # the client offers another: irssi adds _, WeeChat a digit
        else:
            self._refuse(error, "NICK", [name])

    def welcome(self, nicks: list[str]) -> None:
        """Our own JOIN went out: the names, as a server answers a join,
        then what was said just before, as a bouncer plays back its buffer."""
        self._names()
        said = self.session.history(REPLAY_ON_JOIN)
        if not said:
            return
        if self.timed:  # the lines as they were said, at their times
            self._send(*(self._server.encode_timed(stamped) for stamped in said))
            return
        server = self._server
        self._send(_line(server.name, "NOTICE", server.channel,
                         f"*** the last {_lines(len(said))} said before you joined:"),
                   *(server.hist_lines(stamped) for stamped in said),
                   _line(server.name, "NOTICE", server.channel, "*** end of history"))

    def goodbye(self, reason: str) -> None:
        self._send(_line(None, "ERROR", f"Closing link: {reason}"))

    def hang_up(self) -> None:
        self._peer.close()

    def ready(self) -> None:
        self._peer.ready()

    def connection_lost(self) -> None:
        """The connection is gone: forget what it said of itself."""
        self._server.idents.pop(self.session, None)


_Handler = Callable[[IrcDialect, list[str]], None]

# Before registration only these are heard; the rest get 451.
_BEFORE: Final[dict[str, _Handler]] = {
    "CAP": IrcDialect._cap,
    "NICK": IrcDialect._nick,
    "USER": IrcDialect._user_command,
    "PASS": IrcDialect._pass,
    "PING": IrcDialect._ping,
    "PONG": IrcDialect._ignore,
    "QUIT": IrcDialect._quit,
}
_AFTER: Final[dict[str, _Handler]] = {
    "PRIVMSG": IrcDialect._privmsg,
    "NOTICE": IrcDialect._notice_command,
    "JOIN": IrcDialect._join,
    "PART": IrcDialect._part,
    "NAMES": IrcDialect._names,
    "WHO": IrcDialect._who,
    "WHOIS": IrcDialect._whois,
    "MODE": IrcDialect._mode,
    "TOPIC": IrcDialect._topic,
    "ISON": IrcDialect._ison,
    "USERHOST": IrcDialect._userhost,
    "OPER": IrcDialect._oper,
    "WALLOPS": IrcDialect._wallops,
    "WALL": IrcDialect._wallops,
    "AWAY": IrcDialect._away,
    "MOTD": IrcDialect._motd,
    "LUSERS": IrcDialect._lusers,
    "VERSION": IrcDialect._version,
    "TIME": IrcDialect._time,
    "LIST": IrcDialect._list,
    "HISTORY": IrcDialect._history,
}


def commands() -> Iterator[str]:
    """Every command this dialect answers (the tests try each, registered or not)."""
    yield from sorted({*_BEFORE, *_AFTER})

"""What the client knows: who I am, who is here, and the lines to show.

Pure: server messages (already parsed by ``chatd.wire``) go in through
``ClientState.apply``; structured display records come out.  Nothing here
draws, reads a socket or looks at a terminal, so the same state drives the
full-screen view and the plain line mode, and is tested with plain lists.

Theory of operation
-------------------
The login goes NEED_NICK -> LOGGING_IN -> IN.  ``OK NICK`` ends the login; a
``bad-nick`` or ``nick-taken`` refusal while logging in sends it back to
NEED_NICK with ``login_error`` set, in words, for the prompt to show.  After a
lost connection the client logs in again under the same nick by itself
(``auto_login``): the chat view stays and only a refusal brings the prompt
back.

The transcript is bounded (``max_lines``) so a long-running client uses
bounded memory; every line carries a sequence number so the view can stay
anchored on a line while older ones fall off the front.

Protocol 1.1: server time and history
-------------------------------------
Against a 1.1 server the client asks ``TIME ON`` and ``HISTORY`` after each
login (``Client`` sends them; ``time_asked`` and ``history_asked`` record it
here).  A line's ``when`` is then the server's time, and ``HIST`` lines are
replayed between two ``Kind.HISTORY`` markers, dimmed and never a mention.

After a reconnect only the lines missed while away are shown.  Rule: a
``HIST`` line was already seen if it is older than the newest room line
shown, or has that line's time (milliseconds) and was itself shown at that
time.  So the client remembers the newest time and the room lines shown at
exactly that time, no more.  The own ``JOIN`` (and any room line) that
arrives before ``OK TIME ON`` has no time yet; the server sent it before the
``@<time>`` of that reply, so it is counted as seen at that time.

Room events heard while the replay is on its way (others joining, a line
said just after my login) were said after everything it replays.  They are
applied at once (members, bookkeeping) but their lines are held and shown
after the closing marker, so the transcript stays in the order things were
said, even when a whole room reconnects at once after a server restart.
"""

from __future__ import annotations

import enum
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from chatd import wire
from chatd.errors import ErrorCode
from chatd.nicks import NICK_RULES, SERVER_NICK, nick_key

MAX_LINES = 10_000
# Room lines heard before the first @<time> of a connection, kept to be
# stamped by it; only a server that never answers TIME ON would fill this.
MAX_UNSTAMPED = 1_000
# Live lines held back while a HISTORY reply is on its way; a reply takes
# one round trip, so only a server that never ends it would reach this.
MAX_HELD = 1_000

# The room events a HIST line can replay, and so the ones the reconnect
# bookkeeping tracks (protocol 1.1 keeps only SAY today).
ROOM_MESSAGES: Final = (wire.Said, wire.Joined, wire.Parted, wire.Renamed)
# What is held back while a replay is on its way: every event, not replies.
LIVE_EVENTS: Final = (*ROOM_MESSAGES, wire.Told, wire.Walled)
_VERSION = re.compile(r"chatd/(\d+)\.(\d+)(?!\d)")


class Kind(enum.Enum):
    """What a display line is, which decides how it looks."""

    SAY = "say"            # someone (maybe me) spoke to the room
    TELL_IN = "tell-in"    # someone spoke privately to me
    TELL_OUT = "tell-out"  # I spoke privately to someone
    WALL = "wall"          # an alert to everyone
    JOIN = "join"
    PART = "part"
    RENAME = "rename"
    INFO = "info"          # the client or server telling the user something
    ERROR = "error"        # a refusal or a failure, in plain words
    HISTORY = "history"    # where replayed lines begin or end ("history", "end of history (3 lines)")


class Replay(enum.Enum):
    """Why a line was replayed by ``HISTORY`` instead of heard live."""

    EARLIER = "earlier"    # said before I came: the first login's replay
    MISSED = "missed"      # said while I was disconnected: the replay after a reconnect


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the transcript, as data: the view decides how it looks."""

    seq: int
    when: float
    kind: Kind
    text: str
    nick: str | None = None   # the speaker; for TELL_OUT the recipient
    own: bool = False         # I sent it
    mention: bool = False     # it names me (and is not mine)
    replay: Replay | None = None  # replayed by HISTORY (so are its markers); None: live

    @property
    def alerts(self) -> bool:
        """Whether this line deserves the terminal bell (a replayed one never does)."""
        if self.replay is not None:
            return False
        return self.mention or (self.kind in (Kind.TELL_IN, Kind.WALL) and not self.own)


class Phase(enum.Enum):
    """Where the login stands."""

    NEED_NICK = "need-nick"
    LOGGING_IN = "logging-in"
    IN = "in"


class Link(enum.Enum):
    """Where the connection stands, for the status bar."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOST = "connection lost"
    CLOSED = "closed"


def error_words(code: str, text: str, nick: str | None = None) -> str:
    """A server refusal as a sentence for the user, never as protocol.

    The server's text names protocol verbs (``NICK <name>``, ``HELP``); the
    user types slash commands, so the wording is the client's own.
    """
    match code:
        case ErrorCode.BAD_NICK:
            name = f"“{nick}”" if nick else "That"
            return f"{name} cannot be used as a nick: {NICK_RULES}."
        case ErrorCode.NICK_TAKEN:
            name = nick or "That nick"
            return f"{name} is already taken; please choose another nick."
        case ErrorCode.NO_SUCH_USER:
            return _sentence(text)
        case ErrorCode.NEED_NICK:
            return "You are not logged in yet."
        case ErrorCode.MISSING_ARGUMENT:
            return f"Something is missing: {_commands_in_words(text)}."
        case ErrorCode.LINE_TOO_LONG:
            return "That line is too long for the server; it was not sent."
        case ErrorCode.BAD_ENCODING:
            return "The server could not read that line (it was not UTF-8)."
        case ErrorCode.FLOOD:
            return ("You are sending faster than the server allows; "
                    "your lines are delayed, not lost.")
        case ErrorCode.NOT_PERMITTED:
            return f"Not allowed: {_commands_in_words(text)}."
        case ErrorCode.UNKNOWN_COMMAND:
            return "The server did not understand that command."
        case _:
            return f"The server refused that: {_commands_in_words(text)}."


_PROTOCOL_WORDS = (
    ("OPER <password>", "/oper PASSWORD"),
    ("NICK <name>", "/nick NAME"),
    ("WALL", "/wall"),
    ("HELP", "/help"),
)


def _commands_in_words(text: str) -> str:
    for verb, command in _PROTOCOL_WORDS:
        text = text.replace(verb, command)
    return text.rstrip(".")


def _sentence(text: str) -> str:
    text = text.rstrip(".")
    return (text[:1].upper() + text[1:] + ".") if text else "The server refused that."


def speaks_1_1(version: str) -> bool:
    """Whether a ``HELLO`` version (``chatd/1.1.0``) is chatd 1.1 or later,
    which has ``TIME ON`` and ``HISTORY``; any other server is treated as 1.0."""
    match = _VERSION.match(version)
    return match is not None and (int(match.group(1)), int(match.group(2))) >= (1, 1)


def lines_word(count: int) -> str:
    """``1 line``, ``3 lines``."""
    return "1 line" if count == 1 else f"{count} lines"


# The words of the markers around a replay, by why it was replayed.
_OPENING: Final = {Replay.EARLIER: "history", Replay.MISSED: "missed while disconnected"}
_CLOSING: Final = {Replay.EARLIER: "end of history ({})", Replay.MISSED: "end of missed lines ({})"}


def _left(nick: str, reason: str | None) -> str:
    return f"{nick} left ({reason})." if reason else f"{nick} left."


def _renamed(old: str, new: str) -> str:
    return f"{old} is now known as {new}."


def mentions(text: str, nick: str) -> bool:
    """Whether ``text`` names ``nick`` as a whole word, ignoring case."""
    pattern = r"(?<![A-Za-z0-9_-])" + re.escape(nick) + r"(?![A-Za-z0-9_-])"
    return re.search(pattern, text, re.IGNORECASE) is not None


class ClientState:
    """The session as the user sees it; fed by ``apply`` and a few notes."""

    def __init__(self, server: str, *, nick: str | None = None,
                 max_lines: int = MAX_LINES, clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.nick: str | None = None
        self.wanted_nick = nick
        self.phase = Phase.NEED_NICK
        # A nick given up front (--nick) logs in without asking.
        self.auto_login = nick is not None
        self.login_error: str | None = None
        self.link = Link.CONNECTING
        self.link_detail = ""
        self.server_version = ""
        self.is_oper = False
        self.quitting = False
        self.members: dict[str, str] = {}
        self.lines: deque[Line] = deque(maxlen=max_lines)
        self._clock = clock
        self._seq = 0
        self._who: list[str] | None = None
        self._bye_seen = False
        self._reconnecting = False
        self._tells: deque[tuple[str, str]] = deque(maxlen=100)
        self._renames: deque[str] = deque(maxlen=100)  # /nick sent, not yet answered
        self._now: float | None = None  # the @<time> of the message being applied
        # Protocol 1.1 (see "server time and history" above).
        self._ever_in = False       # some connection of this client logged in
        self._returning = False     # ... one before this connection
        self._time_pending = False  # TIME ON sent; no @<time> read since
        self._unstamped: deque[wire.ServerMessage] = deque(maxlen=MAX_UNSTAMPED)
        self._newest: float | None = None  # the newest time of a room line shown
        self._at_newest: Counter[wire.ServerMessage] = Counter()  # those shown at that time
        self._replay: Replay | None = None  # a HISTORY asked and not yet ended
        self._replay_open = False   # its opening marker is shown
        self._replayed = 0          # lines it showed
        self._since: float | None = None  # a reconnect's replay shows what is newer than this,
        self._since_lines: Counter[wire.ServerMessage] = Counter()  # or at it and not among these
        self._holding = False       # add() keeps lines in _held (live events during a replay)
        self._held: list[Line] = []

    # --- queries the view uses ---

    @property
    def logged_in(self) -> bool:
        return self.phase is Phase.IN

    @property
    def show_login(self) -> bool:
        """Whether the user must be asked for a nick (the login view)."""
        return self.phase is not Phase.IN and not self.auto_login

    def sorted_members(self) -> list[str]:
        return sorted(self.members.values(), key=str.casefold)

    def is_me(self, nick: str | None) -> bool:
        return nick is not None and self.nick is not None and \
            nick_key(nick) == nick_key(self.nick)

    @property
    def speaks_1_1(self) -> bool:
        """Whether the server's HELLO said chatd 1.1 or later."""
        return speaks_1_1(self.server_version)

    @property
    def replay_pending(self) -> bool:
        """Whether a ``HISTORY`` reply is still to come (or to end)."""
        return self._replay is not None

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest line (0 when none yet)."""
        return self._seq

    # --- the transcript ---

    def add(self, kind: Kind, text: str, *, nick: str | None = None,
            own: bool = False, mention: bool = False, when: float | None = None,
            replay: Replay | None = None) -> Line:
        """Append one line; the oldest falls off beyond ``max_lines``.  Its
        time is ``when``, else the server's time of the message being
        applied, else the local clock."""
        if when is None:
            when = self._now if self._now is not None else self._clock()
        if self._holding:  # numbered when shown, after the replay
            line = Line(0, when, kind, text, nick, own, mention, replay)
            self._held.append(line)
            return line
        self._seq += 1
        line = Line(self._seq, when, kind, text, nick, own, mention, replay)
        self.lines.append(line)
        return line

    def _release(self) -> list[Line]:
        """Show the lines held during a replay, in the order they were heard."""
        held, self._held = self._held, []
        shown = []
        for line in held:
            self._seq += 1
            shown.append(replace(line, seq=self._seq))
        self.lines.extend(shown)
        return shown

    def note(self, text: str) -> Line:
        """A line from the client itself."""
        return self.add(Kind.INFO, text)

    def problem(self, text: str) -> Line:
        return self.add(Kind.ERROR, text)

    def clear(self) -> None:
        """Forget the transcript (``/clear``); sequence numbers go on."""
        self.lines.clear()

    # --- login and connection ---

    def start_login(self, nick: str, *, auto: bool = False) -> None:
        """A NICK is on its way for logging in."""
        self.wanted_nick = nick
        self.phase = Phase.LOGGING_IN
        self.auto_login = auto

    def connected(self) -> list[Line]:
        self.link = Link.CONNECTED
        self.link_detail = ""
        self.phase = Phase.NEED_NICK
        self.members.clear()
        self._who = None
        self._bye_seen = False
        self._returning = self._ever_in
        self._time_pending = False
        self._unstamped.clear()
        self._replay = None
        self._replay_open = False
        self._held.clear()
        return []

    def time_asked(self) -> None:
        """``TIME ON`` is on its way.  Room lines read before its reply have
        no time; they are counted as seen at the first ``@<time>`` read."""
        self._time_pending = True

    def history_asked(self) -> None:
        """``HISTORY`` is on its way, right after a login.  After a reconnect
        only lines missed while away are shown, so remember what was shown."""
        missed = self._returning and self._newest is not None
        self._replay = Replay.MISSED if missed else Replay.EARLIER
        self._replay_open = False
        self._replayed = 0
        self._since = self._newest
        self._since_lines = Counter(self._at_newest)

    def connection_lost(self, reason: str) -> list[Line]:
        """The socket is gone; the next connection starts a fresh login."""
        was_in = self.phase is Phase.IN
        self.link = Link.CLOSED if self.quitting else Link.LOST
        self.link_detail = ""
        self.phase = Phase.NEED_NICK
        self.auto_login = was_in or self.auto_login
        self.is_oper = False
        self.members.clear()
        self._tells.clear()
        self._renames.clear()
        held = self._release()  # a replay cut short: show what was heard meanwhile
        self._replay = None
        if self.quitting or self._bye_seen:
            return held  # BYE already said why
        return [*held, self.problem(f"Lost the connection to {self.server} ({reason}).")]

    def retrying(self, delay: float, attempt: int, failure: str | None = None) -> list[Line]:
        """A reconnect is scheduled in ``delay`` seconds.  Only the first
        attempt is a transcript line; later ones update the status bar, so a
        long outage does not flood the pane."""
        self.link = Link.LOST
        when = f"retrying in {delay:.0f}s" if delay >= 1 else "retrying"
        self.link_detail = f"{when} ({failure})" if failure else when
        self._reconnecting = True
        if attempt == 1:
            return [self.note(f"Reconnecting (waiting {delay:.1f} s first)…")]
        return []

    # --- server messages ---

    def apply(self, message: wire.ServerMessage, stamp: str | None = None) -> list[Line]:
        """Update from one server message and the ``@<time>`` it came with
        (protocol 1.1), if any; the lines it adds, in order."""
        when = wire.parse_time(stamp) if stamp is not None else None
        if when is not None and self._time_pending:
            self._time_pending = False
            for unstamped in self._unstamped:
                self._shown_at(when, unstamped)
            self._unstamped.clear()
        handler = getattr(self, "_on_" + type(message).__name__.lower())
        hold = self._hold_back(message)
        shown = self._release() if hold and len(self._held) >= MAX_HELD else []
        self._now, self._holding = when, hold
        try:
            lines: list[Line] = handler(message)
        finally:
            self._now, self._holding = None, False
        if not hold:  # held lines are shown after the replay
            shown += lines
        if isinstance(message, ROOM_MESSAGES):
            if when is not None:
                self._shown_at(when, message)
            elif self._time_pending:
                self._unstamped.append(message)
        return shown

    def _hold_back(self, message: wire.ServerMessage) -> bool:
        """Whether the lines of ``message`` wait for the replay to end: a live
        event (not my own JOIN, which comes before the replay is asked)."""
        if self._replay is None or not isinstance(message, LIVE_EVENTS):
            return False
        return not (isinstance(message, wire.Joined) and self.is_me(message.nick))

    def _shown_at(self, when: float, message: wire.ServerMessage) -> None:
        """A room line shown with server time ``when``: keep only the newest
        time, and the lines shown at it."""
        if self._newest is None or when > self._newest:
            self._newest = when
            self._at_newest = Counter((message,))
        elif when == self._newest:
            self._at_newest[message] += 1

    def _on_hello(self, message: wire.Hello) -> list[Line]:
        self.server_version = message.version
        again, self._reconnecting = self._reconnecting, False
        if again:
            return [self.note(f"Reconnected to {self.server} ({message.version}).")]
        return [self.note(f"Connected to {self.server} ({message.version}).")]

    def _on_ok(self, message: wire.Ok) -> list[Line]:
        match message.command:
            case "NICK":
                new = message.args or self.wanted_nick
                if self.phase is not Phase.IN:
                    self.phase = Phase.IN
                    self.login_error = None
                    self._ever_in = True
                elif self._renames:
                    self._renames.popleft()
                self.nick = new
                self.wanted_nick = new
                return []
            case "WHO":
                nicks = self._who or []
                self._who = None
                self.members = {nick_key(n): n for n in nicks}
                names = ", ".join(self.sorted_members())
                return [self.note(f"In the room ({len(nicks)}): {names}")]
            case "OPER":
                self.is_oper = True
                return [self.note("You are now an operator.")]
            case "TELL":
                return self._tell_delivered(message.args or "")
            case "HISTORY":
                return self._replay_ended()
            case _:
                return []  # OK TIME ON and others: nothing to show

    def _on_error(self, message: wire.Error) -> list[Line]:
        refused_login = self.phase is Phase.LOGGING_IN and message.code in (
            ErrorCode.BAD_NICK, ErrorCode.NICK_TAKEN)
        asked = None
        if message.code in (ErrorCode.BAD_NICK, ErrorCode.NICK_TAKEN):
            # A refused /nick names the nick asked for, not the one I have.
            if self.phase is Phase.IN and self._renames:
                asked = self._renames.popleft()
            else:
                asked = self.wanted_nick
        words = error_words(message.code, message.text, asked)
        if message.code == ErrorCode.NO_SUCH_USER and self._tells:
            self._tells.popleft()
        if refused_login:
            self.phase = Phase.NEED_NICK
            self.auto_login = False
            self.login_error = words
        lines = [self.problem(words)]
        if self._replay is not None and message.code in (
                ErrorCode.UNKNOWN_COMMAND, ErrorCode.BAD_ARGUMENT, ErrorCode.NEED_NICK):
            lines += self._replay_ended()  # HISTORY refused: no reply will end it
        return lines

    def _on_joined(self, message: wire.Joined) -> list[Line]:
        self.members[nick_key(message.nick)] = message.nick
        if self.is_me(message.nick):
            return [self.add(Kind.JOIN, f"You joined the room as {message.nick}.",
                             nick=message.nick, own=True)]
        return [self.add(Kind.JOIN, f"{message.nick} joined.", nick=message.nick)]

    def _on_parted(self, message: wire.Parted) -> list[Line]:
        self.members.pop(nick_key(message.nick), None)
        return [self.add(Kind.PART, _left(message.nick, message.reason), nick=message.nick)]

    def _on_renamed(self, message: wire.Renamed) -> list[Line]:
        self.members.pop(nick_key(message.old), None)
        self.members[nick_key(message.new)] = message.new
        if self.is_me(message.new) or self.is_me(message.old):
            self.nick = message.new
            return [self.add(Kind.RENAME, f"You are now known as {message.new}.",
                             nick=message.new, own=True)]
        return [self.add(Kind.RENAME, _renamed(message.old, message.new), nick=message.new)]

    def _on_said(self, message: wire.Said) -> list[Line]:
        own = self.is_me(message.nick)
        mention = not own and self.nick is not None and mentions(message.text, self.nick)
        return [self.add(Kind.SAY, message.text, nick=message.nick, own=own, mention=mention)]

    def _on_walled(self, message: wire.Walled) -> list[Line]:
        sender = None if message.nick == SERVER_NICK else message.nick
        return [self.add(Kind.WALL, message.text, nick=sender, own=self.is_me(sender))]

    def _on_told(self, message: wire.Told) -> list[Line]:
        return [self.add(Kind.TELL_IN, message.text, nick=message.nick)]

    def _on_users(self, message: wire.Users) -> list[Line]:
        self._who = (self._who or []) + list(message.nicks)
        return []

    def _on_pong(self, message: wire.Pong) -> list[Line]:
        return [self.note("The server answered the ping.")]

    def _on_bye(self, message: wire.Bye) -> list[Line]:
        self._bye_seen = True
        held = self._release()
        if self.quitting:
            return [*held, self.note(f"Disconnected: {message.reason}.")]
        return [*held, self.problem(f"The server closed the connection: {message.reason}.")]

    def _on_helpline(self, message: wire.HelpLine) -> list[Line]:
        return [self.note(message.text)]

    def _on_unknown(self, message: wire.Unknown) -> list[Line]:
        return [self.note(f"The server said: {message.line}")]

    # --- a HISTORY reply (protocol 1.1) ---

    def _on_hist(self, message: wire.Hist) -> list[Line]:
        """One replayed line, dimmed, after the opening marker; after a
        reconnect only if it was missed.  It changes nothing else: a
        replayed JOIN adds nobody to the member list."""
        replay = self._replay or Replay.EARLIER  # a HIST nobody asked for is history
        inner = message.message
        when = wire.parse_time(message.time)
        if inner is None or replay is Replay.MISSED and not self._missed(when, inner):
            return []
        lines = []
        if not self._replay_open:
            self._replay_open = True
            lines.append(self.add(Kind.HISTORY, _OPENING[replay], replay=replay))
        lines.append(self._replayed_line(inner, when, replay))
        self._replayed += 1
        if when is not None and isinstance(inner, ROOM_MESSAGES):
            self._shown_at(when, inner)
        return lines

    def _missed(self, when: float | None, message: wire.ServerMessage) -> bool:
        """Whether a replayed line was said after what this client showed
        before the reconnect.  Several lines can share a millisecond: at the
        newest time shown, a line counts as seen only if it was shown."""
        if when is None:
            return False  # no time to compare: not shown again as missed
        if self._since is None or when > self._since:
            return True
        if when < self._since:
            return False
        if self._since_lines[message] > 0:  # the newest millisecond: was this one shown?
            self._since_lines[message] -= 1
            return False
        return True

    def _replayed_line(self, inner: wire.ServerMessage, when: float | None,
                       replay: Replay) -> Line:
        """A replayed line as the live one would read, but never a mention."""
        match inner:
            case wire.Said(nick=nick, text=text):
                return self.add(Kind.SAY, text, nick=nick, own=self.is_me(nick), when=when,
                                replay=replay)
            case wire.Joined(nick=nick):
                return self.add(Kind.JOIN, f"{nick} joined.", nick=nick, when=when, replay=replay)
            case wire.Parted(nick=nick, reason=reason):
                return self.add(Kind.PART, _left(nick, reason), nick=nick, when=when,
                                replay=replay)
            case wire.Renamed(old=old, new=new):
                return self.add(Kind.RENAME, _renamed(old, new), nick=new, when=when,
                                replay=replay)
            case _:
                return self.add(Kind.INFO, wire.format_line(inner), when=when, replay=replay)

    def _replay_ended(self) -> list[Line]:
        """``OK HISTORY``: the closing marker, if the opening one was shown
        (a replay of nothing shows nothing), then the lines held meanwhile."""
        replay, opened, count = self._replay or Replay.EARLIER, self._replay_open, self._replayed
        self._replay = None
        self._replay_open = False
        self._replayed = 0
        self._since_lines = Counter()
        lines = []
        if opened:
            lines.append(self.add(Kind.HISTORY, _CLOSING[replay].format(lines_word(count)),
                                  replay=replay))
        return lines + self._release()

    # --- what I send that the server does not echo ---

    def renaming(self, nick: str) -> None:
        """I sent ``NICK`` while logged in; a refusal names this nick."""
        self._renames.append(nick)

    def telling(self, nick: str, text: str) -> None:
        """I sent a private message; it is shown once ``OK TELL`` confirms it,
        so a message to nobody never looks delivered."""
        self._tells.append((nick, text))

    def _tell_delivered(self, nick: str) -> list[Line]:
        # Replies come in order; skip any TELL refused for another reason.
        while self._tells:
            wanted, text = self._tells.popleft()
            if nick_key(wanted) == nick_key(nick):
                return [self.add(Kind.TELL_OUT, text, nick=nick, own=True)]
        return []

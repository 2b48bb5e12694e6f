"""One connection's state machine, driven by lines, with recording fake transports."""

from __future__ import annotations

import pytest

from chatd import __version__, wire
from chatd.room import Room
from chatd.session import DEFAULT_QUIT_REASON, GREETING, HELP_TEXT, Session
from tests.fakes import Recorder


class FakeTransport(Recorder):
    """The two callables a session is given, recording what it does with them."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


class Client:
    """A session and its transport, fed lines as a peer would send them."""

    def __init__(self, room: Room, *, oper_password: str | None = None) -> None:
        self.transport = FakeTransport()
        self.session = Session(room, self.transport.write, self.transport.close,
                               oper_password=oper_password)
        self.session.connected()

    def send(self, *lines: str | bytes) -> None:
        for line in lines:
            self.session.handle_line(line.encode() if isinstance(line, str) else line)

    @property
    def lines(self) -> list[str]:
        return self.transport.lines

    def clear(self) -> None:
        self.transport.clear()


def connect(room: Room, *, oper_password: str | None = None) -> Client:
    """A new connection, greeted, with the greeting cleared."""
    client = Client(room, oper_password=oper_password)
    client.clear()
    return client


def login(room: Room, nick: str, *, oper_password: str | None = None) -> Client:
    """A connection logged in as ``nick``, with everything it was sent so far cleared."""
    client = connect(room, oper_password=oper_password)
    client.send(f"NICK {nick}")
    assert client.lines[0] == f"OK NICK {nick}", client.lines
    client.clear()
    return client


def clear(*clients: Client) -> None:
    for client in clients:
        client.clear()


@pytest.fixture
def room() -> Room:
    """A room with an immediate outbox, so every write happens at once."""
    return Room()


class TestGreeting:
    """The first line of every connection."""

    def test_hello_is_the_first_line(self, room: Room) -> None:
        """A new connection is greeted with HELLO chatd/<version> and the greeting."""
        client = Client(room)
        assert client.lines == [f"HELLO chatd/{__version__} {GREETING}"]

    def test_greeting_parses_as_hello(self, room: Room) -> None:
        """The greeting is a well-formed Hello for clients."""
        client = Client(room)
        assert isinstance(wire.parse_server_line(client.transport.writes[0]), wire.Hello)


class TestLogin:
    """NICK for the first time and afterwards."""

    def test_login_lines_in_order(self, room: Room) -> None:
        """NICK sends OK NICK, JOIN to everyone including the sender, then USERS and OK WHO."""
        ann = login(room, "ann")
        bob = connect(room)
        bob.send("NICK bob")
        assert bob.lines == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]
        assert ann.lines == ["JOIN bob"]

    def test_verb_is_case_insensitive(self, room: Room) -> None:
        """A lower-case nick command logs in like NICK."""
        client = connect(room)
        client.send("nick ann")
        assert client.lines == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]

    def test_crlf_line_logs_in(self, room: Room) -> None:
        """A line still carrying the CR of CRLF logs in like an LF line."""
        client = connect(room)
        client.send(b"NICK ann\r")
        assert client.session.nick == "ann"

    def test_nick_taken_ignoring_case_keeps_connection_usable(self, room: Room) -> None:
        """NICK with a nick in use in another case answers nick-taken, and another nick works."""
        login(room, "ann")
        client = connect(room)
        client.send("NICK ANN", "NICK bob")
        assert client.lines[0].startswith("ERR nick-taken ")
        assert client.lines[1:] == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]

    def test_bad_nick_is_refused(self, room: Room) -> None:
        """An invalid nick gets ERR bad-nick and the connection stays logged out."""
        client = connect(room)
        client.send("NICK 9lives")
        assert len(client.lines) == 1 and client.lines[0].startswith("ERR bad-nick ")
        assert client.session.nick is None and client.transport.closes == 0

    def test_rename(self, room: Room) -> None:
        """NICK when logged in sends OK NICK to the sender and RENAME to everyone."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        ann.send("NICK anna")
        assert ann.lines == ["OK NICK anna", "RENAME ann anna"]
        assert bob.lines == ["RENAME ann anna"]

    def test_rename_case_only(self, room: Room) -> None:
        """A case-only change of one's own nick is a rename."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        ann.send("NICK Ann")
        assert ann.lines == ["OK NICK Ann", "RENAME ann Ann"]
        assert bob.lines == ["RENAME ann Ann"]

    def test_rename_to_same_nick_is_a_no_op(self, room: Room) -> None:
        """NICK with one's current nick answers OK NICK and tells nobody."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        ann.send("NICK ann")
        assert ann.lines == ["OK NICK ann"]
        assert bob.lines == []

    def test_rename_to_taken_nick_is_refused(self, room: Room) -> None:
        """Renaming onto another user's nick in any case answers nick-taken and keeps the old nick."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        ann.send("NICK Bob")
        assert len(ann.lines) == 1 and ann.lines[0].startswith("ERR nick-taken ")
        assert bob.lines == [] and ann.session.nick == "ann"


class TestNeedNick:
    """Commands reserved for logged-in users."""

    @pytest.mark.parametrize("line", ["SAY hi", "TELL bob hi", "WALL hi", "OPER secret"])
    def test_command_before_login_needs_nick(self, room: Room, line: str) -> None:
        """SAY, TELL, WALL and OPER before NICK answer ERR need-nick and leave the connection open."""
        login(room, "bob")
        client = connect(room)
        client.send(line)
        assert client.lines == ["ERR need-nick log in first with NICK <name>"]
        assert client.transport.closes == 0

    @pytest.mark.parametrize(("line", "expected"), [
        ("WHO", ["USERS bob", "OK WHO 1"]),
        ("PING", ["PONG"]),
    ])
    def test_command_allowed_before_login(self, room: Room, line: str,
                                          expected: list[str]) -> None:
        """WHO and PING work without logging in."""
        login(room, "bob")
        client = connect(room)
        client.send(line)
        assert client.lines == expected


class TestSayAndWall:
    """Who hears SAY and WALL."""

    def test_say_reaches_logged_in_users_only(self, room: Room) -> None:
        """SAY goes to every logged-in user, the sender too, but not to connections not logged in."""
        lurker = connect(room)
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        ann.send("SAY hello  there")
        assert ann.lines == ["SAY ann hello  there"]
        assert bob.lines == ["SAY ann hello  there"]
        assert lurker.lines == []

    def test_say_text_is_cleaned_for_others(self, room: Room) -> None:
        """Escape sequences in a SAY never reach the others."""
        ann, bob = login(room, "ann"), login(room, "bob")
        ann.send(b"SAY \x1b[2J\x1b]0;pwned\x07hi\xc2\x9b")
        assert bob.lines == ["SAY ann [2J]0;pwnedhi"]

    def test_wall_reaches_connections_not_logged_in(self, room: Room) -> None:
        """Without an operator password, any logged-in user's WALL reaches every connection."""
        lurker = connect(room)
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        ann.send("WALL fire drill")
        for client in (lurker, ann, bob):
            assert client.lines == ["WALL ann fire drill"]

    def test_wall_needs_oper_when_password_set(self, room: Room) -> None:
        """With an operator password, WALL before OPER is not permitted and reaches nobody."""
        bob = login(room, "bob")
        ann = login(room, "ann", oper_password="sesame")
        clear(bob)
        ann.send("WALL hear me")
        assert len(ann.lines) == 1 and ann.lines[0].startswith("ERR not-permitted ")
        assert bob.lines == []

    def test_wall_after_oper_reaches_everyone(self, room: Room) -> None:
        """With an operator password, WALL works after a successful OPER."""
        lurker = connect(room)
        bob = login(room, "bob")
        ann = login(room, "ann", oper_password="sesame")
        clear(bob)
        ann.send("OPER sesame", "WALL hear me")
        assert ann.lines == ["OK OPER", "WALL ann hear me"]
        assert bob.lines == ["WALL ann hear me"]
        assert lurker.lines == ["WALL ann hear me"]


class TestOper:
    """OPER <password>."""

    def test_right_password(self, room: Room) -> None:
        """The right password answers OK OPER and makes the user an operator."""
        ann = login(room, "ann", oper_password="sesame")
        ann.send("OPER sesame")
        assert ann.lines == ["OK OPER"]
        assert ann.session.is_oper

    def test_password_with_spaces(self, room: Room) -> None:
        """A password containing spaces is compared whole."""
        ann = login(room, "ann", oper_password="open sesame")
        ann.send("OPER open sesame")
        assert ann.lines == ["OK OPER"]

    @pytest.mark.parametrize("guess", ["wrong", "SESAME", "sesame2", "sesam"])
    def test_wrong_password(self, room: Room, guess: str) -> None:
        """A wrong password answers ERR not-permitted and grants nothing."""
        ann = login(room, "ann", oper_password="sesame")
        ann.send(f"OPER {guess}")
        assert ann.lines == ["ERR not-permitted wrong operator password"]
        assert not ann.session.is_oper

    def test_no_password_configured(self, room: Room) -> None:
        """On a server without an operator password, OPER is not permitted."""
        ann = login(room, "ann")
        ann.send("OPER anything")
        assert ann.lines == ["ERR not-permitted this server has no operator password"]
        assert not ann.session.is_oper


class TestTell:
    """TELL <nick> <text>."""

    def test_tell_reaches_only_the_target(self, room: Room) -> None:
        """The target gets TELL <sender> <text>, the sender OK TELL, and nobody else anything."""
        ann, bob, cy = login(room, "ann"), login(room, "bob"), login(room, "cy")
        clear(ann, bob)
        ann.send("TELL bob meet at  noon")
        assert bob.lines == ["TELL ann meet at  noon"]
        assert ann.lines == ["OK TELL bob"]
        assert cy.lines == []

    def test_tell_is_case_insensitive(self, room: Room) -> None:
        """TELL finds its target in any case; OK TELL names the target as they spell it."""
        ann, bob = login(room, "ann"), login(room, "Bob")
        clear(ann)
        ann.send("TELL BOB hi")
        assert bob.lines == ["TELL ann hi"]
        assert ann.lines == ["OK TELL Bob"]

    def test_tell_unknown_user(self, room: Room) -> None:
        """TELL to a nick nobody has answers ERR no-such-user."""
        ann = login(room, "ann")
        ann.send("TELL ghost boo")
        assert ann.lines == ["ERR no-such-user nobody called ghost is here"]

    def test_tell_without_text(self, room: Room) -> None:
        """TELL with only a nick answers ERR missing-argument."""
        ann = login(room, "ann")
        ann.send("TELL bob")
        assert len(ann.lines) == 1 and ann.lines[0].startswith("ERR missing-argument ")


class TestWho:
    """WHO."""

    def test_who_chunks_many_users_within_small_max_line(self) -> None:
        """With many users and a small max_line, USERS lines fit the limit and list everyone in order."""
        room = Room(max_line=48)
        nicks = [f"n{i:04d}" for i in range(120)]
        for nick in nicks:
            login(room, nick)
        client = connect(room)
        client.send("who")
        *users, done = client.lines
        assert done == "OK WHO 120"
        assert len(users) > 10
        assert all(line.startswith("USERS ") and len(line) + 2 <= 48 for line in users)
        assert [nick for line in users for nick in line.split(" ")[1:]] == nicks


class TestPingHelpErrors:
    """PING, HELP and the errors that keep the connection open."""

    @pytest.mark.parametrize(("line", "reply"), [
        ("PING", "PONG"),
        ("PING abc", "PONG abc"),
        ("ping 1 2 3", "PONG 1 2 3"),
    ])
    def test_ping_pong(self, room: Room, line: str, reply: str) -> None:
        """PING [token] answers PONG [token]."""
        client = connect(room)
        client.send(line)
        assert client.lines == [reply]

    def test_help_lines_end_with_ok_help(self, room: Room) -> None:
        """HELP answers one HELP line per help entry, then OK HELP."""
        client = connect(room)
        client.send("HELP")
        assert client.lines == [f"HELP {text}" for text in HELP_TEXT] + ["OK HELP"]

    @pytest.mark.parametrize(("line", "code"), [
        ("FROB", "unknown-command"),
        ("SAY", "missing-argument"),
        ("NICK a b", "bad-nick"),
        (b"SAY \xc3(", "bad-encoding"),
    ])
    def test_error_keeps_connection_open(self, room: Room, line: str | bytes, code: str) -> None:
        """A refused line answers ERR <code> <text> and the next line still works."""
        ann = login(room, "ann")
        ann.send(line, "PING x")
        assert len(ann.lines) == 2
        assert ann.lines[0].startswith(f"ERR {code} ")
        assert ann.lines[1] == "PONG x"
        assert ann.transport.closes == 0

    def test_blank_lines_are_ignored(self, room: Room) -> None:
        """Empty and blank lines get no answer."""
        client = connect(room)
        client.send("", "   ", b"\r", b"\x1b")
        assert client.lines == []


class TestQuit:
    """QUIT [reason]."""

    def test_quit_says_bye_and_parts(self, room: Room) -> None:
        """QUIT sends BYE <reason> to the sender, PART <nick> <reason> to others, and closes."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        bob.send("QUIT off to lunch")
        assert bob.lines == ["BYE off to lunch"]
        assert ann.lines == ["PART bob off to lunch"]
        assert bob.transport.closes == 1
        assert room.nicks == ["ann"]

    @pytest.mark.parametrize("line", ["QUIT", "quit", "QUIT ", "QUIT    "])
    def test_quit_without_reason_uses_default(self, room: Room, line: str) -> None:
        """QUIT with no reason, or a blank one, says BYE and PART with the default reason."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        bob.send(line)
        assert bob.lines == [f"BYE {DEFAULT_QUIT_REASON}"]
        assert ann.lines == [f"PART bob {DEFAULT_QUIT_REASON}"]
        assert bob.transport.closes == 1

    def test_lines_after_quit_are_ignored(self, room: Room) -> None:
        """Once QUIT is handled, later lines get no answer and reach nobody."""
        ann, bob = login(room, "ann"), login(room, "bob")
        bob.send("QUIT")
        clear(ann, bob)
        bob.send("SAY still here?", "PING", "QUIT again")
        assert bob.lines == []
        assert ann.lines == []
        assert bob.transport.closes == 1

    def test_quit_before_login_has_no_part(self, room: Room) -> None:
        """QUIT from a connection not logged in says BYE and tells nobody."""
        ann = login(room, "ann")
        client = connect(room)
        client.send("QUIT")
        assert client.lines == [f"BYE {DEFAULT_QUIT_REASON}"]
        assert ann.lines == []
        assert client.transport.closes == 1


class TestDisconnect:
    """The transport going away."""

    def test_disconnect_sends_part_once(self, room: Room) -> None:
        """disconnected() sends PART to the others once, however often it is called."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        bob.session.disconnected()
        bob.session.disconnected()
        assert ann.lines == ["PART bob connection lost"]
        assert bob.lines == []

    def test_close_after_disconnect_does_nothing(self, room: Room) -> None:
        """close() on a disconnected session sends no BYE and does not close again."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        bob.session.disconnected()
        bob.session.close("too late")
        assert bob.lines == []
        assert bob.transport.closes == 0
        assert ann.lines == ["PART bob connection lost"]

    def test_disconnect_after_quit_sends_no_second_part(self, room: Room) -> None:
        """The transport's loss after QUIT does not announce the user again."""
        ann, bob = login(room, "ann"), login(room, "bob")
        clear(ann)
        bob.send("QUIT bye")
        bob.session.disconnected()
        assert ann.lines == ["PART bob bye"]

    def test_disconnected_session_ignores_lines(self, room: Room) -> None:
        """Lines arriving after the transport is gone are not handled."""
        client = connect(room)
        client.session.disconnected()
        client.send("NICK ann")
        assert client.lines == [] and room.nicks == []

"""One connection's life, driven by lines through a node over recording fake
links (``tests/builders.py``): what each peer reads, in order, including the
order across peers and across the end of a turn."""

from __future__ import annotations

import pytest

from chatd import __version__, wire
from chatd.dialects.line import GREETING, HELP_TEXT
from chatd.node import Node
from chatd.session import DEFAULT_QUIT_REASON
from tests.builders import Peer, connect, make_node


def login(node: Node, nick: str) -> Peer:
    """A connection logged in as ``nick``, with everything it was sent so far read."""
    return connect(node).login(nick)


def clear(*peers: Peer) -> None:
    """Forget what these peers were sent so far."""
    for peer in peers:
        peer.lines()


def closes(peer: Peer) -> int:
    return peer.link.calls.count("close")


@pytest.fixture
def node() -> Node:
    """A node with default settings and no flood control."""
    return make_node()


class TestGreeting:
    """The first line of every connection."""

    def test_hello_is_the_first_line(self, node: Node) -> None:
        """A new connection is greeted with HELLO chatd/<version> and the greeting."""
        peer = Peer(node)
        assert peer.lines() == [f"HELLO chatd/{__version__} {GREETING}"]

    def test_greeting_parses_as_hello(self, node: Node) -> None:
        """The greeting is a well-formed Hello for clients."""
        peer = Peer(node)
        assert isinstance(wire.parse_server_line(peer.link.writes[0]), wire.Hello)


class TestLogin:
    """NICK for the first time and afterwards."""

    def test_first_login_lines_in_order(self, node: Node) -> None:
        """The first user reads OK NICK, their own JOIN, then USERS and OK WHO."""
        ann = connect(node)
        ann.send("NICK ann")
        assert ann.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]
        assert ann.connection.session.nick == "ann"

    def test_login_lines_in_order(self, node: Node) -> None:
        """NICK sends OK NICK, JOIN to everyone including the sender, then USERS and OK WHO."""
        ann = login(node, "ann")
        bob = connect(node)
        bob.send("NICK bob")
        assert bob.lines() == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]
        assert ann.lines() == ["JOIN bob"]

    def test_login_order_holds_within_one_turn(self, node: Node) -> None:
        """Two logins in one reactor turn, coalesced, still reach each peer in order."""
        ann, bob = Peer(node), Peer(node)
        ann.send("NICK ann")
        bob.send("NICK bob")
        assert ann.lines()[1:] == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1",
                                   "JOIN bob"]
        assert bob.lines()[1:] == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]

    def test_connection_not_logged_in_does_not_hear_join(self, node: Node) -> None:
        """A connection that has not logged in hears no JOIN."""
        lurker = connect(node)
        login(node, "ann")
        assert lurker.lines() == []

    def test_verb_is_case_insensitive(self, node: Node) -> None:
        """A lower-case nick command logs in like NICK."""
        client = connect(node)
        client.send("nick ann")
        assert client.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]

    def test_crlf_line_logs_in(self, node: Node) -> None:
        """A line still carrying the CR of CRLF logs in like an LF line."""
        client = connect(node)
        client.send(b"NICK ann\r")
        assert client.connection.session.nick == "ann"

    def test_nick_taken_ignoring_case_keeps_connection_usable(self, node: Node) -> None:
        """NICK with a nick in use in another case answers nick-taken, and another nick works."""
        ann = login(node, "ann")
        client = connect(node)
        client.send("NICK ANN", "NICK bob")
        lines = client.lines()
        assert lines[0] == "ERR nick-taken ANN is already taken; choose another nick"
        assert lines[1:] == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]
        assert ann.lines() == ["JOIN bob"]

    def test_bad_nick_is_refused(self, node: Node) -> None:
        """An invalid nick gets ERR bad-nick and the connection stays logged out."""
        client = connect(node)
        client.send("NICK 9lives")
        lines = client.lines()
        assert len(lines) == 1 and lines[0].startswith("ERR bad-nick ")
        assert client.connection.session.nick is None and closes(client) == 0

    def test_rename(self, node: Node) -> None:
        """NICK when logged in sends OK NICK to the sender and RENAME to everyone."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("NICK anna")
        assert ann.lines() == ["OK NICK anna", "RENAME ann anna"]
        assert bob.lines() == ["RENAME ann anna"]

    def test_old_nick_is_free_after_rename(self, node: Node) -> None:
        """After a rename someone else may log in with the old nick."""
        ann = login(node, "ann")
        ann.send("NICK anna")
        cy = connect(node)
        cy.send("NICK ann")
        assert cy.lines() == ["OK NICK ann", "JOIN ann", "USERS anna ann", "OK WHO 2"]

    def test_rename_case_only(self, node: Node) -> None:
        """A case-only change of one's own nick is a rename."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("NICK Ann")
        assert ann.lines() == ["OK NICK Ann", "RENAME ann Ann"]
        assert bob.lines() == ["RENAME ann Ann"]
        assert ann.connection.session.nick == "Ann"

    def test_rename_to_same_nick_is_a_no_op(self, node: Node) -> None:
        """NICK with one's current nick answers OK NICK and tells nobody."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("NICK ann")
        assert ann.lines() == ["OK NICK ann"]
        assert bob.lines() == []

    @pytest.mark.parametrize("taken", ["bob", "Bob", "BOB"])
    def test_rename_to_taken_nick_is_refused(self, node: Node, taken: str) -> None:
        """Renaming onto another user's nick in any case answers nick-taken; the nick stays."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send(f"NICK {taken}")
        lines = ann.lines()
        assert len(lines) == 1 and lines[0].startswith("ERR nick-taken ")
        assert bob.lines() == [] and ann.connection.session.nick == "ann"

    def test_lines_after_nick_keep_their_order(self, node: Node) -> None:
        """Lines sent in one packet with NICK are answered after the whole login, in order."""
        ann = connect(node)
        ann.send("NICK ann", "SAY hi", "PING p")
        assert ann.lines() == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1",
                               "SAY ann hi", "PONG p"]


class TestNeedNick:
    """Commands reserved for logged-in users."""

    @pytest.mark.parametrize("line", ["SAY hi", "TELL bob hi", "WALL hi", "OPER secret"])
    def test_command_before_login_needs_nick(self, node: Node, line: str) -> None:
        """SAY, TELL, WALL and OPER before NICK answer ERR need-nick; the connection stays open."""
        bob = login(node, "bob")
        client = connect(node)
        client.send(line)
        assert client.lines() == ["ERR need-nick log in first with NICK <name>"]
        assert closes(client) == 0 and bob.lines() == []

    @pytest.mark.parametrize(("line", "expected"), [
        ("WHO", ["USERS bob", "OK WHO 1"]),
        ("PING", ["PONG"]),
    ])
    def test_command_allowed_before_login(self, node: Node, line: str,
                                          expected: list[str]) -> None:
        """WHO and PING work without logging in."""
        login(node, "bob")
        client = connect(node)
        client.send(line)
        assert client.lines() == expected


class TestSayAndWall:
    """Who hears SAY and WALL."""

    def test_say_reaches_logged_in_users_only(self, node: Node) -> None:
        """SAY goes to every logged-in user, the sender too, but not to connections logged out."""
        lurker = connect(node)
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("SAY hello  there")
        assert ann.lines() == ["SAY ann hello  there"]
        assert bob.lines() == ["SAY ann hello  there"]
        assert lurker.lines() == []

    def test_broadcast_bytes_are_one_object(self, node: Node) -> None:
        """Every member is written the very same bytes object for one SAY."""
        peers = [login(node, nick) for nick in ("ann", "bob", "cy")]
        clear(*peers)
        peers[0].send("SAY hi")
        peers[0].clock.advance(0)
        first = peers[0].link.writes[-1]
        assert first == b"SAY ann hi\r\n"
        assert all(peer.link.writes[-1] is first for peer in peers)

    def test_say_text_is_cleaned_for_others(self, node: Node) -> None:
        """Escape sequences in a SAY never reach the others."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(bob)
        ann.send(b"SAY \x1b[2J\x1b]0;pwned\x07hi\xc2\x9b")
        assert bob.lines() == ["SAY ann [2J]0;pwnedhi"]

    def test_wall_reaches_connections_not_logged_in(self, node: Node) -> None:
        """Without an operator password, any logged-in user's WALL reaches every connection."""
        lurker = connect(node)
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("WALL fire drill")
        for client in (lurker, ann, bob):
            assert client.lines() == ["WALL ann fire drill"]

    def test_wall_comes_after_pending_broadcasts(self, node: Node) -> None:
        """A WALL in the same turn as a SAY reaches members after that SAY."""
        lurker = connect(node)
        ann = login(node, "ann")
        ann.send("SAY first")
        node.room.wall("*", "second")
        assert ann.lines() == ["SAY ann first", "WALL * second"]
        assert lurker.lines() == ["WALL * second"]

    def test_closed_connection_gets_no_wall(self, node: Node) -> None:
        """A connection that has closed is not written a WALL."""
        gone = connect(node)
        gone.lose()
        node.room.wall("*", "hello")
        assert gone.lines() == []

    def test_wall_needs_oper_when_password_set(self) -> None:
        """With an operator password, WALL before OPER is not permitted and reaches nobody."""
        node = make_node(oper_password="sesame")
        bob, ann = login(node, "bob"), login(node, "ann")
        clear(bob)
        ann.send("WALL hear me")
        lines = ann.lines()
        assert len(lines) == 1 and lines[0].startswith("ERR not-permitted ")
        assert bob.lines() == []

    def test_wall_after_oper_reaches_everyone(self) -> None:
        """With an operator password, WALL works after a successful OPER."""
        node = make_node(oper_password="sesame")
        lurker = connect(node)
        bob, ann = login(node, "bob"), login(node, "ann")
        clear(bob)
        ann.send("OPER sesame", "WALL hear me")
        assert ann.lines() == ["OK OPER", "WALL ann hear me"]
        assert bob.lines() == ["WALL ann hear me"]
        assert lurker.lines() == ["WALL ann hear me"]


class TestOper:
    """OPER <password>."""

    def test_right_password(self) -> None:
        """The right password answers OK OPER and makes the user an operator."""
        ann = login(make_node(oper_password="sesame"), "ann")
        ann.send("OPER sesame")
        assert ann.lines() == ["OK OPER"]
        assert ann.connection.session.is_oper

    def test_password_with_spaces(self) -> None:
        """A password containing spaces is compared whole."""
        ann = login(make_node(oper_password="open sesame"), "ann")
        ann.send("OPER open sesame")
        assert ann.lines() == ["OK OPER"]

    @pytest.mark.parametrize("guess", ["wrong", "SESAME", "sesame2", "sesam"])
    def test_wrong_password(self, guess: str) -> None:
        """A wrong password answers ERR not-permitted and grants nothing."""
        ann = login(make_node(oper_password="sesame"), "ann")
        ann.send(f"OPER {guess}")
        assert ann.lines() == ["ERR not-permitted wrong operator password"]
        assert not ann.connection.session.is_oper

    def test_no_password_configured(self, node: Node) -> None:
        """On a server without an operator password, OPER is not permitted."""
        ann = login(node, "ann")
        ann.send("OPER anything")
        assert ann.lines() == ["ERR not-permitted this server has no operator password"]
        assert not ann.connection.session.is_oper


class TestTell:
    """TELL <nick> <text>."""

    def test_tell_reaches_only_the_target(self, node: Node) -> None:
        """The target gets TELL <sender> <text>, the sender OK TELL, and nobody else anything."""
        ann, bob, cy = login(node, "ann"), login(node, "bob"), login(node, "cy")
        clear(ann, bob)
        ann.send("TELL bob meet at  noon")
        assert bob.lines() == ["TELL ann meet at  noon"]
        assert ann.lines() == ["OK TELL bob"]
        assert cy.lines() == []

    def test_tell_is_case_insensitive(self, node: Node) -> None:
        """TELL finds its target in any case; OK TELL names the target as they spell it."""
        ann, bob = login(node, "ann"), login(node, "Bob")
        clear(ann)
        ann.send("TELL BOB hi")
        assert bob.lines() == ["TELL ann hi"]
        assert ann.lines() == ["OK TELL Bob"]

    def test_tell_comes_after_the_broadcasts_it_is_due(self, node: Node) -> None:
        """A TELL sent in the same turn as a SAY reaches its target after that SAY."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("SAY everyone", "TELL bob just you")
        assert bob.lines() == ["SAY ann everyone", "TELL ann just you"]
        assert ann.lines() == ["SAY ann everyone", "OK TELL bob"]

    def test_tell_unknown_user(self, node: Node) -> None:
        """TELL to a nick nobody has answers ERR no-such-user."""
        ann = login(node, "ann")
        ann.send("TELL ghost boo")
        assert ann.lines() == ["ERR no-such-user nobody called ghost is here"]

    def test_tell_to_user_who_left(self, node: Node) -> None:
        """TELL to a user who has disconnected answers ERR no-such-user."""
        ann, bob = login(node, "ann"), login(node, "bob")
        bob.lose()
        clear(ann)
        ann.send("TELL bob hi")
        assert ann.lines() == ["ERR no-such-user nobody called bob is here"]

    def test_tell_without_text(self, node: Node) -> None:
        """TELL with only a nick answers ERR missing-argument."""
        ann = login(node, "ann")
        ann.send("TELL bob")
        lines = ann.lines()
        assert len(lines) == 1 and lines[0].startswith("ERR missing-argument ")


class TestWho:
    """WHO."""

    def test_who_in_empty_room_is_just_ok(self, node: Node) -> None:
        """WHO with nobody logged in answers OK WHO 0 and no USERS line."""
        lurker = connect(node)
        lurker.send("WHO")
        assert lurker.lines() == ["OK WHO 0"]

    def test_who_lists_nicks_in_login_order(self, node: Node) -> None:
        """WHO lists every logged-in nick in one line when they fit."""
        for nick in ("ann", "bob", "cy"):
            login(node, nick)
        lurker = connect(node)
        lurker.send("WHO")
        assert lurker.lines() == ["USERS ann bob cy", "OK WHO 3"]

    @pytest.mark.parametrize(("max_line", "nicks"), [
        (48, [f"n{i:04d}" for i in range(120)]),
        (40, [f"user{i:03d}" for i in range(60)]),
    ])
    def test_who_chunks_many_users_within_small_max_line(self, max_line: int,
                                                         nicks: list[str]) -> None:
        """With many users and a small max_line, USERS lines fit the limit and list everyone
        in order."""
        node = make_node(max_line=max_line, max_per_ip=1000)
        for nick in nicks:
            login(node, nick)
        client = connect(node)
        client.send("who")
        *users, done = client.lines()
        assert done == f"OK WHO {len(nicks)}"
        assert len(users) > 10
        assert all(line.startswith("USERS ") and len(line) + 2 <= max_line for line in users)
        assert [nick for line in users for nick in line.split(" ")[1:]] == nicks


class TestPingHelpErrors:
    """PING, HELP and the errors that keep the connection open."""

    @pytest.mark.parametrize(("line", "reply"), [
        ("PING", "PONG"),
        ("PING abc", "PONG abc"),
        ("ping 1 2 3", "PONG 1 2 3"),
    ])
    def test_ping_pong(self, node: Node, line: str, reply: str) -> None:
        """PING [token] answers PONG [token]."""
        client = connect(node)
        client.send(line)
        assert client.lines() == [reply]

    def test_help_lines_end_with_ok_help(self, node: Node) -> None:
        """HELP answers one HELP line per help entry, then OK HELP."""
        client = connect(node)
        client.send("HELP")
        assert client.lines() == [f"HELP {text}" for text in HELP_TEXT] + ["OK HELP"]

    @pytest.mark.parametrize(("line", "code"), [
        ("FROB", "unknown-command"),
        ("SAY", "missing-argument"),
        ("NICK a b", "bad-nick"),
        (b"SAY \xc3(", "bad-encoding"),
    ])
    def test_error_keeps_connection_open(self, node: Node, line: str | bytes,
                                         code: str) -> None:
        """A refused line answers ERR <code> <text> and the next line still works."""
        ann = login(node, "ann")
        ann.send(line, "PING x")
        lines = ann.lines()
        assert len(lines) == 2
        assert lines[0].startswith(f"ERR {code} ")
        assert lines[1] == "PONG x"
        assert closes(ann) == 0

    def test_blank_lines_are_ignored(self, node: Node) -> None:
        """Empty and blank lines get no answer."""
        client = connect(node)
        client.send("", "   ", b"\r", b"\x1b")
        assert client.lines() == []


class TestQuit:
    """QUIT [reason]."""

    def test_quit_says_bye_and_parts(self, node: Node) -> None:
        """QUIT sends BYE <reason> to the sender, PART <nick> <reason> to others, and closes."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.send("QUIT off to lunch")
        assert bob.lines() == ["BYE off to lunch"]
        assert ann.lines() == ["PART bob off to lunch"]
        assert closes(bob) == 1
        assert node.room.nicks == ["ann"]

    @pytest.mark.parametrize("line", ["QUIT", "quit", "QUIT ", "QUIT    "])
    def test_quit_without_reason_uses_default(self, node: Node, line: str) -> None:
        """QUIT with no reason, or a blank one, says BYE and PART with the default reason."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.send(line)
        assert bob.lines() == [f"BYE {DEFAULT_QUIT_REASON}"]
        assert ann.lines() == [f"PART bob {DEFAULT_QUIT_REASON}"]
        assert closes(bob) == 1

    def test_bye_comes_after_the_broadcasts_it_is_due(self, node: Node) -> None:
        """A QUIT in the same turn as a SAY reads the SAY before its BYE."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        ann.send("SAY wait")
        bob.send("QUIT")
        assert bob.lines() == ["SAY ann wait", f"BYE {DEFAULT_QUIT_REASON}"]
        assert ann.lines() == ["SAY ann wait", f"PART bob {DEFAULT_QUIT_REASON}"]

    def test_lines_after_quit_are_ignored(self, node: Node) -> None:
        """Once QUIT is handled, later lines get no answer and reach nobody."""
        ann, bob = login(node, "ann"), login(node, "bob")
        bob.send("QUIT")
        clear(ann, bob)
        bob.send("SAY still here?", "PING", "QUIT again")
        assert bob.lines() == []
        assert ann.lines() == []
        assert closes(bob) == 1

    def test_lines_after_quit_in_the_same_packet_are_ignored(self, node: Node) -> None:
        """Lines behind a QUIT in one packet are not handled."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.send("QUIT", "SAY ghost")
        assert bob.lines() == [f"BYE {DEFAULT_QUIT_REASON}"]
        assert ann.lines() == [f"PART bob {DEFAULT_QUIT_REASON}"]

    def test_quit_before_login_has_no_part(self, node: Node) -> None:
        """QUIT from a connection not logged in says BYE and tells nobody."""
        ann = login(node, "ann")
        client = connect(node)
        client.send("QUIT")
        assert client.lines() == [f"BYE {DEFAULT_QUIT_REASON}"]
        assert ann.lines() == []
        assert closes(client) == 1


class TestDisconnect:
    """The transport going away."""

    def test_disconnect_sends_part_to_others(self, node: Node) -> None:
        """A logged-in user's lost connection sends PART <nick> connection lost to the others."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.lose()
        assert ann.lines() == ["PART bob connection lost"]
        assert bob.lines() == []
        assert node.room.nicks == ["ann"] and len(node.room) == 1

    def test_disconnect_sends_part_once(self, node: Node) -> None:
        """A connection reported lost twice sends PART to the others once."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.lose()
        bob.lose()
        assert ann.lines() == ["PART bob connection lost"]
        assert bob.lines() == []

    def test_close_after_disconnect_does_nothing(self, node: Node) -> None:
        """close() on a disconnected session sends no BYE and does not close again."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.lose()
        bob.connection.session.close("too late")
        assert bob.lines() == []
        assert closes(bob) == 0
        assert ann.lines() == ["PART bob connection lost"]

    def test_disconnect_after_quit_sends_no_second_part(self, node: Node) -> None:
        """The transport's loss after QUIT does not announce the user again."""
        ann, bob = login(node, "ann"), login(node, "bob")
        clear(ann)
        bob.send("QUIT bye")
        bob.lose()
        assert ann.lines() == ["PART bob bye"]

    def test_disconnected_session_ignores_lines(self, node: Node) -> None:
        """Lines arriving after the transport is gone are not handled."""
        client = connect(node)
        client.lose()
        client.send("NICK ann")
        assert client.lines() == [] and node.room.nicks == []

    def test_disconnect_not_logged_in_is_silent(self, node: Node) -> None:
        """A connection that never logged in leaves without a PART and is forgotten."""
        ann = login(node, "ann")
        lurker = connect(node)
        lurker.lose()
        assert ann.lines() == []
        assert lurker.connection not in list(node.hub)

    def test_stale_disconnect_does_not_evict_new_holder_of_nick(self, node: Node) -> None:
        """A late second loss of a departed connection leaves a newcomer with its nick in."""
        old = login(node, "ann")
        old.lose()
        new = login(node, "ann")
        old.lose()
        assert node.room.find("ann") is new.connection.session
        assert new.lines() == []

    def test_nick_is_free_after_disconnect(self, node: Node) -> None:
        """Once a user has left, their nick can be taken again, in any case."""
        login(node, "ann").lose()
        login(node, "ANN")
        assert node.room.nicks == ["ANN"]

"""The IRC dialect (``chatd/dialects/irc.py``): a real ``Node`` on a
``MemoryReactorClock``, IRC clients and v1 line users over recording fake
links, no sockets; every line each peer reads is asserted byte for byte.

IRC peers come in by the ``irc`` door, line users by ``tcp``: one room,
each door in its own words.  The pure pieces (splitting and cutting text,
stripping formatting, encoding an event) are checked by hypothesis too, as
is ``line_received`` against arbitrary bytes.  The ``--irc`` options are
checked at the end, as ``test_history.py`` checks ``--history``.
"""

from __future__ import annotations

import re
from typing import Any, Self

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from irctokens.line import tokenise
from twisted.internet.testing import MemoryReactorClock

from chatd import __version__
from chatd.config import Config, ConfigError, parse_config
from chatd.dialects import irc
from chatd.events import Event, Said, Stamped, Told, Walled
from chatd.nicks import NICK_MAX, SERVER_NICK
from chatd.node import Node
from chatd.wire import clean_text, format_time
from tests import irc_openings
from tests.builders import LineReader, Peer, connect

NOW = 1764079503.25  # 2025-11-25T14:05:03.250Z: the clock every node here starts at
SERVER = "irc.test"
V = __version__

GREETING = f":irc.test NOTICE * :*** chatd {V}: one room, #chat; register with NICK and USER"
ISUPPORT = ("AWAYLEN=200", "CASEMAPPING=ascii", "CHANLIMIT=#:1", "CHANMODES=,,,nt", "CHANNELLEN=5",
            "CHANTYPES=#", "MODES=0", "NETWORK=chatd", "NICKLEN=20", "PREFIX=(o)@",
            "TARGMAX=PRIVMSG:1,NOTICE:1,WHOIS:1,NAMES:1,JOIN:1", "TOPICLEN=390", "UTF8ONLY")


# --- builders -----------------------------------------------------------------------


def make_irc_node(**settings: Any) -> Node:
    """A node with an IRC door named ``irc.test``, on a memory clock at ``NOW``;
    flood control is off unless asked for."""
    clock = MemoryReactorClock()
    clock.advance(NOW)
    settings.setdefault("flood_rate", 0.0)
    return Node(Config(irc=("tcp:0",), irc_server_name=SERVER, **settings), clock)


class IrcPeer(Peer):
    """One IRC client of a node, by the ``irc`` door, over a ``FakeLink``;
    CRLF-terminated lines, as IRC clients send them."""

    newline = b"\r\n"

    def __init__(self, node: Node) -> None:
        super().__init__(node, host="127.0.0.1", door="irc")

    def read(self) -> bytes:
        """The bytes written since the last read (or ``lines``), once the turn has ended."""
        self.end_turn()
        data = self.written()[self._read:]
        self._read += len(data)
        return data

    def register(self, nick: str, user: str | None = None, realname: str = "A Tester") -> Self:
        """NICK and USER; the whole welcome burst is read."""
        self.lines()
        self.send(f"NICK {nick}", f"USER {user or nick} 0 * :{realname}")
        lines = self.lines()
        assert lines[0].startswith(f":irc.test 001 {nick} "), lines
        assert f":irc.test 366 {nick} #chat :End of /NAMES list" in lines, lines
        return self

    def lose(self) -> None:
        """The transport reports the connection gone."""
        self.connection.lost()


def irc_connect(node: Node) -> IrcPeer:
    """An IRC client with its greeting read."""
    peer = IrcPeer(node)
    assert peer.lines() == [GREETING]
    return peer


def irc_login(node: Node, nick: str, **ident: str) -> IrcPeer:
    """An IRC client registered as ``nick``, everything so far read."""
    return irc_connect(node).register(nick, **ident)


def line_login(node: Node, nick: str) -> Peer:
    """A v1 line user by the ``tcp`` door (from loopback, so any number may come),
    logged in, everything so far read."""
    peer = connect(node, host="127.0.0.1").login(nick)
    peer.lines()
    return peer


def quiet(*peers: LineReader) -> None:
    """Read what every peer has had so far (a test looks at what comes next)."""
    for peer in peers:
        peer.lines()


def welcome_burst(nick: str, users: int) -> list[str]:
    """001 to 376: what a client reads on registering, before its JOIN."""
    return [
        f":irc.test 001 {nick} :Welcome to the chatd IRC network, {nick}!{nick}@chatd",
        f":irc.test 002 {nick} :Your host is irc.test, running version chatd-{V}",
        f":irc.test 003 {nick} :This server was created 2025-11-25 14:05:03 UTC",
        f":irc.test 004 {nick} irc.test chatd-{V} o nt",
        f":irc.test 005 {nick} {' '.join(ISUPPORT)} :are supported by this server",
        f":irc.test 251 {nick} :There are {users} users and 0 invisible on 1 servers",
        f":irc.test 254 {nick} 1 :channels formed",
        f":irc.test 255 {nick} :I have {users} clients and 1 servers",
        f":irc.test 375 {nick} :- irc.test Message of the day - ",
        f":irc.test 372 {nick} :- This is chatd: one room, whatever door you came by.",
        f":irc.test 372 {nick} :- Everyone here is in #chat: telnet and nc users, chat-tui, "
        "the browser page",
        f":irc.test 372 {nick} :- and IRC clients all hear everyone. It is the only channel; "
        "/quit leaves.",
        f":irc.test 372 {nick} :- /msg <nick> speaks privately; /nick renames you; "
        "/wallops alerts everyone",
        f":irc.test 372 {nick} :- (operators only when the server has an operator password: "
        "/oper any <password>).",
        f":irc.test 372 {nick} :- Nicks: 1-20 ASCII letters, digits, '_' or '-', "
        "starting with a letter.",
        f":irc.test 376 {nick} :End of /MOTD command.",
    ]


def well_formed(raw: bytes) -> bool:
    """One IRC line as a client can read it: at most 512 bytes with its CRLF, UTF-8,
    no CR, LF or NUL inside, a command, and no empty word before the trailing
    parameter (a doubled space there is a parameter lost to the reader)."""
    if not raw.endswith(b"\r\n") or len(raw) > irc.LINE_BYTES:
        return False
    body = raw[:-2]
    if any(bad in body for bad in (b"\r", b"\n", b"\x00")):
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    words = text.partition(" :")[0].split(" ")
    if words[0].startswith("@"):
        words = words[1:]
    if words and words[0].startswith(":"):
        words = words[1:]
    return bool(words) and all(words)


def raw_lines(data: bytes) -> list[bytes]:
    """IRC lines with their CRLF; the data must end in one."""
    assert data.endswith(b"\r\n"), data
    return [part + b"\r\n" for part in data.split(b"\r\n")[:-1]]


# --- registration ---------------------------------------------------------------------


class TestRegistration:
    """RFC 1459 and IRCv3 registration: CAP, NICK, USER, then the welcome burst and JOIN."""

    def test_greeting_is_a_server_notice(self) -> None:
        """A new IRC connection reads one NOTICE from the server, to ``*``, naming the channel."""
        node = make_irc_node()
        peer = IrcPeer(node)
        assert peer.lines() == [GREETING]

    def test_cap_ls_nick_user_cap_end_gives_the_whole_burst(self) -> None:
        """WeeChat's and HexChat's order: CAP LS 302 is answered with server-time alone and
        holds registration; CAP END gives 001-005, LUSERS, the MOTD, the client's own JOIN,
        and the names."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_connect(node)
        ann.send("CAP LS 302", "NICK ann", "USER ann 0 * :Ann Example")
        assert ann.lines() == [":irc.test CAP * LS server-time"]
        ann.send("CAP END")
        assert ann.lines() == [*welcome_burst("ann", 2),
                               ":ann!ann@chatd JOIN #chat",
                               ":irc.test 353 ann = #chat :bob ann",
                               ":irc.test 366 ann #chat :End of /NAMES list"]
        assert bob.lines() == ["JOIN ann"]

    def test_isupport_says_what_the_server_does(self) -> None:
        """005 lists exactly the tokens chatd honours, at most 13 of them (15 parameters
        with the nick and the trailing text); CHANNELLEN is the channel's own length."""
        node = make_irc_node(irc_channel="#lobby")
        peer = IrcPeer(node)
        peer.send("NICK ann", "USER ann 0 * :Ann")
        [isupport] = [line for line in peer.lines() if line.startswith(":irc.test 005 ")]
        params = tokenise(isupport).params
        assert params[0] == "ann" and params[-1] == "are supported by this server"
        assert tuple(params[1:-1]) == tuple(
            "CHANNELLEN=6" if token.startswith("CHANNELLEN=") else token for token in ISUPPORT)
        assert len(params) <= 15

    def test_nick_then_user_registers_at_user(self) -> None:
        """Without CAP, NICK alone waits; USER completes registration."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("NICK ann")
        assert peer.lines() == []
        peer.send("USER ann 0 * :Ann")
        assert peer.lines()[0] == (":irc.test 001 ann :Welcome to the chatd IRC network, "
                                   "ann!ann@chatd")

    def test_user_then_nick_registers_at_nick(self) -> None:
        """USER first, as some bots send it, then NICK: registered at NICK."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("USER ann 0 * :Ann")
        assert peer.lines() == []
        peer.send("NICK ann")
        assert peer.lines()[0].startswith(":irc.test 001 ann ")

    def test_registration_is_held_until_cap_end(self) -> None:
        """After CAP LS, NICK and USER register nobody: the room hears no JOIN and the nick
        is free until CAP END."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        peer = irc_connect(node)
        peer.send("CAP LS", "NICK ann", "USER ann 0 * :Ann")
        assert peer.lines() == [":irc.test CAP * LS server-time"]
        assert bob.lines() == [] and node.room.nicks == ["bob"]
        peer.send("CAP END")
        assert peer.lines()[0].startswith(":irc.test 001 ann ")
        assert bob.lines() == ["JOIN ann"]

    def test_cap_req_is_refused_and_holds_registration_too(self) -> None:
        """CAP REQ is answered NAK (no capability is offered) and registration waits for
        CAP END."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("CAP REQ :multi-prefix sasl", "NICK ann", "USER ann 0 * :Ann")
        assert peer.lines() == [":irc.test CAP * NAK :multi-prefix sasl"]
        peer.send("CAP LIST", "CAP END")
        lines = peer.lines()
        assert lines[0] == ":irc.test CAP * LIST :"
        assert lines[1].startswith(":irc.test 001 ann ")

    def test_unknown_cap_subcommand_is_410(self) -> None:
        """A CAP subcommand chatd does not know is 410."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("CAP FROB")
        assert peer.lines() == [":irc.test 410 * FROB :Invalid CAP command"]

    @pytest.mark.parametrize("client", irc_openings.CLIENTS)
    def test_real_clients_openings_register(self, client: str) -> None:
        """irssi's, WeeChat's and HexChat's opening bytes, as captured, register the client
        and join it (irssi's bogus ``JOIN :`` before registering is a 451)."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.feed(irc_openings.opening(client, "ann"))
        lines = peer.lines()
        expected_start = [":irc.test CAP * LS server-time"]
        if client == "irssi":
            expected_start.append(":irc.test 451 * :You have not registered")
        assert lines[:len(expected_start)] == expected_start
        assert lines[len(expected_start)].startswith(":irc.test 001 ann ")
        assert lines[-3:] == [":ann!ann@chatd JOIN #chat", ":irc.test 353 ann = #chat :ann",
                              ":irc.test 366 ann #chat :End of /NAMES list"]

    def test_lines_said_before_are_played_back_after_the_names(self) -> None:
        """With lines said before it came, a client reads them after 366, as server NOTICEs
        to the channel naming the time and the speaker, between two notices to itself."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        bob.send("SAY hello there", "SAY * waves")
        ann = irc_connect(node)
        ann.send("NICK ann", "USER ann 0 * :Ann")
        lines = ann.lines()
        end = lines.index(":irc.test 366 ann #chat :End of /NAMES list")
        assert lines[end + 1:] == [":irc.test NOTICE #chat :*** the last 2 lines said before you joined:",
                                   ":irc.test NOTICE #chat :[14:05 UTC] <bob> hello there",
                                   ":irc.test NOTICE #chat :[14:05 UTC] * bob waves",
                                   ":irc.test NOTICE #chat :*** end of history"]

    def test_nothing_played_back_when_nothing_was_said(self) -> None:
        """In a room where nobody spoke, the burst ends at 366."""
        node = make_irc_node()
        line_login(node, "bob")
        ann = irc_connect(node)
        ann.send("NICK ann", "USER ann 0 * :Ann")
        assert ann.lines()[-1] == ":irc.test 366 ann #chat :End of /NAMES list"

    @pytest.mark.parametrize("line", ["PRIVMSG #chat :hi", "JOIN :", "WHO #chat", "MODE ann +i",
                                      "WHOIS bob"])
    def test_room_commands_before_registration_are_451(self, line: str) -> None:
        """Before registration a room command is 451 to ``*``, and nothing reaches the room."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        peer = irc_connect(node)
        peer.send(line)
        assert peer.lines() == [":irc.test 451 * :You have not registered"]
        assert bob.lines() == []

    def test_ping_is_answered_before_registration(self) -> None:
        """PING needs no registration."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("PING :abc")
        assert peer.lines() == [":irc.test PONG irc.test abc"]

    def test_unknown_command_is_421(self) -> None:
        """A command IRC does not have here is 421, before and after registration."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("FROB x")
        assert peer.lines() == [":irc.test 421 * FROB :Unknown command"]
        peer.register("ann")
        peer.send("frob")
        assert peer.lines() == [":irc.test 421 ann FROB :Unknown command"]

    @pytest.mark.parametrize("nick", ["1abc", "a.b", "ann!", "x" * 21])
    def test_bad_nick_is_432(self, nick: str) -> None:
        """A nick outside the room's syntax is 432 with the rule, and registers nothing."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send(f"NICK {nick}", "USER ann 0 * :Ann")
        assert peer.lines() == [f":irc.test 432 * {nick} :Erroneous nickname: a nick is 1-20 ASCII "
                                "letters, digits, '_' or '-', starting with a letter"]
        assert node.room.nicks == []

    def test_bad_nick_after_registration_is_432_to_the_nick(self) -> None:
        """Renaming to a bad nick is 432, addressed to the current nick, which stays."""
        node = make_irc_node()
        peer = irc_login(node, "ann")
        peer.send("NICK 9lives")
        assert peer.lines() == [":irc.test 432 ann 9lives :Erroneous nickname: a nick is 1-20 ASCII "
                                "letters, digits, '_' or '-', starting with a letter"]
        assert node.room.nicks == ["ann"]

    def test_nick_without_a_name_is_431(self) -> None:
        """NICK alone is 431."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("NICK")
        assert peer.lines() == [":irc.test 431 * :No nickname given"]

    def test_taken_nick_is_433_and_another_nick_then_registers(self) -> None:
        """A nick in use (by a line user, ignoring case) is 433 to ``*``; the client's next
        NICK, as irssi's added underscore, registers with the USER already given."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        peer = irc_connect(node)
        peer.send("NICK BOB", "USER bob 0 * :Bob")
        assert peer.lines() == [":irc.test 433 * BOB :Nickname is already in use"]
        peer.send("NICK bob_")
        assert peer.lines()[0].startswith(":irc.test 001 bob_ ")
        assert bob.lines() == ["JOIN bob_"]

    def test_user_twice_is_462(self) -> None:
        """A second USER after registration is 462; so is PASS."""
        node = make_irc_node()
        peer = irc_login(node, "ann")
        peer.send("USER again 0 * :Again", "PASS secret")
        assert peer.lines() == [":irc.test 462 ann :You may not reregister"] * 2

    def test_user_with_too_few_parameters_is_461(self) -> None:
        """USER needs four parameters."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("USER ann 0 *")
        assert peer.lines() == [":irc.test 461 * USER :Not enough parameters"]

    def test_pass_before_registration_is_ignored(self) -> None:
        """A server password before registration is taken silently (the room has no accounts)."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("PASS hunter2")
        assert peer.lines() == []
        peer.register("ann")

    def test_quit_before_registration_closes(self) -> None:
        """QUIT before registering: ERROR with the reason, and the connection closes."""
        node = make_irc_node()
        peer = irc_connect(node)
        peer.send("QUIT :changed my mind")
        assert peer.lines() == ["ERROR :Closing link: changed my mind"]
        assert peer.link.calls == ["close"]


# --- speaking ---------------------------------------------------------------------------


class TestSpeaking:
    """PRIVMSG and NOTICE are SAY and TELL; line users' lines reach IRC as PRIVMSG."""

    def test_privmsg_to_the_channel_is_said_to_the_room_but_not_echoed(self) -> None:
        """A line to #chat reaches line users as SAY and other IRC members as PRIVMSG from
        the speaker's mask; the speaker is not sent its own line back."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        ann.send("PRIVMSG #chat :hello everyone")
        assert bob.lines() == ["SAY ann hello everyone"]
        assert cy.lines() == [":ann!ann@chatd PRIVMSG #chat :hello everyone"]
        assert ann.lines() == []

    def test_channel_name_ignores_case(self) -> None:
        """``#CHAT`` is the room (CASEMAPPING=ascii)."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("PRIVMSG #CHAT :hi")
        assert bob.lines() == ["SAY ann hi"]

    def test_line_users_say_reaches_irc_as_privmsg_to_the_channel(self) -> None:
        """SAY from a line user is a PRIVMSG to #chat from ``nick!nick@chatd``."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        bob.send("SAY good  morning")
        assert ann.lines() == [":bob!bob@chatd PRIVMSG #chat :good  morning"]
        assert bob.lines() == ["SAY bob good  morning"]

    def test_privmsg_to_a_nick_is_a_tell(self) -> None:
        """PRIVMSG to a line user's nick (any case) is TELL; the sender reads nothing back."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("PRIVMSG BOB :psst")
        assert bob.lines() == ["TELL ann psst"]
        assert ann.lines() == []

    def test_line_users_tell_reaches_irc_as_privmsg_to_the_nick(self) -> None:
        """TELL from a line user is a PRIVMSG to the IRC member's nick."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        bob.send("TELL ann psst")
        assert bob.lines() == ["OK TELL ann"]
        assert ann.lines() == [":bob!bob@chatd PRIVMSG ann :psst"]

    def test_privmsg_between_irc_members(self) -> None:
        """One IRC member to another: a PRIVMSG to the target's nick, and to nobody else."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        ann.send("PRIVMSG cy :just you")
        assert cy.lines() == [":ann!ann@chatd PRIVMSG cy :just you"]
        assert bob.lines() == [] and ann.lines() == []

    def test_ctcp_action_from_irc_is_a_star_say(self) -> None:
        """``/me waves`` is ``SAY ann * waves`` to line users and stays an ACTION for IRC."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        ann.send("PRIVMSG #chat :\x01ACTION waves\x01")
        assert bob.lines() == ["SAY ann * waves"]
        assert cy.lines() == [":ann!ann@chatd PRIVMSG #chat :\x01ACTION waves\x01"]

    def test_star_say_from_a_line_user_is_a_ctcp_action(self) -> None:
        """``SAY * waves`` reaches IRC as ``\\x01ACTION waves\\x01``."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        bob.send("SAY * waves")
        assert ann.lines() == [":bob!bob@chatd PRIVMSG #chat :\x01ACTION waves\x01"]

    def test_private_actions_both_ways(self) -> None:
        """An ACTION to a nick is ``TELL ann * hugs``, and a star TELL is an ACTION to the nick."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("PRIVMSG bob :\x01ACTION hugs\x01")
        assert bob.lines() == ["TELL ann * hugs"]
        bob.send("TELL ann * hugs back")
        assert ann.lines() == [":bob!bob@chatd PRIVMSG ann :\x01ACTION hugs back\x01"]

    def test_lone_star_from_a_line_user_still_reaches_irc(self) -> None:
        """``SAY * `` (a star and a space, nothing more) is a line like any other: IRC
        members read something of it, not nothing."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        bob.send("SAY * ")
        assert bob.lines() == ["SAY bob * "]
        lines = ann.lines()
        assert len(lines) == 1 and lines[0].startswith(":bob!bob@chatd PRIVMSG #chat :"), lines

    def test_other_ctcp_is_not_relayed(self) -> None:
        """A CTCP other than ACTION reaches nobody; a PRIVMSG one is answered with a notice
        saying so, a NOTICE one (a CTCP reply) with nothing."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("PRIVMSG bob :\x01VERSION\x01", "PRIVMSG #chat :\x01PING 123\x01")
        assert ann.lines() == [":irc.test NOTICE ann :*** CTCP VERSION is not relayed here",
                               ":irc.test NOTICE ann :*** CTCP PING is not relayed here"]
        ann.send("NOTICE bob :\x01VERSION irssi\x01")
        assert ann.lines() == [] and bob.lines() == []

    def test_formatting_codes_are_stripped(self) -> None:
        """Bold, colours with their numbers, italic, underline and reset are removed before
        the line is relayed, to line users and IRC members alike."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        ann.send("PRIVMSG #chat :\x02bold\x02 \x0304,12red\x03 \x1ditalic\x1d \x1funder\x1f\x0f!")
        assert bob.lines() == ["SAY ann bold red italic under!"]
        assert cy.lines() == [":ann!ann@chatd PRIVMSG #chat :bold red italic under!"]

    def test_notice_to_the_channel_is_said(self) -> None:
        """NOTICE #chat is relayed as a SAY, like PRIVMSG."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("NOTICE #chat :by the way")
        assert bob.lines() == ["SAY ann by the way"]

    @pytest.mark.parametrize(("line", "reply"), [
        ("PRIVMSG", ":irc.test 411 ann :No recipient given (PRIVMSG)"),
        ("PRIVMSG #chat", ":irc.test 412 ann :No text to send"),
        ("PRIVMSG #chat :", ":irc.test 412 ann :No text to send"),
        ("PRIVMSG #chat :\x02\x0f", ":irc.test 412 ann :No text to send"),
        ("PRIVMSG #chat :\x01ACTION\x01", ":irc.test 412 ann :No text to send"),
        ("PRIVMSG nobody :hi", ":irc.test 401 ann nobody :No such nick/channel"),
        ("PRIVMSG #other :hi", ":irc.test 403 ann #other :No such channel"),
    ], ids=["411", "412-no-text", "412-empty", "412-only-formatting", "412-empty-action", "401", "403"])
    def test_privmsg_errors(self, line: str, reply: str) -> None:
        """A PRIVMSG that cannot be relayed is answered with its numeric, and reaches nobody."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send(line)
        assert ann.lines() == [reply]
        assert bob.lines() == []

    @pytest.mark.parametrize("line", ["NOTICE", "NOTICE #chat", "NOTICE #chat :", "NOTICE nobody :hi",
                                      "NOTICE #other :hi", "NOTICE bob :\x01PING 1\x01"])
    def test_notice_is_never_answered_with_an_error(self, line: str) -> None:
        """No automatic reply to a NOTICE (RFC 2812), whatever is wrong with it."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send(line)
        assert ann.lines() == []
        assert bob.lines() == []

    def test_a_long_line_users_line_reaches_irc_in_whole_lines(self) -> None:
        """A line user's 1000-byte line of 1- to 4-byte characters reaches an IRC member as
        several PRIVMSGs, each at most 512 bytes with its CRLF and valid UTF-8, whose texts
        joined are the line."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        text = ""
        for index in range(1000):
            char = "aé€😀 "[index % 5]
            if len((text + char).encode()) > 1000:
                break
            text += char
        text += "a" * (1000 - len(text.encode()))
        assert len(text.encode()) == 1000
        bob.send(f"SAY {text}")
        head = b":bob!bob@chatd PRIVMSG #chat :"
        lines = raw_lines(ann.read())
        assert len(lines) > 2
        assert all(len(raw) <= 512 and raw.startswith(head) for raw in lines), lines
        pieces = [raw[len(head):-2].decode("utf-8") for raw in lines]
        assert "".join(pieces) == text

    def test_an_irc_senders_text_is_cut_to_fit_one_relayed_line(self) -> None:
        """A 510-byte PRIVMSG would be longer once the server puts the speaker's mask in
        front: its text is cut, at a character boundary, to the most that fits 512 bytes,
        and line users read the same cut text."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        text = "€" * 165  # 495 bytes: the whole 510-byte line
        line = f"PRIVMSG #chat :{text}".encode()
        assert len(line) == irc.MAX_LINE
        ann.feed(line + b"\r\n")
        head = b":ann!ann@chatd PRIVMSG #chat :"
        [relayed] = raw_lines(cy.read())
        assert len(relayed) <= 512 and relayed.startswith(head)
        cut = relayed[len(head):-2].decode("utf-8")
        assert text.startswith(cut) and len(cut.encode()) > 512 - 2 - len(head) - 3
        assert bob.lines() == [f"SAY ann {cut}"]


# --- nicks, joining and leaving ---------------------------------------------------------------


class TestNicksAndLeaving:
    """NICK is a rename, QUIT a PART; line users' JOIN, RENAME and PART reach IRC."""

    def test_nick_renames_for_everyone(self) -> None:
        """NICK after registration: every IRC member, the renamed one too, reads
        ``:old!old@chatd NICK new``; line users read RENAME."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        ann.send("NICK annie")
        assert ann.lines() == [":ann!ann@chatd NICK annie"]
        assert cy.lines() == [":ann!ann@chatd NICK annie"]
        assert bob.lines() == ["RENAME ann annie"]
        ann.send("PING x")
        assert ann.lines() == [":irc.test PONG irc.test x"]
        ann.send("LUSERS")
        assert ann.lines()[0] == ":irc.test 251 annie :There are 3 users and 0 invisible on 1 servers"

    def test_rename_to_a_taken_nick_is_433(self) -> None:
        """Renaming to a nick in use is 433 to the current nick, and nobody hears a thing."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("NICK Bob")
        assert ann.lines() == [":irc.test 433 ann Bob :Nickname is already in use"]
        assert bob.lines() == []

    def test_line_users_join_rename_and_part_reach_irc(self) -> None:
        """A line user's JOIN, RENAME and QUIT are JOIN #chat, NICK and QUIT to IRC."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = connect(node)
        bob.send("NICK bob", "NICK bobby", "QUIT off to lunch")
        assert ann.lines() == [":bob!bob@chatd JOIN #chat", ":bob!bob@chatd NICK bobby",
                               ":bobby!bobby@chatd QUIT :off to lunch"]

    def test_quit_is_error_then_close_and_a_part_for_the_room(self) -> None:
        """QUIT with a reason: the client reads ERROR and is closed; line users read PART
        with the reason, IRC members a QUIT."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        quiet(bob, ann)
        ann.send("QUIT :gone fishing")
        assert ann.lines() == ["ERROR :Closing link: gone fishing"]
        assert ann.link.calls == ["close"]
        assert bob.lines() == ["PART ann gone fishing"]
        assert cy.lines() == [":ann!ann@chatd QUIT :gone fishing"]

    def test_quit_without_a_reason_says_leaving(self) -> None:
        """QUIT alone gives the default reason."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("QUIT")
        assert ann.lines() == ["ERROR :Closing link: leaving"]
        assert bob.lines() == ["PART ann leaving"]

    def test_lost_connection_is_a_part(self) -> None:
        """An IRC connection that drops is PART ... connection lost for line users."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.lose()
        assert bob.lines() == ["PART ann connection lost"]

    def test_part_of_the_channel_is_a_notice(self) -> None:
        """PART #chat leaves nothing (the channel is the room): a notice says to /quit."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("PART #chat :bye")
        assert ann.lines() == [":irc.test NOTICE ann :*** #chat is the whole room here; "
                               "use /quit to leave it"]
        assert bob.lines() == []

    def test_part_of_another_channel_is_442(self) -> None:
        """PART #x is 442; PART alone 461."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send("PART #x", "PART")
        assert ann.lines() == [":irc.test 442 ann #x :You're not on that channel",
                               ":irc.test 461 ann PART :Not enough parameters"]

    def test_join_of_the_channel_again_echoes_join_and_names(self) -> None:
        """JOIN #chat once in: the client's own JOIN and the names again; nobody else hears it."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("JOIN #chat")
        assert ann.lines() == [":ann!ann@chatd JOIN #chat", ":irc.test 353 ann = #chat :bob ann",
                               ":irc.test 366 ann #chat :End of /NAMES list"]
        assert bob.lines() == []

    def test_join_of_another_channel_is_403(self) -> None:
        """JOIN #x is 403 naming the one channel; JOIN 0 is PART #chat's notice."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send("JOIN #x", "JOIN 0", "JOIN")
        assert ann.lines() == [":irc.test 403 ann #x :No such channel; #chat is the only one",
                               ":irc.test NOTICE ann :*** #chat is the whole room here; use /quit to leave it",
                               ":irc.test 461 ann JOIN :Not enough parameters"]

    def test_join_list_with_an_empty_name_gives_no_malformed_line(self) -> None:
        """``JOIN #chat,`` (a trailing comma) joins #chat, and any answer for the empty name
        is a well-formed line, never one with an empty middle parameter."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send("JOIN #chat,")
        lines = raw_lines(ann.read())
        assert lines[0] == b":ann!ann@chatd JOIN #chat\r\n"
        assert all(well_formed(raw) for raw in lines), lines

    @pytest.mark.parametrize("line", ["JOIN ,", "PART #chat,", "MODE :", "NAMES :", "TOPIC :", "WHO :",
                                      "WHOIS :", "WHOIS ann :"])
    def test_an_empty_name_is_never_an_empty_parameter(self, line: str) -> None:
        """A command naming an empty target is answered, and the answer names no empty
        middle parameter (``:irc.test 401 ann  :...`` reads as a 401 about ``No such...``)."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send(line)
        lines = raw_lines(ann.read())
        assert lines and all(well_formed(raw) for raw in lines), lines


# --- queries -----------------------------------------------------------------------------------


class TestQueries:
    """PING, WHO, WHOIS, NAMES, MODE, TOPIC, ISON, USERHOST, AWAY, LUSERS, VERSION, LIST."""

    @pytest.fixture
    def room(self) -> tuple[Node, IrcPeer, Peer]:
        """ann on IRC (user ``annie``, real name ``Ann Example``) and bob by TCP."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann", user="annie", realname="Ann Example")
        quiet(bob)
        return node, ann, bob

    def test_ping_is_pong(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """PING token is PONG from the server with the token; PING alone is 409."""
        _, ann, _ = room
        ann.send("PING :lag 1", "PING")
        assert ann.lines() == [":irc.test PONG irc.test :lag 1",
                               ":irc.test 409 ann :No origin specified"]

    def test_pong_is_not_answered(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """A PONG from the client gets nothing."""
        _, ann, _ = room
        ann.send("PONG :irc.test")
        assert ann.lines() == []

    def test_who_of_the_channel(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """WHO #chat is a 352 per member, with what an IRC member gave in USER, then 315."""
        _, ann, _ = room
        ann.send("WHO #chat")
        assert ann.lines() == [":irc.test 352 ann #chat bob chatd irc.test bob H :0 a chatd user",
                               ":irc.test 352 ann #chat annie chatd irc.test ann H :0 Ann Example",
                               ":irc.test 315 ann #chat :End of /WHO list"]

    def test_who_of_a_nick_and_of_nobody(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """WHO nick is that member's 352; WHO of nobody here is 315 alone."""
        _, ann, _ = room
        ann.send("WHO BOB", "WHO nobody")
        assert ann.lines() == [":irc.test 352 ann #chat bob chatd irc.test bob H :0 a chatd user",
                               ":irc.test 315 ann BOB :End of /WHO list",
                               ":irc.test 315 ann nobody :End of /WHO list"]

    def test_whois_of_an_irc_member(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """WHOIS of an IRC member: 311, 319, 312, then 317 with its idle time since it last
        spoke and its signon time, then 318."""
        node, ann, bob = room
        ann.send("PRIVMSG #chat :hi")
        node.clock.advance(30)  # type: ignore[attr-defined]
        cy = irc_login(node, "cy")
        cy.send("WHOIS ann")
        assert cy.lines() == [":irc.test 311 cy ann annie chatd * :Ann Example",
                              ":irc.test 319 cy ann #chat",
                              f":irc.test 312 cy ann irc.test :chatd {V}",
                              f":irc.test 317 cy ann 30 {int(NOW)} :seconds idle, signon time",
                              ":irc.test 318 cy ann :End of /WHOIS list"]

    def test_whois_of_a_line_user(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """WHOIS of a line user: its nick as user name, no idle time."""
        _, ann, _ = room
        ann.send("WHOIS Bob")
        assert ann.lines() == [":irc.test 311 ann bob bob chatd * :a chatd user",
                               ":irc.test 319 ann bob #chat",
                               f":irc.test 312 ann bob irc.test :chatd {V}",
                               ":irc.test 318 ann bob :End of /WHOIS list"]

    def test_whois_of_nobody(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """WHOIS of a nick not here is 401 then 318; WHOIS alone 431."""
        _, ann, _ = room
        ann.send("WHOIS nobody", "WHOIS")
        assert ann.lines() == [":irc.test 401 ann nobody :No such nick/channel",
                               ":irc.test 318 ann nobody :End of /WHOIS list",
                               ":irc.test 431 ann :No nickname given"]

    def test_names(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """NAMES lists the room; NAMES of another channel is 366 alone."""
        _, ann, _ = room
        ann.send("NAMES #chat", "NAMES #x")
        assert ann.lines() == [":irc.test 353 ann = #chat :bob ann",
                               ":irc.test 366 ann #chat :End of /NAMES list",
                               ":irc.test 366 ann #x :End of /NAMES list"]

    def test_names_of_a_big_room_is_cut_into_lines(self) -> None:
        """With 60 members of 20-character nicks, 353 comes in several lines of at most
        512 bytes, listing every nick once."""
        node = make_irc_node()
        nicks = [f"user{i:02d}" + "x" * 14 for i in range(60)]
        for nick in nicks:
            line_login(node, nick)
        ann = irc_login(node, "ann")
        ann.send("NAMES")
        lines = raw_lines(ann.read())
        assert lines[-1] == b":irc.test 366 ann #chat :End of /NAMES list\r\n"
        assert len(lines) > 2 and all(len(raw) <= 512 and well_formed(raw) for raw in lines)
        listed = [nick for raw in lines[:-1] for nick in tokenise(raw[:-2].decode()).params[-1].split(" ")]
        assert listed == [*nicks, "ann"]

    @pytest.mark.parametrize(("line", "replies"), [
        ("MODE #chat", [":irc.test 324 ann #chat +nt", f":irc.test 329 ann #chat {int(NOW)}"]),
        ("MODE #chat b", [":irc.test 368 ann #chat :End of channel ban list"]),
        ("MODE #chat +m", [":irc.test 482 ann #chat :You're not a channel operator"]),
        ("MODE ann", [":irc.test 221 ann +"]),
        ("MODE ann +i", [":irc.test 221 ann +"]),
        ("MODE ann +x", [":irc.test 501 ann :Unknown MODE flag"]),
        ("MODE bob", [":irc.test 502 ann :Can't change mode for other users"]),
        ("MODE nobody", [":irc.test 401 ann nobody :No such nick/channel"]),
        ("MODE #x", [":irc.test 403 ann #x :No such channel"]),
        ("MODE", [":irc.test 461 ann MODE :Not enough parameters"]),
    ])
    def test_mode(self, room: tuple[Node, IrcPeer, Peer], line: str, replies: list[str]) -> None:
        """MODE of the channel, of oneself, of others, as irssi and WeeChat ask them."""
        _, ann, _ = room
        ann.send(line)
        assert ann.lines() == replies

    @pytest.mark.parametrize(("line", "reply"), [
        ("TOPIC #chat", ":irc.test 331 ann #chat :No topic is set"),
        ("TOPIC #chat :new topic", ":irc.test 482 ann #chat :You're not a channel operator"),
        ("TOPIC #x", ":irc.test 403 ann #x :No such channel"),
        ("TOPIC", ":irc.test 461 ann TOPIC :Not enough parameters"),
    ])
    def test_topic(self, room: tuple[Node, IrcPeer, Peer], line: str, reply: str) -> None:
        """The room has no topic, and nobody may set one."""
        _, ann, _ = room
        ann.send(line)
        assert ann.lines() == [reply]

    def test_ison(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """ISON answers the nicks here, as the room spells them."""
        _, ann, _ = room
        ann.send("ISON BOB nobody ann", "ISON nobody")
        assert ann.lines() == [":irc.test 303 ann :bob ann", ":irc.test 303 ann :"]

    def test_userhost(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """USERHOST gives ``nick=+user@chatd`` for each nick here."""
        _, ann, _ = room
        ann.send("USERHOST bob ann nobody")
        assert ann.lines() == [":irc.test 302 ann :bob=+bob@chatd ann=+annie@chatd"]

    def test_away(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """AWAY with a message is 306, without 305."""
        _, ann, _ = room
        ann.send("AWAY :lunch", "AWAY")
        assert ann.lines() == [":irc.test 306 ann :You have been marked as being away",
                               ":irc.test 305 ann :You are no longer marked as being away"]

    def test_lusers(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """LUSERS counts the room: line users and IRC members alike."""
        _, ann, _ = room
        ann.send("LUSERS")
        assert ann.lines() == [":irc.test 251 ann :There are 2 users and 0 invisible on 1 servers",
                               ":irc.test 254 ann 1 :channels formed",
                               ":irc.test 255 ann :I have 2 clients and 1 servers"]

    def test_version(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """VERSION is 351 and the 005 tokens again."""
        _, ann, _ = room
        ann.send("VERSION")
        assert ann.lines() == [f":irc.test 351 ann chatd-{V} irc.test :one room for every door",
                               f":irc.test 005 ann {' '.join(ISUPPORT)} :are supported by this server"]

    def test_list(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """LIST is the one channel with its member count."""
        _, ann, _ = room
        ann.send("LIST")
        assert ann.lines() == [":irc.test 321 ann Channel :Users  Name",
                               ":irc.test 322 ann #chat 2 :",
                               ":irc.test 323 ann :End of /LIST"]

    def test_time_and_motd(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """TIME is the node's clock; MOTD is the burst's MOTD again."""
        _, ann, _ = room
        ann.send("TIME", "MOTD")
        assert ann.lines() == [":irc.test 391 ann irc.test :Tuesday November 25 2025 -- 14:05:03 +00:00",
                               *welcome_burst("ann", 2)[8:]]

    def test_history_command(self, room: tuple[Node, IrcPeer, Peer]) -> None:
        """``/quote HISTORY`` plays back what was said before one joined, then counts it."""
        node, _, bob = room
        bob.send("SAY early")
        cy = irc_login(node, "cy")
        cy.send("HISTORY 5")
        assert cy.lines() == [":irc.test NOTICE #chat :[14:05 UTC] <bob> early",
                              ":irc.test NOTICE cy :*** end of history: 1 lines"]


# --- operators and WALL ------------------------------------------------------------------------


class TestOperators:
    """OPER and WALLOPS; WALL from line users and from the server."""

    def test_oper_with_the_password(self) -> None:
        """OPER with the right password is 381 and the user mode +o; WHOIS and USERHOST
        then show the operator."""
        node = make_irc_node(oper_password="sesame")
        ann = irc_login(node, "ann")
        ann.send("OPER ann sesame")
        assert ann.lines() == [":irc.test 381 ann :You are now an IRC operator",
                               ":ann!ann@chatd MODE ann +o"]
        ann.send("USERHOST ann", "MODE ann")
        assert ann.lines() == [":irc.test 302 ann ann*=+ann@chatd", ":irc.test 221 ann +o"]
        ann.send("WHOIS ann")
        assert ":irc.test 313 ann ann :is an IRC operator" in ann.lines()

    def test_oper_with_a_wrong_password_is_464(self) -> None:
        """A wrong password is 464, and no operator is made."""
        node = make_irc_node(oper_password="sesame")
        ann = irc_login(node, "ann")
        ann.send("OPER ann guess")
        assert ann.lines() == [":irc.test 464 ann :Password incorrect"]
        assert not ann.connection.session.is_oper

    def test_oper_without_a_server_password_is_491(self) -> None:
        """A server with no operator password makes no operators: 491."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send("OPER ann x", "OPER ann")
        assert ann.lines() == [":irc.test 491 ann :No O-lines for your host: this server has no "
                               "operator password",
                               ":irc.test 461 ann OPER :Not enough parameters"]

    def test_wallops_needs_oper_when_there_is_a_password(self) -> None:
        """WALLOPS before OPER, where a password is set, is 481 and reaches nobody."""
        node = make_irc_node(oper_password="sesame")
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("WALLOPS :fire drill")
        assert ann.lines() == [":irc.test 481 ann :Permission Denied- only operators may WALL on "
                               "this server; use /oper"]
        assert bob.lines() == []

    def test_wallops_from_an_operator_reaches_every_connection(self) -> None:
        """An operator's WALLOPS is ``WALL ann ...`` to line users and a server NOTICE
        ``WALL from ann: ...`` to every IRC member, the sender too."""
        node = make_irc_node(oper_password="sesame")
        bob = line_login(node, "bob")
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        ann.send("OPER ann sesame")
        quiet(bob, ann, cy)
        ann.send("WALLOPS :fire drill")
        assert bob.lines() == ["WALL ann fire drill"]
        assert ann.lines() == [":irc.test NOTICE #chat :WALL from ann: fire drill"]
        assert cy.lines() == [":irc.test NOTICE #chat :WALL from ann: fire drill"]

    def test_line_users_wall_reaches_irc(self) -> None:
        """A line user's WALL is the server's NOTICE ``WALL from bob: ...`` on IRC."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        bob.send("WALL fire")
        assert ann.lines() == [":irc.test NOTICE #chat :WALL from bob: fire"]

    def test_servers_own_wall_is_a_notice_of_its_text(self) -> None:
        """The server's WALL (nick ``*``) reaches IRC as a NOTICE of its text alone."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        bob = line_login(node, "bob")
        quiet(ann)
        node.room.wall(SERVER_NICK, "maintenance at noon")
        assert ann.lines() == [":irc.test NOTICE #chat :maintenance at noon"]
        assert bob.lines() == ["WALL * maintenance at noon"]


# --- the connection's limits -------------------------------------------------------------------


class TestConnectionLimits:
    """What the connection enforces, in IRC's words."""

    def test_invalid_utf8_is_fail_invalid_utf8(self) -> None:
        """A line that is not UTF-8 is dropped with ``FAIL <verb> INVALID_UTF8``; the next
        line is handled."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.feed(b"PRIVMSG #chat :caf\xe9\r\nPING x\r\n")
        assert ann.lines() == [":irc.test FAIL PRIVMSG INVALID_UTF8 :Messages must be UTF-8; "
                               "this one was dropped",
                               ":irc.test PONG irc.test x"]
        assert bob.lines() == []

    def test_fail_names_no_verb_for_a_line_with_a_prefix(self) -> None:
        """With a source or tags before the verb, FAIL names ``*``."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.feed(b":ann PRIVMSG #chat :\xff\r\n")
        assert ann.lines() == [":irc.test FAIL * INVALID_UTF8 :Messages must be UTF-8; "
                               "this one was dropped"]

    @pytest.mark.parametrize("raw", [b"\rPRIVMSG\xff", b"PRIV\x00MSG #chat :\xff", b"\x00\xff",
                                     b"PRIV\tMSG\xff"])
    def test_fail_is_a_well_formed_line_whatever_the_verb(self, raw: bytes) -> None:
        """The verb FAIL echoes never carries a CR, LF or NUL from the client's bytes
        into the server's line."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.feed(raw + b"\r\n")
        [reply] = raw_lines(ann.read())
        assert reply.startswith(b":irc.test FAIL ")
        assert well_formed(reply), reply

    def test_line_over_510_bytes_is_417(self) -> None:
        """A line of 511 bytes (513 with CRLF) is dropped with 417; one of 510 is relayed."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        head = b"PRIVMSG #chat :"
        ann.feed(head + b"x" * (511 - len(head)) + b"\r\n")
        assert ann.lines() == [":irc.test 417 ann :Input line was too long; it was dropped"]
        assert bob.lines() == []
        ann.feed(head + b"y" * (510 - len(head)) + b"\r\nPING after\r\n")
        assert ann.lines() == [":irc.test PONG irc.test after"]
        [said] = bob.lines()
        assert said.startswith("SAY ann yyy")

    def test_flooding_is_a_notice_and_lines_are_delayed(self) -> None:
        """Past the burst, the client reads a NOTICE saying its lines are delayed, and the
        held line is answered once the clock lets it."""
        node = make_irc_node(flood_burst=2, flood_rate=1.0)
        ann = irc_login(node, "ann")
        ann.clock.advance(10)  # the burst refills
        ann.send("PING 1", "PING 2", "PING 3")
        assert ann.lines() == [":irc.test PONG irc.test 1", ":irc.test PONG irc.test 2",
                               ":irc.test NOTICE ann :*** you are sending more than 1 lines a second; "
                               "the rest are delayed, not lost"]
        ann.clock.advance(1)
        assert ann.lines() == [":irc.test PONG irc.test 3"]

    def test_registration_timeout_is_error(self) -> None:
        """A client that never completes registration (NICK without USER) is closed with
        ERROR at the deadline."""
        node = make_irc_node(register_timeout=5.0)
        peer = irc_connect(node)
        peer.send("NICK ann")
        peer.clock.advance(5)
        assert peer.lines() == ["ERROR :Closing link: registration timeout: no NICK"]
        assert peer.link.calls == ["close"]

    def test_shutdown_is_a_notice_then_error(self) -> None:
        """At shutdown an IRC member, and a client not yet registered, read the server's
        NOTICE of the reason and then ERROR, and are closed."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        stranger = irc_connect(node)
        node.shutdown(lambda: None)
        for peer in (ann, stranger):
            assert peer.lines() == [":irc.test NOTICE #chat :server shutting down",
                                    "ERROR :Closing link: server shutting down"]
            assert peer.link.calls == ["close"]

    def test_a_full_server_is_error(self) -> None:
        """Past --max-clients, an IRC client reads the greeting, then ERROR with the reason,
        and is closed."""
        node = make_irc_node(max_clients=1)
        line_login(node, "bob")
        peer = IrcPeer(node)
        assert peer.lines() == [GREETING, "ERROR :Closing link: server is full, try again later"]
        assert peer.link.calls == ["close"]

    def test_idents_are_forgotten_when_the_connection_is_lost(self) -> None:
        """What a member said of itself in USER is kept while it is connected, not after."""
        node = make_irc_node()
        assert node.irc is not None
        ann = irc_login(node, "ann", user="annie", realname="Ann Example")
        session = ann.connection.session
        assert node.irc.idents[session].user == "annie"
        assert node.irc.idents[session].realname == "Ann Example"
        ann.send("QUIT")
        ann.lose()
        assert session not in node.irc.idents

    def test_node_gives_irc_its_own_line_limit(self) -> None:
        """The IRC door takes 510-byte lines; every other door ``--max-line``."""
        node = make_irc_node(max_line=2048)
        assert (node.max_line("irc"), node.max_line("tcp"), node.max_line("websocket")) == (
            510, 2048, 2048)


class TestTrailingParameterEchoed:
    """A client's last parameter may hold spaces or start with ':'; a numeric that names
    it as one of its middle parameters must still be a line (and nothing may raise)."""

    @pytest.mark.parametrize(("line", "numeric"), [
        ("NICK :a b", "432"),
        ("NICK ::x", "432"),
        ("JOIN :#a b", "403"),
        ("PART :#a b", "442"),
        ("NAMES :#a b", "366"),
        ("WHO :a b", "315"),
        ("WHOIS :a b", "401"),
        ("MODE :#a b", "403"),
        ("MODE :a b", "401"),
        ("TOPIC :#a b", "403"),
        ("CAP :a b", "410"),
    ])
    def test_answered_with_a_well_formed_numeric(self, line: str, numeric: str) -> None:
        """The command is answered with its numeric, every line of the answer well formed."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send(line)
        replies = raw_lines(ann.read())
        assert replies and replies[0].startswith(f":irc.test {numeric} ann ".encode()), replies
        assert all(well_formed(raw) for raw in replies), replies


# --- IRCv3 server-time ----------------------------------------------------------------------------

STAMP = "@time=2025-11-25T14:05:03.250Z "  # NOW as a server-time tag


class TestServerTime:
    """``CAP REQ :server-time``: every room event tagged with the time the bus stamped it."""

    def test_server_time_is_acknowledged_and_events_are_tagged(self) -> None:
        """After CAP REQ :server-time the numerics stay as they are, and every room event
        (the client's own JOIN, a line user's SAY) carries ``@time=`` with the bus's time."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_connect(node)
        ann.send("CAP LS 302", "CAP REQ :server-time", "NICK ann", "USER ann 0 * :Ann")
        assert ann.lines() == [":irc.test CAP * LS server-time", ":irc.test CAP * ACK server-time"]
        ann.send("CAP END")
        lines = ann.lines()
        assert lines[:16] == welcome_burst("ann", 2)
        assert lines[16:] == [STAMP + ":ann!ann@chatd JOIN #chat",
                              ":irc.test 353 ann = #chat :bob ann",
                              ":irc.test 366 ann #chat :End of /NAMES list"]
        node.clock.advance(60)  # type: ignore[attr-defined]
        bob.send("SAY a minute later")
        assert ann.lines() == ["@time=2025-11-25T14:06:03.250Z :bob!bob@chatd PRIVMSG #chat "
                               ":a minute later"]

    def test_cap_list_says_what_was_acknowledged(self) -> None:
        """CAP LIST names server-time once it is on; ``-server-time`` turns it off again."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        ann = irc_login(node, "ann")
        quiet(bob)
        ann.send("CAP LIST", "CAP REQ server-time", "CAP LIST")
        assert ann.lines() == [":irc.test CAP ann LIST :", ":irc.test CAP ann ACK server-time",
                               ":irc.test CAP ann LIST server-time"]
        bob.send("SAY tagged")
        assert ann.lines() == [STAMP + ":bob!bob@chatd PRIVMSG #chat :tagged"]
        ann.send("CAP REQ :-server-time")
        assert ann.lines() == [":irc.test CAP ann ACK -server-time"]
        bob.send("SAY plain")
        assert ann.lines() == [":bob!bob@chatd PRIVMSG #chat :plain"]

    def test_a_request_with_any_other_capability_is_refused_whole(self) -> None:
        """CAP REQ for server-time and something not offered is NAK for all of it."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send("CAP REQ :server-time echo-message")
        assert ann.lines() == [":irc.test CAP ann NAK :server-time echo-message"]
        bob = line_login(node, "bob")
        bob.send("SAY plain")
        assert ann.lines() == [":bob!bob@chatd JOIN #chat", ":bob!bob@chatd PRIVMSG #chat :plain"]

    def test_speaker_with_server_time_is_not_echoed(self) -> None:
        """A server-time client is not sent its own line back either; other members are."""
        node = make_irc_node()
        ann, cy = irc_login(node, "ann"), irc_login(node, "cy")
        ann.send("CAP REQ server-time")
        cy.send("CAP REQ server-time")
        quiet(ann, cy)
        ann.send("PRIVMSG #chat :hi")
        assert ann.lines() == []
        assert cy.lines() == [STAMP + ":ann!ann@chatd PRIVMSG #chat :hi"]

    def test_history_with_server_time_is_the_lines_at_their_times(self) -> None:
        """With server-time, the lines said before one joined come after 366 as the channel
        messages they were, each tagged with the time it was said; no NOTICE."""
        node = make_irc_node()
        bob = line_login(node, "bob")
        bob.send("SAY early bird", "SAY * yawns")
        node.clock.advance(120)  # type: ignore[attr-defined]
        ann = irc_connect(node)
        ann.send("CAP LS 302", "CAP REQ :server-time", "NICK ann", "USER ann 0 * :Ann", "CAP END")
        lines = ann.lines()
        end = lines.index(":irc.test 366 ann #chat :End of /NAMES list")
        assert lines[end + 1:] == [STAMP + ":bob!bob@chatd PRIVMSG #chat :early bird",
                                   STAMP + ":bob!bob@chatd PRIVMSG #chat :\x01ACTION yawns\x01"]

    def test_every_piece_of_a_long_line_is_tagged(self) -> None:
        """A long line split for IRC bears the tag on each of its lines, and each line
        without its tag is still at most 512 bytes."""
        node = make_irc_node()
        ann = irc_login(node, "ann")
        ann.send("CAP REQ server-time")
        bob = line_login(node, "bob")
        quiet(ann)
        text = "word " * 200
        bob.send(f"SAY {text}")
        lines = raw_lines(ann.read())
        assert len(lines) > 1
        head = STAMP.encode() + b":bob!bob@chatd PRIVMSG #chat :"
        assert all(raw.startswith(head) and len(raw) - len(STAMP) <= 512 for raw in lines)
        assert b"".join(raw[len(head):-2] for raw in lines).decode() == text


# --- properties --------------------------------------------------------------------------------

# Text of every width of UTF-8 character, spaces common.
_wide = st.sampled_from("aZ 9é€😀ß ")
any_chars = st.characters(codec="utf-8")  # every character but the surrogates
texts = st.text(st.one_of(_wide, any_chars), max_size=600)
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
nicks = st.builds(str.__add__, st.sampled_from(_LETTERS),
                  st.text(_LETTERS + "0123456789_-", max_size=NICK_MAX - 1))
# What the room can carry: text as a dialect cleaned it (never empty: every door
# refuses an empty line), an ACTION now and then.
room_texts = st.one_of(texts, texts.map(lambda text: "* " + text)).map(clean_text).filter(bool)
events = st.one_of(
    st.builds(Said, nicks, room_texts),
    st.builds(Told, nicks, nicks, room_texts),
    st.builds(Walled, st.one_of(nicks, st.just(SERVER_NICK)), room_texts),
)
servers = st.builds(irc.IrcServer, st.sampled_from(["irc.test", "a" * 63]),
                    st.sampled_from(["#chat", "#" + "x" * 49]))

_C0_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f]")


class TestTextProperties:
    """The pure text functions, for any text."""

    @settings(max_examples=300, deadline=None)
    @given(text=texts, room=st.integers(min_value=4, max_value=600))
    def test_split_text_pieces_are_valid_bounded_and_whole(self, text: str, room: int) -> None:
        """Every piece is valid UTF-8 of at most ``room`` bytes, and the pieces join to the text."""
        pieces = irc.split_text(text, room)
        assert all(0 < len(piece) <= room for piece in pieces)
        assert "".join(piece.decode("utf-8") for piece in pieces) == text

    @settings(max_examples=300, deadline=None)
    @given(text=texts, room=st.integers(min_value=0, max_value=600))
    def test_cut_text_is_a_bounded_prefix(self, text: str, room: int) -> None:
        """The cut is a prefix of the text of at most ``room`` bytes, and the longest such
        prefix (it loses less than one character)."""
        cut = irc.cut_text(text, room)
        assert text.startswith(cut)
        assert len(cut.encode("utf-8")) <= room
        if cut != text:
            assert len((cut + text[len(cut)]).encode("utf-8")) > room

    @settings(max_examples=300, deadline=None)
    @given(text=st.text(st.one_of(st.sampled_from("\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f,0123456789abcdefABCDEF"),
                                  any_chars), max_size=80))
    def test_strip_formatting_is_idempotent_and_leaves_no_c0_but_tab(self, text: str) -> None:
        """Stripping twice is stripping once, and no C0 control but TAB is left."""
        stripped = irc.strip_formatting(text)
        assert irc.strip_formatting(stripped) == stripped
        assert _C0_BUT_TAB.search(stripped) is None

    @settings(max_examples=300, deadline=None)
    @given(server=servers, event=events, seq=st.integers(min_value=1, max_value=10**9))
    def test_encode_gives_irc_lines_of_at_most_512_bytes(self, server: irc.IrcServer, event: Event,
                                                         seq: int) -> None:
        """Any SAY, TELL or WALL the room can carry is IRC lines of at most 512 bytes each,
        CRLF-terminated, UTF-8, with no other CR, LF or NUL."""
        data = server.encode(Stamped(seq, NOW, event))
        for raw in raw_lines(data) if data else []:
            assert len(raw) <= irc.LINE_BYTES
            body = raw[:-2]
            assert b"\r" not in body and b"\n" not in body and b"\x00" not in body
            body.decode("utf-8")

    @settings(max_examples=300, deadline=None)
    @given(server=servers, event=events, seq=st.integers(min_value=1, max_value=10**9),
           when=st.floats(min_value=0, max_value=4102444800))
    def test_encode_timed_tags_every_line(self, server: irc.IrcServer, event: Event, seq: int,
                                          when: float) -> None:
        """With server-time, every line is the ``@time=`` tag and then a line of ``encode``:
        a whole IRC line of at most 512 bytes, never an empty one."""
        tag = f"@time={format_time(when)} ".encode()
        stamped = Stamped(seq, when, event)
        lines = raw_lines(server.encode_timed(stamped))
        assert all(raw.startswith(tag) for raw in lines)
        assert b"".join(raw[len(tag):] for raw in lines) == server.encode(stamped)
        assert all(raw[len(tag):].startswith(b":") for raw in lines), lines

    @settings(max_examples=300, deadline=None)
    @given(server=servers, nick=nicks, text=room_texts.filter(lambda text: text.strip(" ")))
    def test_every_said_line_reaches_irc_whole(self, server: irc.IrcServer, nick: str, text: str) -> None:
        """Nothing said is lost on IRC: the PRIVMSG texts (an ACTION's with its ``* ``) join
        to the line."""
        data = server.encode(Stamped(1, NOW, Said(nick, text)))
        pieces: list[str] = []
        for raw in raw_lines(data) if data else []:
            param = tokenise(raw[:-2].decode("utf-8")).params[-1]
            if param.startswith("\x01ACTION ") and param.endswith("\x01"):
                param = param[len("\x01ACTION "):-1]
                if not pieces:
                    param = "* " + param
            pieces.append(param)
        assert "".join(pieces) == text


IRC_VERBS = sorted({*irc.commands(), "FROB"})
raw_lines_in = st.one_of(
    st.binary(max_size=80),
    st.tuples(st.sampled_from(IRC_VERBS).map(str.encode),
              st.sampled_from([b" ", b" :", b" #chat :", b" ann :", b" :#chat ", b" bob "]),
              st.binary(max_size=60)).map(b"".join),
    st.tuples(st.sampled_from(IRC_VERBS), st.sampled_from([" ", " :", " #chat :"]),
              st.text(max_size=60)).map(lambda parts: "".join(parts).encode()),
)


def dialect_on_node(registered: bool) -> IrcPeer:
    """An IRC client of a fresh node (with a line user in the room), registered or not."""
    node = make_irc_node(oper_password="pw")
    line_login(node, "bob")
    peer = irc_connect(node)
    if registered:
        peer.register("ann")
    return peer


class TestLineReceivedProperties:
    """``IrcDialect.line_received`` against arbitrary bytes."""

    @settings(max_examples=400, deadline=None)
    @given(raw=raw_lines_in, registered=st.booleans())
    @example(raw=b"NICK :a b", registered=True)
    @example(raw=b"JOIN ::x", registered=False)
    def test_never_raises_and_writes_only_utf8(self, raw: bytes, registered: bool) -> None:
        """Whatever the line, before or after registration, handling it raises nothing and
        every byte written is UTF-8."""
        peer = dialect_on_node(registered)
        peer.connection.dialect.line_received(raw)
        peer.end_turn()
        peer.written().decode("utf-8")

    @settings(max_examples=400, deadline=None)
    @given(raw=raw_lines_in, registered=st.booleans())
    @example(raw=b"\rPRIVMSG\xff", registered=True)
    @example(raw=b"MODE :", registered=True)
    def test_writes_only_whole_irc_lines(self, raw: bytes, registered: bool) -> None:
        """Whatever the line, what it makes the server write is well-formed IRC lines:
        CRLF-terminated, at most 512 bytes, no CR, LF or NUL inside, no empty parameter."""
        peer = dialect_on_node(registered)
        peer.read()
        try:
            peer.connection.dialect.line_received(raw)
        except ValueError:
            return  # the other property reports it
        data = peer.read()
        for line in raw_lines(data) if data else []:
            assert well_formed(line), line


# --- the --irc options ---------------------------------------------------------------------------


def options(*argv: str) -> Config:
    return parse_config(list(argv), environ={})


def option(name: str, value: str) -> Config:
    """One option given as ``--name=value`` (a value may start with ``-``)."""
    return options(f"{name}={value}")


class TestOptions:
    """``--irc``, ``--irc-channel`` and ``--irc-server-name`` on the command line."""

    def test_off_by_default(self) -> None:
        """Without --irc there is no IRC listener, and the node builds no IRC face."""
        config = options()
        assert config.irc == () and config.irc_channel == "#chat"
        assert Node(config, MemoryReactorClock()).irc is None

    def test_irc_is_repeatable(self) -> None:
        """--irc may be given more than once; each endpoint is kept, in order."""
        config = options("--irc", "tcp:6667", "--irc", "ssl:6697:privateKey=k.pem:certKey=c.pem")
        assert config.irc == ("tcp:6667", "ssl:6697:privateKey=k.pem:certKey=c.pem")

    @pytest.mark.parametrize("channel", ["#lobby", "#a", "#" + "x" * 49, "#c++-fans"])
    def test_channel_names_accepted(self, channel: str) -> None:
        """# and 1 to 49 printable characters, no comma or colon, make a channel name."""
        assert option("--irc-channel", channel).irc_channel == channel

    @pytest.mark.parametrize("channel", ["chat", "#", "#a b", "#a,b", "#a:b", "#" + "x" * 50,
                                         "#caf\u00e9", "#a\x07"])
    def test_bad_channel_names_are_refused(self, channel: str) -> None:
        """A name without #, with a space, comma or colon, not ASCII, or over 50 characters
        is a ConfigError naming the option."""
        with pytest.raises(ConfigError) as raised:
            option("--irc-channel", channel)
        assert str(raised.value).startswith(f"--irc-channel {channel!r}: ")

    @pytest.mark.parametrize("name", ["irc.example.org", "localhost", "a", "x" * 63, "chat-1.test"])
    def test_server_names_accepted(self, name: str) -> None:
        """A host name is a server name."""
        assert option("--irc-server-name", name).irc_server_name == name

    @pytest.mark.parametrize("name", ["-irc", ".irc", "irc test", "irc_test", "x" * 64, "irc:6667",
                                      "irc!x@y"])
    def test_bad_server_names_are_refused(self, name: str) -> None:
        """Anything that is not a host name (it would break every prefix) is a ConfigError."""
        with pytest.raises(ConfigError) as raised:
            option("--irc-server-name", name)
        assert str(raised.value).startswith(f"--irc-server-name {name!r}: ")

    def test_empty_server_name_is_refused(self) -> None:
        """An empty --irc-server-name is refused, not taken for the default."""
        with pytest.raises(ConfigError):
            option("--irc-server-name", "")

    def test_default_server_name_is_a_valid_host_name(self) -> None:
        """Without --irc-server-name the name is this host's, and always a valid one."""
        assert irc.valid_server_name(options().irc_server_name)

    def test_default_server_name_is_the_host_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The default is the host name when it is a valid name, else ``chatd``."""
        monkeypatch.setattr("chatd.config.platform.node", lambda: "box.example.org")
        assert options().irc_server_name == "box.example.org"
        monkeypatch.setattr("chatd.config.platform.node", lambda: "my box!")
        assert options().irc_server_name == "chatd"
        monkeypatch.setattr("chatd.config.platform.node", lambda: "")
        assert options().irc_server_name == "chatd"

    def test_node_uses_the_channel_and_server_name(self) -> None:
        """The node's IRC face speaks with the configured names."""
        config = options("--irc", "tcp:0", "--irc-channel", "#Lobby", "--irc-server-name", "chat.test")
        node = Node(config, MemoryReactorClock())
        assert node.irc is not None
        assert (node.irc.name, node.irc.channel) == ("chat.test", "#Lobby")
        assert node.irc.is_channel("#lobby") and not node.irc.is_channel("#chat")

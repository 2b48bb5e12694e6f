"""The IRC listener end to end: the real ``chatd --irc`` over loopback sockets.

IRC clients are raw sockets (``tests.irc_support.IrcClient``) that send the
bytes irssi 1.4.3, WeeChat 3.8 and HexChat send (``tests/irc_openings.py``)
and check every line they read: CR LF, UTF-8, at most 512 bytes.  Line users
(protocol v1, ``nc``-style) share the room with them.  Nothing sleeps for a
fixed time, except where the timing of the bytes is the experiment (a
character split across TCP segments): "nothing else arrived" is a PING whose
PONG comes after everything the connection was owed.

Most tests share one server (no flood limit, no history, an operator
password); a test that needs other settings starts its own.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatd import __version__
from tests.irc_openings import (
    ACTION,
    CHANNEL_MESSAGE,
    CLIENTS,
    IRSSI_WHOIS,
    NICK_CHANGE,
    PRIVATE_MESSAGE,
    QUIT,
    after_join,
    before_cap_reply,
    opening,
)
from tests.irc_support import (
    CHANNEL,
    IRC_ARGS,
    MAX_INPUT,
    SERVER_NAME,
    Clients,
    IrcClient,
    Message,
    mask,
    parse,
    start_irc_chatd,
)
from tests.redis_support import RedisServer
from tests.support import LineClient, RunningServer
from tests.test_e2e_program import self_signed

pytestmark = pytest.mark.e2e

OPER_PASSWORD = "s3cret"
NICK_RULES = "a nick is 1-20 ASCII letters, digits, '_' or '-', starting with a letter"
FLOOD_NOTICE = "*** you are sending more than 5 lines a second; the rest are delayed, not lost"
SHUTDOWN = "server shutting down"
# What CAP LS lists: server-time, the one capability chatd offers (docs/irc.md).
CAP_LS_REPLY = f":{SERVER_NAME} CAP * LS :server-time"
TIME_TAG = re.compile(r"time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# The welcome burst, one entry per run of the same command: 001-005, LUSERS,
# the MOTD, then the JOIN and the names of #chat.
WELCOME = ["001", "002", "003", "004", "005", "251", "254", "255", "375", "372", "376",
           "JOIN", "353", "366"]
# What chatd answers to what each client sent after joining (irc_openings'
# after_join), a run of the same command as one entry.
AFTER_JOIN_ANSWERS = {
    "irssi": ["221", "324", "329", "352", "315", "368"],  # MODE +i, MODE #chat, WHO, MODE b
    "weechat": ["324", "329"],  # MODE #chat
    "hexchat": ["324", "329", "352", "315"],  # MODE #chat, WHO #chat
}

OwnServer = Callable[..., RunningServer]
OwnClients = Callable[[RunningServer], Clients]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningServer]:
    """One chatd with an IRC listener for the tests that need nothing else:
    no flood limit (tests send bursts), no history (nothing replayed after
    the names), an operator password."""
    server = start_irc_chatd("--no-flood-limit", "--history", "0",
                             env={"CHATD_OPER_PASSWORD": OPER_PASSWORD})
    yield server
    server.stop()


@pytest.fixture
def clients(shared_server: RunningServer) -> Iterator[Clients]:
    """Clients of the shared server; closed after the test, which ends only
    once the room is empty again."""
    opened = Clients(shared_server)
    yield opened
    opened.close_and_wait_empty()


@pytest.fixture
def own_server(chatd_factory: Callable[..., RunningServer]) -> OwnServer:
    """Start a chatd with an IRC listener and options of the test's own;
    stopped when the test ends."""

    def start(*args: str, env: dict[str, str] | None = None) -> RunningServer:
        return chatd_factory(*IRC_ARGS, *args, env=env, listeners=2)

    return start


@pytest.fixture
def own_clients() -> Iterator[OwnClients]:
    """``Clients`` of a server the test started; all closed when it ends."""
    made: list[Clients] = []

    def make(server: RunningServer) -> Clients:
        opened = Clients(server)
        made.append(opened)
        return opened

    yield make
    for opened in made:
        opened.close_all()


# --- helpers ----------------------------------------------------------------------------


def commands(messages: list[Message]) -> list[str]:
    """The commands of ``messages``, each run of one command as one entry."""
    runs: list[str] = []
    for message in messages:
        if not runs or runs[-1] != message.command:
            runs.append(message.command)
    return runs


def numeric(messages: list[Message], code: str) -> Message:
    """The one message with command ``code``."""
    found = [message for message in messages if message.command == code]
    assert len(found) == 1, messages
    return found[0]


def assert_quiet(*members: IrcClient | LineClient) -> None:
    """None of ``members`` has anything it has not read (on one node)."""
    for member in members:
        assert member.sync() == []


def longest_prefix(text: str, room: int) -> str:
    """The longest start of ``text`` whose UTF-8 fits in ``room`` bytes."""
    return text.encode("utf-8")[:room].decode("utf-8", errors="ignore")


def register_with_server_time(irc: IrcClient, nick: str) -> list[Message]:
    """Register asking for server-time, as irssi and WeeChat do once it is offered."""
    irc.send("CAP LS 302", f"NICK {nick}", "USER u 0 * :Real Name", "CAP REQ :server-time", "CAP END")
    messages = irc.read_until("366")
    assert parse(f":{SERVER_NAME} CAP * ACK :server-time") in messages, messages
    irc.nick = nick
    return messages


def manual_register(irc: IrcClient, nick: str, user: str = "u", realname: str = "Real Name") -> list[Message]:
    """Register with a bare NICK and USER (what a bot or nc would send)."""
    irc.send(f"NICK {nick}", f"USER {user} 0 * :{realname}")
    messages = irc.read_until("366")
    irc.nick = nick
    return messages


# --- registration ------------------------------------------------------------------------


class TestRegistration:
    def test_the_server_greets_with_a_notice_before_anything_is_sent(self, clients: Clients) -> None:
        """The first line is ``:irc.test NOTICE * :*** chatd ...``."""
        irc = clients.raw_irc()
        greeting = irc.read_message()
        assert greeting.source == SERVER_NAME
        assert greeting.command == "NOTICE"
        assert greeting.params[0] == "*"
        assert greeting.text.startswith(f"*** chatd {__version__}")

    @pytest.mark.parametrize("client", CLIENTS)
    def test_each_real_clients_opening_registers_it_and_joins_it_to_the_channel(
            self, clients: Clients, client: str) -> None:
        """irssi, WeeChat and HexChat, replayed byte for byte: CAP LS gets its
        reply (irssi's ``JOIN :`` probe a 451, and the connection stays), no
        001 until CAP END, then 001..005, LUSERS, MOTD, the JOIN, 353 and 366;
        what each sends after joining is answered."""
        bob = clients.line_user("bob")
        irc = clients.raw_irc()
        assert irc.read_message().command == "NOTICE"
        before, whole = before_cap_reply(client, "ann"), opening(client, "ann")
        assert whole.startswith(before)
        irc.send_raw(before)
        cap = irc.read_message()  # what it lists is test_cap_ls_offers_nothing_...'s
        assert (cap.source, cap.command, cap.params[:2]) == (SERVER_NAME, "CAP", ("*", "LS"))
        if client == "irssi":
            irc.expect(f":{SERVER_NAME} 451 * :You have not registered")
        assert irc.sync() == []  # still open, and not registered before CAP END
        assert bob.sync() == []

        irc.send_raw(whole[len(before):])
        burst = irc.read_until("366")
        assert commands(burst) == WELCOME
        assert burst[0].source == SERVER_NAME and burst[0].params[0] == "ann"
        assert mask("ann") in burst[0].text
        assert numeric(burst, "JOIN") == parse(f":{mask('ann')} JOIN {CHANNEL}")
        names = numeric(burst, "353")
        assert names.params[:3] == ("ann", "=", CHANNEL)
        assert sorted(names.text.split()) == ["ann", "bob"]
        assert burst[-1].params[:2] == ("ann", CHANNEL)
        assert bob.read_line() == "JOIN ann"
        assert irc.sync() == []  # no history on this server: nothing after 366

        irc.send_raw(after_join(client, "ann"))
        assert commands(irc.sync()) == AFTER_JOIN_ANSWERS[client]

    def test_the_welcome_advertises_what_chatd_does_in_005(self, clients: Clients) -> None:
        """005 names CASEMAPPING=ascii, CHANTYPES=#, NICKLEN=20, NETWORK=chatd,
        UTF8ONLY, PREFIX=(o)@ and the channel's length."""
        burst = clients.raw_irc().register("ann", "weechat")
        tokens = set(numeric(burst, "005").params[1:-1])
        assert {"CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=20", "NETWORK=chatd", "UTF8ONLY",
                "PREFIX=(o)@", f"CHANNELLEN={len(CHANNEL)}"} <= tokens

    def test_the_welcome_lusers_count_everyone_in_the_room_the_newcomer_included(
            self, clients: Clients) -> None:
        """With a line user and an IRC user in the room, a third member's 251
        and 255 say 3: the room as it is once it has joined."""
        clients.line_user("bob")
        clients.irc_user("carl")
        burst = clients.raw_irc().register("ann", "hexchat")
        assert numeric(burst, "251").text.startswith("There are 3 users")
        assert numeric(burst, "254").params[1] == "1"
        assert numeric(burst, "255").text.startswith("I have 3 clients")

    def test_cap_ls_offers_server_time_other_caps_are_refused_and_cap_end_ends_negotiation(
            self, clients: Clients) -> None:
        """``CAP LS`` (with or without 302) lists only server-time, ``CAP REQ``
        of anything else is NAKed with what was asked, and registration waits
        for ``CAP END``."""
        irc = clients.raw_irc()
        irc.read_message()
        irc.send("CAP LS", "CAP REQ :multi-prefix sasl", "NICK ann", "USER u 0 * :Ann",
                 "CAP LS 302")
        irc.expect(CAP_LS_REPLY, f":{SERVER_NAME} CAP * NAK :multi-prefix sasl", CAP_LS_REPLY)
        assert irc.sync() == []  # NICK and USER are in, but CAP is still open
        irc.send("CAP END")
        assert commands(irc.read_until("366")) == WELCOME

    def test_with_server_time_every_room_event_is_tagged_with_its_time(self, clients: Clients) -> None:
        """``CAP REQ :server-time`` is ACKed; room events then carry
        ``@time=`` (UTC, milliseconds), the same for one event everywhere."""
        bob = clients.line_user("bob")
        ann = clients.raw_irc()
        register_with_server_time(ann, "ann")
        carl = clients.raw_irc()
        register_with_server_time(carl, "carl")
        assert bob.read_lines(2) == ["JOIN ann", "JOIN carl"]
        joined = ann.read_message()
        assert joined == parse(f":{mask('carl')} JOIN #chat")
        assert joined.tags is not None and TIME_TAG.fullmatch(joined.tags), joined
        bob.send("SAY tagged")
        said = [ann.read_message(), carl.read_message()]
        assert said[0] == said[1] == parse(f":{mask('bob')} PRIVMSG #chat :tagged")
        assert said[0].tags is not None and TIME_TAG.fullmatch(said[0].tags), said
        assert said[0].tags == said[1].tags
        ann.send("CAP REQ :-server-time")
        ann.expect(f":{SERVER_NAME} CAP ann ACK :-server-time")
        bob.send("SAY plain")
        untagged = ann.read_message()
        assert untagged == parse(f":{mask('bob')} PRIVMSG #chat :plain") and untagged.tags is None

    @pytest.mark.parametrize("lines", [
        ["NICK ann", "USER u 0 * :Ann Real"],
        ["USER u 0 * :Ann Real", "NICK ann"],
        ["PASS hunter2", "NICK ann", "USER u 0 * :Ann Real"],
    ], ids=["nick-user", "user-nick", "pass-ignored"])
    def test_nick_and_user_register_without_cap_in_either_order_and_pass_is_ignored(
            self, clients: Clients, lines: list[str]) -> None:
        """A client that never says CAP registers on NICK plus USER; PASS is
        accepted and ignored."""
        irc = clients.raw_irc()
        irc.read_message()
        irc.send(*lines)
        burst = irc.read_until("366")
        assert commands(burst) == WELCOME
        assert burst[0].params[0] == "ann"

    @pytest.mark.parametrize("line", ["JOIN :", "JOIN #chat", "PRIVMSG #chat :hi", "NOTICE #chat :hi",
                                      "WHO #chat", "WHOIS bob", "MODE #chat", "NAMES", "TOPIC #chat"])
    def test_commands_before_registration_get_451_and_the_connection_stays(
            self, clients: Clients, line: str) -> None:
        """Anything but CAP/NICK/USER/PASS/PING/PONG/QUIT before registering
        is answered 451, has no effect, and the connection stays usable."""
        bob = clients.line_user("bob")
        irc = clients.raw_irc()
        irc.read_message()
        irc.send(line)
        irc.expect(f":{SERVER_NAME} 451 * :You have not registered")
        irc.send("PONG :whatever")  # ignored, not refused
        assert irc.sync() == []
        assert bob.sync() == []
        assert commands(manual_register(irc, "ann")) == WELCOME

    @pytest.mark.parametrize("bad", ["1abc", "-ann", "_ann", "a" * 21, "ann.x", "änn", "a[b]"])
    def test_a_nick_breaking_chatds_rules_gets_432_and_another_may_follow(
            self, clients: Clients, bad: str) -> None:
        """chatd's nick rules (1-20 ASCII letters, digits, _ or -, starting
        with a letter) apply to IRC users: 432 names the nick, then a good
        nick registers."""
        irc = clients.raw_irc()
        irc.read_message()
        irc.send("USER u 0 * :Ann", f"NICK {bad}")
        refusal = irc.read_message()
        assert refusal.source == SERVER_NAME
        assert refusal.command == "432"
        assert refusal.params[:2] == ("*", bad)
        assert NICK_RULES in refusal.text
        irc.send("NICK ann")
        assert commands(irc.read_until("366")) == WELCOME

    def test_a_nick_a_line_user_holds_gets_433_in_any_case_and_the_next_nick_registers(
            self, clients: Clients) -> None:
        """A line user holds ``ann``: irssi registering as ann (or ANN) gets
        433 and stays unregistered; its next offer, ``ann_``, registers."""
        ann = clients.line_user("ann")
        irc = clients.raw_irc()
        irc.send_raw(opening("irssi", "ann"))
        refusal = irc.read_until("433")[-1]
        assert refusal.params[:2] == ("*", "ann")
        irc.send("NICK ANN")
        assert irc.read_message().params[:3] == ("*", "ANN", "Nickname is already in use")
        irc.send("PRIVMSG #chat :too soon")
        irc.expect(f":{SERVER_NAME} 451 * :You have not registered")
        assert ann.sync() == []
        irc.send("NICK ann_")
        burst = irc.read_until("366")
        assert commands(burst) == WELCOME
        assert burst[0].params[0] == "ann_"
        assert ann.read_line() == "JOIN ann_"

    def test_a_line_user_cannot_take_an_irc_users_nick_in_any_case(self, clients: Clients) -> None:
        """An IRC user holds ``bob``: a line user's ``NICK BOB`` is nick-taken."""
        irc = clients.irc_user("bob")
        line = clients.raw_line()
        assert line.read_line().startswith("HELLO ")
        line.send("NICK BOB")
        assert line.read_line() == "ERR nick-taken BOB is already taken; choose another nick"
        assert_quiet(irc)

    def test_a_connection_that_does_not_register_in_time_is_closed_with_error(
            self, own_server: OwnServer, own_clients: OwnClients) -> None:
        """With ``--register-timeout 1`` an IRC connection that never registers
        gets ``ERROR :Closing link: registration timeout: no NICK`` and is
        closed; one that registered stays."""
        server = own_server("--register-timeout", "1", "--no-flood-limit")
        opened = own_clients(server)
        member = opened.irc_user("ann", "hexchat")
        silent = opened.raw_irc()
        started = time.monotonic()
        assert silent.read_message().command == "NOTICE"
        assert silent.lines_until_eof() == [parse("ERROR :Closing link: registration timeout: no NICK")]
        assert 0.5 < time.monotonic() - started < 5
        assert_quiet(member)


# --- speaking -------------------------------------------------------------------------------


class TestSpeaking:
    @pytest.mark.parametrize("target", ["#chat", "#CHAT"])
    def test_a_channel_privmsg_reaches_line_users_as_say_and_irc_users_but_not_its_sender(
            self, clients: Clients, target: str) -> None:
        """``PRIVMSG #chat :text`` is ``SAY ann text`` to line users and the
        same PRIVMSG from ``ann!ann@chatd`` to the other IRC users; the
        sender is not sent its own line back.  The channel name ignores case."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl", "weechat")
        ann.send(f"PRIVMSG {target} :hello, world:  two  spaces ")
        assert bob.read_line() == "SAY ann hello, world:  two  spaces "
        carl.expect(f":{mask('ann')} PRIVMSG #chat :hello, world:  two  spaces ")
        assert_quiet(ann, bob, carl)

    def test_what_irssi_sent_for_typed_commands_does_what_was_typed(self, clients: Clients) -> None:
        """The bytes irssi sent for "hello world", /me waves, /msg bob hi,
        /whois bob (with its WHOWAS), /nick newname and /quit bye."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send_raw(CHANNEL_MESSAGE + ACTION + PRIVATE_MESSAGE)
        assert bob.read_lines(3) == ["SAY ann hello world", "SAY ann * waves", "TELL ann hi"]
        ann.send_raw(IRSSI_WHOIS)
        whois = ann.read_until("421")
        assert commands(whois) == ["311", "319", "312", "318", "421"]
        assert whois[-1].params[:2] == ("ann", "WHOWAS")
        ann.send_raw(NICK_CHANGE)
        ann.expect(f":{mask('ann')} NICK newname")
        assert bob.read_line() == "RENAME ann newname"
        ann.send_raw(QUIT)
        assert ann.lines_until_eof() == [parse("ERROR :Closing link: bye")]
        assert bob.read_line() == "PART newname bye"

    def test_a_line_users_say_reaches_irc_users_as_a_channel_privmsg(self, clients: Clients) -> None:
        """A line user's ``SAY x`` is ``:bob!bob@chatd PRIVMSG #chat :x`` on IRC."""
        ann = clients.irc_user("ann")
        bob = clients.line_user("bob")
        bob.send("SAY hi from nc: 100% ")
        assert bob.read_line() == "SAY bob hi from nc: 100% "
        ann.expect(f":{mask('bob')} PRIVMSG #chat :hi from nc: 100% ")

    def test_a_private_privmsg_to_a_line_user_is_a_tell_and_nobody_else_hears(
            self, clients: Clients) -> None:
        """``PRIVMSG bob :text`` (bob matched ignoring case) is ``TELL ann text``
        to bob alone."""
        bob = clients.line_user("bob")
        dan = clients.line_user("dan")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send("PRIVMSG BOB :just for you")
        assert bob.read_line() == "TELL ann just for you"
        assert_quiet(ann, bob, dan, carl)

    def test_a_private_privmsg_between_irc_users_reaches_only_its_target(self, clients: Clients) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl", "hexchat")
        ann.send("PRIVMSG carl :psst")
        carl.expect(f":{mask('ann')} PRIVMSG carl :psst")
        assert_quiet(ann, bob, carl)

    def test_a_line_users_tell_reaches_an_irc_user_as_a_private_privmsg(self, clients: Clients) -> None:
        """``TELL ann text`` from a line user is ``:bob!bob@chatd PRIVMSG ann :text``."""
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        bob = clients.line_user("bob")
        bob.send("TELL ANN hello ann")
        assert bob.read_line() == "OK TELL ann"
        ann.expect(f":{mask('bob')} PRIVMSG ann :hello ann")
        assert_quiet(carl, bob)

    def test_a_ctcp_action_is_star_text_for_line_users_and_an_action_for_irc_users(
            self, clients: Clients) -> None:
        """``/me waves`` (irc_openings.ACTION) reads ``SAY ann * waves`` to line
        users and stays an ACTION for IRC users."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send_raw(ACTION)  # irssi's and WeeChat's /me waves
        assert bob.read_line() == "SAY ann * waves"
        carl.expect(f":{mask('ann')} PRIVMSG #chat :\x01ACTION waves\x01")
        assert_quiet(ann)

    def test_a_line_users_star_say_reaches_irc_users_as_a_ctcp_action(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        bob = clients.line_user("bob")
        bob.send("SAY * dances")
        assert bob.read_line() == "SAY bob * dances"
        ann.expect(f":{mask('bob')} PRIVMSG #chat :\x01ACTION dances\x01")

    @pytest.mark.parametrize(("target", "ctcp"), [("#chat", "VERSION"), ("bob", "PING 12345"),
                                                  ("carl", "TIME")])
    def test_other_ctcps_are_not_relayed_and_the_sender_is_told(
            self, clients: Clients, target: str, ctcp: str) -> None:
        """A CTCP other than ACTION reaches nobody; the sender gets a NOTICE
        saying it was not relayed."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send(f"PRIVMSG {target} :\x01{ctcp}\x01")
        notice = ann.read_message()
        assert (notice.source, notice.command, notice.params[0]) == (SERVER_NAME, "NOTICE", "ann")
        assert ctcp.split()[0] in notice.text and "not relayed" in notice.text
        assert_quiet(ann, bob, carl)

    def test_colour_and_formatting_codes_are_stripped(self, clients: Clients) -> None:
        """Bold, colour with and without numbers, hex colour, reset,
        monospace, reverse, italic, strikethrough and underline are removed
        (a colour's digits with it); everyone sees the plain text."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send("PRIVMSG #chat :\x02bold\x02 \x0304,12red on blue\x03 \x0312blue\x03 \x03plain "
                 "\x04ff00ffhex\x04 \x04ff00ff,00ff00two\x04 9\x0f\x11mono\x11 \x16rev\x16 "
                 "\x1ditalic\x1d \x1estrike\x1e \x1funder\x1f 42")
        plain = "bold red on blue blue plain hex two 9mono rev italic strike under 42"
        assert bob.read_line() == f"SAY ann {plain}"
        carl.expect(f":{mask('ann')} PRIVMSG #chat :{plain}")

    def test_escape_sequences_and_bidi_controls_are_cleaned_both_ways(self, clients: Clients) -> None:
        """An IRC user's ESC sequences, bidi overrides and isolates are
        removed (only the control characters themselves go), as a line
        user's are before they reach IRC."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send("PRIVMSG #chat :\x1b[31mred\x1b[0m \u202eevil\u202c \u2066iso\u2069 \x07bell\x7f ok")
        clean = "[31mred[0m evil iso bell ok"
        assert bob.read_line() == f"SAY ann {clean}"
        carl.expect(f":{mask('ann')} PRIVMSG #chat :{clean}")
        bob.send("SAY \x1b]0;owned\x07title \u202ereversed\u202c")
        assert bob.read_line() == "SAY bob ]0;ownedtitle reversed"
        ann.expect(f":{mask('bob')} PRIVMSG #chat :]0;ownedtitle reversed")
        carl.expect(f":{mask('bob')} PRIVMSG #chat :]0;ownedtitle reversed")

    def test_a_nul_in_the_text_is_removed_and_the_rest_kept(self, clients: Clients) -> None:
        """NUL is a control character like the others: it goes, and the text
        after it is still said (the room's hygiene, not a truncation)."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send_raw(b"PRIVMSG #chat :before\x00after \x00end\r\n")
        assert bob.read_line() == "SAY ann beforeafter end"
        carl.expect(f":{mask('ann')} PRIVMSG #chat :beforeafter end")

    @pytest.mark.parametrize(("line", "code", "names"), [
        ("PRIVMSG #chat :", "412", None),
        ("PRIVMSG #chat", "412", None),
        ("PRIVMSG #chat :\x02\x0304\x0f", "412", None),
        ("PRIVMSG #chat :\x01ACTION\x01", "412", None),
        ("PRIVMSG", "411", None),
        ("PRIVMSG nobody :hi", "401", "nobody"),
        ("PRIVMSG #other :hi", "403", "#other"),
    ])
    def test_privmsg_errors_are_the_usual_numerics_and_nothing_is_said(
            self, clients: Clients, line: str, code: str, names: str | None) -> None:
        """Empty text is 412, no target 411, an unknown nick 401, another
        channel 403; the connection goes on."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send(line)
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[0]) == (SERVER_NAME, code, "ann")
        if names is not None:
            assert reply.params[1] == names
        assert_quiet(ann, bob)
        ann.send("PRIVMSG #chat :still here")
        assert bob.read_line() == "SAY ann still here"

    def test_a_notice_is_relayed_like_a_privmsg(self, clients: Clients) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send("NOTICE #chat :a notice", "NOTICE bob :a private notice")
        assert bob.read_lines(2) == ["SAY ann a notice", "TELL ann a private notice"]
        carl.expect(f":{mask('ann')} PRIVMSG #chat :a notice")
        assert_quiet(ann)

    @pytest.mark.parametrize("line", ["NOTICE", "NOTICE #chat", "NOTICE #chat :", "NOTICE nobody :hi",
                                      "NOTICE #other :hi", "NOTICE bob :\x01VERSION\x01",
                                      "NOTICE #chat :\x02\x0f"])
    def test_a_notice_never_gets_an_error_reply(self, clients: Clients, line: str) -> None:
        """No target, no text, an unknown nick, another channel, a CTCP: a
        NOTICE gets no automatic reply and says nothing."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send(line)
        assert_quiet(ann, bob)


# --- line lengths and bytes -------------------------------------------------------------------


class TestLines:
    def test_a_510_byte_line_is_taken_and_a_511_byte_line_gets_417(self, clients: Clients) -> None:
        """IRC's limit is 512 bytes with CR LF: one byte more is answered 417
        and dropped, and the connection goes on."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        head = "PRIVMSG #chat :"
        fits = "x" * (MAX_INPUT - len(head))
        ann.send(head + fits)
        room = MAX_INPUT - len(f":{mask('ann')} PRIVMSG #chat :")
        assert bob.read_line() == f"SAY ann {fits[:room]}"  # taken, then cut to fit when relayed
        ann.send(head + fits + "y")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[0]) == (SERVER_NAME, "417", "ann")
        assert_quiet(ann, bob)
        ann.send("PRIVMSG #chat :after")
        assert bob.read_line() == "SAY ann after"

    def test_100_kb_without_a_newline_gets_one_417_and_the_connection_still_works(
            self, clients: Clients) -> None:
        """A huge unfinished line is refused as soon as it is too long, its
        rest thrown away as it comes; the LF that ends it brings no second
        417, and the next line is handled."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send_raw(b"PRIVMSG #chat :" + b"x" * 100_000)
        reply = ann.read_message()
        assert (reply.command, reply.params[0]) == ("417", "ann")
        ann.send_raw(b"x" * 1000 + b"\r\n")
        assert_quiet(ann, bob)
        ann.send("PRIVMSG #chat :after the flood of bytes")
        assert bob.read_line() == "SAY ann after the flood of bytes"

    @pytest.mark.parametrize(("nick", "target"), [("ann", "#chat"), ("a" * 20, "#chat"),
                                                  ("ann", "carl")])
    def test_an_irc_senders_text_is_cut_at_a_character_boundary_so_its_line_fits_512(
            self, clients: Clients, nick: str, target: str) -> None:
        """A 510-byte PRIVMSG of three-byte characters would be longer than 512
        once relayed with the sender's prefix: the text is cut to the longest
        start that fits, never inside a character, and everyone (line users
        too) gets the same cut text."""
        bob = clients.line_user("bob")
        carl = clients.irc_user("carl")
        sender = clients.irc_user(nick, "hexchat")
        head, relayed_head = f"PRIVMSG {target} :", f":{mask(nick)} PRIVMSG {target} :"
        room = MAX_INPUT - len(relayed_head.encode())
        ascii_start = 1 if (room - 1) % 3 else 2  # so that the limit falls inside a '€'
        text = "a" * ascii_start + "€" * ((MAX_INPUT - len(head) - ascii_start) // 3)
        assert len((head + text).encode()) <= MAX_INPUT
        cut = longest_prefix(text, room)
        assert room - 3 < len(cut.encode()) < room
        sender.send(head + text)
        raw = carl.read_raw()
        assert len(raw) <= 512
        assert parse(raw[:-2].decode()) == parse(relayed_head + cut)
        if target == CHANNEL:
            assert bob.read_line() == f"SAY {nick} {cut}"
        assert_quiet(sender, bob, carl)

    @pytest.mark.parametrize("text", [
        "日本" * 170,
        "word " * 203 + "end!",
        "a" + "🙂" * 254,
        "é" * 509 + "x",
        "x" * 1019 + " ",
    ], ids=["cjk", "words", "emoji", "latin", "ascii-trailing-space"])
    def test_a_long_line_user_line_reaches_irc_as_privmsgs_that_rejoin_exactly(
            self, clients: Clients, text: str) -> None:
        """A line user may say up to 1024 bytes: IRC users get it as several
        PRIVMSGs, each at most 512 bytes with CR LF and valid UTF-8, whose
        texts concatenated are the line exactly."""
        assert len(f"SAY {text}".encode()) <= 1024
        ann = clients.irc_user("ann")
        bob = clients.line_user("bob")
        bob.send(f"SAY {text}")
        assert bob.read_line() == f"SAY bob {text}"
        pieces: list[str] = []
        while len("".join(pieces)) < len(text):
            message = ann.read_message()  # read_message checks 512 bytes and UTF-8
            assert (message.source, message.command, message.params[0]) == (mask("bob"), "PRIVMSG", CHANNEL)
            pieces.append(message.text)
        assert len(pieces) >= 2
        assert "".join(pieces) == text
        assert_quiet(ann)

    @pytest.mark.parametrize("bad", [b"caf\xe9", b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"ok\x80"],
                             ids=["latin-1", "ff-fe", "overlong", "surrogate", "lone-continuation"])
    def test_invalid_utf8_gets_fail_invalid_utf8_and_the_line_is_dropped(
            self, clients: Clients, bad: bytes) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send_raw(b"PRIVMSG #chat :" + bad + b"\r\n")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[:2]) == (SERVER_NAME, "FAIL",
                                                                  ("PRIVMSG", "INVALID_UTF8"))
        assert_quiet(ann, bob)
        ann.send("PRIVMSG #chat :fine again")
        assert bob.read_line() == "SAY ann fine again"

    def test_a_character_split_across_two_tcp_segments_arrives_intact(self, clients: Clients) -> None:
        """The bytes of one character in two segments (a pause between them)
        are one character, not two invalid bytes."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send_raw(b"PRIVMSG #chat :caf\xc3")
        time.sleep(0.05)  # the experiment: the rest comes in a later segment
        ann.send_raw(b"\xa9 \xe2\x98")
        time.sleep(0.05)
        ann.send_raw(b"\x83 \xf0\x9f")
        time.sleep(0.05)
        ann.send_raw(b"\x99\x82\r\n")
        assert bob.read_line() == "SAY ann café ☃ 🙂"
        assert_quiet(ann)

    def test_a_line_sent_byte_by_byte_arrives_intact(self, clients: Clients) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        for byte in "PRIVMSG #chat :naïve ☃ 🙂 done\r\n".encode():
            ann.send_raw(bytes([byte]))
            time.sleep(0.002)
        assert bob.read_line() == "SAY ann naïve ☃ 🙂 done"
        carl.expect(f":{mask('ann')} PRIVMSG #chat :naïve ☃ 🙂 done")
        assert_quiet(ann)


# --- nicks, joining and leaving -----------------------------------------------------------------


class TestMembership:
    def test_a_line_user_logging_in_is_a_join_and_is_in_the_names(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        bob = clients.raw_line()
        bob.login("bob")
        ann.expect(f":{mask('bob')} JOIN #chat")
        ann.send("NAMES #chat")
        names = ann.read_until("366")
        assert [message.command for message in names] == ["353", "366"]
        assert sorted(names[0].text.split()) == ["ann", "bob"]

    def test_a_nick_change_is_announced_to_every_irc_user_and_as_rename_to_line_users(
            self, clients: Clients) -> None:
        """``NICK anna``: every IRC user, the renamer included, gets
        ``:ann!ann@chatd NICK anna``; line users get ``RENAME ann anna``; the
        new nick speaks from then on.  A change of case is a rename too."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send("NICK anna")
        ann.expect(f":{mask('ann')} NICK anna")
        carl.expect(f":{mask('ann')} NICK anna")
        assert bob.read_line() == "RENAME ann anna"
        ann.send("PRIVMSG #chat :renamed", "NICK Anna")
        assert bob.read_lines(2) == ["SAY anna renamed", "RENAME anna Anna"]
        carl.expect(f":{mask('anna')} PRIVMSG #chat :renamed", f":{mask('anna')} NICK Anna")
        ann.expect(f":{mask('anna')} NICK Anna")
        bob.send("TELL anna found you")
        assert bob.read_line() == "OK TELL Anna"
        ann.expect(f":{mask('bob')} PRIVMSG Anna :found you")

    def test_a_line_users_rename_reaches_irc_as_nick(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        bob = clients.line_user("bob")
        bob.send("NICK robert")
        assert bob.read_lines(2) == ["OK NICK robert", "RENAME bob robert"]
        ann.expect(f":{mask('bob')} NICK robert")

    def test_renaming_to_a_taken_or_bad_nick_is_refused_and_changes_nothing(self, clients: Clients) -> None:
        """After registration: a nick held by a line user (in any case) is
        433, one breaking the rules 432; nobody hears anything."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        for asked, code in (("bob", "433"), ("BOB", "433"), ("Carl", "433"), ("9lives", "432")):
            ann.send(f"NICK {asked}")
            reply = ann.read_message()
            assert (reply.source, reply.command, reply.params[:2]) == (SERVER_NAME, code, ("ann", asked))
        assert_quiet(ann, bob, carl)
        ann.send("PRIVMSG #chat :still ann")
        assert bob.read_line() == "SAY ann still ann"

    @pytest.mark.parametrize(("line", "reason"), [("QUIT :lunch time", "lunch time"),
                                                  ("QUIT", "leaving")])
    def test_quit_gets_error_then_close_and_tells_everyone(
            self, clients: Clients, line: str, reason: str) -> None:
        """``QUIT :reason``: the quitter gets ``ERROR :Closing link: reason``
        and the connection closes; line users get ``PART ann reason``, other
        IRC users ``:ann!ann@chatd QUIT :reason``."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send(line, "PRIVMSG #chat :after quit")
        assert ann.lines_until_eof() == [parse(f"ERROR :Closing link: {reason}")]
        assert bob.read_line() == f"PART ann {reason}"
        carl.expect(f":{mask('ann')} QUIT :{reason}")
        assert_quiet(bob, carl)  # the line after QUIT was not said

    def test_a_dropped_irc_connection_is_a_quit_connection_lost(self, clients: Clients) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.close()
        assert bob.read_line() == "PART ann connection lost"
        carl.expect(f":{mask('ann')} QUIT :connection lost")

    def test_a_line_users_quit_or_drop_reaches_irc_as_quit(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        bob = clients.line_user("bob")
        dan = clients.line_user("dan")
        bob.send("QUIT bye now")
        assert bob.read_line() == "BYE bye now"
        ann.expect(f":{mask('bob')} QUIT :bye now")
        assert dan.read_line() == "PART bob bye now"
        dan.close()
        ann.expect(f":{mask('dan')} QUIT :connection lost")

    @pytest.mark.parametrize("line", ["PART #chat", "PART #chat :going"])
    def test_part_is_answered_with_a_notice_to_use_quit_and_one_stays_in_the_room(
            self, clients: Clients, line: str) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send(line)
        notice = ann.read_message()
        assert (notice.source, notice.command, notice.params[0]) == (SERVER_NAME, "NOTICE", "ann")
        assert "/quit" in notice.text
        assert_quiet(ann, bob)
        bob.send("SAY are you there?")
        assert bob.read_line() == "SAY bob are you there?"
        ann.expect(f":{mask('bob')} PRIVMSG #chat :are you there?")

    def test_joining_the_channel_again_repeats_the_join_and_the_names(self, clients: Clients) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send("JOIN #chat")
        answer = ann.read_until("366")
        assert commands(answer) == ["JOIN", "353", "366"]
        assert answer[0] == parse(f":{mask('ann')} JOIN #chat")
        assert sorted(answer[1].text.split()) == ["ann", "bob", "carl"]
        assert_quiet(ann, bob, carl)

    def test_joining_another_channel_gets_403(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        ann.send("JOIN #other")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[:2]) == (SERVER_NAME, "403", ("ann", "#other"))
        assert_quiet(ann)


# --- queries ------------------------------------------------------------------------------------


class TestQueries:
    @pytest.mark.parametrize(("line", "token"), [("PING tok", "tok"), ("PING :two words", "two words"),
                                                 ("PING irc.test", "irc.test")])
    def test_ping_gets_pong_from_the_server_with_the_token(
            self, clients: Clients, line: str, token: str) -> None:
        ann = clients.irc_user("ann")
        ann.send(line)
        ann.expect(f":{SERVER_NAME} PONG {SERVER_NAME} :{token}")

    def test_who_lists_every_member_with_user_and_real_name_then_315(self, clients: Clients) -> None:
        """352 per member: IRC members on this node with the user and real
        name from their USER, others with their nick and ``a chatd user``."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann", "hexchat")  # USER root 0 * :realname
        carl = clients.irc_user("carl", "weechat")  # USER root 0 * :root
        for query in ("WHO #chat", "WHO #CHAT"):
            ann.send(query)
            reply = ann.read_until("315")
            assert sorted(reply[:-1], key=lambda message: message.params[5]) == [
                parse(f":{SERVER_NAME} 352 ann #chat root chatd {SERVER_NAME} ann H :0 realname"),
                parse(f":{SERVER_NAME} 352 ann #chat bob chatd {SERVER_NAME} bob H :0 a chatd user"),
                parse(f":{SERVER_NAME} 352 ann #chat root chatd {SERVER_NAME} carl H :0 root"),
            ]
            assert reply[-1].command == "315" and reply[-1].params[:2] == ("ann", query.split()[1])
        assert_quiet(bob, carl)

    def test_whois_of_an_irc_member_gives_311_319_312_317_318(self, clients: Clients) -> None:
        clients.line_user("bob")
        ann = clients.irc_user("ann", "hexchat")
        carl = clients.irc_user("carl")
        carl.send("WHOIS ann")
        reply = carl.read_until("318")
        assert commands(reply) == ["311", "319", "312", "317", "318"]
        assert reply[0] == parse(f":{SERVER_NAME} 311 carl ann root chatd * :realname")
        assert reply[1].params[:2] == ("carl", "ann") and CHANNEL in reply[1].text.split()
        assert reply[2].params[:3] == ("carl", "ann", SERVER_NAME)
        idle, signon = int(reply[3].params[2]), int(reply[3].params[3])
        assert 0 <= idle < 60
        assert abs(signon - time.time()) < 60
        assert reply[4].params[:2] == ("carl", "ann")
        assert_quiet(ann)

    def test_whois_of_a_line_member_has_no_idle_line(self, clients: Clients) -> None:
        clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send("WHOIS BOB")
        reply = ann.read_until("318")
        assert commands(reply) == ["311", "319", "312", "318"]
        assert reply[0] == parse(f":{SERVER_NAME} 311 ann bob bob chatd * :a chatd user")

    def test_whois_of_an_unknown_nick_gives_401_and_318(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        ann.send("WHOIS nobody")
        reply = ann.read_messages(2)
        assert [(m.command, m.params[:2]) for m in reply] == [("401", ("ann", "nobody")),
                                                             ("318", ("ann", "nobody"))]
        assert_quiet(ann)

    @pytest.mark.parametrize("line", ["NAMES", "NAMES #chat"])
    def test_names_lists_every_member_from_every_door(self, clients: Clients, line: str) -> None:
        clients.line_user("bob")
        ann = clients.irc_user("ann")
        clients.irc_user("carl")
        ann.send(line)
        reply = ann.read_until("366")
        assert commands(reply) == ["353", "366"]
        assert reply[0].params[:3] == ("ann", "=", CHANNEL)
        assert sorted(" ".join(m.text for m in reply[:-1]).split()) == ["ann", "bob", "carl"]
        assert reply[-1].params[:2] == ("ann", CHANNEL)

    def test_the_names_of_a_big_room_come_in_several_353s_that_list_everyone(self, clients: Clients) -> None:
        """40 members with 20-character nicks do not fit one line: several
        353s, each at most 512 bytes, no nick cut in two."""
        crowd = [f"member{n:02d}-" + "x" * 11 for n in range(40)]
        for nick in crowd:
            clients.raw_line().login(nick)
        ann = clients.raw_irc()
        burst = ann.register("ann", "hexchat")
        names = [message for message in burst if message.command == "353"]
        assert len(names) >= 2
        assert sorted(nick for message in names for nick in message.text.split()) == sorted([*crowd, "ann"])

    @pytest.mark.parametrize(("line", "expected"), [
        ("MODE #chat", ["324 ann #chat +nt", "329"]),
        ("MODE #chat b", ["368 ann #chat"]),
        ("MODE #chat +o bob", ["482 ann #chat"]),
        ("MODE ann", ["221 ann +"]),
        ("MODE ann +i", ["221 ann +"]),
    ])
    def test_mode_queries_get_the_numerics_clients_wait_for(
            self, clients: Clients, line: str, expected: list[str]) -> None:
        """The channel is ``+nt`` (324, then 329 with its creation time), its
        ban list is empty (368), nobody may change it (482); one's own modes
        are 221, and +i changes nothing."""
        clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send(line)
        reply = ann.sync()
        assert len(reply) == len(expected), reply
        for message, words in zip(reply, expected, strict=True):
            code, *params = words.split()
            assert message.source == SERVER_NAME
            assert message.command == code
            assert list(message.params[:len(params)]) == params, message
        if line == "MODE #chat":
            assert reply[1].params[:2] == ("ann", CHANNEL)
            assert abs(int(reply[1].params[2]) - time.time()) < 3600

    def test_topic_has_none(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        ann.send("TOPIC #chat")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[:2]) == (SERVER_NAME, "331", ("ann", CHANNEL))

    def test_ison_names_those_present_as_they_spell_themselves(self, clients: Clients) -> None:
        clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send("ISON bob zed ANN")
        ann.expect(f":{SERVER_NAME} 303 ann :bob ann")
        ann.send("ISON zed")
        ann.expect(f":{SERVER_NAME} 303 ann :")

    def test_userhost_gives_nick_user_at_chatd(self, clients: Clients) -> None:
        clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send("USERHOST ann bob zed")
        ann.expect(f":{SERVER_NAME} 302 ann :ann=+root@chatd bob=+bob@chatd")


# --- operators and WALL ----------------------------------------------------------------------------


class TestOperators:
    def test_oper_with_the_password_gets_381_and_mode_o(self, clients: Clients) -> None:
        """``OPER name password`` with CHATD_OPER_PASSWORD: 381 and MODE +o;
        WHOIS then shows 313, USERHOST the ``*``, MODE the +o."""
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        ann.send(f"OPER anyname {OPER_PASSWORD}")
        granted = ann.read_messages(2)
        assert (granted[0].source, granted[0].command, granted[0].params[0]) == (SERVER_NAME, "381", "ann")
        assert (granted[1].command, granted[1].params) == ("MODE", ("ann", "+o"))
        assert_quiet(ann, carl)
        carl.send("WHOIS ann")
        assert commands(carl.read_until("318")) == ["311", "319", "312", "313", "317", "318"]
        carl.send("USERHOST ann")
        carl.expect(f":{SERVER_NAME} 302 carl :ann*=+root@chatd")
        ann.send("MODE ann")
        ann.expect(f":{SERVER_NAME} 221 ann +o")

    def test_oper_with_a_wrong_password_gets_464(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        ann.send("OPER ann guess")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[0]) == (SERVER_NAME, "464", "ann")
        ann.send("WALLOPS :still not allowed")
        assert ann.read_message().command == "481"

    def test_wallops_from_an_operator_reaches_every_connection(self, clients: Clients) -> None:
        """Line users get ``WALL ann text``, IRC users (the sender too) a
        NOTICE to #chat from the server, connections not logged in as well."""
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        carl = clients.irc_user("carl")
        lurker_irc = clients.raw_irc()
        assert lurker_irc.read_message().command == "NOTICE"
        lurker_line = clients.raw_line()
        assert lurker_line.read_line().startswith("HELLO ")
        ann.send(f"OPER ann {OPER_PASSWORD}")
        ann.read_messages(2)
        ann.send("WALLOPS :fire drill at noon")
        notice = f":{SERVER_NAME} NOTICE #chat :WALL from ann: fire drill at noon"
        for irc in (ann, carl, lurker_irc):
            irc.expect(notice)
        assert bob.read_line() == lurker_line.read_line() == "WALL ann fire drill at noon"
        assert_quiet(ann, bob, carl)

    def test_wallops_from_a_non_operator_gets_481_when_there_is_a_password(self, clients: Clients) -> None:
        bob = clients.line_user("bob")
        ann = clients.irc_user("ann")
        ann.send("WALLOPS :hear me")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[0]) == (SERVER_NAME, "481", "ann")
        assert_quiet(ann, bob)

    def test_a_line_users_wall_reaches_irc_users_as_the_server_notice(self, clients: Clients) -> None:
        ann = clients.irc_user("ann")
        bob = clients.line_user("bob")
        bob.send(f"OPER {OPER_PASSWORD}", "WALL coffee is ready")
        assert bob.read_lines(2) == ["OK OPER", "WALL bob coffee is ready"]
        ann.expect(f":{SERVER_NAME} NOTICE #chat :WALL from bob: coffee is ready")

    def test_without_an_operator_password_oper_gets_491_and_anyone_may_wallops(
            self, own_server: OwnServer, own_clients: OwnClients) -> None:
        server = own_server("--no-flood-limit", "--history", "0")
        opened = own_clients(server)
        bob = opened.line_user("bob")
        ann = opened.irc_user("ann")
        ann.send("OPER ann whatever")
        reply = ann.read_message()
        assert (reply.source, reply.command, reply.params[0]) == (SERVER_NAME, "491", "ann")
        ann.send("WALLOPS :anyone may")
        ann.expect(f":{SERVER_NAME} NOTICE #chat :WALL from ann: anyone may")
        assert bob.read_line() == "WALL ann anyone may"
        bob.send("WALL me too")
        assert bob.read_line() == "WALL bob me too"
        ann.expect(f":{SERVER_NAME} NOTICE #chat :WALL from bob: me too")


# --- settings of their own: flood, history, shutdown -------------------------------------------------


class TestFlood:
    def test_more_than_ten_lines_at_once_are_delayed_with_a_notice_and_none_is_lost(
            self, own_server: OwnServer, own_clients: OwnClients) -> None:
        """Flood control is on by default (burst 10, 5 lines a second): 15
        lines at once get one NOTICE that they are delayed, and every one of
        them is said, in order, later."""
        server = own_server("--history", "0")
        opened = own_clients(server)
        bob = opened.line_user("bob")
        ann = opened.irc_user("ann", "hexchat")
        started = time.monotonic()
        ann.send(*(f"PRIVMSG #chat :line {n}" for n in range(15)))
        assert [bob.read_line() for _ in range(15)] == [f"SAY ann line {n}" for n in range(15)]
        assert time.monotonic() - started > 0.5  # some of them waited for tokens
        assert ann.sync() == [parse(f":{SERVER_NAME} NOTICE ann :{FLOOD_NOTICE}")]
        assert bob.sync() == []


class TestHistory:
    def test_the_last_twenty_lines_said_are_replayed_after_the_names(
            self, own_server: OwnServer, own_clients: OwnClients) -> None:
        """Lines said before an IRC user joined: after 366, NOTICEs between
        ``*** the last 20 lines said before you joined:`` and ``*** end of
        history``, the last 20 SAYs in order (no TELL)."""
        server = own_server("--no-flood-limit")
        opened = own_clients(server)
        bob = opened.line_user("bob")
        dan = opened.line_user("dan")
        bob.send(*(f"SAY line {n}" for n in range(25)), "TELL dan a secret")
        assert bob.read_until("OK TELL")[-1] == "OK TELL dan"
        assert dan.read_until("TELL ")[-1] == "TELL bob a secret"
        ann = opened.irc_user("ann", "hexchat")
        replay = ann.read_messages(22)
        assert replay[0] == parse(f":{SERVER_NAME} NOTICE #chat :*** the last 20 lines said before you joined:")
        assert replay[-1] == parse(f":{SERVER_NAME} NOTICE #chat :*** end of history")
        for n, message in zip(range(5, 25), replay[1:-1], strict=True):
            assert (message.source, message.command, message.params[0]) == (SERVER_NAME, "NOTICE", CHANNEL)
            assert message.text.endswith(f"<bob> line {n}"), message
        assert_quiet(ann, dan)

        eve = opened.raw_irc()  # with server-time: the lines themselves, at their times
        register_with_server_time(eve, "eve")
        replay = eve.read_messages(20)
        assert replay == [parse(f":{mask('bob')} PRIVMSG #chat :line {n}") for n in range(5, 25)]
        times = [message.tags or "" for message in replay]
        assert all(TIME_TAG.fullmatch(tag) for tag in times), times
        assert times == sorted(times)
        assert_quiet(eve)

    def test_nothing_is_replayed_when_nothing_was_said(
            self, own_server: OwnServer, own_clients: OwnClients) -> None:
        opened = own_clients(own_server("--no-flood-limit"))
        opened.line_user("bob")
        ann = opened.irc_user("ann")
        assert_quiet(ann)


class TestShutdown:
    def test_sigterm_tells_irc_users_then_closes_with_error(
            self, own_server: OwnServer, own_clients: OwnClients) -> None:
        """SIGTERM: each IRC user gets ``:irc.test NOTICE #chat :server
        shutting down``, then (after any QUIT of members closed before it)
        ``ERROR :Closing link: server shutting down``, then EOF."""
        server = own_server("--no-flood-limit")
        opened = own_clients(server)
        bob = opened.line_user("bob")
        irc_users = [opened.irc_user("ann"), opened.irc_user("carl", "weechat")]
        assert server.stop(signal.SIGTERM) == 0
        for irc in irc_users:
            lines = irc.lines_until_eof()
            assert lines[0] == parse(f":{SERVER_NAME} NOTICE #chat :{SHUTDOWN}")
            assert lines[-1] == parse(f"ERROR :Closing link: {SHUTDOWN}")
            for between in lines[1:-1]:
                assert between.command == "QUIT" and between.params == (SHUTDOWN,), lines
        line_lines = bob.lines_until_eof()
        assert line_lines[0] == f"WALL * {SHUTDOWN}"
        assert line_lines[-1] == f"BYE {SHUTDOWN}"


# --- one room on two nodes -------------------------------------------------------------------------


class TestTwoNodes:
    def test_irc_users_on_two_nodes_and_a_line_user_chat_tell_and_rename_across_nodes(
            self, redis_server: RedisServer, nodes: Callable[..., RunningServer],
            own_clients: OwnClients) -> None:
        """ann (IRC) on node 1, bob (line) and carl (IRC) on node 2: the names
        are the whole room, channel lines, private lines and renames cross
        the nodes, a nick is taken across them, and WHO on another node
        shows what it knows."""
        node1 = nodes(*IRC_ARGS, "--history", "0", listeners=2)
        node2 = nodes(*IRC_ARGS, "--history", "0", listeners=2)
        opened = own_clients(node1)
        ann = opened.irc_user("ann", "hexchat", server=node1)
        bob = opened.line_user("bob", server=node2)
        carl = opened.raw_irc(node2)
        burst = carl.register("carl", "weechat")
        assert sorted(numeric(burst, "353").text.split()) == ["ann", "bob", "carl"]
        ann.expect(f":{mask('carl')} JOIN #chat")
        assert bob.read_line() == "JOIN carl"

        ann.send("PRIVMSG #chat :hello from node 1")
        carl.expect(f":{mask('ann')} PRIVMSG #chat :hello from node 1")
        assert bob.read_line() == "SAY ann hello from node 1"
        carl.send("PRIVMSG ann :psst, node 2 here")
        ann.expect(f":{mask('carl')} PRIVMSG ann :psst, node 2 here")  # not ann's own line back
        bob.send("TELL ann a tell from node 2")
        assert bob.read_line() == "OK TELL ann"
        ann.expect(f":{mask('bob')} PRIVMSG ann :a tell from node 2")
        ann.send("PRIVMSG bob :and back")
        assert bob.read_line() == "TELL ann and back"

        ann.send("NICK anna")
        ann.expect(f":{mask('ann')} NICK anna")
        carl.expect(f":{mask('ann')} NICK anna")
        assert bob.read_line() == "RENAME ann anna"
        carl.send("NICK ANNA")
        refusal = carl.read_message()
        assert (refusal.command, refusal.params[:2]) == ("433", ("carl", "ANNA"))
        bob.send("NICK Anna")
        assert bob.read_line() == "ERR nick-taken Anna is already taken; choose another nick"

        carl.send("WHO #chat")
        who = {message.params[5]: message for message in carl.read_until("315")[:-1]}
        assert who["anna"] == parse(f":{SERVER_NAME} 352 carl #chat anna chatd {SERVER_NAME} anna H :0 a chatd user")
        assert who["carl"] == parse(f":{SERVER_NAME} 352 carl #chat root chatd {SERVER_NAME} carl H :0 root")

        bob.send("QUIT going home")
        assert bob.read_line() == "BYE going home"
        ann.expect(f":{mask('bob')} QUIT :going home")
        carl.expect(f":{mask('bob')} QUIT :going home")



class TestTLS:
    def test_an_irc_client_over_tls_chats_with_a_plain_v1_user(
            self, tmp_path: Path, chatd_factory: Callable[..., RunningServer]) -> None:
        """``--irc ssl:...``: a verified TLS IRC client registers as irssi does and
        chats with a v1 user on the plain TCP port."""
        key, cert = self_signed(tmp_path)
        server = chatd_factory("--irc", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
                               "--irc-server-name", "irc.test", listeners=2)
        context = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection(("127.0.0.1", server.ports[1][1]), timeout=10)
        secure = IrcClient("127.0.0.1", server.ports[1][1],
                           sock=context.wrap_socket(raw, server_hostname="127.0.0.1"))
        plain = LineClient(server.host, server.port)
        try:
            plain.login("bob")
            assert isinstance(secure.sock, ssl.SSLSocket)
            secure.register("ann")
            assert plain.read_line() == "JOIN ann"
            secure.send("PRIVMSG #chat :over tls")
            assert plain.read_line() == "SAY ann over tls"
            plain.send("SAY over tcp")
            assert secure.read_until(lambda message: message.command == "PRIVMSG")[-1] == Message(
                "bob!bob@chatd", "PRIVMSG", ("#chat", "over tcp"))
        finally:
            secure.sock.close()
            plain.close()

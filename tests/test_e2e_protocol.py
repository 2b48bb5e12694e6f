"""Protocol v1 end to end: the real chatd, spoken to over loopback sockets.

Clients are raw sockets that behave like ``nc`` (lines end in LF) or
``telnet`` (lines end in CRLF).  Nothing sleeps: "nothing else arrived" is
checked with ``LineClient.sync``, a PING whose PONG comes after every line
the connection was due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chatd import __version__
from tests.support import (
    Connect,
    LineClient,
    RunningServer,
    connecting,
    greeted,
    room,
    rss_kib,
    start_chatd,
)

pytestmark = pytest.mark.e2e

NICK_RULES = "a nick is 1-20 ASCII letters, digits, '_' or '-', starting with a letter"


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningServer]:
    """One default chatd for the tests of this module that need no options;
    ``connect`` empties its room after each test, so tests do not mix."""
    server = start_chatd()
    yield server
    server.stop()


@pytest.fixture
def connect(shared_server: RunningServer) -> Iterator[Connect]:
    """Clients to the shared server (or another), closed after the test."""
    yield from connecting(shared_server)


def assert_quiet(*clients: LineClient) -> None:
    """None of ``clients`` has received anything it has not read yet."""
    for client in clients:
        assert client.sync() == []


class TestGreeting:
    def test_hello_is_the_first_line(self, connect: Connect) -> None:
        """Every connection is greeted with HELLO chatd/<version> and a text."""
        client = connect()
        hello = client.read_line()
        assert hello.startswith(f"HELLO chatd/{__version__} ")
        assert hello.split(" ", 2)[2].strip()

    def test_nothing_is_broadcast_to_connections_not_logged_in(self, connect: Connect) -> None:
        """A connection that has not logged in hears no JOIN, SAY or PART."""
        lurker = greeted(connect)
        ann, bob = room(connect, "ann", "bob")
        ann.send("SAY hi")
        assert ann.read_line() == bob.read_line() == "SAY ann hi"
        bob.send("QUIT")
        assert ann.read_line() == "PART bob leaving"
        assert_quiet(lurker)


class TestLogin:
    def test_first_nick_gets_ok_join_then_who(self, connect: Connect) -> None:
        """NICK sends OK NICK, JOIN to everyone including the sender, then the WHO reply."""
        ann = connect()
        assert ann.login("ann") == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]
        bob = connect()
        assert bob.login("bob") == ["OK NICK bob", "JOIN bob", "USERS ann bob", "OK WHO 2"]
        assert ann.read_line() == "JOIN bob"
        carol = connect(crlf=True)
        assert carol.login("carol") == [
            "OK NICK carol", "JOIN carol", "USERS ann bob carol", "OK WHO 3"]
        assert ann.read_line() == bob.read_line() == "JOIN carol"
        assert_quiet(ann, bob, carol)

    def test_nick_taken_ignores_case(self, connect: Connect) -> None:
        """A nick differing only in case from a logged-in one is nick-taken."""
        (ann,) = room(connect, "ann")
        other = greeted(connect)
        other.send("NICK ANN")
        assert other.read_line() == "ERR nick-taken ANN is already taken; choose another nick"
        other.send("NICK Ann2")
        assert other.read_until("OK WHO")[0] == "OK NICK Ann2"
        assert ann.read_line() == "JOIN Ann2"

    @pytest.mark.parametrize("bad", ["1abc", "-ann", "_ann", "a" * 21, "an!n", "änn",
                                     "ann smith", "ann\tx"])
    def test_invalid_nick_is_bad_nick(self, connect: Connect, bad: str) -> None:
        """A nick breaking the rules gets bad-nick and leaves the connection logged out."""
        client = greeted(connect)
        client.send(f"NICK {bad}")
        assert client.read_line() == f"ERR bad-nick {bad!r} is not a valid nick: {NICK_RULES}"
        client.send("SAY hi")
        assert client.read_line().startswith("ERR need-nick ")

    def test_longest_and_shortest_nicks_are_accepted(self, connect: Connect) -> None:
        """Nicks of 1 and of 20 characters using letters, digits, '_' and '-' are valid."""
        long_nick = "Z9_-" + "a" * 16
        one, twenty = connect(), connect()
        assert one.login("q")[0] == "OK NICK q"
        assert twenty.login(long_nick)[0] == f"OK NICK {long_nick}"

    def test_spaces_around_nick_are_separators(self, connect: Connect) -> None:
        """Runs of spaces before the verb, after it and after the nick are ignored."""
        client = greeted(connect)
        client.send("   NICK    ann   ")
        assert client.read_until("OK WHO") == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]

    def test_verbs_ignore_case(self, connect: Connect) -> None:
        """Verbs are matched without regard to case (nick, Say, ping)."""
        client = greeted(connect)
        client.send("nick ann")
        assert client.read_until("OK WHO")[0] == "OK NICK ann"
        client.send("Say hi", "ping x")
        assert client.read_lines(2) == ["SAY ann hi", "PONG x"]

    @pytest.mark.parametrize("line", ["SAY hi", "TELL ann hi", "WALL hi", "OPER secret"])
    def test_room_verbs_need_nick(self, connect: Connect, line: str) -> None:
        """SAY, TELL, WALL (without an operator password) and OPER before NICK get need-nick."""
        (ann,) = room(connect, "ann")
        client = greeted(connect)
        client.send(line)
        assert client.read_line() == "ERR need-nick log in first with NICK <name>"
        assert_quiet(ann, client)

    def test_who_ping_help_need_no_nick(self, connect: Connect) -> None:
        """WHO, PING and HELP work before logging in."""
        room(connect, "ann")
        client = greeted(connect)
        client.send("WHO", "PING x")
        assert client.read_lines(3) == ["USERS ann", "OK WHO 1", "PONG x"]
        client.send("HELP")
        assert client.read_until("OK HELP")[-1] == "OK HELP"


class TestChat:
    def test_say_reaches_everyone_including_sender(self, connect: Connect) -> None:
        """SAY from an nc or telnet client reaches every logged-in user as SAY <nick> <text>."""
        ann, bob, carol = room(connect, "ann", "bob", "carol", crlf=("carol",))
        bob.send("SAY hello everyone")
        carol.send("SAY hi bob, ça va?")
        for client in (ann, bob, carol):
            lines = client.read_lines(2)
            assert sorted(lines) == ["SAY bob hello everyone", "SAY carol hi bob, ça va?"]
        assert_quiet(ann, bob, carol)

    @pytest.mark.parametrize(("line", "relayed"), [
        ("SAY  two spaces before", "SAY ann  two spaces before"),
        ("SAY inner   spaces kept", "SAY ann inner   spaces kept"),
        ("SAY trailing spaces  ", "SAY ann trailing spaces  "),
        ("SAY tab\tkept", "SAY ann tab\tkept"),
        ("  say   lead", "SAY ann   lead"),
    ])
    def test_text_after_one_separator_is_kept_verbatim(
            self, connect: Connect, line: str, relayed: str) -> None:
        """Exactly one space separates SAY from its text; every other space and TAB is text."""
        ann, bob = room(connect, "ann", "bob")
        ann.send(line)
        assert bob.read_line() == relayed
        assert ann.read_line() == relayed

    def test_rename_tells_everyone(self, connect: Connect) -> None:
        """A later NICK gives OK NICK to the sender and RENAME old new to everyone."""
        ann, bob = room(connect, "ann", "bob")
        ann.send("NICK anna")
        assert ann.read_lines(2) == ["OK NICK anna", "RENAME ann anna"]
        assert bob.read_line() == "RENAME ann anna"
        ann.send("SAY renamed")
        assert bob.read_line() == "SAY anna renamed"
        bob.send("NICK ann")
        assert bob.read_lines(2) == ["OK NICK ann", "RENAME bob ann"]

    def test_rename_changing_only_case_is_a_rename(self, connect: Connect) -> None:
        """NICK with one's own nick in another case is announced as a RENAME."""
        ann, bob = room(connect, "ann", "bob")
        ann.send("NICK ANN")
        assert ann.read_lines(2) == ["OK NICK ANN", "RENAME ann ANN"]
        assert bob.read_line() == "RENAME ann ANN"

    def test_nick_to_own_nick_is_only_ok(self, connect: Connect) -> None:
        """NICK with exactly one's own nick answers OK NICK and tells nobody else."""
        ann, bob = room(connect, "ann", "bob")
        ann.send("NICK ann")
        assert ann.read_line() == "OK NICK ann"
        assert_quiet(ann, bob)

    def test_rename_to_taken_nick_is_refused(self, connect: Connect) -> None:
        """Renaming to another user's nick, in any case, is nick-taken and changes nothing."""
        ann, bob = room(connect, "ann", "bob")
        ann.send("NICK BOB")
        assert ann.read_line() == "ERR nick-taken BOB is already taken; choose another nick"
        ann.send("SAY still ann")
        assert bob.read_line() == "SAY ann still ann"

    def test_old_nick_is_free_after_rename(self, connect: Connect) -> None:
        """After a rename the old nick can be taken by someone else."""
        ann, bob = room(connect, "ann", "bob")
        ann.send("NICK anna")
        ann.read_lines(2)
        bob.read_line()
        carol = connect()
        assert carol.login("ann")[0] == "OK NICK ann"

    def test_who_lists_everyone(self, connect: Connect) -> None:
        """WHO answers USERS with every nick then OK WHO <count>; a rename moves a nick last."""
        ann, bob, carol = room(connect, "ann", "bob", "carol")
        carol.send("WHO")
        assert carol.read_lines(2) == ["USERS ann bob carol", "OK WHO 3"]
        ann.send("NICK zed")
        ann.read_lines(2)
        carol.read_line()
        carol.send("WHO")
        assert carol.read_lines(2) == ["USERS bob carol zed", "OK WHO 3"]

    def test_tell_reaches_only_the_target(self, connect: Connect) -> None:
        """TELL gives the target TELL <sender> <text> and the sender OK TELL <nick>, nobody else anything."""
        ann, bob, carol = room(connect, "ann", "bob", "carol", crlf=("bob",))
        ann.send("TELL bob psst  quietly")
        assert bob.read_line() == "TELL ann psst  quietly"
        assert ann.read_line() == "OK TELL bob"
        assert_quiet(ann, bob, carol)

    def test_tell_target_ignores_case(self, connect: Connect) -> None:
        """TELL finds its target ignoring case, and OK TELL names it as it spells itself."""
        ann, bob = room(connect, "ann", "Bob")
        ann.send("TELL bOB   hi")
        assert bob.read_line() == "TELL ann   hi"
        assert ann.read_line() == "OK TELL Bob"

    def test_tell_yourself(self, connect: Connect) -> None:
        """TELL to one's own nick delivers the TELL, then OK TELL."""
        (ann,) = room(connect, "ann")
        ann.send("TELL ann note to self")
        assert ann.read_lines(2) == ["TELL ann note to self", "OK TELL ann"]

    def test_wall_reaches_every_connection(self, connect: Connect) -> None:
        """Without an operator password any user's WALL reaches everyone, even connections not logged in."""
        lurker = greeted(connect, crlf=True)
        ann, bob = room(connect, "ann", "bob")
        bob.send("WALL fire drill at noon")
        for client in (lurker, ann, bob):
            assert client.read_line() == "WALL bob fire drill at noon"
        assert_quiet(lurker, ann, bob)

    @pytest.mark.parametrize(("line", "reply"), [
        ("PING", "PONG"), ("PING ", "PONG"), ("PING abc", "PONG abc"),
        ("PING a  b ", "PONG a  b "), ("PING    ", "PONG"),
    ])
    def test_ping_echoes_its_token(self, connect: Connect, line: str, reply: str) -> None:
        """PING answers PONG with the token, spaces and all, or a bare PONG."""
        client = greeted(connect)
        client.send(line)
        assert client.read_line() == reply

    def test_help_lines_end_with_ok_help(self, connect: Connect) -> None:
        """HELP answers HELP lines naming every command, then OK HELP."""
        client = greeted(connect)
        client.send("HELP")
        lines = client.read_until("OK HELP")
        assert lines[-1] == "OK HELP"
        body = lines[:-1]
        assert body and all(line.startswith("HELP ") for line in body)
        for verb in ("NICK", "SAY", "TELL", "WALL", "WHO", "OPER", "PING", "QUIT", "HELP"):
            assert any(line.startswith(f"HELP {verb} ") for line in body), verb


class TestLeaving:
    def test_quit_says_bye_closes_and_parts(self, connect: Connect) -> None:
        """QUIT <reason> gives the sender BYE <reason> then EOF, and the others PART <nick> <reason>."""
        ann, bob, carol = room(connect, "ann", "bob", "carol", crlf=("bob",))
        bob.send("QUIT  off to lunch")
        assert bob.lines_until_eof() == ["BYE  off to lunch"]
        assert ann.read_line() == carol.read_line() == "PART bob  off to lunch"
        ann.send("WHO")
        assert ann.read_lines(2) == ["USERS ann carol", "OK WHO 2"]

    def test_quit_without_reason_is_leaving(self, connect: Connect) -> None:
        """QUIT alone uses the reason 'leaving'."""
        ann, bob = room(connect, "ann", "bob")
        bob.send("QUIT")
        assert bob.lines_until_eof() == ["BYE leaving"]
        assert ann.read_line() == "PART bob leaving"

    def test_dropped_connection_parts_with_connection_lost(self, connect: Connect) -> None:
        """Closing the socket without QUIT gives the others PART <nick> connection lost."""
        ann, bob, carol = room(connect, "ann", "bob", "carol")
        bob.close()
        assert ann.read_line() == carol.read_line() == "PART bob connection lost"
        assert_quiet(ann, carol)

    def test_quit_before_login_tells_nobody(self, connect: Connect) -> None:
        """QUIT from a connection not logged in gets BYE and nobody hears a PART."""
        (ann,) = room(connect, "ann")
        client = greeted(connect)
        client.send("QUIT bye")
        assert client.lines_until_eof() == ["BYE bye"]
        assert_quiet(ann)

    def test_lines_after_quit_are_ignored(self, connect: Connect) -> None:
        """Lines sent after QUIT in the same packet are not acted on."""
        ann, bob = room(connect, "ann", "bob")
        bob.send("QUIT done", "SAY too late")
        assert bob.lines_until_eof() == ["BYE done"]
        assert ann.read_line() == "PART bob done"
        assert_quiet(ann)

    def test_nick_is_free_after_quit(self, connect: Connect) -> None:
        """A nick can be taken again once its owner has quit."""
        ann, bob = room(connect, "ann", "bob")
        bob.send("QUIT")
        assert ann.read_line() == "PART bob leaving"
        again = connect()
        assert again.login("BOB")[0] == "OK NICK BOB"

    def test_quit_with_blank_reason_is_leaving(self, connect: Connect) -> None:
        """QUIT followed by only spaces counts as no reason: BYE leaving, PART <nick> leaving."""
        ann, bob = room(connect, "ann", "bob")
        bob.send("QUIT   ")
        assert bob.lines_until_eof() == ["BYE leaving"]
        assert ann.read_line() == "PART bob leaving"


class TestErrors:
    @pytest.mark.parametrize(("line", "reply"), [
        ("FOO bar", "ERR unknown-command unknown command 'FOO'; try HELP"),
        ("NICKann", "ERR unknown-command unknown command 'NICKann'; try HELP"),
        ("SAY\thi", "ERR unknown-command unknown command 'SAY\\thi'; try HELP"),
        ("ſay hi", "ERR unknown-command unknown command 'ſay'; try HELP"),
        ("NICK", "ERR missing-argument the nick is missing"),
        ("NICK    ", "ERR missing-argument the nick is missing"),
        ("SAY", "ERR missing-argument the text to say is missing"),
        ("SAY    ", "ERR missing-argument the text to say is missing"),
        ("SAY \t", "ERR missing-argument the text to say is missing"),
        ("TELL", "ERR missing-argument the nick to tell is missing"),
        ("TELL bob", "ERR missing-argument the text to tell is missing"),
        ("TELL bob  ", "ERR missing-argument the text to tell is missing"),
        ("WALL", "ERR missing-argument the text of the alert is missing"),
        ("OPER", "ERR missing-argument the operator password is missing"),
        ("TELL nobody hi", "ERR no-such-user nobody called nobody is here"),
        ("NICK BOB", "ERR nick-taken BOB is already taken; choose another nick"),
        ("NICK b@d", f"ERR bad-nick 'b@d' is not a valid nick: {NICK_RULES}"),
        ("OPER guess", "ERR not-permitted this server has no operator password"),
    ])
    def test_error_keeps_connection_open(self, connect: Connect, line: str, reply: str) -> None:
        """A refused line gets exactly one ERR <code> <text>, the others hear nothing, and the connection
        still works."""
        ann, bob = room(connect, "ann", "bob")
        ann.send(line)
        assert ann.read_line() == reply
        assert_quiet(ann, bob)
        ann.send("SAY still here")
        assert bob.read_line() == "SAY ann still here"


class TestFlood:
    def test_lines_beyond_the_burst_are_delayed_with_one_err_flood(self, connect: Connect) -> None:
        """With the default limits (burst 10, 5 lines/s) the 11th line at once gets one ERR flood, and
        every line is still answered, in order."""
        client = greeted(connect)
        client.send(*(f"PING {n}" for n in range(12)))
        lines = client.read_lines(13)
        assert lines == [f"PONG {n}" for n in range(10)] + [
            "ERR flood you are sending more than 5 lines a second; "
            "the rest are delayed, not lost",
            "PONG 10", "PONG 11"]


class TestLineLimits:
    def test_line_of_max_line_bytes_is_accepted_and_relayed_longer(self, connect: Connect) -> None:
        """A 1024-byte line (CRLF or LF) is accepted, and its relay is longer than 1024 bytes."""
        ann, bob = room(connect, "ann", "bob", crlf=("bob",))
        text = "x" * (1024 - len("SAY "))
        bob.send("SAY " + text)
        relayed = ann.read_line()
        assert relayed == "SAY bob " + text and len(relayed) > 1024
        ann.send("SAY " + text)
        assert bob.read_lines(2) == [relayed, "SAY ann " + text]

    def test_over_long_crlf_line_is_refused_then_next_line_works(self, connect: Connect) -> None:
        """A 1025-byte telnet line gets ERR line-too-long, is not relayed, and the next line works."""
        ann, bob = room(connect, "ann", "bob", crlf=("bob",))
        bob.send("SAY " + "x" * 1021, "SAY short")
        assert bob.read_lines(2) == [
            "ERR line-too-long lines are limited to 1024 bytes; this one was dropped",
            "SAY bob short"]
        assert ann.read_line() == "SAY bob short"
        assert_quiet(ann, bob)

    def test_over_long_lf_line_is_refused(self, connect: Connect) -> None:
        """A 1025-byte nc line (LF) gets ERR line-too-long like a telnet one."""
        ann, bob = room(connect, "ann", "bob")
        ann.send("SAY " + "x" * 1021)
        assert ann.read_line().startswith("ERR line-too-long ")

    def test_max_line_option_sets_the_limit(self, connect: Connect,
                                            chatd_factory: Callable[..., RunningServer]) -> None:
        """--max-line 32 accepts a 32-byte line and refuses a 34-byte one."""
        server = chatd_factory("--max-line", "32")
        ann, bob = room(connect, "ann", "bob", server=server, crlf=("ann",))
        ann.send("SAY " + "y" * 28, "SAY " + "z" * 30)
        assert ann.read_lines(2) == [
            "SAY ann " + "y" * 28,
            "ERR line-too-long lines are limited to 32 bytes; this one was dropped"]
        assert bob.read_line() == "SAY ann " + "y" * 28
        assert_quiet(ann, bob)

    def test_two_megabytes_without_newline(self, connect: Connect) -> None:
        """2 MB with no newline get one ERR line-too-long; meanwhile and afterwards everyone chats normally."""
        ann, bob = room(connect, "ann", "bob")
        ann.send_raw(b"SAY " + b"a" * (1024 * 1024))
        assert ann.read_line().startswith("ERR line-too-long ")
        bob.send("SAY while ann floods")
        assert bob.read_line() == ann.read_line() == "SAY bob while ann floods"
        ann.send_raw(b"b" * (1024 * 1024) + b"\nSAY back to normal\n")
        assert ann.read_line() == bob.read_line() == "SAY ann back to normal"
        assert_quiet(ann, bob)

    def test_endless_line_does_not_grow_memory(self, connect: Connect,
                                               shared_server: RunningServer) -> None:
        """32 MB without a newline leave the server's resident memory within 8 MB of where it was."""
        (ann,) = room(connect, "ann", server=shared_server)
        ann.sync()
        before = rss_kib(shared_server.process.pid)
        chunk = b"c" * (1024 * 1024)
        for _ in range(32):
            ann.send_raw(chunk)
        ann.send_raw(b"\n")
        assert ann.sync() == ["ERR line-too-long lines are limited to 1024 bytes; "
                              "this one was dropped"]
        grown = rss_kib(shared_server.process.pid) - before
        assert grown < 8 * 1024, f"resident memory grew by {grown} KiB"


class TestTextHygiene:
    def test_invalid_utf8_is_bad_encoding(self, connect: Connect) -> None:
        """A line that is not UTF-8 gets ERR bad-encoding, is not relayed, and the next line works."""
        ann, bob = room(connect, "ann", "bob")
        ann.send_raw(b"SAY caf\xe9\nSAY \xc3\x28\nSAY caf\xc3\xa9\n")
        assert ann.read_lines(3) == ["ERR bad-encoding lines must be UTF-8"] * 2 + ["SAY ann café"]
        assert bob.read_line() == "SAY ann café"
        assert_quiet(ann, bob)

    def test_controls_are_stripped_before_relaying(self, connect: Connect) -> None:
        """ESC, BEL, NUL, DEL, C1 controls, bare CR and telnet IAC sequences never reach another client; TAB does."""
        ann, bob = room(connect, "ann", "bob", crlf=("ann",))
        ann.send_raw(
            b"SAY \x1b[31mred\x1b[0m"            # ANSI colour: ESC removed, rest visible
            b" \xc2\x9b2J"                       # C1 CSI (U+009B)
            b" bell\x07nul\x00del\x7fcr\rend"    # C0 and DEL
            b" iac\xff\xfb\x01will\xff\xf4ip\xff\xfa\x18\x01\xff\xf0sb"  # telnet
            b"\ttab\r\n")
        expected = "SAY ann [31mred[0m 2J bellnuldelcrend iacwillipsb\ttab"
        assert bob.read_line() == expected
        assert ann.read_line() == expected

    def test_bidi_controls_are_stripped_before_relaying(self, connect: Connect) -> None:
        """A right-to-left override (U+202E) and an isolate (U+2066) never reach another
        client, so nobody can turn another's text around ("Trojan Source")."""
        ann, bob = room(connect, "ann", "bob")
        ann.send_raw("SAY \u202egnirts \u2066isolated\u2069 end\n".encode())
        assert bob.read_line() == "SAY ann gnirts isolated end"
        assert ann.read_line() == "SAY ann gnirts isolated end"

    def test_controls_in_tell_and_quit_are_stripped(self, connect: Connect) -> None:
        """Stripping applies to every relayed text: TELL text and QUIT reasons too."""
        ann, bob = room(connect, "ann", "bob")
        ann.send_raw(b"TELL bob \x1b]0;title\x07hi\n")
        assert bob.read_line() == "TELL ann ]0;titlehi"
        ann.send_raw(b"QUIT \x1bcbye\n")
        assert bob.read_line() == "PART ann cbye"

    @pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"   \n", b"\t \r\n", b"\x1b\x07\n",
                                       b"\xff\xfb\x01\n"])
    def test_blank_lines_are_ignored(self, connect: Connect, blank: bytes) -> None:
        """Empty lines, lines of spaces or TABs, and lines that are blank once cleaned get no reply."""
        ann, bob = room(connect, "ann", "bob")
        ann.send_raw(blank * 3)
        assert_quiet(ann, bob)


class TestOperators:
    def test_oper_password_from_file(self, connect: Connect, tmp_path,
                                     chatd_factory: Callable[..., RunningServer]) -> None:
        """With --oper-password-file, WALL needs OPER with the file's first line, then reaches every connection."""
        password_file = tmp_path / "oper"
        password_file.write_text("  s3cret word \nnot this line\n")
        server = chatd_factory("--oper-password-file", str(password_file))
        lurker = greeted(connect, server)
        ann, bob = room(connect, "ann", "bob", server=server)
        ann.send("WALL hello")
        assert ann.read_line() == ("ERR not-permitted only operators may WALL on this server; "
                                   "use OPER <password>")
        ann.send("OPER not this line")
        assert ann.read_line() == "ERR not-permitted wrong operator password"
        ann.send("OPER s3cret word")
        assert ann.read_line() == "OK OPER"
        ann.send("WALL server restarts at noon")
        for client in (lurker, ann, bob):
            assert client.read_line() == "WALL ann server restarts at noon"
        assert_quiet(lurker, ann, bob)

    def test_oper_password_from_environment(self, connect: Connect,
                                            chatd_factory: Callable[..., RunningServer]) -> None:
        """With CHATD_OPER_PASSWORD set, only a user who gave it with OPER may WALL."""
        server = chatd_factory(env={"CHATD_OPER_PASSWORD": "hunter2"})
        ann, bob = room(connect, "ann", "bob", server=server)
        bob.send("WALL hi")
        assert bob.read_line().startswith("ERR not-permitted ")
        ann.send("OPER hunter2", "WALL from the oper")
        assert ann.read_lines(2) == ["OK OPER", "WALL ann from the oper"]
        assert bob.read_line() == "WALL ann from the oper"

    def test_operator_status_survives_rename(self, connect: Connect,
                                             chatd_factory: Callable[..., RunningServer]) -> None:
        """An operator who changes nick may still WALL, under the new nick."""
        server = chatd_factory(env={"CHATD_OPER_PASSWORD": "hunter2"})
        (ann,) = room(connect, "ann", server=server)
        ann.send("OPER hunter2", "NICK boss", "WALL hi")
        assert ann.read_lines(4) == ["OK OPER", "OK NICK boss", "RENAME ann boss", "WALL boss hi"]

    def test_wall_before_login_needs_a_nick_first(self, connect: Connect,
                                                  chatd_factory: Callable[..., RunningServer]) -> None:
        """With an operator password, WALL before login answers need-nick: log in comes first."""
        server = chatd_factory(env={"CHATD_OPER_PASSWORD": "hunter2"})
        client = greeted(connect, server)
        client.send("WALL hi")
        assert client.read_line().startswith("ERR need-nick ")

    def test_password_file_wins_over_environment(
            self, connect: Connect, tmp_path, chatd_factory: Callable[..., RunningServer]) -> None:
        """When both are set, the password file is used and the environment ignored."""
        password_file = tmp_path / "oper"
        password_file.write_text("fromfile\n")
        server = chatd_factory("--oper-password-file", str(password_file),
                               env={"CHATD_OPER_PASSWORD": "fromenv"})
        (ann,) = room(connect, "ann", server=server)
        ann.send("OPER fromenv", "OPER fromfile")
        assert ann.read_lines(2) == ["ERR not-permitted wrong operator password", "OK OPER"]

    def test_oper_without_configured_password(self, connect: Connect) -> None:
        """OPER on a server without an operator password is not-permitted; WALL stays open to all."""
        (ann,) = room(connect, "ann")
        ann.send("OPER anything", "WALL still allowed")
        assert ann.read_lines(2) == ["ERR not-permitted this server has no operator password",
                                     "WALL ann still allowed"]

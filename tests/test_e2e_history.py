"""Protocol 1.1 end to end: HISTORY, TIME and the @<time> prefix against the
real chatd, over loopback sockets that behave like ``nc`` (LF) or ``telnet``
(CRLF).  Nothing sleeps: "nothing else arrived" is a PING whose PONG comes
after every line the connection was due (``sync`` below, which also reads a
prefixed PONG)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from chatd import __version__, wire
from tests.support import (
    Connect,
    LineClient,
    RunningServer,
    connecting,
    greeted,
    room,
    start_chatd,
)

pytestmark = pytest.mark.e2e

Factory = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningServer]:
    """One chatd with default history settings for the tests that need no options.
    Its history outlives each test, so those tests ask only for lines they said
    themselves, just before the reader logged in.  The flood burst is raised so a
    test can say 25 lines at once without waiting out the default 5 lines a second."""
    server = start_chatd("--flood-burst", "200")
    yield server
    server.stop()


@pytest.fixture
def connect(shared_server: RunningServer) -> Iterator[Connect]:
    """Clients to the shared server (or another), closed after the test."""
    yield from connecting(shared_server)


def split(line: str) -> tuple[float | None, str]:
    """A line as a TIME ON client reads it: the prefix's time (or None) and the 1.0 line."""
    when, rest = wire.split_time(line)
    return (wire.parse_time(when) if when is not None else None), rest


def sync(client: LineClient, token: str = "sync") -> list[str]:
    """Every line the server sent before answering ``PING token``, prefixed or not."""
    client.send(f"PING {token}")
    lines: list[str] = []
    while True:
        line = client.read_line()
        if split(line)[1] == f"PONG {token}":
            return lines
        lines.append(line)


def read_until(client: LineClient, start: str) -> list[str]:
    """Lines up to and including the first whose 1.0 line starts with ``start``."""
    lines = []
    while True:
        line = client.read_line()
        lines.append(line)
        if split(line)[1].startswith(start):
            return lines


def prefixed(lines: list[str]) -> list[tuple[float, str]]:
    """Each line's time and 1.0 line, asserting every line has a prefix."""
    result = []
    for line in lines:
        when, rest = split(line)
        assert when is not None, f"no @<time> prefix: {line!r}"
        result.append((when, rest))
    return result


def replayed(reply: list[str]) -> list[str]:
    """The lines a HISTORY reply carries, checking it is HIST lines with times that
    never go back, then ``OK HISTORY <count>``."""
    *hists, ok = reply
    assert ok == f"OK HISTORY {len(hists)}", reply
    lines, times = [], []
    for raw in hists:
        message = wire.parse_server_line(raw)
        assert isinstance(message, wire.Hist), raw
        when = wire.parse_time(message.time)
        assert when is not None, raw
        times.append(when)
        lines.append(message.line)
    assert times == sorted(times), reply
    return lines


def history(client: LineClient, *args: str) -> list[str]:
    """The whole reply to ``HISTORY [args]`` (the client has TIME off)."""
    client.send(" ".join(["HISTORY", *args]))
    return client.read_until("OK HISTORY")


class TestHistory:
    """``HISTORY [n]``: the last n lines said before this connection logged in."""

    def test_lines_said_before_login_oldest_first(self, connect: Connect) -> None:
        """bob (telnet-style) reads back what ann (nc-style) said before he came, and not
        what he heard live; then nothing else."""
        (ann,) = room(connect, "ann")
        ann.send("SAY one", "SAY two", "SAY three")
        assert ann.read_lines(3) == ["SAY ann one", "SAY ann two", "SAY ann three"]
        bob = connect(crlf=True)
        bob.login("bob")
        assert ann.read_line() == "JOIN bob"
        ann.send("SAY live")
        assert bob.read_line() == ann.read_line() == "SAY ann live"
        assert replayed(history(bob, "3")) == ["SAY ann one", "SAY ann two", "SAY ann three"]
        assert sync(bob) == [] and sync(ann) == []

    def test_default_is_twenty(self, connect: Connect) -> None:
        """A bare HISTORY gives the last 20 lines."""
        (ann,) = room(connect, "ann")
        ann.send(*(f"SAY default {i}" for i in range(25)))
        assert sync(ann)[-1] == "SAY ann default 24"
        (bob,) = room(connect, "bob")
        assert replayed(history(bob)) == [f"SAY ann default {i}" for i in range(5, 25)]

    def test_zero_is_ok_history_zero(self, connect: Connect) -> None:
        """HISTORY 0 answers OK HISTORY 0, whatever is kept."""
        (ann,) = room(connect, "ann")
        assert history(ann, "0") == ["OK HISTORY 0"]

    def test_heard_live_never_and_rename_keeps_the_cut_off(self, connect: Connect) -> None:
        """What bob heard live, before or after renaming, never comes back in HISTORY; asking
        twice gives the same lines."""
        (ann,) = room(connect, "ann")
        ann.send("SAY before bob")
        assert ann.read_line() == "SAY ann before bob"
        bob = connect()
        bob.login("bob")
        assert ann.read_line() == "JOIN bob"
        ann.send("SAY while bob")
        assert bob.read_line() == ann.read_line() == "SAY ann while bob"
        bob.send("NICK bobby")
        assert bob.read_lines(2) == ["OK NICK bobby", "RENAME bob bobby"]
        assert ann.read_line() == "RENAME bob bobby"
        ann.send("SAY while bobby")
        assert bob.read_line() == "SAY ann while bobby"
        first = history(bob, "100")
        assert replayed(first)[-1] == "SAY ann before bob"
        assert not any("while" in line for line in first)
        assert history(bob, "100") == first

    def test_only_say_is_kept_byte_for_byte(self, connect: Connect) -> None:
        """TELL, WALL, JOIN, PART, RENAME and replies are never kept; a SAY comes back as
        the very line delivered then, under the nick it was said with."""
        ann, cy = room(connect, "ann", "cy")
        ann.send_raw(b"SAY  spaced  out\t \n")
        heard = cy.read_line()
        assert heard == "SAY ann  spaced  out\t "
        ann.send("TELL cy secret", "WALL drill", "PING p", "WHO", "NICK anna", "FROB")
        cy.send("QUIT gone")
        sync(ann)
        bob = connect()
        bob.login("bob")
        lines = replayed(history(bob, "100"))
        assert lines[-1] == heard
        assert all(line.startswith("SAY ") for line in lines)
        assert not any("secret" in line or "drill" in line for line in lines)

    def test_needs_a_nick(self, connect: Connect) -> None:
        """HISTORY before logging in is ERR need-nick; the connection goes on."""
        client = greeted(connect)
        client.send("HISTORY", "HISTORY 5")
        assert client.read_lines(2) == ["ERR need-nick log in first with NICK <name>"] * 2
        assert sync(client) == []

    @pytest.mark.parametrize("argument", ["ten", "-1", "5 6"])
    def test_bad_argument(self, connect: Connect, argument: str) -> None:
        """HISTORY with something other than a number is ERR bad-argument; the next line
        works."""
        (ann,) = room(connect, "ann")
        ann.send(f"HISTORY {argument}")
        assert ann.read_line() == ("ERR bad-argument HISTORY takes a number of lines, like "
                                   f"HISTORY 20; not {argument!r}")
        assert history(ann, "0") == ["OK HISTORY 0"]

    def test_history_off(self, connect: Connect, chatd_factory: Factory) -> None:
        """With --history 0, HISTORY is always OK HISTORY 0."""
        server = chatd_factory("--history", "0")
        (ann,) = room(connect, "ann", server=server)
        ann.send("SAY not kept")
        assert ann.read_line() == "SAY ann not kept"
        (bob,) = room(connect, "bob", server=server)
        assert history(bob) == history(bob, "50") == ["OK HISTORY 0"]

    def test_history_3_keeps_the_last_3(self, connect: Connect, chatd_factory: Factory) -> None:
        """With --history 3: nothing at first, then only the last 3 lines, however many
        are asked for."""
        server = chatd_factory("--history", "3")
        (ann,) = room(connect, "ann", server=server)
        assert history(ann) == ["OK HISTORY 0"]
        ann.send(*(f"SAY line {i}" for i in range(6)))
        sync(ann)
        (bob,) = room(connect, "bob", server=server)
        assert replayed(history(bob, "1000")) == ["SAY ann line 3", "SAY ann line 4",
                                                  "SAY ann line 5"]
        assert replayed(history(bob, "2")) == ["SAY ann line 4", "SAY ann line 5"]

    def test_history_bytes(self, connect: Connect, chatd_factory: Factory) -> None:
        """With a small --history-bytes, the newest lines that fit are kept (oldest out
        first), and a line bigger than the bound is never kept."""
        size = len(b"SAY ann line 0\r\n")
        server = chatd_factory("--history-bytes", str(2 * size))
        (ann,) = room(connect, "ann", server=server)
        ann.send("SAY line 0", "SAY line 1", "SAY " + "x" * 200, "SAY line 2")
        sync(ann)
        (bob,) = room(connect, "bob", server=server)
        assert replayed(history(bob)) == ["SAY ann line 1", "SAY ann line 2"]


class TestTime:
    """``TIME``, ``TIME ON`` and ``TIME OFF``, for anyone."""

    def test_time_is_the_server_clock(self, connect: Connect) -> None:
        """TIME, even before logging in, answers OK TIME with the server's clock now."""
        client = greeted(connect)
        before = time.time()
        client.send("TIME")
        reply = client.read_line()
        after = time.time()
        verb, what, when = reply.split(" ")
        assert (verb, what) == ("OK", "TIME")
        seconds = wire.parse_time(when)
        assert seconds is not None and before - 1 <= seconds <= after + 0.001

    def test_time_on_and_off(self, connect: Connect) -> None:
        """TIME ON's reply is prefixed and so is every line after it; OK TIME OFF is not,
        nor is any line after it; ON and OFF match in any case."""
        client = greeted(connect, crlf=True)
        client.send("time on", "PING a", "TIME", "TIME Off", "PING b")
        lines = client.read_lines(5)
        timed = prefixed(lines[:3])
        assert [rest for _, rest in timed] == ["OK TIME ON", "PONG a",
                                               f"OK TIME {wire.format_time(timed[2][0])}"]
        assert lines[3:] == ["OK TIME OFF", "PONG b"]
        client.send("TIME maybe")
        assert client.read_line() == ("ERR bad-argument TIME takes ON, OFF or nothing; "
                                      "not 'maybe'")

    def test_hello_is_never_prefixed(self, connect: Connect) -> None:
        """TIME ON sent at once, before HELLO is read, does not prefix HELLO."""
        client = connect()
        client.send("TIME ON")
        assert client.read_line().startswith(f"HELLO chatd/{__version__} ")
        assert split(client.read_line())[1] == "OK TIME ON"

    def test_every_kind_of_line_is_prefixed(self, connect: Connect,
                                            chatd_factory: Factory) -> None:
        """After TIME ON, every line ann reads (JOIN, SAY, RENAME, PART, TELL, WALL, USERS,
        OK, ERR with line-too-long and flood, HIST, PONG, HELP, BYE) is @<time> and its 1.0
        line, and the times parse and never go back."""
        server = chatd_factory("--max-line", "64", "--flood-burst", "10",
                               "--flood-rate", "1000")
        (cy,) = room(connect, "cy", server=server)
        cy.send("SAY said before ann came")
        sync(cy)
        ann = greeted(connect, server)
        ann.send("TIME ON", "NICK ann")
        got = read_until(ann, "OK WHO")
        assert cy.read_line() == "JOIN ann"
        bob = connect(server, crlf=True)
        bob.login("bob")
        got += read_until(ann, "JOIN bob")
        bob.send("SAY hi", "NICK bobby", "TELL ann psst", "WALL drill")
        got += read_until(ann, "WALL bobby drill")
        ann.send("WHO", "HISTORY", "FROB", "SAY " + "x" * 70, "HELP")
        got += read_until(ann, "OK HELP")
        cy.send("QUIT gone")
        got += read_until(ann, "PART cy")
        ann.send_raw(b"".join(b"PING %d\n" % i for i in range(40)))  # over the burst
        got += read_until(ann, "PONG 39")
        ann.send("QUIT bye")
        got += ann.lines_until_eof()
        lines = prefixed(got)
        times = [when for when, _ in lines]
        assert times == sorted(times)
        rests = [rest for _, rest in lines]
        assert rests[:6] == ["OK TIME ON", "OK NICK ann", "JOIN ann", "USERS cy ann", "OK WHO 2",
                             "JOIN bob"]
        assert rests[6:10] == ["SAY bob hi", "RENAME bob bobby", "TELL bobby psst",
                               "WALL bobby drill"]
        assert rests[10:14] == ["USERS cy ann bobby", "OK WHO 3",
                                rests[12], "OK HISTORY 1"]
        hist = wire.parse_server_line(rests[12])
        assert isinstance(hist, wire.Hist) and hist.line == "SAY cy said before ann came"
        assert rests[14].startswith("ERR unknown-command ")
        assert rests[15] == "ERR line-too-long lines are limited to 64 bytes; this one was dropped"
        assert rests[16].startswith("HELP ") and "OK HELP" in rests
        assert "PART cy gone" in rests
        # Once per lag episode: one here, unless the machine is slow enough for the
        # bucket to fill up again between two delayed lines.
        assert sum(rest.startswith("ERR flood ") for rest in rests) >= 1
        assert [rest for rest in rests if rest.startswith("PONG")] == [
            f"PONG {i}" for i in range(40)]
        assert rests[-1] == "BYE bye"

    def test_one_event_one_time_for_every_reader(self, connect: Connect) -> None:
        """Two TIME ON readers of one SAY read the same time, and HISTORY later shows that
        time for it."""
        ann, bob, cy = room(connect, "ann", "bob", "cy")
        ann.send("TIME ON")
        bob.send("TIME ON")
        assert split(ann.read_line())[1] == split(bob.read_line())[1] == "OK TIME ON"
        cy.send("SAY same time for all")
        at_ann, at_bob = ann.read_line(), bob.read_line()
        assert cy.read_line() == "SAY cy same time for all"
        assert at_ann == at_bob
        when, rest = split(at_ann)
        assert rest == "SAY cy same time for all" and when is not None
        (dee,) = room(connect, "dee")
        for client in (ann, bob, cy):
            assert split(client.read_line())[1] == "JOIN dee"
        assert history(dee, "1") == [f"HIST {wire.format_time(when)} SAY cy same time for all",
                                     "OK HISTORY 1"]

    def test_bidi_controls_are_removed_for_every_reader(self, connect: Connect) -> None:
        """An override and an isolate never reach another client: not a 1.0 reader, not a
        TIME ON reader, not a later HISTORY."""
        ann, bob, cy = room(connect, "ann", "bob", "cy")
        cy.send("TIME ON")
        assert split(cy.read_line())[1] == "OK TIME ON"
        ann.send_raw("SAY \u202egnirts \u2066isolated\u2069 \u202aend\u202c\n".encode())
        expected = "SAY ann gnirts isolated end"
        assert bob.read_line() == expected
        assert split(cy.read_line())[1] == expected
        (dee,) = room(connect, "dee")
        assert replayed(history(dee, "1")) == [expected]


class TestProtocol10:
    """A client that never sends the new commands sees exactly protocol 1.0."""

    def test_a_1_0_session_reads_only_1_0_lines(self, connect: Connect) -> None:
        """ann and bob speak only 1.0 while carl, in the same room, has TIME ON: ann reads
        exactly the 1.0 lines, with no prefix and no HIST."""
        ann = connect()
        hello = ann.read_line()
        assert hello == (f"HELLO chatd/{__version__} welcome to chatd; "
                         "log in with NICK <name>, or send HELP")
        ann.send("NICK ann")
        assert ann.read_until("OK WHO") == ["OK NICK ann", "JOIN ann", "USERS ann", "OK WHO 1"]
        carl = greeted(connect)
        carl.send("TIME ON", "NICK carl")
        read_until(carl, "OK WHO")
        bob = connect(crlf=True)
        bob.login("bob")
        bob.send("SAY hello ann", "TELL ann psst", "NICK bobby", "WALL drill")
        sync(bob)
        carl.send("SAY from carl")
        sync(carl)
        ann.send("WHO", "FROB", "PING 42")
        assert ann.read_until("PONG 42") == [
            "JOIN carl", "JOIN bob", "SAY bob hello ann", "TELL bob psst", "RENAME bob bobby",
            "WALL bobby drill", "SAY carl from carl", "USERS ann carl bobby", "OK WHO 3",
            "ERR unknown-command unknown command 'FROB'; try HELP", "PONG 42"]
        bob.send("QUIT lunch")
        assert ann.read_line() == "PART bobby lunch"
        carl.send("QUIT")
        assert ann.read_line() == "PART carl leaving"
        assert sync(ann) == []
        ann.send("QUIT")
        assert ann.lines_until_eof() == ["BYE leaving"]

"""chatclient.state: server messages in, model and display lines out."""

from __future__ import annotations

import pytest

from chatclient.state import ClientState, Kind, Link, Phase, error_words, mentions
from chatd import wire
from chatd.errors import ErrorCode
from chatd.nicks import NICK_RULES


def make_state(nick: str | None = None, **kwargs: object) -> ClientState:
    """A state with a fixed clock, connected, as after a fresh TCP connection."""
    state = ClientState("example:8123", nick=nick, clock=lambda: 1000.0, **kwargs)  # type: ignore[arg-type]
    state.connected()
    return state


def logged_in(nick: str = "ann", others: tuple[str, ...] = ()) -> ClientState:
    """A state that has logged in as ``nick`` with ``others`` already there."""
    state = make_state()
    state.start_login(nick)
    feed(state, wire.Ok("NICK", nick), wire.Joined(nick),
         wire.Users((*others, nick)), wire.Ok("WHO", str(len(others) + 1)))
    return state


def feed(state: ClientState, *messages: wire.ServerMessage) -> list[tuple[Kind, str]]:
    out = []
    for message in messages:
        out += [(line.kind, line.text) for line in state.apply(message)]
    return out


class TestLogin:
    def test_ok_nick_logs_in_and_join_shows(self) -> None:
        """OK NICK ends the login; my JOIN and the member list are shown."""
        state = make_state()
        state.start_login("ann")
        assert state.show_login
        lines = feed(state, wire.Hello("chatd/1.0.0", "welcome"), wire.Ok("NICK", "ann"),
                     wire.Joined("ann"), wire.Users(("bob", "ann")), wire.Ok("WHO", "2"))
        assert lines == [
            (Kind.INFO, "Connected to example:8123 (chatd/1.0.0)."),
            (Kind.JOIN, "You joined the room as ann."),
            (Kind.INFO, "In the room (2): ann, bob"),
        ]
        assert state.phase is Phase.IN and state.nick == "ann" and not state.show_login
        assert state.sorted_members() == ["ann", "bob"]

    @pytest.mark.parametrize(("code", "words"), [
        (ErrorCode.NICK_TAKEN, "ann is already taken; please choose another nick."),
        (ErrorCode.BAD_NICK, f"“ann” cannot be used as a nick: {NICK_RULES}."),
    ])
    def test_refusal_returns_to_prompt_with_words(self, code: ErrorCode, words: str) -> None:
        """A refused login goes back to asking, with the reason in plain words."""
        state = make_state()
        state.start_login("ann")
        feed(state, wire.Error(code, "server text"))
        assert state.phase is Phase.NEED_NICK and state.login_error == words

    def test_nick_given_up_front_logs_in_without_prompt(self) -> None:
        """With --nick the login view is never shown unless the nick is refused."""
        state = make_state("ann")
        assert not state.show_login
        state.start_login("ann", auto=True)
        feed(state, wire.Error(ErrorCode.NICK_TAKEN, "taken"))
        assert state.show_login


class TestRoomEvents:
    def test_say_from_others_and_me(self) -> None:
        """Lines are marked as mine when my nick said them."""
        state = logged_in()
        a, b = (state.apply(m)[0] for m in (wire.Said("ann", "hi"), wire.Said("bob", "yo")))
        assert (a.kind, a.nick, a.own) == (Kind.SAY, "ann", True)
        assert (b.nick, b.own, b.mention) == ("bob", False, False)

    def test_mention_is_flagged_and_alerts(self) -> None:
        """A line naming me (any case, whole word) is a mention that rings."""
        state = logged_in()
        [line] = state.apply(wire.Said("bob", "hey ANN, look"))
        assert line.mention and line.alerts
        [line] = state.apply(wire.Said("bob", "annual report"))
        assert not line.mention

    def test_join_part_rename_update_members(self) -> None:
        """Joins, leaves and renames update the member list and are quiet lines."""
        state = logged_in()
        lines = feed(state, wire.Joined("bob"), wire.Renamed("bob", "rob"),
                     wire.Parted("rob", "bye now"), wire.Parted("zed"))
        assert lines == [(Kind.JOIN, "bob joined."), (Kind.RENAME, "bob is now known as rob."),
                         (Kind.PART, "rob left (bye now)."), (Kind.PART, "zed left.")]
        assert state.sorted_members() == ["ann"]

    def test_my_rename(self) -> None:
        """OK NICK then RENAME of me changes my nick and says so once."""
        state = logged_in()
        lines = feed(state, wire.Ok("NICK", "anna"), wire.Renamed("ann", "anna"))
        assert lines == [(Kind.RENAME, "You are now known as anna.")]
        assert state.nick == "anna" and state.sorted_members() == ["anna"]

    def test_wall_and_tells(self) -> None:
        """WALLs (from a user or the server) and private TELLs are their own kinds."""
        state = logged_in()
        [wall] = state.apply(wire.Walled("bob", "fire"))
        [server] = state.apply(wire.Walled("*", "going down"))
        [tell] = state.apply(wire.Told("bob", "psst"))
        state.telling("BOB", "hi")
        [out] = state.apply(wire.Ok("TELL", "bob"))
        assert (wall.kind, wall.nick, server.nick) == (Kind.WALL, "bob", None)
        assert (tell.kind, tell.nick, tell.alerts) == (Kind.TELL_IN, "bob", True)
        assert (out.kind, out.nick, out.own) == (Kind.TELL_OUT, "bob", True)

    def test_other_server_lines(self) -> None:
        """OPER, HELP lines, PONG, BYE and unknown lines all read as sentences."""
        state = logged_in()
        lines = feed(state, wire.Ok("OPER"), wire.HelpLine("NICK <name> ..."), wire.Ok("HELP"),
                     wire.Pong("x"), wire.Unknown("FROB x"), wire.Bye("server shutting down"))
        assert lines == [
            (Kind.INFO, "You are now an operator."), (Kind.INFO, "NICK <name> ..."),
            (Kind.INFO, "The server answered the ping."), (Kind.INFO, "The server said: FROB x"),
            (Kind.ERROR, "The server closed the connection: server shutting down."),
        ]
        assert state.is_oper


    def test_tell_to_nobody_never_shows_as_sent(self) -> None:
        """A TELL refused with no-such-user is not shown as sent; the next one is."""
        state = logged_in()
        state.telling("zed", "lost")
        state.telling("bob", "found")
        lines = feed(state, wire.Error(ErrorCode.NO_SUCH_USER, "nobody called zed is here"),
                     wire.Ok("TELL", "bob"))
        assert lines == [(Kind.ERROR, "Nobody called zed is here."), (Kind.TELL_OUT, "found")]


class TestErrorWords:
    @pytest.mark.parametrize(("code", "text", "words"), [
        (ErrorCode.NO_SUCH_USER, "nobody called zed is here", "Nobody called zed is here."),
        (ErrorCode.NEED_NICK, "log in first with NICK <name>", "You are not logged in yet."),
        (ErrorCode.LINE_TOO_LONG, "x", "That line is too long for the server; it was not sent."),
        (ErrorCode.BAD_ENCODING, "x", "The server could not read that line (it was not UTF-8)."),
        (ErrorCode.FLOOD, "x", "You are sending faster than the server allows; "
                               "your lines are delayed, not lost."),
        (ErrorCode.NOT_PERMITTED, "only operators may WALL on this server; use OPER <password>",
         "Not allowed: only operators may /wall on this server; use /oper PASSWORD."),
        (ErrorCode.MISSING_ARGUMENT, "the text to say is missing",
         "Something is missing: the text to say is missing."),
        (ErrorCode.UNKNOWN_COMMAND, "unknown command 'X'; try HELP",
         "The server did not understand that command."),
        ("new-code", "try HELP", "The server refused that: try /help."),
    ])
    def test_every_code_in_words(self, code: str, text: str, words: str) -> None:
        """Each ERR code reads as a sentence that names slash commands, not verbs."""
        assert error_words(code, text) == words

    def test_mentions_whole_words_only(self) -> None:
        """A nick inside a longer word is not a mention."""
        assert mentions("@ann: hi", "ann") and not mentions("banner", "ann")


class TestConnection:
    def test_lost_connection_keeps_nick_for_relogin(self) -> None:
        """After losing a logged-in connection the client will log in again by itself."""
        state = logged_in()
        lines = state.connection_lost("connection reset")
        assert [line.text for line in lines] == [
            "Lost the connection to example:8123 (connection reset)."]
        assert state.link is Link.LOST and state.auto_login and state.wanted_nick == "ann"
        assert not state.show_login and state.members == {}

    def test_transcript_is_bounded(self) -> None:
        """Only the newest ``max_lines`` lines are kept; sequence numbers go on."""
        state = make_state(max_lines=3)
        for n in range(5):
            state.note(str(n))
        assert [line.text for line in state.lines] == ["2", "3", "4"]
        assert state.lines[0].seq == 3 and state.last_seq == 5

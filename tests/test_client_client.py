"""chatclient.client: connection events and typed lines, with a recording send."""

from __future__ import annotations

from chatclient.client import QUIT, Client
from chatclient.state import ClientState, Kind, Line, Phase
from chatd import wire


class Recorder:
    """A fake connection that records what is sent, and can be 'down'."""

    def __init__(self) -> None:
        self.sent: list[wire.ClientMessage] = []
        self.up = True

    def __call__(self, message: wire.ClientMessage) -> bool:
        if self.up:
            self.sent.append(message)
        return self.up


def build(nick: str | None = None) -> tuple[Client, Recorder, list[Line]]:
    """A client with a recording send and a list collecting emitted lines."""
    send, emitted = Recorder(), list[Line]()
    client = Client(ClientState("h:1", nick=nick, clock=lambda: 0.0), send, emitted.extend)
    return client, send, emitted


def log_in(client: Client, nick: str = "ann") -> None:
    client.message_received(wire.Ok("NICK", nick))
    client.message_received(wire.Joined(nick))


class TestLogin:
    def test_prompted_login_sends_nick(self) -> None:
        """A nick typed at the prompt is sent as NICK."""
        client, send, _ = build()
        client.connection_made()
        client.login(" ann ")
        assert send.sent == [wire.Nick("ann")] and client.state.phase is Phase.LOGGING_IN

    def test_invalid_nick_never_sent(self) -> None:
        """An invalid nick is explained next to the prompt and not sent."""
        client, send, _ = build()
        client.connection_made()
        client.login("1st")
        assert send.sent == [] and "cannot be used as a nick" in (client.state.login_error or "")

    def test_nick_option_logs_in_on_connect(self) -> None:
        """--nick sends NICK as soon as the connection is made."""
        client, send, _ = build("ann")
        client.connection_made()
        assert send.sent == [wire.Nick("ann")]

    def test_reconnect_logs_in_again_under_same_nick(self) -> None:
        """After a lost connection, the next one logs in with the nick I had."""
        client, send, emitted = build()
        client.connection_made()
        client.login("ann")
        log_in(client, "ann")
        client.message_received(wire.Ok("NICK", "anna"))
        client.connection_lost("reset")
        client.reconnecting(0.5, 1, None)
        client.connection_made()
        assert send.sent == [wire.Nick("ann"), wire.Nick("anna")]
        assert [line.text for line in emitted][-2:] == [
            "Lost the connection to h:1 (reset).", "Reconnecting (waiting 0.5 s first)…"]
        client.reconnecting(1.0, 2, "connection refused")
        assert client.state.link_detail == "retrying in 1s (connection refused)"
        assert len(emitted) == 3  # later attempts only update the status bar
        client.message_received(wire.Hello("chatd/1", "hi"))
        assert emitted[-1].text == "Reconnected to h:1 (chatd/1)."


class TestTyping:
    def test_say_and_tell(self) -> None:
        """A plain line is sent as SAY; /msg is sent and shown as a private line."""
        client, send, emitted = build()
        client.connection_made()
        log_in(client)
        client.submit("hello")
        client.submit("/msg bob psst")
        assert send.sent == [wire.Say("hello"), wire.Tell("bob", "psst")]
        client.message_received(wire.Ok("TELL", "bob"))
        assert (emitted[-1].kind, emitted[-1].nick) == (Kind.TELL_OUT, "bob")

    def test_not_logged_in_is_refused(self) -> None:
        """Typing before logging in explains itself instead of sending."""
        client, send, emitted = build()
        client.submit("hello")
        assert send.sent == [] and emitted[-1].kind is Kind.ERROR

    def test_lost_connection_explains(self) -> None:
        """A line typed while the socket is down says it was not sent."""
        client, send, emitted = build()
        log_in(client)
        send.up = False
        client.submit("hello")
        assert emitted[-1].text == "Not connected; that line was not sent."

    def test_help_clear_and_problem(self) -> None:
        """/help lists commands, /clear empties the pane, unknown commands explain."""
        client, send, emitted = build()
        client.submit("/help")
        assert any("/msg NICK TEXT" in line.text for line in emitted)
        client.submit("/clear")
        assert list(client.state.lines) == []
        client.submit("/frob")
        assert client.state.lines[-1].text.startswith("There is no command /frob.")
        assert send.sent == []

    def test_quit_sends_quit_once(self) -> None:
        """/quit sends QUIT with the reason and tells the view to leave."""
        client, send, _ = build()
        log_in(client)
        assert client.submit("/quit bye all") == QUIT
        client.quit()
        assert send.sent == [wire.Quit("bye all")] and client.state.quitting


class TestSayLines:
    """A paste said line by line."""

    def test_each_line_is_its_own_say_in_order(self) -> None:
        """say_lines sends one SAY per line, in order, even a line starting with /."""
        client, send, _ = build()
        client.connection_made()
        log_in(client)
        send.sent.clear()
        client.say_lines(["one", "/quit", "three"])
        assert send.sent == [wire.Say("one"), wire.Say("/quit"), wire.Say("three")]

    def test_not_logged_in_says_one_problem_and_sends_nothing(self) -> None:
        """Before login, a paste sends nothing and explains it once."""
        client, send, emitted = build()
        client.connection_made()
        client.say_lines(["one", "two"])
        assert send.sent == []
        assert [line.kind for line in emitted] == [Kind.ERROR]


class TestRenameRefused:
    def test_a_refused_nick_change_names_the_nick_asked_for(self) -> None:
        """/nick bob while bob is taken says bob is taken, not my own nick."""
        client, send, emitted = build()
        client.connection_made()
        client.login("ann")
        log_in(client, "ann")
        client.submit("/nick bob")
        assert send.sent[-1] == wire.Nick("bob")
        client.message_received(wire.Error("nick-taken", "bob is already taken"))
        assert emitted[-1].text == "bob is already taken; please choose another nick."
        assert client.state.nick == "ann"

    def test_renames_are_answered_in_order(self) -> None:
        """Two /nick in a row: the first succeeds, the second's refusal names the second."""
        client, _, emitted = build()
        client.connection_made()
        client.login("ann")
        log_in(client, "ann")
        client.submit("/nick bea")
        client.submit("/nick cat")
        client.message_received(wire.Ok("NICK", "bea"))
        client.message_received(wire.Error("nick-taken", "cat is already taken"))
        assert emitted[-1].text == "cat is already taken; please choose another nick."
        assert client.state.nick == "bea"

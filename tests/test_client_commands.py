"""chatclient.commands: typed lines in, protocol messages or local actions out."""

from __future__ import annotations

import pytest

from chatclient import commands
from chatclient.commands import COMMANDS, Local, Problem, Send, completions, parse_input
from chatd import wire
from chatd.nicks import NICK_RULES


class TestPlainLines:
    def test_plain_line_is_say(self) -> None:
        """A line without a leading slash is said to the room as typed."""
        assert parse_input("hello  there") == Send(wire.Say("hello  there"))

    def test_double_slash_says_a_slash_line(self) -> None:
        """``//text`` says ``/text``."""
        assert parse_input("//shrug") == Send(wire.Say("/shrug"))

    def test_blank_line_does_nothing(self) -> None:
        """An empty or all-space line means nothing to send."""
        assert parse_input("") is None
        assert parse_input("   ") is None

    def test_control_characters_are_cleaned(self) -> None:
        """Escape sequences typed or pasted never reach the wire."""
        assert parse_input("hi\x1b[31m") == Send(wire.Say("hi[31m"))


class TestSlashCommands:
    @pytest.mark.parametrize(("line", "message"), [
        ("/nick bob", wire.Nick("bob")),
        ("/NICK bob", wire.Nick("bob")),
        ("/wall fire drill", wire.Wall("fire drill")),
        ("/msg bob see  you", wire.Tell("bob", "see  you")),
        ("/tell bob hi", wire.Tell("bob", "hi")),
        ("/who", wire.Who()),
        ("/oper secret", wire.Oper("secret")),
        ("/quit", wire.Quit()),
        ("/quit gone fishing", wire.Quit("gone fishing")),
    ])
    def test_command_builds_message(self, line: str, message: wire.ClientMessage) -> None:
        """Each protocol slash command becomes the matching chatd.wire message."""
        assert parse_input(line) == Send(message)

    @pytest.mark.parametrize(("line", "action"), [("/help", "help"), ("/clear", "clear")])
    def test_local_commands(self, line: str, action: str) -> None:
        """/help and /clear are handled by the client, not sent."""
        assert parse_input(line) == Local(action)

    @pytest.mark.parametrize(("line", "usage"), [
        ("/msg", "Usage: /msg NICK TEXT"),
        ("/msg bob", "Usage: /msg NICK TEXT"),
        ("/wall", "Usage: /wall TEXT"),
        ("/oper", "Usage: /oper PASSWORD"),
        ("/nick", "Usage: /nick NAME"),
    ])
    def test_missing_arguments_give_usage(self, line: str, usage: str) -> None:
        """A command without what it needs explains its usage instead of sending."""
        assert parse_input(line) == Problem(usage)

    def test_bad_nick_is_refused_locally(self) -> None:
        """/nick with an invalid name states the nick rules without a round trip."""
        outcome = parse_input("/nick 9lives")
        assert isinstance(outcome, Problem)
        assert "9lives" in outcome.text and NICK_RULES in outcome.text

    def test_unknown_command_in_words(self) -> None:
        """An unknown command names itself and points at /help and //."""
        assert parse_input("/dance now") == Problem(
            "There is no command /dance. Type /help for the list, "
            "or start the line with // to say it as it is.")


class TestCompletion:
    def test_command_completion(self) -> None:
        """A slash word at the start completes to the commands it begins."""
        assert completions("/w", []) == (2, ["/wall ", "/who "])

    def test_nick_at_start_gets_colon(self) -> None:
        """A nick completed as the first word is addressed with ``: ``."""
        assert completions("bo", ["Bob", "ann", "bonnie"]) == (2, ["Bob: ", "bonnie: "])

    def test_nick_later_in_line(self) -> None:
        """A nick later in the line completes with a trailing space, ignoring case."""
        assert completions("/msg AN", ["ann", "bob"]) == (2, ["ann "])

    def test_nothing_to_complete(self) -> None:
        """After a space there is no word, so no candidates."""
        assert completions("hi ", ["ann"]) == (0, [])

    def test_every_command_has_usage(self) -> None:
        """Every command's usage starts with its own name (the help list relies on it)."""
        assert all(cmd.usage.startswith(name) for name, cmd in COMMANDS.items())


class TestPaste:
    """What a bracketed paste makes of the input line."""

    def test_every_line_end_cuts_and_blank_lines_go(self) -> None:
        """CRLF, CR and LF all end a line, and blank lines are left out."""
        assert commands.paste_lines("", "one\r\ntwo\rthree\n\n  \nfour\n") == [
            "one", "two", "three", "four"]

    def test_typed_text_joins_the_first_and_last_lines(self) -> None:
        """Text before the cursor starts the first pasted line; text after it ends the last."""
        assert commands.paste_lines("hey ", "you\nand you", "!") == ["hey you", "and you!"]

    def test_a_pasted_slash_line_stays_text(self) -> None:
        """A pasted line starting with / is kept as it is, to be said, not run."""
        assert commands.paste_lines("", "/quit\nx") == ["/quit", "x"]

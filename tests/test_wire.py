"""The protocol-v1 grammar: client lines in, messages out; messages in, bytes out."""

from __future__ import annotations

import datetime
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatd import wire
from chatd.errors import ChatError, ErrorCode
from chatd.nicks import NICK_MAX, NICK_RULES, is_valid_nick, nick_key

# Every client-line case runs twice, h11-style: as an LF client sends it and
# with the trailing CR a CRLF client leaves behind once the LF is split off.
ENDINGS = [pytest.param(b"", id="lf"), pytest.param(b"\r", id="crlf")]


def parse(raw: bytes) -> wire.ClientMessage | None:
    """``parse_client_line`` under a shorter name."""
    return wire.parse_client_line(raw)


def refusal(raw: bytes) -> ErrorCode:
    """The error code ``parse_client_line`` refuses ``raw`` with."""
    with pytest.raises(ChatError) as info:
        wire.parse_client_line(raw)
    return info.value.code


# --- client lines -------------------------------------------------------------

VALID_CLIENT_LINES = [
    # NICK: one token; spaces around it are separators.
    (b"NICK ann", wire.Nick("ann")),
    (b"nick ann", wire.Nick("ann")),
    (b"NiCk ann", wire.Nick("ann")),
    (b"NICK   ann  ", wire.Nick("ann")),
    (b"  NICK ann", wire.Nick("ann")),
    (b"NICK A", wire.Nick("A")),
    (b"NICK a-b_C9", wire.Nick("a-b_C9")),
    (b"NICK " + b"a" * 20, wire.Nick("a" * 20)),
    # SAY: exactly one space before the text; the rest is kept as sent.
    (b"SAY hi", wire.Say("hi")),
    (b"say hi", wire.Say("hi")),
    (b"SAY hello there", wire.Say("hello there")),
    (b"SAY  hi", wire.Say(" hi")),
    (b"SAY hi  ", wire.Say("hi  ")),
    (b"SAY \thi", wire.Say("\thi")),
    (b"SAY a\tb", wire.Say("a\tb")),
    (b"SAY NICK bob", wire.Say("NICK bob")),
    ("SAY h\u00e9llo \u4e16\u754c".encode(), wire.Say("h\u00e9llo \u4e16\u754c")),
    # WALL
    (b"WALL fire drill", wire.Wall("fire drill")),
    (b"wall fire", wire.Wall("fire")),
    # TELL: a word, then the text after exactly one space.
    (b"TELL bob hi", wire.Tell("bob", "hi")),
    (b"tell bob hi there", wire.Tell("bob", "hi there")),
    (b"TELL  bob  hi", wire.Tell("bob", " hi")),
    (b"TELL Bob hi", wire.Tell("Bob", "hi")),
    # WHO and HELP take nothing; anything after them is ignored.
    (b"WHO", wire.Who()),
    (b"who", wire.Who()),
    (b"WHO is there", wire.Who()),
    (b"HELP", wire.Help()),
    (b"help me", wire.Help()),
    # OPER: the password is text, spaces kept.
    (b"OPER secret", wire.Oper("secret")),
    (b"oper two words", wire.Oper("two words")),
    # PING and QUIT: optional text.
    (b"PING", wire.Ping()),
    (b"ping", wire.Ping()),
    (b"PING ", wire.Ping()),
    (b"PING abc", wire.Ping("abc")),
    (b"PING a b", wire.Ping("a b")),
    (b"QUIT", wire.Quit()),
    (b"quit", wire.Quit()),
    (b"QUIT gone fishing", wire.Quit("gone fishing")),
    # Protocol 1.1.  HISTORY: an optional count of ASCII digits, spaces around it
    # trimmed; blank counts as absent (the default, 20).
    (b"HISTORY", wire.History()),
    (b"history", wire.History()),
    (b"HISTORY   ", wire.History()),
    (b"HISTORY 5", wire.History("5")),
    (b"HiStOrY 5", wire.History("5")),
    (b"HISTORY   5  ", wire.History("5")),
    (b"HISTORY 0", wire.History("0")),
    (b"HISTORY 007", wire.History("007")),
    # TIME: nothing, ON or OFF in any case.
    (b"TIME", wire.Time()),
    (b"time", wire.Time()),
    (b"TIME ", wire.Time()),
    (b"TIME ON", wire.Time("ON")),
    (b"TIME on", wire.Time("ON")),
    (b"time oN", wire.Time("ON")),
    (b"TIME   OFF ", wire.Time("OFF")),
    (b"TIME off", wire.Time("OFF")),
]


class TestParseClientLine:
    """Every client verb parses to its message."""

    @pytest.mark.parametrize("ending", ENDINGS)
    @pytest.mark.parametrize(("raw", "expected"), VALID_CLIENT_LINES)
    def test_parses_valid_line(self, raw: bytes, expected: wire.Message, ending: bytes) -> None:
        """A valid client line, LF- or CRLF-terminated, parses to the expected message."""
        assert parse(raw + ending) == expected

    @pytest.mark.parametrize("ending", ENDINGS)
    @pytest.mark.parametrize("raw", [b"", b" ", b"   ", b"\t", b" \t ", b"\x1b", b"\x00\x07"])
    def test_blank_line_is_none(self, raw: bytes, ending: bytes) -> None:
        """A line of nothing but spaces, tabs or controls is ignored (None)."""
        assert parse(raw + ending) is None

    def test_crlf_and_lf_lines_are_equal(self) -> None:
        """A line with its CR left on parses exactly like the same line without it."""
        assert parse(b"SAY hi\r") == parse(b"SAY hi") == wire.Say("hi")

    def test_only_one_trailing_cr_is_a_line_end(self) -> None:
        """A second CR is a control character and is cleaned away, not kept in the text."""
        assert parse(b"SAY hi\r\r") == wire.Say("hi")

    def test_quit_with_blank_reason_has_no_reason(self) -> None:
        """A QUIT whose reason is only spaces has no reason, like a bare QUIT."""
        assert parse(b"QUIT   ") == wire.Quit()
        assert parse(b"QUIT \t") == wire.Quit()


REFUSED_CLIENT_LINES = [
    # Missing arguments.
    (b"NICK", ErrorCode.MISSING_ARGUMENT),
    (b"NICK ", ErrorCode.MISSING_ARGUMENT),
    (b"NICK    ", ErrorCode.MISSING_ARGUMENT),
    (b"SAY", ErrorCode.MISSING_ARGUMENT),
    (b"SAY ", ErrorCode.MISSING_ARGUMENT),
    (b"SAY    ", ErrorCode.MISSING_ARGUMENT),
    (b"SAY \x1b", ErrorCode.MISSING_ARGUMENT),
    (b"WALL", ErrorCode.MISSING_ARGUMENT),
    (b"WALL  ", ErrorCode.MISSING_ARGUMENT),
    (b"TELL", ErrorCode.MISSING_ARGUMENT),
    (b"TELL bob", ErrorCode.MISSING_ARGUMENT),
    (b"TELL bob ", ErrorCode.MISSING_ARGUMENT),
    (b"TELL bob   ", ErrorCode.MISSING_ARGUMENT),
    (b"OPER", ErrorCode.MISSING_ARGUMENT),
    (b"OPER  ", ErrorCode.MISSING_ARGUMENT),
    # Bad nicks: the whole rest of the line is the nick.
    (b"NICK ann smith", ErrorCode.BAD_NICK),
    (b"NICK 1ann", ErrorCode.BAD_NICK),
    (b"NICK _ann", ErrorCode.BAD_NICK),
    (b"NICK -ann", ErrorCode.BAD_NICK),
    (b"NICK ann!", ErrorCode.BAD_NICK),
    (b"NICK ann.b", ErrorCode.BAD_NICK),
    (b"NICK ann\t", ErrorCode.BAD_NICK),
    (b"NICK " + b"a" * 21, ErrorCode.BAD_NICK),
    ("NICK \u00e9mile".encode(), ErrorCode.BAD_NICK),
    ("NICK \uff41nn".encode(), ErrorCode.BAD_NICK),
    (b"NICK *", ErrorCode.BAD_NICK),
    # Unknown commands, including server verbs and a tab instead of a space.
    (b"FOO", ErrorCode.UNKNOWN_COMMAND),
    (b"FOO bar", ErrorCode.UNKNOWN_COMMAND),
    (b"JOIN ann", ErrorCode.UNKNOWN_COMMAND),
    (b"PRIVMSG #chan :hi", ErrorCode.UNKNOWN_COMMAND),
    (b"SAYhi", ErrorCode.UNKNOWN_COMMAND),
    (b"SAY\thi", ErrorCode.UNKNOWN_COMMAND),
    (b"/quit", ErrorCode.UNKNOWN_COMMAND),
    # Invalid UTF-8.
    (b"SAY \xc3\x28", ErrorCode.BAD_ENCODING),
    (b"SAY \x80", ErrorCode.BAD_ENCODING),
    (b"SAY \xc0\xaf", ErrorCode.BAD_ENCODING),
    (b"SAY \xed\xa0\x80", ErrorCode.BAD_ENCODING),
    (b"SAY \xe2\x82", ErrorCode.BAD_ENCODING),
    (b"\xfe", ErrorCode.BAD_ENCODING),
    (b"NICK \xc3", ErrorCode.BAD_ENCODING),
    # Protocol 1.1: HISTORY takes a whole number of ASCII digits, TIME ON or OFF.
    (b"HISTORY -1", ErrorCode.BAD_ARGUMENT),
    (b"HISTORY +5", ErrorCode.BAD_ARGUMENT),
    (b"HISTORY ten", ErrorCode.BAD_ARGUMENT),
    (b"HISTORY 5 6", ErrorCode.BAD_ARGUMENT),
    (b"HISTORY 1.5", ErrorCode.BAD_ARGUMENT),
    (b"HISTORY 0x10", ErrorCode.BAD_ARGUMENT),
    (b"HISTORY \t5", ErrorCode.BAD_ARGUMENT),
    ("HISTORY \u0663".encode(), ErrorCode.BAD_ARGUMENT),  # ARABIC-INDIC DIGIT THREE
    ("HISTORY \u00b2".encode(), ErrorCode.BAD_ARGUMENT),  # SUPERSCRIPT TWO
    ("HISTORY \uff15".encode(), ErrorCode.BAD_ARGUMENT),  # FULLWIDTH DIGIT FIVE
    (b"TIME maybe", ErrorCode.BAD_ARGUMENT),
    (b"TIME ON OFF", ErrorCode.BAD_ARGUMENT),
    (b"TIME ONN", ErrorCode.BAD_ARGUMENT),
    (b"TIME 1", ErrorCode.BAD_ARGUMENT),
    (b"TIME \tON", ErrorCode.BAD_ARGUMENT),
    ("TIME \uff2f\uff2e".encode(), ErrorCode.BAD_ARGUMENT),  # FULLWIDTH ON
    (b"TIMEON", ErrorCode.UNKNOWN_COMMAND),
    (b"HISTORY5", ErrorCode.UNKNOWN_COMMAND),
]


class TestParseClientLineErrors:
    """Lines the server refuses carry the protocol's error code."""

    @pytest.mark.parametrize("ending", ENDINGS)
    @pytest.mark.parametrize(("raw", "code"), REFUSED_CLIENT_LINES)
    def test_refuses_line_with_code(self, raw: bytes, code: ErrorCode, ending: bytes) -> None:
        """An invalid client line, LF- or CRLF-terminated, raises ChatError with its code."""
        assert refusal(raw + ending) == code

    def test_unknown_command_names_the_verb(self) -> None:
        """The unknown-command text names what was sent and points at HELP."""
        with pytest.raises(ChatError) as info:
            parse(b"FROB x")
        assert "FROB" in info.value.text and "HELP" in info.value.text

    def test_unknown_command_text_is_bounded(self) -> None:
        """A huge unknown verb is cut short in the error text."""
        with pytest.raises(ChatError) as info:
            parse(b"X" * 1000)
        assert len(info.value.text) < 100

    def test_bad_nick_explains_the_rules(self) -> None:
        """The bad-nick text says what a nick may be."""
        with pytest.raises(ChatError) as info:
            parse(b"NICK 9lives")
        assert NICK_RULES in info.value.text


HYGIENE_CASES = [
    # ESC and the rest of C0 (but TAB), DEL and C1 disappear; what followed
    # an ESC stays as harmless text.
    (b"SAY \x1b[31mred\x1b[0m", wire.Say("[31mred[0m")),
    (b"SAY a\x1b]0;title\x07b", wire.Say("a]0;titleb")),
    (b"SAY a\x00b\x01c\x08d", wire.Say("abcd")),
    (b"SAY a\x0bb\x0cc\x1fd", wire.Say("abcd")),
    (b"SAY a\x7fb", wire.Say("ab")),
    (b"SAY a\rb", wire.Say("ab")),
    (b"SAY a\tb", wire.Say("a\tb")),
    ("SAY a\x85b\x9bc\x9fd\x80e".encode(), wire.Say("abcde")),
    ("SAY a\u00a0b".encode(), wire.Say("a\u00a0b")),
    (b"S\x1bAY hi", wire.Say("hi")),
    (b"NICK an\x07n", wire.Nick("ann")),
    # Telnet IAC sequences: 2-byte commands, IAC IAC, option negotiation,
    # subnegotiation (terminated or running to the end), a lone final IAC.
    (b"SAY a\xff\xf1b", wire.Say("ab")),
    (b"SAY a\xff\xffb", wire.Say("ab")),
    (b"SAY a\xff\xfb\x01b", wire.Say("ab")),
    (b"SAY a\xff\xfd\x03b", wire.Say("ab")),
    (b"SAY a\xff\xfc\x22b", wire.Say("ab")),
    (b"SAY a\xff\xfe\x18b", wire.Say("ab")),
    (b"SAY a\xff\xfa\x18\x01\xff\xf0b", wire.Say("ab")),
    (b"SAY a\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0b", wire.Say("ab")),
    (b"SAY ab\xff\xfa\x18\x00xterm", wire.Say("ab")),
    (b"SAY ab\xff", wire.Say("ab")),
    (b"\xff\xfd\x03\xff\xfb\x18SAY hi", wire.Say("hi")),
    (b"SAY a\xff\xf4\xff\xfdb", wire.Say("a")),
]


class TestTextHygiene:
    """Controls and telnet sequences never reach another user's terminal."""

    @pytest.mark.parametrize("ending", ENDINGS)
    @pytest.mark.parametrize(("raw", "expected"), HYGIENE_CASES)
    def test_strips_controls_and_telnet(self, raw: bytes, expected: wire.Message,
                                        ending: bytes) -> None:
        """Controls, ESC, DEL, C1 and IAC sequences are removed before the line is parsed."""
        assert parse(raw + ending) == expected

    @pytest.mark.parametrize(("raw", "expected"), [
        (b"plain", b"plain"),
        (b"a\xff\xffb", b"ab"),
        (b"a\xff\xfa\x18\x01\xff\xf0b", b"ab"),
        (b"a\xff\xfb\x01b", b"ab"),
        (b"a\xff", b"a"),
        (b"\xff\xfa\x18", b""),
    ])
    def test_strip_telnet(self, raw: bytes, expected: bytes) -> None:
        """strip_telnet removes IAC sequences and nothing else."""
        assert wire.strip_telnet(raw) == expected

    def test_clean_text_keeps_tab_and_printables(self) -> None:
        """clean_text keeps TAB, spaces and every printable character."""
        text = "a\tb c \u00e9\u00ff\u4e16\U0001f600"
        assert wire.clean_text(text) == text

    def test_clean_text_removes_every_c0_but_tab_del_and_c1(self) -> None:
        """clean_text removes all 65 C0 (but TAB), DEL and C1 code points."""
        controls = "".join(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)] if c != 9)
        assert len(controls) == 64
        assert wire.clean_text("x" + controls + "\ty") == "x\ty"

    def test_clean_text_removes_the_bidirectional_controls(self) -> None:
        """clean_text removes the nine bidi embeddings, overrides and isolates, and keeps
        the implicit marks (LRM, RLM) that only nudge neutral characters."""
        bidi = "".join(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
        assert len(bidi) == 9
        assert wire.clean_text("a" + bidi + "b") == "ab"
        assert wire.clean_text("\u200e\u200f") == "\u200e\u200f"

    def test_decode_line_drops_one_trailing_cr(self) -> None:
        """decode_line treats a trailing CR as part of the line end."""
        assert wire.decode_line(b"hi\r") == "hi"

    def test_decode_line_refuses_bad_utf8(self) -> None:
        """decode_line raises bad-encoding for bytes that are not UTF-8."""
        with pytest.raises(ChatError) as info:
            wire.decode_line(b"\xc3(")
        assert info.value.code == ErrorCode.BAD_ENCODING


class TestNicks:
    """Nick rules and identity (``chatd.nicks``, which the grammar checks NICK with)."""

    @pytest.mark.parametrize("name", ["a", "Z", "ann", "a1", "a-", "a_", "A" * 20, "x-_-9"])
    def test_valid_nick(self, name: str) -> None:
        """Letters, digits, '_' and '-' after a leading letter, up to 20, are a nick."""
        assert is_valid_nick(name)

    @pytest.mark.parametrize("name", ["", "1a", "_a", "-a", "a b", "a" * 21, "a\n", "\u00e9",
                                      "a.b", "*", "a\t"])
    def test_invalid_nick(self, name: str) -> None:
        """Anything else is not a nick."""
        assert not is_valid_nick(name)

    def test_nick_key_ignores_case(self) -> None:
        """Nicks differing only in case have the same key."""
        assert nick_key("Ann") == nick_key("aNN")


# --- server messages ----------------------------------------------------------

SERVER_FORMATS = [
    (wire.Hello("chatd/1.0.0", "welcome here"), b"HELLO chatd/1.0.0 welcome here\r\n"),
    (wire.Hello("chatd/1.0.0"), b"HELLO chatd/1.0.0\r\n"),
    (wire.Ok("NICK", "ann"), b"OK NICK ann\r\n"),
    (wire.Ok("WHO", "3"), b"OK WHO 3\r\n"),
    (wire.Ok("HELP"), b"OK HELP\r\n"),
    (wire.Ok("OPER"), b"OK OPER\r\n"),
    (wire.Error(ErrorCode.BAD_NICK, "no good"), b"ERR bad-nick no good\r\n"),
    (wire.Error(ErrorCode.LINE_TOO_LONG, "too long"), b"ERR line-too-long too long\r\n"),
    (wire.Error("flood", "slow down"), b"ERR flood slow down\r\n"),
    (wire.Joined("ann"), b"JOIN ann\r\n"),
    (wire.Parted("ann", "connection lost"), b"PART ann connection lost\r\n"),
    (wire.Parted("ann"), b"PART ann\r\n"),
    (wire.Renamed("ann", "Ann"), b"RENAME ann Ann\r\n"),
    (wire.Said("ann", "hi  there"), b"SAY ann hi  there\r\n"),
    (wire.Said("ann", " lead"), b"SAY ann  lead\r\n"),
    (wire.Walled("*", "server shutting down"), b"WALL * server shutting down\r\n"),
    (wire.Told("bob", "psst"), b"TELL bob psst\r\n"),
    (wire.Users(("ann", "bob", "cy")), b"USERS ann bob cy\r\n"),
    (wire.Users(()), b"USERS\r\n"),
    (wire.Pong(), b"PONG\r\n"),
    (wire.Pong("t 1"), b"PONG t 1\r\n"),
    (wire.Bye("leaving"), b"BYE leaving\r\n"),
    (wire.HelpLine("NICK <name>  log in"), b"HELP NICK <name>  log in\r\n"),
    (wire.Said("\u00e9", "\u4e16"), "SAY \u00e9 \u4e16\r\n".encode()),
    (wire.Unknown("FROB 1 2"), b"FROB 1 2\r\n"),
    # Protocol 1.1.
    (wire.Hist("2026-11-25T14:05:03.250Z", "SAY ann hi  there"),
     b"HIST 2026-11-25T14:05:03.250Z SAY ann hi  there\r\n"),
    (wire.Ok("HISTORY", "3"), b"OK HISTORY 3\r\n"),
    (wire.Ok("TIME", "2026-11-25T14:05:03.250Z"), b"OK TIME 2026-11-25T14:05:03.250Z\r\n"),
    (wire.Ok("TIME", "ON"), b"OK TIME ON\r\n"),
    (wire.Error(ErrorCode.BAD_ARGUMENT, "no"), b"ERR bad-argument no\r\n"),
]

CLIENT_FORMATS = [
    (wire.Nick("ann"), b"NICK ann\r\n"),
    (wire.Say(" hi"), b"SAY  hi\r\n"),
    (wire.Wall("alert"), b"WALL alert\r\n"),
    (wire.Tell("bob", "hi there"), b"TELL bob hi there\r\n"),
    (wire.Who(), b"WHO\r\n"),
    (wire.Oper("pw"), b"OPER pw\r\n"),
    (wire.Ping(), b"PING\r\n"),
    (wire.Ping("x"), b"PING x\r\n"),
    (wire.Quit(), b"QUIT\r\n"),
    (wire.Quit("bye"), b"QUIT bye\r\n"),
    (wire.Help(), b"HELP\r\n"),
    (wire.History(), b"HISTORY\r\n"),
    (wire.History("5"), b"HISTORY 5\r\n"),
    (wire.Time(), b"TIME\r\n"),
    (wire.Time("on"), b"TIME ON\r\n"),
    (wire.Time("OFF"), b"TIME OFF\r\n"),
]


class TestEncode:
    """Every message has exactly one line on the wire, ending in CRLF."""

    @pytest.mark.parametrize(("message", "expected"), SERVER_FORMATS)
    def test_encodes_server_message(self, message: wire.Message, expected: bytes) -> None:
        """A server message encodes to its UTF-8 line with CRLF."""
        assert wire.encode(message) == expected

    @pytest.mark.parametrize(("message", "expected"), CLIENT_FORMATS)
    def test_encodes_client_message(self, message: wire.Message, expected: bytes) -> None:
        """A client message encodes to its UTF-8 line with CRLF."""
        assert wire.encode(message) == expected

    def test_format_line_has_no_terminator(self) -> None:
        """format_line gives the line without CRLF."""
        assert wire.format_line(wire.Joined("ann")) == "JOIN ann"

    def test_empty_optional_text_is_no_text(self) -> None:
        """An empty optional text is the same message as none, so no trailing space is sent."""
        assert wire.Ok("NICK", "") == wire.Ok("NICK")
        assert wire.encode(wire.Ping("")) == b"PING\r\n"


class TestMessageValidation:
    """An invalid message cannot be built."""

    @pytest.mark.parametrize("build", [
        lambda: wire.Joined("a b"),
        lambda: wire.Joined(""),
        lambda: wire.Said("ann", "a\nb"),
        lambda: wire.Said("ann", "a\rb"),
        lambda: wire.Said("ann", "   "),
        lambda: wire.Renamed("a", "b c"),
        lambda: wire.Users(("a", "b c")),
        lambda: wire.Users(("",)),
        lambda: wire.Bye(""),
        lambda: wire.Ok("NICK", "a\nb"),
        lambda: wire.Error("bad-nick", ""),
    ], ids=["join-space", "join-empty", "say-lf", "say-cr", "say-blank", "rename-space",
            "users-space", "users-empty", "bye-empty", "ok-lf", "err-empty"])
    def test_server_message_breaking_framing_is_refused(self, build) -> None:
        """A server message whose fields would break the line framing raises ValueError."""
        with pytest.raises(ValueError):
            build()

    @pytest.mark.parametrize(("build", "code"), [
        (lambda: wire.Nick("9"), ErrorCode.BAD_NICK),
        (lambda: wire.Nick(""), ErrorCode.MISSING_ARGUMENT),
        (lambda: wire.Say(""), ErrorCode.MISSING_ARGUMENT),
        (lambda: wire.Say("  "), ErrorCode.MISSING_ARGUMENT),
        (lambda: wire.Tell("", "hi"), ErrorCode.MISSING_ARGUMENT),
        (lambda: wire.Tell("bob", ""), ErrorCode.MISSING_ARGUMENT),
        (lambda: wire.Wall(" "), ErrorCode.MISSING_ARGUMENT),
        (lambda: wire.Oper(""), ErrorCode.MISSING_ARGUMENT),
    ], ids=["nick-bad", "nick-empty", "say-empty", "say-blank", "tell-nick", "tell-text",
            "wall-blank", "oper-empty"])
    def test_client_message_is_checked_like_the_server(self, build, code: ErrorCode) -> None:
        """An invalid client command raises the ChatError the server would answer with."""
        with pytest.raises(ChatError) as info:
            build()
        assert info.value.code == code

    def test_messages_are_frozen(self) -> None:
        """A message cannot be changed once built."""
        message = wire.Joined("ann")
        with pytest.raises(AttributeError):
            message.nick = "bob"  # type: ignore[misc]


SERVER_LINES = [
    (b"HELLO chatd/1.0.0 welcome; log in", wire.Hello("chatd/1.0.0", "welcome; log in")),
    (b"HELLO chatd/2", wire.Hello("chatd/2")),
    (b"OK NICK ann", wire.Ok("NICK", "ann")),
    (b"OK WHO 12", wire.Ok("WHO", "12")),
    (b"OK HELP", wire.Ok("HELP")),
    (b"ERR nick-taken ann is already taken", wire.Error("nick-taken", "ann is already taken")),
    (b"JOIN ann", wire.Joined("ann")),
    (b"PART ann connection lost", wire.Parted("ann", "connection lost")),
    (b"PART ann", wire.Parted("ann")),
    (b"RENAME ann bob", wire.Renamed("ann", "bob")),
    (b"SAY ann hello  world", wire.Said("ann", "hello  world")),
    (b"WALL * server shutting down", wire.Walled("*", "server shutting down")),
    (b"TELL bob psst", wire.Told("bob", "psst")),
    (b"USERS ann bob cy", wire.Users(("ann", "bob", "cy"))),
    (b"USERS", wire.Users(())),
    (b"USERS a\tb  c", wire.Users(("a\tb", "c"))),
    (b"PONG", wire.Pong()),
    (b"PONG abc", wire.Pong("abc")),
    (b"BYE server shutting down", wire.Bye("server shutting down")),
    (b"HELP NICK <name>  log in", wire.HelpLine("NICK <name>  log in")),
    (b"SAY ann \x1b[2Jgotcha", wire.Said("ann", "[2Jgotcha")),
    # Protocol 1.1.
    (b"HIST 2026-11-25T14:05:03.250Z SAY ann hi  there",
     wire.Hist("2026-11-25T14:05:03.250Z", "SAY ann hi  there")),
    (b"HIST 2026-11-25T14:05:03.250Z SAY ann  lead",
     wire.Hist("2026-11-25T14:05:03.250Z", "SAY ann  lead")),
    (b"OK HISTORY 0", wire.Ok("HISTORY", "0")),
    (b"OK TIME 2026-11-25T14:05:03.250Z", wire.Ok("TIME", "2026-11-25T14:05:03.250Z")),
    (b"OK TIME OFF", wire.Ok("TIME", "OFF")),
]


class TestParseServerLine:
    """A client reads every server verb, and survives anything else."""

    @pytest.mark.parametrize("ending", [b"", b"\r"], ids=["bare", "cr"])
    @pytest.mark.parametrize(("raw", "expected"), SERVER_LINES)
    def test_parses_server_line(self, raw: bytes, expected: wire.Message, ending: bytes) -> None:
        """Each server verb parses to its message, with or without the CR of CRLF."""
        assert wire.parse_server_line(raw + ending) == expected

    @pytest.mark.parametrize(("raw", "expected"), SERVER_LINES)
    def test_parses_server_line_from_str(self, raw: bytes, expected: wire.Message) -> None:
        """A str line with its CRLF still on parses like the bytes."""
        assert wire.parse_server_line(raw.decode() + "\r\n") == expected

    @pytest.mark.parametrize("raw", [b"", b"   ", b"\r", "  \r\n"])
    def test_blank_server_line_is_none(self, raw: bytes | str) -> None:
        """A blank server line is ignored (None)."""
        assert wire.parse_server_line(raw) is None

    @pytest.mark.parametrize("raw", [
        "FROB 1 2", "say ann hi", "JOIN", "JOIN a b", "RENAME ann", "SAY ann", "SAY ann  ",
        "ERR bad-nick", "BYE", "HELP", "OK", "TELL bob", "WALL *", "NICK ann", "12345",
    ])
    def test_unexpected_server_line_is_unknown(self, raw: str) -> None:
        """A line no server message matches is kept as Unknown, not raised."""
        assert wire.parse_server_line(raw.encode()) == wire.Unknown(raw)

    def test_server_line_with_bad_utf8_is_unknown(self) -> None:
        """A server line that is not UTF-8 is kept as Unknown, so the client survives it."""
        message = wire.parse_server_line(b"SAY ann \xc3(")
        assert isinstance(message, wire.Unknown)
        assert message.line.startswith("SAY ann ")


# --- properties -----------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Valid nicks, built directly (faster than from_regex).
nicks = st.builds(str.__add__, st.sampled_from(_LETTERS),
                  st.text(_LETTERS + "0123456789_-", max_size=NICK_MAX - 1))
# Text as a peer could send it once cleaned: no controls (but TAB), no
# surrogates (not encodable), no line breaks.
clean_chars = st.characters(
    blacklist_categories=("Cs", "Cc"),
    blacklist_characters="".join(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]),
) | st.just("\t")
clean_text = st.text(clean_chars, max_size=30)
words = st.text(clean_chars.filter(lambda c: c != " "), min_size=1, max_size=12)
opt_text = st.none() | clean_text


def built(cls: type[wire.Message],
          *fields: st.SearchStrategy[object]) -> st.SearchStrategy[wire.Message]:
    """Messages of ``cls`` from the field strategies, keeping only those that validate."""
    def build(values: tuple[object, ...]) -> wire.Message | None:
        try:
            return cls(*values)
        except (ValueError, ChatError):
            return None
    return st.tuples(*fields).map(build).filter(lambda m: m is not None)  # type: ignore[return-value]


client_messages = st.one_of(
    built(wire.Nick, nicks),
    built(wire.Say, clean_text),
    built(wire.Wall, clean_text),
    built(wire.Tell, words, clean_text),
    st.just(wire.Who()),
    built(wire.Oper, clean_text),
    built(wire.Ping, opt_text),
    built(wire.Quit, opt_text),
    st.just(wire.Help()),
    built(wire.History, st.none() | st.text("0123456789", min_size=1, max_size=12)),
    built(wire.Time, st.sampled_from([None, "ON", "OFF", "on", "Off", " ON "])),
)

server_messages = st.one_of(
    built(wire.Hello, words, opt_text),
    built(wire.Ok, words, opt_text),
    built(wire.Error, st.sampled_from(list(ErrorCode)) | words, clean_text),
    built(wire.Joined, words),
    built(wire.Parted, words, opt_text),
    built(wire.Renamed, words, words),
    built(wire.Said, words, clean_text),
    built(wire.Walled, words, clean_text),
    built(wire.Told, words, clean_text),
    built(wire.Users, st.lists(words, max_size=5).map(tuple)),
    built(wire.Pong, opt_text),
    built(wire.Bye, clean_text),
    built(wire.HelpLine, clean_text),
    built(wire.Hist, words, clean_text),
)

verbs = st.sampled_from([b"NICK ", b"SAY ", b"WALL ", b"TELL ", b"WHO", b"OPER ", b"PING ",
                         b"QUIT ", b"HELP", b"say  ", b"tell bob ", b"",
                         b"HISTORY ", b"history  ", b"TIME ", b"time o", b"@"])


class TestProperties:
    """Hypothesis properties of the grammar."""

    @settings(max_examples=200, deadline=None)
    @given(message=client_messages)
    def test_client_message_round_trips(self, message: wire.Message) -> None:
        """A valid client message parses back to itself, with CRLF or LF stripped by the
        receiver."""
        data = wire.encode(message)
        assert wire.parse_client_line(data[:-2]) == message
        assert wire.parse_client_line(data[:-1]) == message

    @settings(max_examples=200, deadline=None)
    @given(message=server_messages)
    def test_server_message_round_trips(self, message: wire.Message) -> None:
        """A valid server message parses back to itself, from bytes or from str."""
        data = wire.encode(message)
        assert wire.parse_server_line(data[:-2]) == message
        assert wire.parse_server_line(data.decode()) == message

    @settings(max_examples=300, deadline=None)
    @given(raw=st.binary(max_size=60) | st.tuples(verbs, st.binary(max_size=40)).map(b"".join))
    def test_client_parse_of_any_bytes_returns_or_raises_chat_error(self, raw: bytes) -> None:
        """Any bytes give a client message or None, or raise ChatError; nothing else escapes."""
        try:
            result = wire.parse_client_line(raw)
        except ChatError:
            return
        assert result is None or type(result) in wire.CLIENT_MESSAGES.values()

    @settings(max_examples=300, deadline=None)
    @given(raw=st.binary(max_size=60))
    def test_server_parse_of_any_bytes_never_raises(self, raw: bytes) -> None:
        """Any bytes from a server give a message, Unknown or None, never an exception."""
        result = wire.parse_server_line(raw)
        assert result is None or isinstance(result, wire.Message)

    @settings(max_examples=300, deadline=None)
    @given(text=st.text())
    def test_clean_text_is_idempotent_and_leaves_no_controls(self, text: str) -> None:
        """Cleaning twice changes nothing, and no C0 (but TAB), DEL or C1 character survives."""
        once = wire.clean_text(text)
        assert wire.clean_text(once) == once
        assert all(c == "\t" or unicodedata.category(c) != "Cc" for c in once)
        assert not any("\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069" for c in once)


class TestBadNickReply:
    def test_a_huge_bad_nick_is_quoted_short(self) -> None:
        """The bad-nick reply to a 1000-character nick quotes only its first 20 characters."""
        with pytest.raises(ChatError) as caught:
            wire.parse_client_line(b"NICK " + b"x" * 1000)
        assert caught.value.code == ErrorCode.BAD_NICK
        assert caught.value.text.startswith("'" + "x" * 20 + "...' is not a valid nick")


# --- protocol 1.1: HISTORY, TIME, HIST and the @<time> prefix ---------------------


class TestHistoryAndTimeCommands:
    """What HISTORY and TIME ask for, and how a bad argument is refused."""

    @pytest.mark.parametrize(("raw", "lines"), [
        (b"HISTORY", wire.HISTORY_DEFAULT), (b"HISTORY 0", 0), (b"HISTORY 5", 5),
        (b"HISTORY 007", 7), (b"HISTORY 999999999", 999_999_999),
        (b"HISTORY 1000000000", 10**9), (b"HISTORY " + b"9" * 400, 10**9),
    ])
    def test_history_asks_for_a_number_of_lines(self, raw: bytes, lines: int) -> None:
        """A bare HISTORY asks for 20 lines; a huge count is read as 'as many as are kept'
        without building a huge integer."""
        message = parse(raw)
        assert isinstance(message, wire.History)
        assert message.lines == lines

    def test_default_is_twenty(self) -> None:
        """The spec's default count is 20."""
        assert wire.HISTORY_DEFAULT == 20

    def test_history_bad_argument_names_the_argument(self) -> None:
        """The bad-argument text quotes what was sent and shows the right form."""
        with pytest.raises(ChatError) as info:
            parse(b"HISTORY ten")
        assert info.value.code == ErrorCode.BAD_ARGUMENT
        assert info.value.text == "HISTORY takes a number of lines, like HISTORY 20; not 'ten'"

    def test_time_bad_argument_names_the_argument(self) -> None:
        """TIME with anything but ON or OFF says what it takes."""
        with pytest.raises(ChatError) as info:
            parse(b"TIME maybe")
        assert info.value.code == ErrorCode.BAD_ARGUMENT
        assert info.value.text == "TIME takes ON, OFF or nothing; not 'maybe'"

    @pytest.mark.parametrize("raw", [b"HISTORY " + b"x" * 1000, b"TIME " + b"x" * 1000])
    def test_bad_argument_text_is_bounded(self, raw: bytes) -> None:
        """A huge bad argument is quoted as its first 20 characters and '...'."""
        with pytest.raises(ChatError) as info:
            parse(raw)
        assert info.value.code == ErrorCode.BAD_ARGUMENT
        assert "'" + "x" * 20 + "...'" in info.value.text and len(info.value.text) < 100

    def test_time_mode_is_kept_upper_case(self) -> None:
        """``TIME on`` and ``TIME ON`` are the same message, whose mode is ``ON``."""
        assert parse(b"TIME on") == parse(b"TIME ON") == wire.Time(wire.TIME_ON)
        assert wire.Time("oFf").mode == wire.TIME_OFF

    def test_bad_argument_is_a_chat_error_at_construction(self) -> None:
        """A client building TIME or HISTORY from user input learns of a bad argument at once."""
        for build in (lambda: wire.Time("sometimes"), lambda: wire.History("-3")):
            with pytest.raises(ChatError) as info:
                build()
            assert info.value.code == ErrorCode.BAD_ARGUMENT

    def test_hist_gives_the_replayed_line_parsed(self) -> None:
        """A HIST line's ``message`` is the line it carries, as the server message it was."""
        hist = wire.parse_server_line(b"HIST 2026-11-25T14:05:03.250Z SAY ann  two  spaces")
        assert isinstance(hist, wire.Hist)
        assert hist.time == "2026-11-25T14:05:03.250Z"
        assert hist.message == wire.Said("ann", " two  spaces")

    @pytest.mark.parametrize("raw", [b"HIST", b"HIST 2026-11-25T14:05:03.250Z",
                                     b"HIST 2026-11-25T14:05:03.250Z   "])
    def test_hist_without_a_line_is_unknown(self, raw: bytes) -> None:
        """A HIST line missing its time or its line is kept as Unknown, not raised."""
        assert isinstance(wire.parse_server_line(raw), wire.Unknown)


# 2026-11-25T14:05:03Z, the spec's example, in seconds since the epoch.
EXAMPLE = 1795615503


class TestServerTime:
    """Times: UTC, ISO 8601, milliseconds, Z; truncated, never rounded up."""

    @pytest.mark.parametrize(("seconds", "text"), [
        (EXAMPLE + 0.25, "2026-11-25T14:05:03.250Z"),
        (0.0, "1970-01-01T00:00:00.000Z"),
        (0.9999, "1970-01-01T00:00:00.999Z"),
        (0.0009, "1970-01-01T00:00:00.000Z"),
        (EXAMPLE + 0.9999, "2026-11-25T14:05:03.999Z"),
        (EXAMPLE + 0.0005, "2026-11-25T14:05:03.000Z"),
        (EXAMPLE - 0.0001, "2026-11-25T14:05:02.999Z"),
        (951782400.5, "2000-02-29T00:00:00.500Z"),
        (2**31, "2038-01-19T03:14:08.000Z"),
    ])
    def test_format_time(self, seconds: float, text: str) -> None:
        """A moment is written with milliseconds, truncated: 0.9999 s is .999Z, not 1.000Z."""
        assert wire.format_time(seconds) == text

    @pytest.mark.parametrize(("text", "seconds"), [
        ("2026-11-25T14:05:03.250Z", EXAMPLE + 0.25),
        ("1970-01-01T00:00:00.000Z", 0.0),
        ("2000-02-29T23:59:59.999Z", 951868799.999),
    ])
    def test_parse_time(self, text: str, seconds: float) -> None:
        """A protocol time reads back as seconds since the epoch, UTC."""
        assert wire.parse_time(text) == pytest.approx(seconds, abs=1e-6)

    @pytest.mark.parametrize("text", [
        "", "now", "2026-11-25T14:05:03Z", "2026-11-25T14:05:03.25Z", "2026-11-25T14:05:03.2500Z",
        "2026-11-25 14:05:03.250Z", "2026-11-25T14:05:03.250", "2026-11-25T14:05:03.250+00:00",
        "2026-11-25t14:05:03.250z", "2026-11-25T14:05:03.250Z ", " 2026-11-25T14:05:03.250Z",
        "2026-13-01T00:00:00.000Z", "2026-02-30T00:00:00.000Z", "2026-11-25T25:00:00.000Z",
        "2026-11-25T14:61:00.000Z", "26-11-25T14:05:03.250Z", "2026-11-25T14:05:03.250Z\r\n",
        "@2026-11-25T14:05:03.250Z",
        # Digits that are not ASCII are not a protocol time, whatever int() makes of them.
        "\uff12\uff10\uff12\uff16-11-25T14:05:03.250Z",
        "2026-11-25T14:05:03.\u0662\u0665\u0660Z",
    ])
    def test_parse_time_refuses_anything_else(self, text: str) -> None:
        """Anything but the exact protocol form is not a time (None), never an exception."""
        assert wire.parse_time(text) is None

    @settings(max_examples=300, deadline=None)
    @given(seconds=st.floats(min_value=0, max_value=4102444800))  # 1970 to 2100
    def test_format_truncates(self, seconds: float) -> None:
        """The written time is at or before the moment, by less than a millisecond."""
        parsed = wire.parse_time(wire.format_time(seconds))
        assert parsed is not None
        assert parsed <= seconds < parsed + 0.001

    @settings(max_examples=300, deadline=None)
    @given(moment=st.datetimes(min_value=datetime.datetime(1970, 1, 1),
                               max_value=datetime.datetime(2099, 12, 31)),
           millis=st.integers(0, 999))
    @example(moment=datetime.datetime(2004, 1, 10, 13, 37, 4), millis=990)   # just past 2**30 s
    @example(moment=datetime.datetime(2038, 1, 19, 3, 14, 8), millis=989)    # just past 2**31 s
    def test_time_text_round_trips(self, moment: datetime.datetime, millis: int) -> None:
        """Every protocol time parses to a moment that is written back as the same text."""
        text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
        parsed = wire.parse_time(text)
        assert parsed is not None
        assert wire.format_time(parsed) == text

    @settings(max_examples=200, deadline=None)
    @given(seconds=st.floats(min_value=0, max_value=4102444800))
    def test_formatted_time_round_trips(self, seconds: float) -> None:
        """Writing, reading and writing again gives the same text."""
        text = wire.format_time(seconds)
        parsed = wire.parse_time(text)
        assert parsed is not None and wire.format_time(parsed) == text


STAMP = "2026-11-25T14:05:03.250Z"


class TestTimePrefix:
    """``@<time> `` before a line, after TIME ON; what is not a time is not a prefix."""

    @pytest.mark.parametrize(("text", "expected"), [
        (f"@{STAMP} SAY ann hi", (STAMP, "SAY ann hi")),
        (f"@{STAMP} OK TIME ON", (STAMP, "OK TIME ON")),
        (f"@{STAMP} HIST 2026-11-25T14:00:00.000Z SAY ann hi",
         (STAMP, "HIST 2026-11-25T14:00:00.000Z SAY ann hi")),
        (f"@{STAMP} SAY ann  two  spaces", (STAMP, "SAY ann  two  spaces")),
        (f"@{STAMP} ", (STAMP, "")),
        ("SAY ann hi", (None, "SAY ann hi")),
        ("OK TIME OFF", (None, "OK TIME OFF")),
        (f"SAY ann @{STAMP} hi", (None, f"SAY ann @{STAMP} hi")),
        ("@bob hi there", (None, "@bob hi there")),
        ("@2026-11-25T14:05:03Z SAY ann hi", (None, "@2026-11-25T14:05:03Z SAY ann hi")),
        ("@ SAY ann hi", (None, "@ SAY ann hi")),
        ("@", (None, "@")),
        # The prefix is the time *and* its space: a bare time is no prefix.
        (f"@{STAMP}", (None, f"@{STAMP}")),
        ("", (None, "")),
    ])
    def test_split_time(self, text: str, expected: tuple[str | None, str]) -> None:
        """split_time takes a real ``@<time> `` off the front, and leaves anything else alone."""
        assert wire.split_time(text) == expected

    @pytest.mark.parametrize("ending", [b"", b"\r"], ids=["bare", "cr"])
    @pytest.mark.parametrize(("raw", "expected"), [
        (b"@" + STAMP.encode() + b" SAY ann hi", (STAMP, wire.Said("ann", "hi"))),
        (b"@" + STAMP.encode() + b" OK TIME ON", (STAMP, wire.Ok("TIME", "ON"))),
        (b"@" + STAMP.encode() + b" USERS ann bob", (STAMP, wire.Users(("ann", "bob")))),
        (b"@" + STAMP.encode() + b" HIST 2026-11-25T14:00:00.000Z SAY ann hi",
         (STAMP, wire.Hist("2026-11-25T14:00:00.000Z", "SAY ann hi"))),
        (b"@" + STAMP.encode() + b" FROB 1", (STAMP, wire.Unknown("FROB 1"))),
        (b"SAY ann hi", (None, wire.Said("ann", "hi"))),
        (b"OK TIME OFF", (None, wire.Ok("TIME", "OFF"))),
        (b"@notatime SAY ann hi", (None, wire.Unknown("@notatime SAY ann hi"))),
        (b"@" + STAMP.encode(), (None, wire.Unknown("@" + STAMP))),
        (b"@" + STAMP.encode() + b" ", (STAMP, None)),
        (b"", (None, None)),
    ])
    def test_parse_timed_server_line(self, raw: bytes, ending: bytes,
                                     expected: tuple[str | None, wire.Message | None]) -> None:
        """A prefixed line gives its time and the 1.0 message; any other line gives no time
        and parses as 1.0 does; bytes and str (with its CRLF) read the same."""
        assert wire.parse_timed_server_line(raw + ending) == expected
        assert wire.parse_timed_server_line(raw.decode() + ending.decode() + "\n") == expected

    def test_prefix_with_bad_utf8_after_it(self) -> None:
        """A prefixed line whose rest is not UTF-8 keeps its time; the rest is Unknown."""
        when, message = wire.parse_timed_server_line(b"@" + STAMP.encode() + b" SAY ann \xc3(")
        assert when == STAMP and isinstance(message, wire.Unknown)

    @settings(max_examples=150, deadline=None)
    @given(message=server_messages, seconds=st.floats(min_value=0, max_value=4102444800))
    def test_prefixed_server_message_round_trips(self, message: wire.Message,
                                                 seconds: float) -> None:
        """Any server message after ``@<time> `` reads back as that time and that message."""
        when = wire.format_time(seconds)
        data = b"@" + when.encode() + b" " + wire.encode(message)
        assert wire.parse_timed_server_line(data[:-2]) == (when, message)
        assert wire.parse_timed_server_line(data.decode()) == (when, message)

    @settings(max_examples=300, deadline=None)
    @given(raw=st.tuples(st.sampled_from([b"@", b"@" + STAMP.encode(), b"@" + STAMP.encode() + b" ",
                                          b"HIST ", b"HIST " + STAMP.encode() + b" ", b""]),
                         st.binary(max_size=50)).map(b"".join))
    def test_timed_parse_of_any_bytes_never_raises(self, raw: bytes) -> None:
        """Any bytes, prefixed or not, give a time or None and a message or None; a str
        line that decodes reads the same as its bytes."""
        when, message = wire.parse_timed_server_line(raw)
        assert when is None or wire.parse_time(when) is not None
        assert message is None or isinstance(message, wire.Message)
        assert wire.parse_server_line(raw) is None or isinstance(wire.parse_server_line(raw),
                                                                 wire.Message)
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return
        if "\n" not in text and "\r" not in text:
            assert wire.parse_timed_server_line(text) == (when, message)

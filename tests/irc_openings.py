"""Opening bytes that real IRC clients send to a server, for IRC-listener tests.

Every constant is a byte template: ``{nick}`` stands where the client put its
nick, and :func:`opening` / :func:`after_join` format it in.  Everything else is
verbatim, CRLF line endings included.

Where each came from
--------------------
irssi: ``irssi --version`` -> ``irssi 1.4.3 (20221031 1403)`` (Debian package
1.4.3-2).  Captured on the wire: a throwaway fake server on 127.0.0.1 recorded
every byte it received while ``irssi --home=<fresh dir> -c 127.0.0.1 -p PORT -n ann``
ran in a detached tmux session with a pristine, default profile.

WeeChat: ``weechat --version`` -> ``3.8`` (Debian packages weechat-curses and
weechat-core 3.8-1).  Captured the same way with
``weechat -d <fresh dir> -r '/server add t 127.0.0.1/PORT -notls; /connect t'``.
(3.8 has TLS off by default anyway; ``-notls`` only makes it explicit.)  The
default nick was used; here that is the login name, ``root``.

HexChat: not installed; read from its source, github.com/hexchat/hexchat at
b544ac3350e85d4cc41fe3414cbdb82d75ce5d7a (v2.16.2-3-gb544ac33, 2024-02-09):
``irc_login`` in src/common/proto-irc.c writes ``CAP LS 302``, then ``PASS`` only if
the network has a password, then ``NICK %s`` and ``USER %s 0 * :%s``;
``inbound_cap_ls`` in src/common/inbound.c sends ``CAP END`` once the server's
``CAP LS`` reply lists nothing HexChat wants.  Defaults come from
``load_default_config`` in src/common/cfgfiles.c: the user name is
``g_get_user_name()`` (``root`` here, the same login the captures used), and the
real name is the literal ``realname``.  HexChat does not ask for a nick of its
own; it defaults to the user name as well.

The fake server answered ``CAP LS 302`` with ``:srv CAP * LS :`` (no
capabilities), one second late.  After NICK/USER (and CAP END) it sent 001, 005
(``CASEMAPPING=ascii CHANTYPES=# NICKLEN=20 NETWORK=chatd``), 422, then
``:<nick>!<nick>@chatd JOIN #chat``, 353 and 366.  It answered each channel query
at once (324 ``+nt``, 352 and 315, 368).  With other replies the clients may
send other things.  The full transcripts, including the server's side, are in
the capture report kept with this work (/tmp/irc_capture_report.md at capture
time).

Things a server must know
-------------------------
* irssi writes only ``CAP LS 302`` and ``JOIN :`` (a bogus JOIN; irssi uses it to
  detect servers without CAP) and then waits.  It sends CAP END, NICK and USER
  only after the server's CAP LS reply, or after a 451 to that JOIN.
  WeeChat and HexChat write CAP LS, NICK and USER at once, and CAP END after the
  reply.
* irssi's third USER parameter is the server address it was told to connect to
  (``127.0.0.1`` here).  The user name and real name are the login name and the
  passwd real name (GECOS) unless IRCUSER/IRCNAME or settings say otherwise.
  WeeChat's user name is the login name.  Its real name defaults to "", and then
  it sends the user name in its place.
* irssi's ``MODE {nick} +i`` comes from its default ``usermode`` setting.  001
  triggers it, not the JOIN.  irssi's flood queue (cmd_queue_speed 2200 ms)
  spaced the four after-join lines about 2.5 s apart.  irssi sends each channel
  query only after the previous one has been answered: 324 for MODE, 315 for WHO,
  368 for ``MODE #chat b``.
"""

from __future__ import annotations

from typing import Final

NICK_PLACEHOLDER: Final = b"{nick}"

# Up to and including the last registration line (USER for irssi, CAP END for
# the others), in the order the client sent them.
IRSSI_OPENING: Final = b"CAP LS 302\r\nJOIN :\r\nCAP END\r\nNICK {nick}\r\nUSER root root 127.0.0.1 :root\r\n"
WEECHAT_OPENING: Final = b"CAP LS 302\r\nNICK {nick}\r\nUSER root 0 * :root\r\nCAP END\r\n"
HEXCHAT_OPENING: Final = b"CAP LS 302\r\nNICK {nick}\r\nUSER root 0 * :realname\r\nCAP END\r\n"

# The part of each opening that the client writes before it has seen any reply
# to CAP LS.  For HexChat this comes from the source; there was no capture.
IRSSI_BEFORE_CAP_REPLY: Final = b"CAP LS 302\r\nJOIN :\r\n"
WEECHAT_BEFORE_CAP_REPLY: Final = b"CAP LS 302\r\nNICK {nick}\r\nUSER root 0 * :root\r\n"
HEXCHAT_BEFORE_CAP_REPLY: Final = b"CAP LS 302\r\nNICK {nick}\r\nUSER root 0 * :realname\r\n"

# What came next, after the server's 001/005/422/JOIN/353/366 burst, leaving out
# irssi's lag-check ``PING srv`` (it came about 15 s after connecting).
# HexChat's is from the source (``inbound_ujoin``: MODE at JOIN, WHO because
# irc_who_join defaults to on).  HexChat sends ``WHO #chat %chtsunfra,152``
# instead if the server advertises WHOX.
IRSSI_AFTER_JOIN: Final = b"MODE {nick} +i\r\nMODE #chat\r\nWHO #chat\r\nMODE #chat b\r\n"
WEECHAT_AFTER_JOIN: Final = b"MODE #chat\r\n"
HEXCHAT_AFTER_JOIN: Final = b"MODE #chat\r\nWHO #chat\r\n"

# The commands typed later, in the order typed; irssi and WeeChat sent the same
# bytes.  The server answered ``WHOIS bob`` with 401 and 318; after the 401 irssi
# also sent ``WHOWAS bob 1`` (its auto_whowas setting), WeeChat did not.
CHANNEL_MESSAGE: Final = b"PRIVMSG #chat :hello world\r\n"  # "hello world" typed in #chat
ACTION: Final = b"PRIVMSG #chat :\x01ACTION waves\x01\r\n"  # /me waves
PRIVATE_MESSAGE: Final = b"PRIVMSG bob :hi\r\n"  # /msg bob hi
IRSSI_WHOIS: Final = b"WHOIS bob\r\nWHOWAS bob 1\r\n"  # /whois bob, answered 401 + 318
WEECHAT_WHOIS: Final = b"WHOIS bob\r\n"  # /whois bob
NICK_CHANGE: Final = b"NICK newname\r\n"  # /nick newname
QUIT: Final = b"QUIT :bye\r\n"  # /quit bye

_OPENINGS: Final = {"irssi": IRSSI_OPENING, "weechat": WEECHAT_OPENING, "hexchat": HEXCHAT_OPENING}
_BEFORE_CAP_REPLY: Final = {
    "irssi": IRSSI_BEFORE_CAP_REPLY,
    "weechat": WEECHAT_BEFORE_CAP_REPLY,
    "hexchat": HEXCHAT_BEFORE_CAP_REPLY,
}
_AFTER_JOIN: Final = {"irssi": IRSSI_AFTER_JOIN, "weechat": WEECHAT_AFTER_JOIN, "hexchat": HEXCHAT_AFTER_JOIN}

CLIENTS: Final = tuple(_OPENINGS)


def _fill(templates: dict[str, bytes], client: str, nick: str) -> bytes:
    try:
        template = templates[client]
    except KeyError:
        raise ValueError(f"unknown client {client!r}; expected one of {CLIENTS}") from None
    return template.replace(NICK_PLACEHOLDER, nick.encode("utf-8"))


def opening(client: str, nick: str) -> bytes:
    """What ``client`` sends up to the end of registration, using ``nick``."""
    return _fill(_OPENINGS, client, nick)


def before_cap_reply(client: str, nick: str) -> bytes:
    """The part of :func:`opening` that ``client`` sends before any CAP LS reply."""
    return _fill(_BEFORE_CAP_REPLY, client, nick)


def after_join(client: str, nick: str) -> bytes:
    """What ``client`` sent after the welcome burst that put it in #chat."""
    return _fill(_AFTER_JOIN, client, nick)

"""chatd's page in a real browser, against the real ``chatd --web``.

Headless Debian chromium (``/usr/bin/chromium``) driven by Playwright,
beside raw TCP clients speaking protocol v1 as ``nc`` would.  One browser
for the module; each test opens its own context (its own localStorage).
Every page is watched: a console error, an uncaught exception or a CSP
violation fails the test that opened it.  Skipped, with the reason, where
chromium or playwright is missing (``make browser-deps``).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser_support import PageWatch, WebChatd, browser_missing, chromium, log_in, new_page, web_chatd
from tests.support import LineClient

MISSING = browser_missing()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

if MISSING is None:
    from playwright.sync_api import Page, expect

    expect.set_options(timeout=5_000)

# What chromium itself logs while a WebSocket cannot connect (the server
# is down, or the page is offline): expected while testing reconnects.
RECONNECT_NOISE = ("WebSocket connection to",)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as (_, browser):
        yield browser


@pytest.fixture(scope="module")
def room() -> Iterator[WebChatd]:
    """One ``chatd --web`` for the tests that only chat (no flood limit, so
    a test can send a screenful of lines at once)."""
    chatd = web_chatd("--no-flood-limit")
    yield chatd
    chatd.stop()


class Pages:
    """Opens watched pages; checks at the end that none reported a problem."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.opened: list[tuple[Any, PageWatch, tuple[str, ...]]] = []

    def open(self, url: str, *, allow: tuple[str, ...] = (), **options: Any) -> tuple[Page, PageWatch]:
        context, page, watch = new_page(self.browser, url, **options)
        self.opened.append((context, watch, allow))
        return page, watch

    def close(self) -> list[str]:
        problems = []
        for context, watch, allow in self.opened:
            problems += watch.problems(allow=allow)
            context.close()
        return problems


@pytest.fixture
def pages(browser: Any) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    assert opened.close() == [], "the page reported problems"


@pytest.fixture
def tcp() -> Iterator[Callable[[WebChatd, str], LineClient]]:
    """Log raw TCP clients in (``tcp(chatd, nick)``); closed at the end."""
    clients: list[LineClient] = []

    def connect(chatd: WebChatd, nick: str) -> LineClient:
        client = LineClient("127.0.0.1", chatd.tcp_port, timeout=5)
        clients.append(client)
        client.login(nick)
        return client

    yield connect
    for client in clients:
        client.close()


def live(page: Page, kind: str, text: str | re.Pattern[str]) -> Any:
    """The live (not replayed) log lines of one kind holding ``text``."""
    return page.locator(f"#log .line.k-{kind}:not(.replay)", has_text=text)


def read_containing(client: LineClient, text: str) -> str:
    """The next line from the server that contains ``text``."""
    while True:
        line = client.read_line()
        if text in line:
            return line


def send(page: Page, text: str) -> None:
    """Type a line in the input and press Enter."""
    page.fill("#input", text)
    page.press("#input", "Enter")


class TestPage:
    def test_served_with_its_security_headers(self, room: WebChatd) -> None:
        """The page and its files come with the CSP that forbids inline code
        and HTML sinks, nosniff and no referrer."""
        for path, kind in (("", "text/html"), ("chat.js", "javascript"), ("chat.css", "text/css"),
                           ("favicon.svg", "image/svg+xml")):
            with urllib.request.urlopen(room.url + path, timeout=5) as response:
                assert response.status == 200
                assert kind in response.headers["Content-Type"]
                csp = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "require-trusted-types-for 'script'" in csp
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Referrer-Policy"] == "no-referrer"

    def test_accessible_parts(self, room: WebChatd, pages: Pages) -> None:
        """The log is a polite live region, alerts have their own region, and
        the inputs have labels, a send key hint and a 16 px font."""
        page, _ = pages.open(room.url)
        expect(page.locator("#log")).to_have_attribute("role", "log")
        expect(page.locator("#log")).to_have_attribute("aria-live", "polite")
        expect(page.locator("#alerts")).to_have_attribute("role", "alert")
        expect(page.get_by_label("Choose a nick")).to_be_visible()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        log_in(page, "acc")
        expect(page.get_by_label("Message")).to_have_attribute("enterkeyhint", "send")
        assert page.eval_on_selector("#input", "el => getComputedStyle(el).fontSize") == "16px"


class TestLogin:
    def test_refusals_in_words_then_logged_in(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """A taken nick (in another case) and a bad one are refused under the
        box in plain words; the next nick logs in, and the others see it."""
        bob = tcp(room, "lbob")
        page, _ = pages.open(room.url)
        expect(page.locator("#link")).to_have_text("connected")
        page.fill("#nick", "LBOB")
        page.click("#login button")
        expect(page.locator("#login-error")).to_have_text("LBOB is already taken; please choose another nick.")
        page.fill("#nick", "2cool")
        page.click("#login button")
        expect(page.locator("#login-error")).to_contain_text("“2cool” cannot be used as a nick")
        log_in(page, "lann")
        expect(page.locator("#login")).to_be_hidden()
        expect(page.locator("#login-error")).to_be_empty()
        assert bob.read_until("JOIN lann")[-1] == "JOIN lann"
        expect(live(page, "join", "You joined the room as lann.")).to_have_count(1)

    def test_nick_remembered_for_the_next_visit(self, room: WebChatd, pages: Pages) -> None:
        """The nick logged in with is kept in localStorage and offered again
        when the page is opened anew."""
        page, _ = pages.open(room.url)
        log_in(page, "rann")
        assert page.evaluate("localStorage.getItem('chatd.nick')") == "rann"
        page.reload()
        expect(page.locator("#nick")).to_have_value("rann")
        log_in(page, "rann")  # the old page's connection has left meanwhile


class TestChat:
    def test_both_ways_with_server_times(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """What the page says reaches a TCP user, and what the TCP user says
        appears with its nick's colour class and the server's time."""
        bob = tcp(room, "cbob")
        bob.send("TIME ON")
        page, _ = pages.open(room.url)
        log_in(page, "cann")
        send(page, "hello from the browser,  two spaces")
        said = read_containing(bob, " SAY cann ")
        assert said.split(" ", 1)[1] == "SAY cann hello from the browser,  two spaces"
        expect(live(page, "say", "hello from the browser")).to_have_class(re.compile(r"\bown\b"))
        bob.send("SAY hi cann, from tcp")
        stamped = read_containing(bob, " SAY cbob ")
        line = live(page, "say", "hi cann, from tcp")
        expect(line).to_have_count(1)
        expect(line.locator(".who")).to_have_text("cbob")
        expect(line.locator(".who")).to_have_class(re.compile(r"\bnick-\d+\b"))
        expect(line.locator("time")).to_have_attribute("datetime", stamped.split(" ", 1)[0][1:])
        expect(line.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
        expect(line).to_have_class(re.compile(r"\bmention\b"))
        expect(page.locator(".line.k-say .text", has_text="two spaces")).to_have_text(
            "hello from the browser,  two spaces")

    def test_private_messages_both_ways(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """``/msg`` becomes TELL and shows once confirmed; a TELL to the page
        is marked private; a TELL to nobody is an error and shows nothing."""
        bob = tcp(room, "pbob")
        page, _ = pages.open(room.url)
        log_in(page, "pann")
        send(page, "/msg pbob just between us")
        assert bob.read_until("TELL")[-1] == "TELL pann just between us"
        out = live(page, "tell-out", "just between us")
        expect(out).to_have_count(1)
        expect(out.locator(".tag")).to_have_text("private to pbob")
        bob.send("TELL pann and back")
        incoming = live(page, "tell-in", "and back")
        expect(incoming.locator(".who")).to_have_text("pbob")
        expect(incoming.locator(".tag")).to_have_text("private")
        send(page, "/msg nobody hello?")
        expect(live(page, "error", "Nobody called nobody is here.")).to_have_count(1)
        expect(live(page, "tell-out", "hello?")).to_have_count(0)

    def test_wall_is_a_banner(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """A WALL shows as a banner in the alert region (and in the log)."""
        bob = tcp(room, "wbob")
        page, _ = pages.open(room.url)
        log_in(page, "wann")
        bob.send("WALL fire drill at noon")
        banner = page.locator("#alerts .wall-banner", has_text="fire drill at noon")
        expect(banner).to_contain_text("Alert from wbob")
        expect(live(page, "wall", "fire drill at noon")).to_have_count(1)
        banner.get_by_role("button", name="Dismiss the alert").click()
        expect(banner).to_have_count(0)

    def test_hostile_text_stays_text(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """HTML in a SAY, TELL or WALL appears literally and creates no
        element; nothing runs; and the CSP really refuses innerHTML."""
        bob = tcp(room, "xbob")
        page, watch = pages.open(room.url)
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        log_in(page, "xann")
        attacks = ['<img src=x onerror="window.pwned=1;alert(1)">', "<script>window.pwned=2</script>",
                   "<b>bold</b> &amp; <a href=javascript:alert(3)>link</a>"]
        for attack in attacks:
            bob.send(f"SAY {attack}", f"TELL xann {attack}")
        bob.send(f"WALL {attacks[0]}")
        for attack in attacks:
            expect(live(page, "say", attack).locator(".text")).to_have_text(attack)
            expect(live(page, "tell-in", attack)).to_have_count(1)
        expect(page.locator("#alerts .wall-banner", has_text=attacks[0])).to_have_count(1)
        assert page.evaluate("document.querySelectorAll('img, b, a, iframe, script:not([src])').length") == 0
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert dialogs == []
        assert watch.problems() == []
        probe = "() => { try { document.body.innerHTML = '<i>x</i>'; return 'set'; } catch (e) { return e.name; } }"
        assert page.evaluate(probe) == "TypeError"
        assert any("require-trusted-types-for" in v for v in watch.csp_violations())
        watch.page.evaluate("window.__cspViolations = []")  # that one was ours
        watch.console_errors.clear()

    def test_member_list_follows_the_room(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """The member list starts from the WHO reply after login and follows
        JOIN, RENAME and PART; those lines are dimmed events."""
        bob = tcp(room, "mbob")
        page, _ = pages.open(room.url)
        log_in(page, "mann")
        members = page.locator("#member-list li")
        expect(members.filter(has_text="mbob")).to_have_count(1)
        expect(members.filter(has_text="mann")).to_contain_text("(you)")
        carl = tcp(room, "mcarl")
        expect(members.filter(has_text="mcarl")).to_have_count(1)
        carl.send("NICK mcharles")
        expect(members.filter(has_text="mcharles")).to_have_count(1)
        expect(members.filter(has_text="mcarl")).to_have_count(0)
        expect(live(page, "rename", "mcarl is now known as mcharles.")).to_have_count(1)
        carl.send("QUIT lunch")
        expect(members.filter(has_text="mcharles")).to_have_count(0)
        expect(live(page, "part", "mcharles left (lunch).")).to_have_count(1)
        send(page, "/nick mann2")
        expect(page.locator("#whoami")).to_have_text("Logged in as mann2")
        expect(members.filter(has_text="mann2")).to_contain_text("(you)")
        assert bob.read_until("RENAME mann")[-1] == "RENAME mann mann2"
        dimmed = page.eval_on_selector(".k-join:not(.replay)", "el => getComputedStyle(el).color")
        assert dimmed == "rgb(95, 102, 112)"  # --muted, not the text colour

    def test_commands_history_and_completion(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """An unknown command is a local error, a refused rename names the nick
        asked for; Tab completes a nick (with ": " at the start of the line);
        Up recalls the last line typed."""
        tcp(room, "tbobby")
        page, _ = pages.open(room.url)
        log_in(page, "tann")
        send(page, "/frob")
        expect(live(page, "error", "There is no command /frob.")).to_have_count(1)
        send(page, "/nick TBOBBY")
        expect(live(page, "error", "TBOBBY is already taken; please choose another nick.")).to_have_count(1)
        page.fill("#input", "tbo")
        page.press("#input", "Tab")
        expect(page.locator("#input")).to_have_value("tbobby: ")
        page.fill("#input", "/msg tbo")
        page.press("#input", "Tab")
        expect(page.locator("#input")).to_have_value("/msg tbobby ")
        page.fill("#input", "")
        page.press("#input", "ArrowUp")
        expect(page.locator("#input")).to_have_value("/nick TBOBBY")
        page.press("#input", "ArrowUp")
        expect(page.locator("#input")).to_have_value("/frob")
        page.press("#input", "ArrowDown")
        page.press("#input", "ArrowDown")
        expect(page.locator("#input")).to_have_value("")


class TestScrolling:
    def test_scrolled_up_the_view_stays_and_a_button_counts(self, room: WebChatd, pages: Pages,
                                                            tcp: Any) -> None:
        """Pinned to the bottom, new lines scroll into view; scrolled up, they
        do not move it, and "N new messages" jumps down."""
        bob = tcp(room, "sbob")
        page, _ = pages.open(room.url, viewport={"width": 800, "height": 400})
        log_in(page, "sann")
        bob.send(*(f"SAY filler {n}" for n in range(40)))
        expect(live(page, "say", "filler 39")).to_be_in_viewport()
        page.eval_on_selector("#log", "el => { el.scrollTop = 0; }")
        expect(live(page, "say", "filler 39")).not_to_be_in_viewport()
        bob.send("SAY one", "SAY two", "SAY three")
        expect(page.locator("#jump")).to_have_text("3 new messages ↓")
        assert page.eval_on_selector("#log", "el => el.scrollTop") == 0
        page.click("#jump")
        expect(live(page, "say", "three")).to_be_in_viewport()
        expect(page.locator("#jump")).to_be_hidden()

    def test_the_log_keeps_the_newest_lines(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """The page keeps the newest 2000 lines, so a long session stays light."""
        bob = tcp(room, "kbob")
        page, _ = pages.open(room.url)
        log_in(page, "kann")
        bob.send(*(f"SAY keep {n}" for n in range(2100)))
        expect(live(page, "say", "keep 2099")).to_have_count(1)
        assert page.eval_on_selector("#log", "el => el.childElementCount") == 2000
        expect(live(page, "say", re.compile(r"keep 99$"))).to_have_count(0)
        expect(live(page, "say", "keep 2099")).to_be_in_viewport()

    def test_unread_count_in_the_title_while_hidden(self, room: WebChatd, pages: Pages, tcp: Any) -> None:
        """While the tab is hidden, messages from others count in the title
        and a marker shows where they begin; back in view, the count goes."""
        bob = tcp(room, "ubob")
        page, _ = pages.open(room.url)
        log_in(page, "uann")
        page.evaluate("""() => {
            Object.defineProperty(document, "hidden", {value: true, configurable: true});
            Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        bob.send("SAY are you there?", "SAY hello?", "TELL uann psst")
        expect(page).to_have_title("(3) chatd")
        expect(page.locator("#log .unread-marker")).to_have_count(1)
        page.evaluate("""() => {
            delete document.hidden; delete document.visibilityState;
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        expect(page).to_have_title("chatd")


class TestHistoryAndReconnect:
    def test_history_on_login_is_shown_as_history(self, pages: Pages, tcp: Any) -> None:
        """Lines said before the login appear dimmed between "history" and
        "end of history (N lines)", a mention among them not highlighted."""
        chatd = web_chatd()
        try:
            bob = tcp(chatd, "bob")
            bob.send("SAY ann: this was before you came", "SAY second line")
            bob.sync()
            page, _ = pages.open(chatd.url)
            log_in(page, "ann")
            history = page.locator("#log .line.k-history")
            expect(history).to_have_text([re.compile("history$"), re.compile(r"end of history \(2 lines\)$")])
            replayed = page.locator("#log .line.replay.k-say")
            expect(replayed).to_have_count(2)
            expect(replayed.first).not_to_have_class(re.compile(r"\bmention\b"))
            bob.send("SAY ann: and this is now")
            expect(live(page, "say", "and this is now")).to_have_class(re.compile(r"\bmention\b"))
        finally:
            chatd.stop()

    def test_reconnect_after_a_restart(self, pages: Pages, tcp: Any) -> None:
        """A server restart on the same ports: the shutdown WALL and BYE are
        shown, the page reconnects and logs in again by itself, shows once
        the lines said while it was away, and chats on."""
        chatd = web_chatd()
        try:
            page, _ = pages.open(chatd.url, allow=RECONNECT_NOISE)
            context = page.context
            log_in(page, "ann")
            early = tcp(chatd, "early")
            early.send("SAY before the restart")
            expect(live(page, "say", "before the restart")).to_have_count(1)
            chatd.stop()
            expect(page.locator("#alerts .wall-banner", has_text="server shutting down")).to_have_count(1)
            expect(live(page, "error", "The server closed the connection: server shutting down.")).to_have_count(1)
            expect(page.locator("#link")).to_contain_text("connection lost")
            context.set_offline(True)  # keep the page away until bob has spoken
            chatd.start()
            bob = tcp(chatd, "bob")
            bob.send("SAY said while ann was away")
            bob.sync()
            context.set_offline(False)  # the page's "online" handler retries at once
            expect(page.locator("#whoami")).to_have_text("Logged in as ann", timeout=10_000)
            assert bob.read_until("JOIN ann")[-1] == "JOIN ann"
            expect(live(page, "info", "Reconnected to")).to_have_count(1)
            missed = page.locator("#log .line.k-history")
            expect(missed).to_have_text([re.compile("missed while disconnected$"),
                                         re.compile(r"end of missed lines \(1 line\)$")])
            expect(page.locator("#log .line.replay", has_text="said while ann was away")).to_have_count(1)
            expect(page.locator("#log .line", has_text="before the restart")).to_have_count(1)
            send(page, "back again")
            assert bob.read_until("SAY ann")[-1] == "SAY ann back again"
            expect(page.locator("#link")).to_have_text("connected")
        finally:
            chatd.stop()


    def test_after_quit_or_a_login_timeout_it_waits_for_the_user(self, pages: Pages) -> None:
        """A registration timeout and /quit end with the login box and no
        reconnect of its own; logging in from the box connects again."""
        chatd = web_chatd("--register-timeout", "1")
        try:
            page, _ = pages.open(chatd.url)
            expect(live(page, "error", "registration timeout: no NICK")).to_have_count(1)
            expect(page.locator("#link")).to_have_text("disconnected — log in to connect again")
            log_in(page, "ann")
            send(page, "/quit off to lunch")
            expect(live(page, "info", "Disconnected: off to lunch.")).to_have_count(1)
            expect(page.locator("#link")).to_have_text("disconnected")
            expect(page.locator("#nick")).to_have_value("ann")
            log_in(page, "ann")
        finally:
            chatd.stop()


class TestLayout:
    def test_phone_in_dark_mode(self, room: WebChatd, pages: Pages) -> None:
        """On a phone the member list starts closed and opens over the log;
        dark mode follows prefers-color-scheme."""
        page, _ = pages.open(room.url, viewport={"width": 375, "height": 667}, is_mobile=True,
                             has_touch=True, color_scheme="dark")
        log_in(page, "phone")
        fills = "() => [document.querySelector('footer').getBoundingClientRect().bottom, innerHeight," \
                " document.querySelector('#log').getBoundingClientRect().height]"
        footer_bottom, height, log_height = page.evaluate(fills)
        assert footer_bottom == height and log_height > height / 2  # the input at the bottom, the log between
        expect(page.locator("#members")).to_be_hidden()
        page.click("#members-toggle")
        expect(page.locator("#members")).to_be_visible()
        expect(page.locator("#members-toggle")).to_have_attribute("aria-expanded", "true")
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(22, 24, 28)"

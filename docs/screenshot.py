"""Make docs/screenshot.png: chatd's page in a real browser, mid-chat.

Run by ``make screenshot`` (``python docs/screenshot.py [PATH]``).  It
starts the real ``chatd --web`` on two free loopback ports, logs in two raw
TCP users (bob and carl, as ``nc`` would) and one browser user (ann, in
headless Debian chromium driven by Playwright), has them exchange a few
lines, and saves the page at 1100x640 in the light colour scheme.  A
second shot, PATH with ``-phone`` before the suffix, is the same page on a
phone-sized screen in the dark scheme.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.browser_support import browser_missing, chromium, log_in, new_page, web_chatd
from tests.support import LineClient

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "screenshot.png"
    missing = browser_missing()
    if missing is not None:
        print(f"screenshot: {missing}", file=sys.stderr)
        return 1
    chatd = web_chatd("--no-flood-limit")
    clients: list[LineClient] = []
    try:
        bob = LineClient("127.0.0.1", chatd.tcp_port)
        clients.append(bob)
        bob.login("bob")
        bob.send("SAY morning all", "SAY the build is green again")
        bob.sync()
        with chromium() as (_, browser):
            context, page, watch = new_page(browser, chatd.url, viewport={"width": 1100, "height": 640})
            log_in(page, "ann")
            carl = LineClient("127.0.0.1", chatd.tcp_port)
            clients.append(carl)
            carl.login("carl")
            bob.send("SAY ann: welcome! the page is live, try it on your phone too")
            page.wait_for_selector(".line.mention")
            page.fill("#input", "thanks bob, it even keeps my nick between visits")
            page.press("#input", "Enter")
            bob.read_until("SAY ann thanks")
            carl.send("SAY <script>alert('hi')</script> comes out as plain text, good")
            carl.send("TELL ann lunch at one?")
            page.wait_for_selector(".line.k-tell-in")
            page.fill("#input", "/msg carl sure, see you there")
            page.press("#input", "Enter")
            page.wait_for_selector(".line.k-tell-out")
            carl.send("NICK charles")
            bob.send("WALL deploy at 15:00, the room restarts for a minute")
            page.wait_for_selector(".wall-banner")
            page.fill("#input", "/msg ch")
            page.press("#input", "Tab")
            page.wait_for_function("document.querySelector('#input').value === '/msg charles '")
            page.screenshot(path=str(target))
            phone = target.with_name(f"{target.stem}-phone{target.suffix}")
            phone_context, phone_page, phone_watch = new_page(
                browser, chatd.url, viewport={"width": 390, "height": 700}, is_mobile=True,
                has_touch=True, color_scheme="dark", device_scale_factor=1)
            log_in(phone_page, "dana")
            bob.send("SAY hi dana, dark mode follows your phone's setting")
            phone_page.wait_for_selector(".line.mention")
            phone_page.screenshot(path=str(phone))
            problems = watch.problems() + phone_watch.problems()
            phone_context.close()
            context.close()
        if problems:
            print("screenshot: the page reported problems:", *problems, sep="\n  ", file=sys.stderr)
            return 1
        print(f"screenshot: wrote {target} and {phone}")
        return 0
    finally:
        for client in clients:
            client.close()
        chatd.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""chatclient.viewport: the chat pane scrolls by screen rows, not by chat lines.

Each test builds a transcript on a ``ClientState``, draws a small pane and
compares what it shows with a slice of the whole transcript's rows (every
line wrapped by ``chatclient.render`` at the same width), so "moved by five
rows" is checked against the rows themselves.  Words are numbered, so no two
rows read the same and a view off by one row fails.
"""

from __future__ import annotations

import pytest
from prompt_toolkit.data_structures import Point
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.mouse_events import MouseButton, MouseEvent, MouseEventType

from chatclient import render
from chatclient.state import ClientState, Line
from chatclient.ui import WHEEL_LINES, TranscriptControl
from chatclient.viewport import Viewport

WIDTH = 40  # the text column is 21 cells, three words: "03.09 03.10 03.11"


def make_state(max_lines: int = 1000) -> ClientState:
    """A state with a fixed clock, so every time stamp reads 00:00."""
    return ClientState("here:1", clock=lambda: 0.0, max_lines=max_lines)


def say(state: ClientState, number: int, words: int = 18) -> Line:
    """Line ``number``: ``words`` numbered words (18 wrap into 6 rows at WIDTH)."""
    return state.note(" ".join(f"{number:02d}.{k:02d}" for k in range(words)))


def texts(line: Line, width: int = WIDTH) -> list[str]:
    return ["".join(text for _, text, *_ in row) for row in render.rows(line, width)]


def every_row(state: ClientState, width: int = WIDTH) -> list[str]:
    """The whole transcript's rows, top to bottom, as text."""
    return [text for line in state.lines for text in texts(line, width)]


def filled(lines: int, words: int = 18, **kwargs: int) -> tuple[ClientState, Viewport]:
    state = make_state(**kwargs)
    for number in range(1, lines + 1):
        say(state, number, words)
    return state, Viewport(state)


def draw(viewport: Viewport, height: int, width: int = WIDTH) -> list[str]:
    viewport.rows(width, height)
    return viewport.shown


class TestPaging:
    """PageUp and PageDown move a screen of rows, one row kept as overlap."""

    def test_page_up_moves_exactly_height_less_one_rows_through_long_lines(self) -> None:
        """With 6-row lines in an 8-row pane, each PageUp moves the view 7 rows up,
        not 7 lines (42 rows)."""
        state, viewport = filled(10)
        rows = every_row(state)
        assert len(rows) == 60
        assert draw(viewport, 8) == rows[-8:]
        viewport.page_up()
        assert draw(viewport, 8) == rows[-15:-7]
        viewport.page_up()
        assert draw(viewport, 8) == rows[-22:-14]

    def test_the_top_row_of_a_page_is_the_bottom_row_of_the_next_page_up(self) -> None:
        """One row of the old view stays on screen, at the other edge."""
        state, viewport = filled(10)
        before = draw(viewport, 8)
        viewport.page_up()
        after = draw(viewport, 8)
        assert after[-1] == before[0]
        assert not set(after[:-1]) & set(before)

    def test_page_down_moves_back_by_the_same_rows(self) -> None:
        """PageDown undoes a PageUp row for row."""
        state, viewport = filled(10)
        rows = every_row(state)
        draw(viewport, 8)
        for _ in range(3):
            viewport.page_up()
            draw(viewport, 8)
        viewport.page_down()
        assert draw(viewport, 8) == rows[-22:-14]

    def test_page_follows_the_pane_height_of_the_last_draw(self) -> None:
        """After the pane grows, a page is the new height less one."""
        state, viewport = filled(10)
        rows = every_row(state)
        draw(viewport, 8)
        draw(viewport, 12)
        viewport.page_up()
        assert draw(viewport, 12) == rows[-23:-11]


class TestTallLines:
    """A line taller than the pane can be read whole, row by row."""

    def test_a_line_taller_than_the_pane_is_read_row_by_row(self) -> None:
        """From the top, scrolling down one row at a time moves the 5-row pane
        one row each time through a line of over 20 rows, until it follows."""
        state = make_state()
        say(state, 1, words=4)
        tall = say(state, 2, words=100)
        say(state, 3, words=4)
        viewport = Viewport(state)
        assert len(texts(tall)) > 20
        draw(viewport, 5)
        for _ in range(40):
            viewport.page_up()
        views = [draw(viewport, 5)]
        for _ in range(100):
            if not viewport.scrolled:
                break
            viewport.scroll_down(1)
            views.append(draw(viewport, 5))
        assert not viewport.scrolled
        assert all(after[:-1] == before[1:] for before, after in zip(views, views[1:], strict=False))
        assert views[0] + [view[-1] for view in views[1:]] == every_row(state)

    def test_paging_through_a_tall_line_shows_every_row_once_with_overlap(self) -> None:
        """PageUp through a 30-row line in a 5-row pane moves 4 rows each time."""
        state = make_state()
        tall = say(state, 1, words=100)
        viewport = Viewport(state)
        rows = texts(tall)
        draw(viewport, 5)
        viewport.page_up()
        assert draw(viewport, 5) == rows[-9:-4]
        viewport.page_up()
        assert draw(viewport, 5) == rows[-13:-8]


class TestStillness:
    """Scrolled back, the view does not move by itself."""

    def test_new_lines_arriving_while_scrolled_back_do_not_move_the_view(self) -> None:
        """Twenty new long lines leave the shown rows as they were and are counted as unseen."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()
        viewport.scroll_up(2)  # the bottom row now in the middle of a line
        before = draw(viewport, 8)
        for number in range(11, 31):
            say(state, number)
        assert draw(viewport, 8) == before
        assert viewport.scrolled and viewport.unseen() == 20

    def test_old_lines_falling_off_the_front_do_not_move_the_view(self) -> None:
        """In a transcript bounded to 30 lines, new lines push old ones out
        above the view and it stays where it is."""
        state, viewport = filled(30, max_lines=30)
        draw(viewport, 8)
        viewport.page_up()
        viewport.page_up()
        before = draw(viewport, 8)
        for number in range(31, 36):
            say(state, number)
        assert state.lines[0].text.startswith("06.00 ")
        assert draw(viewport, 8) == before

    def test_the_top_follows_the_front_as_it_falls_off(self) -> None:
        """At the very top, lines falling off leave the new first row at the top of the pane."""
        state, viewport = filled(5, max_lines=5)
        draw(viewport, 8)
        for _ in range(10):
            viewport.page_up()
        assert draw(viewport, 8) == every_row(state)[:8]
        say(state, 6)
        assert draw(viewport, 8) == every_row(state)[:8]
        assert viewport.scrolled


class TestClamps:
    """Scrolling stops at the first row and follows again at the last."""

    def test_scrolling_to_the_top_stops_at_the_first_row(self) -> None:
        """Past the beginning the pane is full, starting with the first row, and stays so."""
        state, viewport = filled(10)
        draw(viewport, 8)
        for _ in range(20):
            viewport.page_up()
            draw(viewport, 8)
        assert draw(viewport, 8) == every_row(state)[:8]
        viewport.page_up()
        assert draw(viewport, 8) == every_row(state)[:8]
        assert viewport.scrolled

    def test_page_down_from_the_top_moves_one_page(self) -> None:
        """From the top clamp, PageDown moves 7 rows on, however far up PageUp was pressed."""
        state, viewport = filled(10)
        draw(viewport, 8)
        for _ in range(20):
            viewport.page_up()
        viewport.page_down()
        assert draw(viewport, 8) == every_row(state)[7:15]

    def test_scrolling_down_to_the_end_follows_again(self) -> None:
        """Reaching the newest row ends the scroll-back: new lines show at once."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.scroll_up(WHEEL_LINES)
        assert viewport.scrolled
        viewport.scroll_down(WHEEL_LINES)
        assert not viewport.scrolled
        say(state, 11, words=3)
        assert draw(viewport, 8)[-1] == every_row(state)[-1]

    def test_page_down_past_the_end_follows_and_stops(self) -> None:
        """Paging down further than there is follows the newest line and goes no further."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()
        viewport.page_down()
        viewport.page_down()
        assert not viewport.scrolled
        assert draw(viewport, 8) == every_row(state)[-8:]

    def test_a_transcript_shorter_than_the_pane_does_not_scroll(self) -> None:
        """With everything on screen PageUp does nothing; the rows sit at the bottom."""
        state, viewport = filled(1)
        rows = viewport.rows(WIDTH, 8)
        viewport.page_up()
        assert not viewport.scrolled
        assert viewport.rows(WIDTH, 8) == rows
        assert rows[:2] == [[], []] and viewport.shown == every_row(state)

    def test_ctrl_end_follows_again(self) -> None:
        """to_bottom leaves the scroll-back for the newest rows."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()
        viewport.to_bottom()
        assert not viewport.scrolled and viewport.unseen() == 0
        assert draw(viewport, 8) == every_row(state)[-8:]


class TestResize:
    """A width change keeps the same chat line at the bottom."""

    def test_narrowing_keeps_the_bottom_line_and_its_row(self) -> None:
        """The bottom row stays row 2 of the same line when the lines wrap into more rows."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()
        viewport.scroll_up(2)  # bottom: line 9, row 2 (60 - 1 - 7 - 2 = row 50)
        assert draw(viewport, 8)[-1] == texts(state.lines[8])[2]
        assert draw(viewport, 8, width=32)[-1] == texts(state.lines[8], 32)[2]
        assert len(texts(state.lines[8], 32)) > len(texts(state.lines[8]))

    def test_widening_clamps_the_row_into_the_line(self) -> None:
        """A row past the end of the rewrapped line becomes the line's last row."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()  # bottom: row 52 of 60, so line 9, row 4 of 6
        assert draw(viewport, 8)[-1] == texts(state.lines[8])[4]
        wide = texts(state.lines[8], 100)
        assert len(wide) < 6
        assert draw(viewport, 8, width=100)[-1] == wide[-1]
        assert viewport.scrolled
        viewport.scroll_up(len(wide) - 1)  # from the clamped row to the line's first
        assert draw(viewport, 8, width=100)[-1] == wide[0]


class TestClear:
    """/clear while scrolled back returns to following."""

    def test_clear_while_scrolled_back_follows_again(self) -> None:
        """After the transcript is emptied there is nothing to be scrolled back in."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()
        state.clear()
        assert not viewport.scrolled and viewport.unseen() == 0 and viewport.below() == 0
        assert draw(viewport, 8) == []

    def test_lines_after_a_clear_show_at_the_bottom(self) -> None:
        """Lines said after the clear, even before the next draw, are followed."""
        state, viewport = filled(10)
        draw(viewport, 8)
        viewport.page_up()
        state.clear()
        for number in range(11, 14):
            say(state, number)
        assert draw(viewport, 8) == every_row(state)[-8:]
        assert not viewport.scrolled


class TestMarker:
    """The marker's counts are chat lines."""

    def test_below_and_unseen_count_lines(self) -> None:
        """With one-row lines a page up leaves 4 lines below; 2 new ones are unseen."""
        state, viewport = filled(20, words=2)
        draw(viewport, 5)
        viewport.page_up()
        assert (viewport.below(), viewport.unseen()) == (4, 0)
        say(state, 21, words=2)
        say(state, 22, words=2)
        assert (viewport.below(), viewport.unseen()) == (6, 2)


class TestWheel:
    """The mouse wheel over the chat pane moves WHEEL_LINES rows."""

    @staticmethod
    def wheel(control: TranscriptControl, kind: MouseEventType) -> None:
        control.mouse_handler(MouseEvent(Point(0, 0), kind, MouseButton.NONE, frozenset()))

    def test_the_wheel_moves_three_rows(self) -> None:
        """One notch up shows the rows three higher; one notch down follows again."""
        state, viewport = filled(10)
        control = TranscriptControl(viewport)
        rows = every_row(state)
        control.create_content(WIDTH, 8)
        self.wheel(control, MouseEventType.SCROLL_UP)
        assert WHEEL_LINES == 3
        assert draw(viewport, 8) == rows[-11:-3]
        self.wheel(control, MouseEventType.SCROLL_DOWN)
        assert not viewport.scrolled


class TestCost:
    """Drawing and scrolling wrap only the lines they need."""

    def test_a_frame_and_a_page_wrap_a_screenful_of_a_long_transcript(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """In a 10,000-line transcript a frame, and a PageUp with its frame,
        wrap each a handful of lines, not the transcript."""
        state, viewport = filled(10_000, words=2, max_lines=10_000)
        wrapped: list[int] = []
        real = render.rows

        def counting(line: Line, width: int) -> list[StyleAndTextTuples]:
            wrapped.append(line.seq)
            return real(line, width)

        monkeypatch.setattr(render, "rows", counting)
        draw(viewport, 20)
        assert len(wrapped) == 20
        for _ in range(100):
            wrapped.clear()
            viewport.page_up()
            assert len(wrapped) <= 2 * 20
            wrapped.clear()
            draw(viewport, 20)
            assert len(wrapped) == 20
        assert viewport.below() == 100 * 19

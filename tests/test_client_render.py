"""chatclient.render: lines in, screen rows and plain text out."""

from __future__ import annotations

from prompt_toolkit.utils import get_cwidth

from chatclient import render
from chatclient.state import ClientState, Kind, Line, Replay


def line(kind: Kind, text: str, **kwargs: object) -> Line:
    return ClientState("h", clock=lambda: 0.0).add(kind, text, **kwargs)  # type: ignore[arg-type]


def texts(rows: list) -> list[str]:
    return ["".join(text for _, text, *_ in row) for row in rows]


class TestRows:
    def test_long_line_wraps_at_spaces_under_the_text(self) -> None:
        """A long line wraps at a space and continues under the text column."""
        rows = texts(render.rows(line(Kind.SAY, "alpha beta gamma delta", nick="ann"), 32))
        assert [row[5:] for row in rows] == [
            "        ann │ alpha beta", "            │ gamma delta"]

    def test_wide_and_combining_characters_fit(self) -> None:
        """Wide characters never split or overflow; combining marks stay with their base."""
        text = "漢字" * 10 + " e\u0301\u0301 end"
        for width in range(22, 40):
            for row in texts(render.rows(line(Kind.SAY, text, nick="ann"), width)):
                assert sum(get_cwidth(ch) for ch in row) <= width
        joined = "".join(texts(render.rows(line(Kind.SAY, text, nick="ann"), 25)))
        assert "e\u0301\u0301" in joined

    def test_word_longer_than_row_is_cut(self) -> None:
        """A word wider than the row is cut rather than lost."""
        rows = texts(render.rows(line(Kind.SAY, "x" * 30, nick="ann"), 34))
        assert "".join(row.split("│ ", 1)[1] for row in rows) == "x" * 30

    def test_narrow_terminal_uses_whole_rows(self) -> None:
        """When the text column would be too narrow, continuations start at the left."""
        rows = texts(render.rows(line(Kind.SAY, "aaaa bbbb cccc", nick="ann"), 24))
        assert rows == ["00:00        ann │ aaaa", "bbbb cccc"]

    def test_wall_is_a_full_width_banner(self) -> None:
        """A WALL row is padded to the full width in the banner style."""
        [row] = render.rows(line(Kind.WALL, "fire", nick="bob"), 60)
        assert sum(len(text) for _, text, *_ in row) == 60
        assert all("class:wall" in style for style, *_ in row)

    def test_mention_row_is_highlighted(self) -> None:
        """Every fragment of a mentioning line carries the highlight."""
        [row] = render.rows(line(Kind.SAY, "hi ann", nick="bob", mention=True), 60)
        assert all("class:mention" in style for style, *_ in row)

    def test_a_replayed_row_is_dimmed_whatever_it_is(self) -> None:
        """Every fragment of a replayed line carries the replay style, even a
        mention or a WALL; a live line has none of it."""
        for kind, mention in ((Kind.SAY, False), (Kind.SAY, True), (Kind.WALL, False)):
            [row] = render.rows(line(kind, "hi ann", nick="bob", mention=mention,
                                     replay=Replay.MISSED), 60)
            assert all("class:replay" in style for style, *_ in row)
        [row] = render.rows(line(Kind.SAY, "hi", nick="bob"), 60)
        assert not any("class:replay" in style for style, *_ in row)

    def test_a_history_marker_is_a_rule_and_not_dimmed(self) -> None:
        """The markers around a replay read as a rule on the screen and stay undimmed."""
        marker = line(Kind.HISTORY, "history", replay=Replay.EARLIER)
        [row] = render.rows(marker, 60)
        assert texts([row]) == ["00:00         -- │ ── history ──"]
        assert not any("class:replay" in style for style, *_ in row)

    def test_nick_colour_is_stable(self) -> None:
        """A nick's colour depends only on the nick, ignoring case; mine is distinct."""
        assert render.nick_style("Bob") == render.nick_style("bob")
        assert render.nick_style("bob", own=True) == "class:nick.own"
        assert len({render.nick_style(f"user{n}") for n in range(50)}) > 6


class TestPlain:
    def test_every_kind_reads_as_text(self) -> None:
        """Plain mode gives each kind of line a readable, distinct shape."""
        shown = [render.plain(line(kind, "t", nick="bob"))[6:] for kind in Kind]
        assert shown == ["<bob> t", "[private] <bob> t", "[private to bob] t",
                         "!!! WALL from bob: t", "--> t", "<-- t", "-- t", "-- t", "!! t",
                         "-- t --"]

    def test_plain_text_is_plain_without_its_time(self) -> None:
        """plain() is the local HH:MM and plain_text(), which the chat log uses."""
        said = line(Kind.SAY, "hello", nick="bob")
        assert render.plain_text(said) == "<bob> hello"
        assert render.plain(said) == render.clock(said) + " <bob> hello"

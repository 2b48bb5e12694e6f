"""The room's history (protocol 1.1's ``HISTORY``): which lines it keeps, its
two bounds, and ``before(seq, n)``, the lines a connection may read back.
Pure: stamped events in, stamped events out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.config import parse_config
from chatd.dialects import line
from chatd.events import Event, Joined, Parted, Renamed, Said, Stamped, Told, Walled
from chatd.history import History, line_size

BIG = 1 << 30  # a bound that never bites


def said(seq: int, text: str | None = None, nick: str = "ann") -> Stamped:
    """A ``Said`` stamped ``seq``, at a time that grows with it."""
    return Stamped(seq, 1795615503.0 + seq, Said(nick, text if text is not None else f"line {seq}"))


def fed(history: History, *stamped: Stamped) -> History:
    """``history`` after hearing ``stamped``, in order, as the bus delivers them."""
    for one in stamped:
        history.hear(one)
    return history


def kept(history: History) -> list[Stamped]:
    """Everything ``history`` keeps, oldest first."""
    return history.before(BIG, BIG)


class TestWhatIsKept:
    """Only what was said to the whole room is kept."""

    def test_said_is_kept_as_stamped(self) -> None:
        """A ``Said`` is kept with its stamp: the same seq and time every reader gets."""
        history = fed(History(10, BIG), said(1))
        assert kept(history) == [said(1)]

    def test_other_events_are_never_kept(self) -> None:
        """JOIN, PART, RENAME, TELL and WALL are never kept, so HISTORY never shows them."""
        others: list[Event] = [Joined("ann"), Parted("ann", "bye"), Renamed("ann", "bob"),
                               Told("ann", "bob", "a secret"), Walled("ann", "fire"),
                               Walled("*", "server shutting down")]
        history = fed(History(10, BIG), *(Stamped(seq, 0.0, event)
                                          for seq, event in enumerate(others, 1)))
        assert len(history) == 0 and history.bytes == 0
        assert kept(history) == []

    def test_said_among_other_events_keeps_only_the_said(self) -> None:
        """In a mixed stream, exactly the ``Said`` events are kept, in the bus's order."""
        history = fed(History(10, BIG), Stamped(1, 0.0, Joined("ann")), said(2),
                      Stamped(3, 0.0, Told("ann", "ann", "psst")), said(4),
                      Stamped(5, 0.0, Walled("ann", "fire")))
        assert kept(history) == [said(2), said(4)]


class TestCountBound:
    """``--history N``: the last N lines."""

    def test_keeps_the_last_max_lines(self) -> None:
        """Over the count bound, the oldest lines go first."""
        history = fed(History(3, BIG), *(said(seq) for seq in range(1, 6)))
        assert kept(history) == [said(3), said(4), said(5)]
        assert len(history) == 3

    def test_bytes_follow_what_is_kept(self) -> None:
        """The byte count is that of the lines still kept, not of every line heard."""
        history = fed(History(2, BIG), said(1, "a"), said(2, "bb"), said(3, "ccc"))
        assert history.bytes == line_size(Said("ann", "bb")) + line_size(Said("ann", "ccc"))

    def test_zero_lines_is_history_off(self) -> None:
        """``History(0, ...)`` keeps nothing, so every reader gets nothing."""
        history = fed(History(0, BIG), said(1), said(2))
        assert len(history) == 0 and history.bytes == 0
        assert history.before(3, 20) == []


class TestByteBound:
    """``--history-bytes B``: at most B bytes of kept lines, counted as v1 lines."""

    def test_line_size_is_the_v1_line_with_its_crlf(self) -> None:
        """A line's size is the bytes of ``SAY <nick> <text>`` CRLF, as it was delivered."""
        for text in ["hi", "  two  spaces  ", "caf\u00e9 \u4e16\u754c", "\ttab"]:
            stamped = said(1, text)
            assert isinstance(stamped.event, Said)
            assert line_size(stamped.event) == len(line.encode_event(stamped))

    def test_oldest_go_first_over_the_byte_bound(self) -> None:
        """When a new line would pass the byte bound, the oldest lines go until it fits."""
        size = line_size(Said("ann", "line 1"))  # every "line <digit>" has this size
        history = fed(History(100, 2 * size), said(1), said(2), said(3))
        assert kept(history) == [said(2), said(3)]
        assert history.bytes == 2 * size

    def test_a_line_exactly_at_the_byte_bound_is_kept_alone(self) -> None:
        """A line as big as the whole bound is kept, and pushes out everything else."""
        big = "x" * 50
        history = fed(History(100, line_size(Said("ann", big))), said(1, "a"), said(2, big))
        assert kept(history) == [said(2, big)]

    def test_a_line_bigger_than_the_byte_bound_is_not_kept(self) -> None:
        """A single line over the bound is dropped, and what was kept stays."""
        small = line_size(Said("ann", "line 1"))
        history = fed(History(100, 2 * small), said(1), said(2, "y" * 100), said(3))
        assert kept(history) == [said(1), said(3)]
        assert history.bytes == 2 * small

    def test_bytes_are_counted_in_utf8(self) -> None:
        """A character outside ASCII counts as the bytes UTF-8 needs for it."""
        history = fed(History(100, BIG), said(1, "\u00e9\u4e16"))
        assert history.bytes == len("SAY ann \u00e9\u4e16\r\n".encode())

    def test_both_bounds_hold_at_once(self) -> None:
        """Whichever bound is tighter decides, and both hold after every line."""
        history = History(4, 100)
        for seq in range(1, 40):
            history.hear(said(seq, "z" * (seq % 7 + 1)))
            assert len(history) <= 4 and history.bytes <= 100
            assert history.bytes == sum(line_size(s.event) for s in kept(history)
                                        if isinstance(s.event, Said))


class TestBefore:
    """``before(seq, n)``: the last n lines stamped before a connection's own JOIN."""

    def test_cut_off_excludes_the_seq_and_everything_after(self) -> None:
        """Lines stamped at or after the cut-off are never given back."""
        history = fed(History(10, BIG), said(1), said(2), said(4), said(5))
        assert history.before(4, 10) == [said(1), said(2)]
        assert history.before(3, 10) == [said(1), said(2)]

    def test_oldest_first_and_the_last_n(self) -> None:
        """The n lines nearest the cut-off, oldest first."""
        history = fed(History(10, BIG), *(said(seq) for seq in range(1, 8)))
        assert history.before(6, 2) == [said(4), said(5)]

    def test_n_larger_than_kept_gives_all_before(self) -> None:
        """Asking for more lines than are kept gives every kept line before the cut-off."""
        history = fed(History(10, BIG), said(1), said(2), said(3))
        assert history.before(3, 1000) == [said(1), said(2)]

    def test_n_zero_or_less_gives_nothing(self) -> None:
        """``before(seq, 0)`` (``HISTORY 0``) is empty, and so is a negative count."""
        history = fed(History(10, BIG), said(1), said(2))
        assert history.before(10, 0) == []
        assert history.before(10, -1) == []

    def test_cut_off_before_everything_kept_gives_nothing(self) -> None:
        """A connection that logged in before every kept line gets none of them."""
        history = fed(History(10, BIG), said(5), said(6))
        assert history.before(5, 10) == []
        assert history.before(1, 10) == []

    def test_lines_gone_over_the_bound_are_not_given(self) -> None:
        """What fell off the history is gone, even for an old cut-off."""
        history = fed(History(2, BIG), said(1), said(2), said(3), said(4))
        assert history.before(4, 10) == [said(3)]

    def test_empty_history_gives_nothing(self) -> None:
        """Before anything was said, every reader gets nothing."""
        assert History(10, BIG).before(1, 20) == []


class TestAgainstAModel:
    """The history against the plainest model of the rule: keep every Said, cut
    by count and bytes from the oldest, and read the tail before the cut-off."""

    @settings(max_examples=150, deadline=None)
    @given(texts=st.lists(st.text("ab\u00e9", min_size=1, max_size=30) | st.none(), max_size=40),
           max_lines=st.integers(0, 12), max_bytes=st.integers(1, 200),
           cut=st.integers(0, 45), count=st.integers(0, 50))
    def test_matches_the_model(self, texts: list[str | None], max_lines: int, max_bytes: int,
                               cut: int, count: int) -> None:
        """For any stream of lines and other events, the bounds and ``before`` agree with
        the model (None in ``texts`` stands for an event that is not a ``Said``)."""
        history = History(max_lines, max_bytes)
        model: list[Stamped] = []
        for seq, text in enumerate(texts, 1):
            if text is None:
                history.hear(Stamped(seq, 0.0, Joined("bob")))
                continue
            stamped = said(seq, text)
            history.hear(stamped)
            assert isinstance(stamped.event, Said)
            if max_lines and line_size(stamped.event) <= max_bytes:
                model.append(stamped)
            while len(model) > max_lines or sum(line_size(s.event) for s in model
                                                if isinstance(s.event, Said)) > max_bytes:
                model.pop(0)
        expected = [s for s in model if s.seq < cut]
        assert history.before(cut, count) == (expected[-count:] if count else [])


class TestOptions:
    """``--history`` and ``--history-bytes`` on the command line."""

    def test_defaults(self) -> None:
        """By default the room keeps 100 lines in at most 65536 bytes."""
        config = parse_config([], environ={})
        assert (config.history, config.history_bytes) == (100, 65536)

    def test_history_zero_turns_it_off_and_bytes_are_taken(self) -> None:
        """``--history 0`` is allowed (history off); ``--history-bytes`` takes a size."""
        config = parse_config(["--history", "0", "--history-bytes", "300"], environ={})
        assert (config.history, config.history_bytes) == (0, 300)

    @pytest.mark.parametrize("argv", [["--history", "-1"], ["--history", "many"],
                                      ["--history", "10001"],
                                      ["--history-bytes", "0"], ["--history-bytes", "-5"]])
    def test_bad_values_are_usage_errors(self, argv: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
        """A negative line count or one over 10,000, or a byte bound under 1, is
        refused at start-up."""
        with pytest.raises(SystemExit) as info:
            parse_config(argv, environ={})
        assert info.value.code == 2
        assert argv[0] in capsys.readouterr().err

"""Reading chatd-bench's JSON results and writing their figures, shared by
the A/B benchmark scripts (``history.py``, ``websocket.py``)."""

from __future__ import annotations

import statistics
from typing import Any


def get(result: dict[str, Any], *path: str) -> Any:
    """``result[path[0]][path[1]]...``, or None where any step is missing."""
    for key in path:
        if not isinstance(result, dict) or result.get(key) is None:
            return None
        result = result[key]
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    """``b / a``, or None without both."""
    return b / a if a and b is not None else None


def num(value: float | None, digits: int = 2) -> str:
    """A figure for a table: thousands without decimals, the rest with ``digits``."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.{digits}f}"


def times(value: float | None) -> str:
    """A ratio for a table: ``0.909x``."""
    return "-" if value is None else f"{value:.3f}x"


def median(values: list[float | None]) -> float | None:
    """The median of the figures there are."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None

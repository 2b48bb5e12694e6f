"""Pure numbers for chatd-bench: latency histograms, percentiles, /proc readers.

Latencies are kept as a histogram, not a list, so that a worker's memory and
the report it pickles to the parent stay bounded however long the run: each
value in microseconds keeps its top ``_BITS`` significant bits (under 0.2 %
error), and a histogram is a ``{bucket_us: count}`` dict that merges by
addition.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

_BITS = 10


def bucket(us: int) -> int:
    """The histogram bucket of a value in microseconds (rounded down)."""
    shift = us.bit_length() - _BITS
    return (us >> shift) << shift if shift > 0 else us


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """One histogram holding the counts of all of them."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            total[key] = total.get(key, 0) + count
    return total


def percentile(histogram: Mapping[int, int], q: float) -> int | None:
    """The value (µs) below or at which a fraction ``q`` of samples fall."""
    n = sum(histogram.values())
    if not n:
        return None
    rank = max(1, int(q * n + 0.999999))
    seen = 0
    for key in sorted(histogram):
        seen += histogram[key]
        if seen >= rank:
            return key
    return max(histogram)


def summarize(histogram: Mapping[int, int], max_us: int | None) -> dict[str, float | int | None]:
    """p50/p90/p99/max in milliseconds and the sample count."""
    def ms(us: int | None) -> float | None:
        return None if us is None else round(us / 1000, 3)

    return {
        "samples": sum(histogram.values()),
        "p50_ms": ms(percentile(histogram, 0.50)),
        "p90_ms": ms(percentile(histogram, 0.90)),
        "p99_ms": ms(percentile(histogram, 0.99)),
        "max_ms": ms(max_us),
    }


def spread(values_ns: list[int]) -> dict[str, float | None]:
    """p50/p99/max in milliseconds of a list of durations in nanoseconds."""
    if not values_ns:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] / 1e6, 3)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] / 1e6, 3)}


# --- the server process, seen through /proc (Linux) ---------------------------


def read_rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process has used, or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        # After the command name: state is field 3, utime 14, stime 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def read_machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """How busy the machine's CPUs were between two readings, all cores = 100."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)

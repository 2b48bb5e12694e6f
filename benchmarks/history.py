"""What protocol 1.1's history costs chatd, measured against chatd itself
(issue 8), in A/B pairs on 127.0.0.1 with a fresh server per run.

    .venv/bin/python benchmarks/history.py            # the full figures (about 5 minutes)
    .venv/bin/python benchmarks/history.py --quick    # a smoke run; its numbers mean nothing

Two measurements, each repeated ``--rounds`` times.  Within a round the two
variants run back to back, and the order flips from one round to the next
(A B, B A, A B, ...), so the machine's noise and drift fall on both alike:

* **storm**: ``--clients`` logins (default 10,000) against ``chatd --history
  100 --no-flood-limit`` after 100 lines were said (``chatd-bench
  --prefill``), without and with ``HISTORY 20`` from every client
  (``--history-request``).  Target: with <= 1.15x the time of without.
* **traffic**: chatd-bench's traffic mode, 1000 clients and 10 senders at
  window 1 (the load of the anchors' scenario B), against ``--history 100``
  and ``--history 0``.  Target: with history >= 0.97x the deliveries/s.

The verdict uses the median of the per-round ratios: a round's two runs
share its conditions, two medians taken apart do not.  Method:
docs/performance.md, "History (protocol 1.1)".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from figures import get as _get  # benchmarks/figures.py
from figures import median as _median
from figures import num as _num
from figures import ratio as _ratio
from figures import times as _x
from run import Scenario, run_bench, start_server  # benchmarks/run.py

STORM_TARGET = 1.15  # with HISTORY / without, at most
TRAFFIC_TARGET = 0.97  # --history 100 / --history 0, at least


@dataclass(frozen=True)
class Variant:
    """One side of an A/B pair: the server's arguments and chatd-bench's."""

    label: str
    chatd_args: tuple[str, ...]
    scenario: Scenario


@dataclass
class Pair:
    """One measurement's two variants and every round's results."""

    key: str
    title: str
    a: Variant  # the reference: the ratio is b / a
    b: Variant
    rounds: list[tuple[dict[str, Any], dict[str, Any]]]


def pairs(args: argparse.Namespace) -> list[Pair]:
    base = ("--no-flood-limit", *args.chatd_arg)
    storm_bench = ("--mode", "login", "--clients", str(args.clients), "--prefill",
                   str(args.prefill), "--login-timeout", str(args.storm_timeout))
    storm_timeout = args.storm_timeout + 120
    kept = ("--history", str(args.history))
    storm = Pair(
        "storm", f"login storm, {args.clients:,} clients, {args.prefill} lines said first, "
                 f"chatd --history {args.history}",
        Variant("no HISTORY", base + kept, Scenario("storm", "without", storm_bench,
                                                     storm_timeout)),
        Variant(f"HISTORY {args.request}", base + kept,
                Scenario("storm", "with", (*storm_bench, "--history-request", str(args.request)),
                         storm_timeout)),
        [])
    traffic_bench = ("--clients", str(args.traffic_clients), "--senders", str(args.senders),
                     "--window", "1", "--check", "probes", "--duration", str(args.duration))
    traffic_timeout = args.duration + 180
    traffic = Pair(
        "traffic", f"traffic, {args.traffic_clients:,} clients, {args.senders} senders, window 1, "
                   f"{args.duration:g} s",
        Variant("--history 0", (*base, "--history", "0"),
                Scenario("traffic", "off", traffic_bench, traffic_timeout)),
        Variant(f"--history {args.history}", base + kept,
                Scenario("traffic", "on", traffic_bench, traffic_timeout)),
        [])
    return [pair for pair in (storm, traffic) if pair.key in args.only]


def measure(variant: Variant) -> dict[str, Any]:
    """One run against a fresh server, stopped (by pid, bounded) whatever happens."""
    server = start_server("chatd", list(variant.chatd_args))
    try:
        return run_bench(server, variant.scenario)
    finally:
        server.stop()


def run_pairs(chosen: list[Pair], rounds: int) -> None:
    for number in range(1, rounds + 1):
        for pair in chosen:
            first, second = (pair.a, pair.b) if number % 2 else (pair.b, pair.a)
            got = {}
            for variant in (first, second):
                print(f"- round {number}: {pair.key}, {variant.label} ...", file=sys.stderr,
                      flush=True)
                got[variant.label] = measure(variant)
            pair.rounds.append((got[pair.a.label], got[pair.b.label]))


# --- figures and the table -----------------------------------------------------


def storm_figures(result: dict[str, Any]) -> dict[str, Any]:
    seconds = _get(result, "login", "storm_s")
    cpu = _get(result, "login", "server_cpu_percent")
    return {"main": seconds, "cpu_s": cpu * seconds / 100 if cpu is not None and seconds else None,
            "hist": _get(result, "login", "history", "hist_lines")}


def traffic_figures(result: dict[str, Any]) -> dict[str, Any]:
    dps = _get(result, "traffic", "deliveries_per_s")
    cpu = _get(result, "traffic", "server_cpu_percent")
    return {"main": dps, "p99": _get(result, "traffic", "latency", "p99_ms"),
            "us": cpu * 1e4 / dps if cpu is not None and dps else None,
            "lost": _get(result, "traffic", "lost")}


def problems(pair: Pair, a: dict[str, Any], b: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """What makes a round's figures untrustworthy, in words."""
    said = []
    for variant, result in ((pair.a, a), (pair.b, b)):
        if "error" in result:
            said.append(f"{variant.label} FAILED: {result['error']}")
        elif result.get("warning"):
            said.append(f"{variant.label}: {result['warning']}")
    if pair.key == "storm" and "error" not in b:
        expected = args.clients * min(args.request, args.prefill, args.history)
        hist = _get(b, "login", "history", "hist_lines")
        if hist != expected:
            said.append(f"{hist} HIST lines, expected {expected:,}")
    if pair.key == "traffic":
        for variant, result in ((pair.a, a), (pair.b, b)):
            lost = _get(result, "traffic", "lost")
            if lost:
                said.append(f"{variant.label}: {lost:,} deliveries lost")
    return said


def table(pair: Pair, args: argparse.Namespace) -> tuple[list[str], float | None]:
    """The markdown rows of one measurement, and its median ratio."""
    storm = pair.key == "storm"
    figures = storm_figures if storm else traffic_figures
    a_name, b_name = pair.a.label, pair.b.label
    if storm:
        head = (f"| round | first | storm s, {a_name} | storm s, {b_name} | ratio | "
                f"server CPU s, {a_name} / {b_name} | HIST lines |")
    else:
        head = (f"| round | first | deliveries/s, {a_name} | deliveries/s, {b_name} | ratio | "
                f"p99 ms, {a_name} / {b_name} | server µs/delivery, {a_name} / {b_name} |")
    out = [f"### {pair.title}", "", head, "|---|---|---:|---:|---:|---:|---:|"]
    columns: dict[str, list[Any]] = {"a": [], "b": [], "ratio": [], "a2": [], "b2": [],
                                     "a3": [], "b3": []}
    notes = []
    for number, (ra, rb) in enumerate(pair.rounds, 1):
        fa, fb = figures(ra), figures(rb)
        ratio = _ratio(fa["main"], fb["main"])
        second = "cpu_s" if storm else "p99"
        row = [fa["main"], fb["main"], ratio, fa[second], fb[second]]
        for key, value in zip(("a", "b", "ratio", "a2", "b2"), row, strict=True):
            columns[key].append(value)
        if storm:
            last = _num(fb["hist"], 0)
        else:
            columns["a3"].append(fa["us"])
            columns["b3"].append(fb["us"])
            last = f"{_num(fa['us'])} / {_num(fb['us'])}"
        first = a_name if number % 2 else b_name
        out.append(f"| {number} | {first} | {_num(fa['main'])} | {_num(fb['main'])} | "
                   f"{_x(ratio)} | {_num(fa[second])} / {_num(fb[second])} | {last} |")
        notes += [f"round {number}: {text}" for text in problems(pair, ra, rb, args)]
    m = {key: _median(values) for key, values in columns.items()}
    last = "" if storm else f"{_num(m['a3'])} / {_num(m['b3'])}"
    out.append(f"| **median** | | {_num(m['a'])} | {_num(m['b'])} | **{_x(m['ratio'])}** | "
               f"{_num(m['a2'])} / {_num(m['b2'])} | {last} |")
    out += [""] + [f"- {note}" for note in notes]
    return out, m["ratio"]


def verdict(pair: Pair, ratio: float | None) -> str:
    if pair.key == "storm":
        target, met = f"<= {STORM_TARGET}x", ratio is not None and ratio <= STORM_TARGET
        what = f"{pair.b.label} / {pair.a.label}, storm time"
    else:
        target, met = f">= {TRAFFIC_TARGET}x", ratio is not None and ratio >= TRAFFIC_TARGET
        what = f"{pair.b.label} / {pair.a.label}, deliveries/s"
    return f"| {what} | {target} | {_x(ratio)} | {'yes' if met else '**no**'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 500-client storms, 200-client traffic for 2 s, "
                             "2 rounds (under a minute); the numbers mean nothing")
    parser.add_argument("--only", action="append", choices=("storm", "traffic"),
                        help="run only this measurement (repeatable; default both)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B pairs per measurement "
                                                               "(default 3)")
    parser.add_argument("--clients", type=int, default=10_000,
                        help="logins per storm (default 10,000)")
    parser.add_argument("--prefill", type=int, default=100,
                        help="lines said before each storm (default 100)")
    parser.add_argument("--request", type=int, default=20,
                        help="what each client asks for: HISTORY N (default 20)")
    parser.add_argument("--history", type=int, default=100,
                        help="chatd --history with history on (default 100)")
    parser.add_argument("--traffic-clients", type=int, default=1000, help="(default 1000)")
    parser.add_argument("--senders", type=int, default=10, help="(default 10)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of sending per traffic run (default 10)")
    parser.add_argument("--storm-timeout", type=float, default=120.0,
                        help="give up a storm after this many seconds (default 120)")
    parser.add_argument("--chatd-arg", action="append", default=[], metavar="ARG",
                        help="extra chatd argument for every run (repeatable; "
                             "use --chatd-arg=--flag)")
    parser.add_argument("--json-out", type=Path, help="write every raw result here")
    args = parser.parse_args()
    if args.quick:
        args.clients = min(args.clients, 500)
        args.traffic_clients = min(args.traffic_clients, 200)
        args.duration = min(args.duration, 2.0)
        args.rounds = min(args.rounds, 2)
    args.only = args.only or ["storm", "traffic"]
    chosen = pairs(args)
    print(f"# chatd's history: with against without, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"{args.rounds} rounds, the first variant alternating", flush=True)
    run_pairs(chosen, args.rounds)
    summary = ["", "| target | wanted | median ratio | met? |", "|---|---|---:|---|"]
    failed = False
    for pair in chosen:
        rows, ratio = table(pair, args)
        print("\n" + "\n".join(rows))
        summary.append(verdict(pair, ratio))
        failed |= any("error" in r for both in pair.rounds for r in both)
    print("\n".join(summary))
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "args": {k: v for k, v in vars(args).items() if k != "json_out"},
            "results": {pair.key: [{pair.a.label: a, pair.b.label: b} for a, b in pair.rounds]
                        for pair in chosen},
        }, indent=1))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

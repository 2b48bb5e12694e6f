"""Compare chatd's reactors (Twisted's default epoll, asyncio, asyncio on
uvloop) in one run, interleaved round by round so a noisy shared machine
slows all of them alike.

    .venv/bin/python benchmarks/reactors.py [--rounds 3] [--duration 6]

Prints the median per reactor of deliveries/s and p99 latency (1000 clients,
10 senders, window 1) and of the 1000-client login storm.  Method and the
figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics

from run import Scenario, run_bench, start_server  # benchmarks/run.py

REACTORS = ("default", "asyncio", "uvloop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    args = parser.parse_args()
    traffic = Scenario("traffic-1000", "traffic", (
        "--clients", "1000", "--senders", "10", "--window", "1", "--check", "probes",
        "--duration", str(args.duration)), args.duration + 180)
    storm = Scenario("login-1000", "storm", ("--mode", "login", "--clients", "1000"), 180)
    results: dict[str, dict[str, list[float]]] = {r: {"dps": [], "p99": [], "storm": []}
                                                   for r in REACTORS}
    for round_number in range(1, args.rounds + 1):
        for reactor in REACTORS:
            for scenario in (traffic, storm):
                server = start_server("chatd", ["--no-flood-limit", "--reactor", reactor])
                try:
                    result = run_bench(server, scenario)
                finally:
                    server.stop()
                if "error" in result:
                    raise SystemExit(f"{reactor} {scenario.key}: {result['error']}")
                if scenario is traffic:
                    results[reactor]["dps"].append(result["traffic"]["deliveries_per_s"])
                    results[reactor]["p99"].append(result["traffic"]["latency"]["p99_ms"])
                else:
                    results[reactor]["storm"].append(result["login"]["storm_s"])
            print(f"round {round_number}: {reactor} done", flush=True)
    print(f"\n| reactor | deliveries/s (median of {args.rounds}) | p99 ms | "
          "1000-client login storm s |")
    print("|---|---:|---:|---:|")
    for reactor in REACTORS:
        r = results[reactor]
        print(f"| {reactor} | {statistics.median(r['dps']):,.0f} | "
              f"{statistics.median(r['p99']):.1f} | {statistics.median(r['storm']):.2f} |")
    print("\nall runs:", results)


if __name__ == "__main__":
    main()

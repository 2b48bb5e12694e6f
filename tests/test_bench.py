"""chatd-bench run for real, briefly, against chatd and the naive baseline.

These check counts, order and exit codes only: never timings, which on a
shared 2-core machine mean nothing in a test.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatd.bench import stats
from chatd.bench.client import MIN_PAYLOAD, say_line
from tests.support import ROOT, RunningServer

pytestmark = pytest.mark.e2e


def bench_command() -> list[str]:
    """The installed ``chatd-bench`` next to this Python, else ``-m chatd.bench``."""
    script = Path(sys.executable).with_name("chatd-bench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chatd.bench"]


def run_bench(port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bench_command() + ["--port", str(port), "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


TRAFFIC = ("--clients", "20", "--senders", "3", "--window", "2", "--duration", "1",
           "--workers", "2", "--json")


def check_traffic(result: dict) -> None:
    traffic = result["traffic"]
    assert traffic["sent"] > 0
    assert traffic["expected"] == traffic["sent"] * 20
    assert traffic["received"] == traffic["expected"]
    assert traffic["lost"] == 0
    assert traffic["reordered"] == 0
    assert result["login"]["heard_all"] == 20


@pytest.fixture
def naive_port() -> Iterator[int]:
    """The baseline server of benchmarks/naive_chat.py on an ephemeral port."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "naive_chat.py"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    try:
        assert match, line
        yield int(match.group(1))
    finally:
        process.kill()
        process.wait(10)


def test_traffic_against_chatd(chatd_server: RunningServer) -> None:
    """Against chatd every line sent reaches all 20 clients, in order."""
    done = run_bench(chatd_server.port, *TRAFFIC,
                     "--server-pid", str(chatd_server.process.pid))
    assert done.returncode == 0, done.stderr
    check_traffic(json.loads(done.stdout))


def test_traffic_against_naive_baseline(naive_port: int) -> None:
    """Against the naive baseline every line sent reaches all 20 clients, in order."""
    done = run_bench(naive_port, *TRAFFIC)
    assert done.returncode == 0, done.stderr
    check_traffic(json.loads(done.stdout))


def test_login_storm_counts_every_client(chatd_server: RunningServer) -> None:
    """A login storm ends when each of the N clients has heard of all N."""
    done = run_bench(chatd_server.port, "--mode", "login", "--clients", "50", "--json")
    assert done.returncode == 0, done.stderr
    login = json.loads(done.stdout)["login"]
    assert login["complete"] and login["heard_all"] == 50
    assert login["joins_heard_after_who"] == 50 * 49 // 2


def test_refused_connection_is_one_line_and_exit_1() -> None:
    """A port nobody listens on gives one error line and exit status 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        done = run_bench(port, "--clients", "2", "--senders", "1")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"chatd-bench: cannot connect to 127.0.0.1:{port}: connection refused"]


def test_say_line_has_the_payload_size() -> None:
    """A SAY line's text is exactly --payload-size bytes and starts with id and sequence."""
    line = say_line(7, 42, 123456789, MIN_PAYLOAD)
    assert line.startswith(b"SAY 00007000000042 123456789 x")
    assert len(line) == len(b"SAY ") + MIN_PAYLOAD + 1


def test_percentiles_of_a_histogram() -> None:
    """Percentiles come from bucketed microseconds with under 0.2 % error."""
    histogram = stats.merge([{stats.bucket(us): 1} for us in range(1, 1001)] + [{5000: 10}])
    assert stats.percentile(histogram, 0.5) == 505
    assert stats.percentile(histogram, 1.0) == 5000
    assert stats.bucket(1_000_000) <= 1_000_000 < stats.bucket(1_000_000) * 1.002


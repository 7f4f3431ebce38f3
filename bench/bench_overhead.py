"""Grading overhead against the machine's floor, side by side in one run (prints tables).

1. Trivial Python tests per second: one submission of N tests, and 2 submissions in flight,
   through the real gRPC server (unix socket), per comparison mode, next to the floor: an
   unsandboxed warm interpreter that forks per test, feeds stdin, reads stdout
   (bench/floor_runner.py; with LiveCodeBench's header in the namespace for the lcb rows).
2. Latency of sequential one-test requests (gRPC Grade, gRPC Execute, HTTP /run_code), with
   ready jails and without, back to back and spaced (the pool refilled between requests), next
   to a bare `python3 -S -c pass` start.

The reward of a whole GRPO step against its floor is bench/bench_reward.py's `floor` row.

Usage: .venv/bin/python bench/bench_overhead.py [--tests 500] [--requests 200]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import ServerThread  # noqa: E402
from sandbox.client import SandboxClient  # noqa: E402
from sandbox.service import SandboxCore  # noqa: E402
from sandbox.v1 import sandbox_pb2 as pb  # noqa: E402
from workers.judge import Judge  # noqa: E402

BARE_PYTHON = "/usr/bin/python3"  # the interpreter the jails run (not a pyenv shim)
SOURCE = "a, b = map(int, input().split())\nprint(a + b)\n"
# Requests this far apart leave the ready jails time to refill (a jail is ~40 ms of CPU here).
SPACED_S = 0.15
MODES = (("lcb (default)", pb.Comparison.LCB, True), ("lcb-process", pb.Comparison.LCB_PROCESS, True),
         ("tokens", pb.Comparison.TOKENS, False))


def tests(count: int) -> pb.TestSet:
    return pb.TestSet(tests=[pb.TestCase(input=f"{i} {i * 7}\n".encode(), output=f"{i * 8}\n".encode())
                             for i in range(count)])


def grade_request(mode: int, test_set: pb.TestSet) -> pb.GradeRequest:
    return pb.GradeRequest(language="python", source=SOURCE, test_set=test_set,
                           comparison=pb.Comparison(mode=mode),
                           limits=pb.Limits(time_limit_s=2, memory_limit_mb=256))


def start_server(tmp: str, name: str, ready_jails: int, http: bool = False) -> ServerThread:
    kwargs = {"http_address": "127.0.0.1:0"} if http else {}
    return ServerThread(f"unix:{tmp}/{name}.sock", core=SandboxCore(Judge()), capacity=2,
                        ready_jails=ready_jails, **kwargs)


def wait_ready_jails(client: SandboxClient, count: int) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if sum(r.ready for r in client.info().ready_jails if r.language == "python") >= count:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------- table 1

def tests_per_second(client: SandboxClient, request: pb.GradeRequest, in_flight: int,
                     rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        errors: list[str] = []

        def one() -> None:
            response = client.grade(request)
            if response.verdict != pb.AC:
                errors.append(response.message)
        threads = [threading.Thread(target=one) for _ in range(in_flight)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise SystemExit(f"bench: a grading failed: {errors[0]}")
        rates.append(in_flight * len(request.test_set.tests) / elapsed)
    return statistics.median(rates)


def floor_per_second(count: int, in_flight: int, header: bool) -> float:
    """The floor's tests/s with `in_flight` warm interpreters forking at once (the jails'
    interpreter, /usr/bin/python3)."""
    script = ("import sys; sys.path.insert(0, %r); from floor_runner import bare_fork_ms_per_test; "
              "print(bare_fork_ms_per_test(%d, %r, lambda i: f'{i} {i * 7}\\n'.encode(), %r))"
              % (str(Path(__file__).resolve().parent), count, SOURCE, header))
    procs = [subprocess.Popen([BARE_PYTHON, "-c", script], stdout=subprocess.PIPE, text=True)
             for _ in range(in_flight)]
    # Each process times its own loop (interpreter start-up excluded); they run at once.
    return sum(1000 / float(proc.communicate()[0].strip()) for proc in procs)


def table_throughput(count: int, rounds: int) -> None:
    print(f"\n1. Trivial Python tests per second ({count} tests per submission, median of {rounds}; "
          "gRPC over a unix socket, capacity 2)\n")
    print("| mode | in flight | sandbox tests/s | floor tests/s | ms/test sandbox | ms/test floor | sandbox / floor cost |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        server = start_server(tmp, "throughput", ready_jails=2)
        try:
            with SandboxClient(server.address, timeout=600) as client:
                for name, mode, header in MODES:
                    request = grade_request(mode, tests(count))
                    client.grade(request)  # warm-up: the test set is stored
                    for in_flight in (1, 2):
                        ours = tests_per_second(client, request, in_flight, rounds)
                        floor = floor_per_second(count, in_flight, header)
                        print(f"| {name} | {in_flight} | {ours:.0f} | {floor:.0f} | "
                              f"{1000 * in_flight / ours:.2f} | {1000 * in_flight / floor:.2f} | "
                              f"{floor / ours:.2f}x |", flush=True)
        finally:
            server.stop()


# ---------------------------------------------------------------- table 2

def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def bare_python_start_ms(count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run([BARE_PYTHON, "-S", "-c", "pass"], check=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def latencies(call, count: int, gap_s: float = 0.0) -> list[float]:
    times = []
    for _ in range(count):
        time.sleep(gap_s)
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def table_latency(count: int) -> None:
    print(f"\n2. One-test requests, {count} sequential (ms; server not saturated, capacity 2)\n")
    print("| path | ready jails | requests | median ms | p95 ms | median / python3 -S start |")
    print("|---|---|---|---|---|---|")
    bare = bare_python_start_ms(count)
    bare_median, bare_p95 = percentiles(bare)
    one = tests(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        for ready in (2, 0):
            server = start_server(tmp, f"latency{ready}", ready_jails=ready, http=True)
            try:
                url = f"http://127.0.0.1:{server.server.http_port}/run_code"
                body = json.dumps({"code": "print(int(input()) * 2)", "stdin": "21\n",
                                   "language": "python", "run_timeout": 2}).encode()

                def http_call() -> None:
                    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=60) as reply:
                        if json.load(reply)["status"] != "Success":
                            raise SystemExit("bench: /run_code failed")
                with SandboxClient(server.address, timeout=60) as client:
                    grade = grade_request(pb.Comparison.LCB, one)
                    execute = pb.ExecuteRequest(language="python", source="print(int(input()) * 2)",
                                                stdin=b"21\n", limits=pb.Limits(time_limit_s=2))
                    client.grade(grade)
                    for name, call in (("gRPC Grade (lcb)", lambda: client.grade(grade)),
                                       ("gRPC Execute", lambda: client.execute(execute)),
                                       ("HTTP /run_code", http_call)):
                        for gap in ((0.0, SPACED_S) if ready else (0.0,)):
                            if ready:
                                wait_ready_jails(client, ready)
                            median, p95 = percentiles(latencies(call, count, gap))
                            rows.append((name, ready, gap, median, p95))
            finally:
                server.stop()
    for name, ready, gap, median, p95 in sorted(rows, key=lambda r: (r[0], -r[1], -r[2])):
        pace = f"{gap * 1000:.0f} ms apart" if gap else "back to back"
        print(f"| {name} | {ready} | {pace} | {median:.1f} | {p95:.1f} | {median / bare_median:.2f}x |")
    print(f"| python3 -S -c pass (bare start) | - | back to back | {bare_median:.1f} | {bare_p95:.1f} | 1.00x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=500, help="tests per submission (table 1)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions in table 1 (median shown)")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per path (table 2)")
    parser.add_argument("--latency-only", action="store_true", help="table 2 only")
    args = parser.parse_args()
    if args.tests < 1 or args.rounds < 1 or args.requests < 1:
        parser.error("--tests, --rounds and --requests must be at least 1")
    if not args.latency_only:
        table_throughput(args.tests, args.rounds)
    table_latency(args.requests)
    print("\nOne machine, one run: compare rows with each other, not with other machines.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

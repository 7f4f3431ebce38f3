"""Per-test cost of grading, side by side in one run (not a test: prints a table).

Rows:
  python / grpc      trivial stdin tests through the full gRPC path (unix socket)
  python / embedded  the same through the in-process engine (no gRPC)
  python / cold      the engine with the warm-fork fast path off (fresh interpreter per test)
  python / bare      an unisolated `python3 main.py` subprocess per test (the baseline)
  cpp / ...          the same for C++ after one compile; plus compile time with and without PCH

Usage: .venv/bin/python bench/bench_foundation.py [--tests 200] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import ServerThread  # noqa: E402
from sandbox.client import SandboxClient  # noqa: E402
from sandbox.service import SandboxCore  # noqa: E402
from sandbox.v1 import sandbox_pb2 as pb  # noqa: E402
from workers.judge import Judge  # noqa: E402
from workers.languages import available_languages  # noqa: E402
from workers.languages.cpp import CXX_FLAGS  # noqa: E402

PY_SOURCE = "a, b = map(int, input().split())\nprint(a + b)\n"
CPP_SOURCE = ("#include <bits/stdc++.h>\nint main(){long long a,b;std::cin>>a>>b;"
              "std::cout<<a+b<<\"\\n\";}\n")


def make_tests(count: int) -> pb.TestSet:
    return pb.TestSet(tests=[pb.TestCase(input=f"{i} {i * 7}\n".encode(),
                                         output=f"{i * 8}\n".encode()) for i in range(count)])


def request(language: str, source: str, tests: pb.TestSet) -> pb.GradeRequest:
    return pb.GradeRequest(language=language, source=source, test_set=tests,
                           limits=pb.Limits(time_limit_s=2, memory_limit_mb=256))


def time_grading(grade, req: pb.GradeRequest, rounds: int) -> tuple[float, float]:
    """(median seconds per submission end to end, median run-phase seconds per test)."""
    totals, per_test = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        response = grade(req)
        totals.append(time.perf_counter() - start)
        assert response.verdict == pb.AC, pb.Verdict.Name(response.verdict) + response.message
        per_test.append(response.timings.run_s / len(req.test_set.tests))
    return statistics.median(totals), statistics.median(per_test)


def time_bare(argv: list[str], tests: pb.TestSet, rounds: int, cwd: str) -> float:
    """Median seconds per submission running an unisolated subprocess per test."""
    totals = []
    for _ in range(rounds):
        start = time.perf_counter()
        for test in tests.tests:
            out = subprocess.run(argv, input=test.input, capture_output=True, cwd=cwd)
            assert out.stdout.strip() == test.output.strip()
        totals.append(time.perf_counter() - start)
    return statistics.median(totals)


def time_compile(argv: list[str], cwd: str, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=200, help="tests per submission")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions (median is shown)")
    args = parser.parse_args()
    n = args.tests
    tests = make_tests(n)
    languages = available_languages()
    judge, cold = Judge(), Judge(python_fast_path=False)
    judge.warm_up()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerThread(f"unix:{tmp}/bench.sock", core=SandboxCore(judge))
        client = SandboxClient(server.address)
        client.wait_ready(10)
        embedded = SandboxCore(judge)
        cold_core = SandboxCore(cold)
        try:
            Path(tmp, "main.py").write_text(PY_SOURCE)
            Path(tmp, "main.cpp").write_text(CPP_SOURCE)
            python = languages["python"].agent_interpreter
            py_req = request("python", PY_SOURCE, tests)
            bare_py = time_bare([python, "main.py"], tests, args.rounds, tmp)
            for label, grade in (("grpc", client.grade), ("embedded", embedded.grade),
                                 ("cold", cold_core.grade)):
                total, per = time_grading(grade, py_req, args.rounds)
                rows.append(("python", label, total, n / total, total / n * 1e3, per * 1e3))
            rows.append(("python", "bare subprocess", bare_py, n / bare_py, bare_py / n * 1e3,
                         bare_py / n * 1e3))

            cpp = languages["cpp"]
            pch = judge.pch_dir(cpp)
            with_pch = time_compile([cpp.compile_argv[0], *CXX_FLAGS, f"-I{pch}", "main.cpp",
                                     "-o", "main"], tmp, args.rounds)
            without_pch = time_compile([cpp.compile_argv[0], *CXX_FLAGS, "main.cpp", "-o",
                                        "main"], tmp, args.rounds)
            cpp_req = request("cpp", CPP_SOURCE, tests)
            bare_cpp = time_bare(["./main"], tests, args.rounds, tmp)
            for label, grade in (("grpc", client.grade), ("embedded", embedded.grade)):
                total, per = time_grading(grade, cpp_req, args.rounds)
                rows.append(("cpp", label, total, n / total, total / n * 1e3, per * 1e3))
            rows.append(("cpp", "bare subprocess", bare_cpp, n / bare_cpp, bare_cpp / n * 1e3,
                         bare_cpp / n * 1e3))
        finally:
            client.close()
            server.stop()

    print(f"\n{n} trivial tests per submission, median of {args.rounds} rounds "
          f"(one machine, one run: compare rows, not absolute numbers)\n")
    print("| language | path | s / submission | tests / s | ms / test (end to end) "
          "| ms / test (run phase) |")
    print("|---|---|---|---|---|---|")
    for language, label, total, rate, per_e2e, per_run in rows:
        print(f"| {language} | {label} | {total:.3f} | {rate:.0f} | {per_e2e:.2f} | {per_run:.2f} |")
    grpc_py = next(r for r in rows if r[:2] == ("python", "grpc"))
    print(f"\npython: gRPC path is {bare_py / grpc_py[2]:.1f}x the throughput of a bare "
          f"python3 subprocess per test")
    print(f"cpp: compile with precompiled header {with_pch:.2f} s vs {without_pch:.2f} s without "
          f"({without_pch / with_pch:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

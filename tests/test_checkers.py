"""Special judges (checkers) written for these tests, in Python and in C++ (without testlib).

A checker is called as `checker input.txt output.txt answer.txt` and answers with its exit
code (testlib's convention): 0 accepted, 1 wrong answer, 2 presentation error, 7 partial
points (`points X` in its comment); anything else, a crash or a timeout is a sandbox error
(SE), never a wrong answer.
"""
from __future__ import annotations

import pytest

from sandbox.problem import Problem
from sandbox.v1 import sandbox_pb2 as pb
from workers.special_judges import BinaryCache, helper_digest

# "Print any divisor d of n with 1 < d < n" (n is composite): many answers are right.
DIVISOR_TESTS = [{"input": "12\n", "output": "2\n"}, {"input": "35\n", "output": "5\n"},
                 {"input": "49\n", "output": "7\n"}, {"input": "999985999949\n",
                                                      "output": "999983\n"}]
SMALLEST_DIVISOR = """
n = int(input())
d = 2
while n % d:
    d += 1
print(d)
"""
LARGEST_DIVISOR = """
n = int(input())
d = 2
while n % d:
    d += 1
print(n // d)
"""
NOT_A_DIVISOR = "n = int(input())\nprint(n - 1)\n"
TWO_NUMBERS = "n = int(input())\nd = 2\nwhile n % d:\n    d += 1\nprint(d, d)\n"

PY_CHECKER = r"""
import sys
n = int(open(sys.argv[1]).read())
tokens = open(sys.argv[2]).read().split()
if len(tokens) != 1 or not tokens[0].lstrip("-").isdigit():
    print(f"expected one integer, got {len(tokens)} tokens")
    sys.exit(2)
d = int(tokens[0])
if 1 < d < n and n % d == 0:
    print(f"ok {d} divides {n}")
    sys.exit(0)
print(f"{d} is not a proper divisor of {n}")
sys.exit(1)
"""

CPP_CHECKER = r"""
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>
int main(int argc, char** argv) {
    if (argc < 4) return 3;
    std::ifstream in(argv[1]), out(argv[2]);
    long long n; in >> n;
    std::vector<std::string> tokens; std::string t;
    while (out >> t) tokens.push_back(t);
    if (tokens.size() != 1) { std::printf("expected one integer\n"); return 2; }
    long long d;
    try { size_t used; d = std::stoll(tokens[0], &used); if (used != tokens[0].size()) return 2; }
    catch (...) { return 2; }
    if (1 < d && d < n && n % d == 0) { std::printf("ok\n"); return 0; }
    std::printf("%lld is not a proper divisor\n", d);
    return 1;
}
"""

# Half the points when the output has the right count of tokens but they are wrong.
PARTIAL_CHECKER = r"""
import sys
out = open(sys.argv[2]).read().split()
ans = open(sys.argv[3]).read().split()
if out == ans:
    sys.exit(0)
if len(out) == len(ans):
    print("points 0.5")
    sys.exit(7)
sys.exit(1)
"""


def divisor_problem(checker: dict | None, compare: str = "tokens") -> Problem:
    return Problem(id="any-divisor", tests=DIVISOR_TESTS, time_limit_s=2, memory_limit_mb=256,
                   compare=compare, checker=checker)


def grade(judge, problem: Problem, source: str, language: str = "python",
          all_tests: bool = False) -> pb.GradeResponse:
    request = problem.grade_request(source, language, stop_on_first_failure=not all_tests)
    return judge.grade(request, request.test_set)


@pytest.mark.parametrize("checker_language, checker_source",
                         [("python", PY_CHECKER), ("cpp", CPP_CHECKER)])
def test_checker_verdicts(judge, checker_language, checker_source):
    problem = divisor_problem({"language": checker_language, "source": checker_source})
    accepted = grade(judge, problem, LARGEST_DIVISOR)
    assert accepted.verdict == pb.AC, accepted
    assert accepted.passed == 4
    wrong = grade(judge, problem, NOT_A_DIVISOR)
    assert wrong.verdict == pb.WA, wrong
    assert wrong.tests[0].verdict == pb.WA
    assert [t.verdict for t in wrong.tests[1:]] == [pb.SKIPPED] * 3
    presentation = grade(judge, problem, TWO_NUMBERS)
    assert presentation.verdict == pb.PE, presentation


def test_many_valid_answers_need_the_checker(judge):
    """The largest proper divisor is a right answer that differs from the answer file."""
    without = grade(judge, divisor_problem(None, "tokens"), LARGEST_DIVISOR)
    assert without.verdict == pb.WA
    with_checker = grade(judge, divisor_problem({"language": "python", "source": PY_CHECKER}),
                         LARGEST_DIVISOR)
    assert with_checker.verdict == pb.AC
    # The answer file's own answer is accepted either way.
    assert grade(judge, divisor_problem(None, "tokens"), SMALLEST_DIVISOR).verdict == pb.AC


def test_partial_points(judge):
    problem = Problem(id="partial", tests=[{"input": "3\n", "output": "1 2 3\n"},
                                           {"input": "2\n", "output": "1 2\n"}],
                      time_limit_s=2, checker={"language": "python", "source": PARTIAL_CHECKER})
    # Right count, wrong values on the first test; right on the second.
    source = "n = int(input())\nprint(*([0] * n) if n == 3 else range(1, n + 1))\n"
    response = grade(judge, problem, source, all_tests=True)
    # testlib exit 7 is the submission's partial result (WA with its points), never SE: an SE
    # would stop an RL step
    assert response.verdict == pb.WA
    assert response.tests[0].verdict == pb.WA
    assert response.tests[0].points == pytest.approx(0.5)
    assert "points 0.5" in response.tests[0].message
    assert response.tests[1].verdict == pb.AC and response.tests[1].points == 0
    assert response.passed == 1


@pytest.mark.parametrize("language, source", [
    ("python", "import sys\nsys.exit(3)\n"),                         # testlib "fail"
    ("python", "import os\nos.abort()\n"),                           # killed by a signal
    ("cpp", "#include <cstdlib>\nint main() { std::abort(); }\n"),   # C++ crash
    ("python", "import sys\nsys.exit(42)\n"),                        # an unknown exit code
])
def test_crashing_checker_is_a_sandbox_error(judge, language, source):
    response = grade(judge, divisor_problem({"language": language, "source": source}),
                     LARGEST_DIVISOR)
    assert response.verdict == pb.SE, response
    assert response.tests[0].verdict == pb.SE
    assert "checker" in response.tests[0].message


def test_checker_that_does_not_compile_is_a_sandbox_error(judge):
    response = grade(judge, divisor_problem({"language": "cpp", "source": "int main( {"}),
                     LARGEST_DIVISOR)
    assert response.verdict == pb.SE, response
    assert "compile" in response.message


def test_checker_timeout_is_a_sandbox_error(judge):
    problem = divisor_problem({"language": "python", "source": "while True:\n    pass\n"})
    problem.tests = DIVISOR_TESTS[:1]
    response = grade(judge, problem, LARGEST_DIVISOR)
    assert response.verdict == pb.SE, response
    assert "checker failed" in response.tests[0].message


def test_cpp_checker_is_compiled_once_and_cached(judge):
    # A checker source no other test uses, so the cache starts without it.
    source = CPP_CHECKER.replace("return 1;\n}", "return 1; /* cache test */\n}")
    problem = divisor_problem({"language": "cpp", "source": source})
    key = helper_digest(problem.comparison().checker)
    assert judge.helper_binaries.get(key) is None
    assert grade(judge, problem, LARGEST_DIVISOR).verdict == pb.AC
    binary = judge.helper_binaries.get(key)
    assert binary is not None and binary.startswith(b"\x7fELF")
    assert grade(judge, problem, NOT_A_DIVISOR).verdict == pb.WA
    assert judge.helper_binaries.get(key) == binary


def test_checker_through_grpc(client):
    problem = divisor_problem({"language": "cpp", "source": CPP_CHECKER})
    assert client.grade(problem.grade_request(LARGEST_DIVISOR, "python")).verdict == pb.AC
    assert client.grade(problem.grade_request(NOT_A_DIVISOR, "python")).verdict == pb.WA


def test_binary_cache_is_bounded_in_bytes_too():
    """256 entries of checkers the client wrote: a 200 MB static array is one line of C++, so
    the entry cap alone let 4 such checkers hold 800 MiB."""
    cache = BinaryCache(entries=256, max_bytes=3 << 20)
    assert BinaryCache.DEFAULT_MAX_BYTES == 256 << 20
    for i in range(4):
        cache.put(f"k{i}", bytes([i]) * (1 << 20))
    assert cache.total_bytes <= 3 << 20 and len(cache) == 3
    assert cache.get("k0") is None and cache.get("k3") is not None  # least recently used goes
    cache.put("huge", b"x" * (4 << 20))  # bigger than the cache: used, never kept
    assert cache.get("huge") is None and len(cache) == 3
    cache.put("k3", b"y" * 10)  # a key put again is counted once
    assert cache.total_bytes == 2 * (1 << 20) + 10


def test_checker_limits_grow_with_what_it_reads():
    from workers.special_judges import HELPER_LIMITS, checker_limits
    assert checker_limits(0) == HELPER_LIMITS
    grown = checker_limits(60 << 20)
    assert grown.memory_mb == HELPER_LIMITS.memory_mb + 32 * 60
    assert grown.time_limit_s == HELPER_LIMITS.time_limit_s + 30
    assert checker_limits(10 << 30).memory_mb == 8192 and checker_limits(10 << 30).time_limit_s == 60


# Needs memory in proportion to the contestant's output: 30 bytes per byte it reads.
PROPORTIONAL_CHECKER = r"""
import sys
output = open(sys.argv[2], "rb").read()
scratch = bytearray(30 * len(output))
sys.exit(0 if output == open(sys.argv[3], "rb").read() else 1)
"""


def test_a_checker_given_a_big_output_is_not_a_sandbox_error(judge):
    """40 MiB of output: a checker that needs 1.2 GB for it gets a budget that grows with it."""
    size = 40 << 20
    problem = Problem(id="big-output", tests=[{"input": "", "output": "x" * size}],
                      time_limit_s=5, memory_limit_mb=256,
                      checker={"language": "python", "source": PROPORTIONAL_CHECKER})
    response = grade(judge, problem, f"import sys\nsys.stdout.write('x' * {size})\n")
    assert response.verdict == pb.AC, response.message

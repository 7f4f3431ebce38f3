"""Interactive problems: a guess-the-number interactor written for these tests.

The interactor runs in a jail of its own as `interactor input.txt output.txt`, its stdin and
stdout piped to the program's stdout and stdin. It reads `n secret k` from input.txt, tells
the program `n k`, then answers each query `? x` with "<" (the secret is smaller), ">" or
"=". It exits 0 once the secret is found within k queries, and 1 on anything else (too many
queries, a malformed query, the program leaving early).
"""
from __future__ import annotations

import pytest

from sandbox.problem import Problem
from sandbox.v1 import sandbox_pb2 as pb

INTERACTOR = r"""
import sys
n, secret, k = map(int, open(sys.argv[1]).read().split())
print(n, k, flush=True)
for query in range(k + 1):
    line = sys.stdin.readline()
    if not line:
        print(f"the program stopped after {query} queries", file=sys.stderr)
        sys.exit(1)
    parts = line.split()
    if len(parts) != 2 or parts[0] != "?" or not parts[1].lstrip("-").isdigit():
        print(f"malformed query {line.strip()!r}", file=sys.stderr)
        sys.exit(1)
    if query == k:
        print(f"more than {k} queries", file=sys.stderr)
        sys.exit(1)
    x = int(parts[1])
    if x == secret:
        print("=", flush=True)
        sys.exit(0)
    print("<" if secret < x else ">", flush=True)
"""

BINARY_SEARCH = """
n, k = map(int, input().split())
low, high = 1, n
while True:
    middle = (low + high) // 2
    print("?", middle, flush=True)
    answer = input().strip()
    if answer == "=":
        break
    if answer == "<":
        high = middle - 1
    else:
        low = middle + 1
"""

BINARY_SEARCH_CPP = r"""
#include <iostream>
#include <string>
int main() {
    long long n, k; std::cin >> n >> k;
    long long low = 1, high = n;
    while (true) {
        long long middle = (low + high) / 2;
        std::cout << "? " << middle << std::endl;   // endl flushes
        std::string answer; std::cin >> answer;
        if (answer == "=") break;
        if (answer == "<") high = middle - 1; else low = middle + 1;
    }
}
"""

# Reads "<" as "go up": never converges, so it runs out of queries on most secrets; on
# the first test it guesses the middle right away, so the others must fail.
WRONG_DIRECTION = BINARY_SEARCH.replace('answer == "<"', 'answer == ">"')
# One query, then leaves without finding the secret.
GIVES_UP = 'n, k = map(int, input().split())\nprint("?", 1, flush=True)\ninput()\n'
LINEAR_SCAN = """
n, k = map(int, input().split())
for x in range(1, n + 1):
    print("?", x, flush=True)
    if input().strip() == "=":
        break
"""
# Waits for a second line that never comes (the interactor waits for a query): deadlock.
HANGS = "n, k = map(int, input().split())\nextra = input()\nprint('?', 1, flush=True)\n"

TIME_LIMIT_S = 1.0
WALL_CAP_S = 2 * TIME_LIMIT_S + 1   # the documented default wall-clock cap


def guess_problem() -> Problem:
    # n = 1000 needs at most 10 binary-search queries; k = 10.
    tests = [{"input": f"1000 {secret} 10\n", "output": ""} for secret in (500, 1, 1000, 437)]
    return Problem(id="guess-number", tests=tests, time_limit_s=TIME_LIMIT_S, memory_limit_mb=256,
                   compare="tokens", interactor={"language": "python", "source": INTERACTOR})


def grade(judge, source: str, language: str = "python", all_tests: bool = True):
    request = guess_problem().grade_request(source, language, stop_on_first_failure=not all_tests)
    return judge.grade(request, request.test_set)


@pytest.mark.parametrize("language, source", [("python", BINARY_SEARCH), ("cpp", BINARY_SEARCH_CPP)])
def test_binary_search_is_accepted(judge, language, source):
    response = grade(judge, source, language)
    assert response.verdict == pb.AC, response
    assert response.passed == 4


def test_wrong_direction_is_wrong_answer(judge):
    response = grade(judge, WRONG_DIRECTION)
    assert response.verdict == pb.WA, response
    assert response.tests[0].verdict == pb.AC          # secret 500 is the first guess
    assert {t.verdict for t in response.tests[1:]} == {pb.WA}


def test_leaving_early_is_wrong_answer(judge):
    response = grade(judge, GIVES_UP)
    assert response.verdict == pb.WA, response
    assert response.tests[1].verdict == pb.AC          # secret 1 is found by "? 1"
    assert response.tests[0].verdict == pb.WA and "stopped after 1" in response.tests[0].message


def test_too_many_queries_is_wrong_answer(judge):
    response = grade(judge, LINEAR_SCAN)
    assert response.tests[1].verdict == pb.AC          # secret 1: one query
    assert response.tests[0].verdict == pb.WA, response
    assert "more than 10 queries" in response.tests[0].message
    assert response.verdict == pb.WA


def test_hanging_program_is_tle_within_the_wall_cap(judge):
    response = grade(judge, HANGS, all_tests=False)
    assert response.verdict == pb.TLE, response
    first = response.tests[0]
    assert first.verdict == pb.TLE
    # Killed at the wall-clock cap (it uses no CPU), not after the interactor's own limits.
    assert first.usage.wall_time_s <= WALL_CAP_S + 2.0
    assert first.usage.cpu_time_s < TIME_LIMIT_S


def test_interactive_through_grpc(client):
    problem = guess_problem()
    accepted = client.grade(problem.grade_request(BINARY_SEARCH_CPP, "cpp"))
    assert accepted.verdict == pb.AC, accepted
    wrong = client.grade(problem.grade_request(LINEAR_SCAN, "python"))
    assert wrong.verdict == pb.WA, wrong
    hangs = client.grade(problem.grade_request(HANGS, "python"))
    assert hangs.verdict == pb.TLE, hangs
    assert hangs.tests[0].usage.wall_time_s <= WALL_CAP_S + 2.0


# Closes its input, then sends a query: the interactor's answer meets a closed pipe.
CLOSES_STDIN_PY = ("import os, sys\nn, k = map(int, input().split())\nos.close(0)\n"
                   "print('?', 1, flush=True)\nimport time\ntime.sleep(0.5)\n")
CLOSES_STDIN_CPP = r"""
#include <cstdio>
#include <unistd.h>
int main() { long long n, k; if (scanf("%lld %lld", &n, &k) != 2) return 1; close(0);
  printf("? 2\n"); fflush(stdout); usleep(500000); }
"""
# The same interactor in C++: SIGPIPE kills it when it writes to the closed pipe.
INTERACTOR_CPP = r"""
#include <cstdio>
int main(int argc, char **argv) {
  long long n, secret, k; FILE *in = fopen(argv[1], "r");
  if (fscanf(in, "%lld %lld %lld", &n, &secret, &k) != 3) return 3;
  printf("%lld %lld\n", n, k); fflush(stdout);
  char q[8]; long long x;
  while (scanf("%7s %lld", q, &x) == 2) {
    if (x == secret) { printf("=\n"); fflush(stdout); return 0; }
    for (int i = 0; i < 100000; i++) printf(x > secret ? "<\n" : ">\n");
    fflush(stdout);
  }
  return 1;
}
"""


@pytest.mark.parametrize("interactor_language, interactor", [("python", INTERACTOR),
                                                             ("cpp", INTERACTOR_CPP)])
@pytest.mark.parametrize("language, source", [("python", CLOSES_STDIN_PY), ("cpp", CLOSES_STDIN_CPP)])
def test_a_program_that_closes_its_input_is_wrong_answer_not_sandbox_error(
        judge, interactor_language, interactor, language, source):
    problem = guess_problem()
    problem.interactor = {"language": interactor_language, "source": interactor}
    request = problem.grade_request(source, language, stop_on_first_failure=False)
    request.test_set.tests[0].input = b"1000 500 10\n"
    response = judge.grade(request, request.test_set)
    verdicts = {t.verdict for t in response.tests} - {pb.AC}
    assert verdicts and pb.SE not in verdicts, response
    assert response.verdict in (pb.WA, pb.RE), response

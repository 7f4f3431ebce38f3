"""open-r1/codeforces rows graded as open-r1 grades them (its Piston `codeforces` package),
and testlib.h pointed at by the user."""
from __future__ import annotations

import json

import pytest

from sandbox.benchmarks.codeforces import problem_from_open_r1_row
from sandbox.cli import main
from sandbox.problem import problem_from_dict, with_testlib
from sandbox.v1 import sandbox_pb2 as pb
from verl_plugin.data import apply_rules
from verl_plugin.groundtruth import parse_ground_truth, to_ground_truth
from workers import open_r1
from workers.judge import InvalidRequest, Judge
from workers.testlib import TESTLIB_ENV

# ---------------------------------------------------------------- the normalisations


@pytest.mark.parametrize("data, expected", [
    (b"1 2\r\n3\r\n", b"1 2\n3\n"), (b"a\r", b"a"), (b"a\r\r\n", b"a\r\n"), (b"a\rb\n", b"a\rb\n"),
    (b"", b"")])
def test_carriage_returns_at_line_ends_go(data, expected):
    assert open_r1.strip_carriage_returns(data) == expected


@pytest.mark.parametrize("data, expected", [
    (b"a\n\nb\n", b"a\nb\n"), (b"\n\na\n", b"a\n"), (b"a\n\n\n", b"a\n"), (b"\n", b""),
    (b"a\n \nb", b"a\n \nb"), (b"a\n\nb", b"a\nb")])
def test_empty_lines_go_but_blank_ones_stay(data, expected):
    assert open_r1.drop_empty_lines(data) == expected


def test_the_answer_goes_through_cat_and_echo():
    assert open_r1.normalize_answer(b"YES\r\n\r\n\r\n") == b"YES\n"
    assert open_r1.normalize_answer(b"1\n\n2") == b"1\n2\n"
    assert open_r1.normalize_answer(b"") == b""


@pytest.mark.parametrize("output, answer, accepted", [
    (b"yes\n", b"YES\n", True), (b"Yes no\n", b"YES NO", True), (b"yesterday\n", b"YESTERDAY", False),
    (b"1  2\n\n3", b"1 2 3\r\n", True), (b"1 2", b"1 2 3", False), (b"nO, yes.", b"NO, YES.", True),
    (b"noyes", b"NOYES", False)])
def test_plain_comparison(output, answer, accepted):
    assert open_r1.compare_plain(output, answer).accepted is accepted


@pytest.mark.parametrize("printed, accepted", [(b"1\n", True), (b" 100 ", True), (b"1 0\n", False),
                                               (b"0\n", False), (b"", False), (b"1.0", False),
                                               (b"10 0", True)])
def test_checker_verdict_is_what_it_prints(printed, accepted):
    assert open_r1.checker_accepts(printed) is accepted


# ---------------------------------------------------------------- rows graded end to end

# Prints 1 when the solution's numbers are the answer's, in any order; exits 0 either way.
SYMMETRIC = """
import sys
_, answer, output = sys.argv[1:4]
print(1 if sorted(open(answer).read().split()) == sorted(open(output).read().split()) else 0)
"""
# Reads n from the input and the contestant's number from its third argument: any proper
# divisor is right. Called in testlib's order it would read the answer file instead.
ASYMMETRIC = """
import sys
n = int(open(sys.argv[1]).read())
tokens = open(sys.argv[3]).read().split()
print(100 if len(tokens) == 1 and 1 < int(tokens[0]) < n and n % int(tokens[0]) == 0 else 0)
"""
# Checks the files it is given look as open-r1 makes them.
NORMALISED = """
import sys
inp, answer, output = (open(p, "rb").read() for p in sys.argv[1:4])
clean = b"\\r" not in inp and b"\\r" not in answer and b"\\n\\n" not in answer and b"\\n\\n" not in output
print(1 if clean and answer.split() == output.split() else 0)
"""


def row(index: str, tests, checker: str | None = None) -> dict:
    return {"id": f"1{index}", "contest_id": 1, "index": index, "title": index,
            "description": "d", "time_limit": 2.0, "memory_limit": 256, "input_mode": "stdio",
            "official_tests": [{"input": i, "output": o} for i, o in tests],
            "generated_checker": checker, "rating": 800, "tags": []}


ROWS = {
    "A": (row("A", [("3\n3 1 2\n", "1 2 3\n")], SYMMETRIC),
          "input(); print(*sorted(map(int, input().split()), reverse=True))",
          "input(); print(1, 2, 2)"),
    "B": (row("B", [("12\n", "2\n"), ("35\n", "5\n")], ASYMMETRIC),
          "n = int(input())\nd = 2\nwhile n % d: d += 1\nprint(n // d)",
          "print(int(input()) - 1)"),
    "C": (row("C", [("4\r\n", "YES\r\n\r\n"), ("3\r\n", "NO\r\n")]),
          "import sys\ns = sys.stdin.read()\nprint('\\r' in s and 'cr' or ('yes' if int(s) % 2 == 0 else 'no'))\n",
          "print('YES')"),
    "D": (row("D", [("2\r\n", "1\r\n\r\n2\r\n")], NORMALISED),
          "import sys\nn = int(sys.stdin.read())\nprint('\\n\\n'.join(str(i + 1) for i in range(n)))",
          "print(1)"),
}


def grade(judge: Judge, problem, source: str) -> pb.GradeResponse:
    request = problem.grade_request(source, "python", stop_on_first_failure=False)
    return judge.grade(request, request.test_set)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_open_r1_rows_right_is_ac_and_wrong_is_wa(judge, name):
    data, right, wrong = ROWS[name]
    problem = problem_from_open_r1_row(data)
    assert problem.compare == "open-r1"
    assert (problem.checker or {}).get("convention", "open-r1") == "open-r1"
    accepted = grade(judge, problem, right)
    assert accepted.verdict == pb.AC, (accepted.message, accepted.first_failure)
    rejected = grade(judge, problem, wrong)
    assert rejected.verdict == pb.WA, rejected.message


def test_a_checker_that_prints_0_and_exits_0_rejects(judge):
    problem = problem_from_open_r1_row(row("E", [("1\n", "1\n")], "print(0)\n"))
    response = grade(judge, problem, "print(1)")
    assert response.verdict == pb.WA and "printed '0'" in response.message


def test_a_crashing_open_r1_checker_is_wa_as_there(judge):
    problem = problem_from_open_r1_row(row("F", [("1\n", "1\n")], "raise SystemExit(3)\n"))
    response = grade(judge, problem, "print(1)")
    assert response.verdict == pb.WA and "checker failed" in response.message


def test_sandbox_eval_grades_open_r1_rows(tmp_path):
    rows_file, samples_file, out = tmp_path / "rows.jsonl", tmp_path / "samples.jsonl", tmp_path / "out"
    rows_file.write_text("".join(json.dumps(ROWS[n][0]) + "\n" for n in sorted(ROWS)))
    samples = [{"problem_id": ROWS[n][0]["id"], "sample_index": i, "code": code, "language": "python"}
               for n in sorted(ROWS) for i, code in enumerate(ROWS[n][1:])]
    samples_file.write_text("".join(json.dumps(s) + "\n" for s in samples))
    assert main(["eval", "--benchmark", "codeforces", "--problems", str(rows_file), "--samples",
                 str(samples_file), "--out", str(out), "--k", "1", "--no-progress"]) == 0
    verdicts = {(r["problem_id"], r["sample_index"]): r["verdict"]
                for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert verdicts == {(ROWS[n][0]["id"], i): v for n in ROWS for i, v in ((0, "AC"), (1, "WA"))}


def test_the_verl_data_path_keeps_open_r1_grading():
    problem = problem_from_open_r1_row(ROWS["B"][0])
    graded, _, _ = apply_rules(problem, "codeforces")
    again = parse_ground_truth(to_ground_truth(graded, source="codeforces"), cache=False)
    assert again.compare == "open-r1" and again.checker["convention"] == "open-r1"
    assert again.comparison().checker.convention == pb.Checker.OPEN_R1


def test_conventions_are_validated():
    from sandbox.problem import ProblemError
    with pytest.raises(ProblemError, match="convention"):
        problem_from_dict({"tests": [{"input": "", "output": ""}],
                           "checker": {"language": "python", "source": "", "convention": "dmoj"}})


# ---------------------------------------------------------------- testlib.h

# A stand-in for testlib.h (the real one cannot be fetched here): the plumbing is the same.
FAKE_TESTLIB = "#pragma once\n#include <cstdio>\ninline int testlib_verdict(bool ok) { return ok ? 0 : 1; }\n"
TESTLIB_CHECKER = r"""
#include "testlib.h"
#include <fstream>
int main(int argc, char **argv) {
    std::ifstream out(argv[2]), ans(argv[3]);
    long long a, b; out >> a; ans >> b;
    return testlib_verdict(a == b);
}
"""


def make_testlib_problem():
    return problem_from_dict({"id": "t", "compare": "tokens", "tests": [{"input": "", "output": "7\n"}],
                              "checker": {"language": "cpp", "source": TESTLIB_CHECKER}})


def test_a_checker_that_includes_testlib_without_one_is_invalid_argument(judge, monkeypatch):
    monkeypatch.delenv(TESTLIB_ENV, raising=False)
    bare = Judge()
    with pytest.raises(InvalidRequest, match=TESTLIB_ENV):
        grade(bare, make_testlib_problem(), "print(7)")


def test_the_servers_testlib_is_used(tmp_path, monkeypatch):
    header = tmp_path / "testlib.h"
    header.write_text(FAKE_TESTLIB)
    monkeypatch.setenv(TESTLIB_ENV, str(header))
    configured = Judge()
    assert grade(configured, make_testlib_problem(), "print(7)").verdict == pb.AC
    assert grade(configured, make_testlib_problem(), "print(8)").verdict == pb.WA


def test_the_clients_testlib_is_attached(tmp_path, monkeypatch, judge):
    monkeypatch.delenv(TESTLIB_ENV, raising=False)
    header = tmp_path / "testlib.h"
    header.write_text(FAKE_TESTLIB)
    problem = make_testlib_problem()
    with_testlib([problem], str(header))
    assert problem.checker["files"]["testlib.h"] == FAKE_TESTLIB.encode()
    assert grade(Judge(), problem, "print(7)").verdict == pb.AC


def test_grade_cli_testlib_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(TESTLIB_ENV, raising=False)
    problem_file, source = tmp_path / "problem.json", tmp_path / "s.py"
    problem_file.write_text(json.dumps({"id": "t", "tests": [{"input": "", "output": "7\n"}],
                                        "checker": {"language": "cpp", "source": TESTLIB_CHECKER}}))
    source.write_text("print(7)\n")
    missing = main(["grade", "--problem", str(problem_file), "--source", str(source)])
    assert missing == 2 and TESTLIB_ENV in capsys.readouterr().err
    assert main(["grade", "--problem", str(problem_file), "--source", str(source),
                 "--testlib", str(tmp_path / "nope.h")]) == 2
    assert "cannot read testlib.h" in capsys.readouterr().err
    header = tmp_path / "testlib.h"
    header.write_text(FAKE_TESTLIB)
    assert main(["grade", "--problem", str(problem_file), "--source", str(source),
                 "--testlib", str(header), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "AC"


def test_the_problem_file_sets_max_processes(judge):
    problem = problem_from_dict({"tests": [{"input": "", "output": "ok"}], "max_processes": 3})
    assert problem.grade_request("print('ok')", "python").limits.max_processes == 3
    assert problem_from_dict({"tests": [{"input": "", "output": ""}]}).max_processes == 0
    from sandbox.problem import ProblemError
    with pytest.raises(ProblemError, match="max_processes"):
        problem_from_dict({"tests": [{"input": "", "output": ""}], "max_processes": -1})

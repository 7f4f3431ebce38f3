"""The `sandbox` command line, run as a real subprocess (the console script in the venv)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox.examples import example_solutions

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SANDBOX = REPO / ".venv" / "bin" / "sandbox"
if not SANDBOX.exists():
    SANDBOX = Path(sys.executable).parent / "sandbox"
SUM_PAIRS = EXAMPLES / "lcb-sum-pairs" / "problem.json"
SUM_PAIRS_AC = EXAMPLES / "lcb-sum-pairs" / "solutions" / "ac_python.py"
SUM_PAIRS_WA = EXAMPLES / "lcb-sum-pairs" / "solutions" / "wa_off_by_one.py"


def sandbox(*args, stdin: bytes | None = None, env: dict | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.pop("SANDBOX_ADDRESS", None)
    full_env.update(env or {})
    return subprocess.run([str(SANDBOX), *map(str, args)], input=stdin if stdin is not None else b"",
                          capture_output=True, timeout=timeout, cwd=REPO, env=full_env)


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    stderr = text(result.stderr)
    assert result.returncode != 0, (result.returncode, text(result.stdout), stderr)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("sandbox: error: "), stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------- grade

def test_grade_json_ac():
    result = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_AC, "--json")
    assert result.returncode == 0, text(result.stderr)
    lines = [line for line in text(result.stdout).splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert data["verdict"] == "AC"
    problem = json.loads(SUM_PAIRS.read_text())
    assert data["total"] == len(problem["tests"]) == data["passed"]
    assert len(data["tests"]) == len(problem["tests"])
    for index, test in enumerate(data["tests"]):
        assert test["index"] == index
        assert test["verdict"] == "AC"
        assert {"cpu_time_s", "wall_time_s", "peak_memory_kb", "exit_code"} <= set(test)
    assert data["request_id"] == "ac_python.py"
    assert len(data["test_set_digest"]) == 64


def test_grade_wa_still_exits_zero():
    result = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_WA, "--json")
    assert result.returncode == 0, text(result.stderr)
    data = json.loads(text(result.stdout))
    assert data["verdict"] == "WA"
    assert "SKIPPED" in [t["verdict"] for t in data["tests"]]

    every = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_WA, "--json",
                    "--all-tests")
    assert every.returncode == 0
    assert "SKIPPED" not in [t["verdict"] for t in json.loads(text(every.stdout))["tests"]]

    human = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_WA)
    assert human.returncode == 0, text(human.stderr)
    assert "verdict: WA" in text(human.stdout)


def _grade_verdict(problem: Path, solution: Path, server: str | None) -> str:
    args = ["grade", "--problem", problem, "--source", solution, "--json"]
    if server:
        args += ["--server", server]
    result = sandbox(*args)
    assert result.returncode == 0, (solution, text(result.stderr))
    return json.loads(text(result.stdout))["verdict"]


def test_embedded_and_server_agree_on_every_example(server):
    items = example_solutions(EXAMPLES)
    assert len(items) >= 10
    jobs = [(p, s, where) for p, s, _ in items for where in (None, server.address)]
    with ThreadPoolExecutor(3) as pool:
        verdicts = list(pool.map(lambda job: _grade_verdict(*job), jobs))
    by_solution = {}
    for (problem, solution, where), verdict in zip(jobs, verdicts):
        by_solution.setdefault(solution, {})["server" if where else "embedded"] = verdict
    for problem, solution, expected in items:
        got = by_solution[solution]
        name = solution.relative_to(EXAMPLES)
        assert got["embedded"] == got["server"], f"{name}: {got}"
        assert got["embedded"] == expected, f"{name}: expected {expected}, got {got}"


# ---------------------------------------------------------------- bad input

def test_missing_problem_file(tmp_path):
    result = sandbox("grade", "--problem", tmp_path / "nope.json", "--source", SUM_PAIRS_AC)
    assert_one_line_error(result, "nope.json")


def test_missing_source(tmp_path):
    result = sandbox("grade", "--problem", SUM_PAIRS, "--source", tmp_path / "missing.py")
    assert_one_line_error(result, "missing.py")


def test_unknown_language_embedded():
    result = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_AC,
                     "--language", "cobol")
    assert_one_line_error(result, "cobol")


def test_unknown_language_through_server(server):
    result = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_AC,
                     "--language", "cobol", "--server", server.address)
    assert_one_line_error(result, "cobol", "INVALID_ARGUMENT")


def test_unknown_extension(tmp_path):
    source = tmp_path / "solution.rb"
    source.write_text("puts 1\n")
    assert_one_line_error(sandbox("grade", "--problem", SUM_PAIRS, "--source", source),
                          "language")


def test_malformed_problem_json(tmp_path):
    problem = tmp_path / "broken.json"
    problem.write_text('{"id": "x", "tests": [{"input": "1\\n", "output": ')
    assert_one_line_error(sandbox("grade", "--problem", problem, "--source", SUM_PAIRS_AC),
                          "JSON")


@pytest.mark.parametrize("content", [
    {"id": "no-tests"},
    {"id": "empty-tests", "tests": []},
    {"id": "bad-test", "tests": [{"input": "1\n"}]},
    [1, 2, 3],
])
def test_problem_without_usable_tests(tmp_path, content):
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps(content))
    assert_one_line_error(sandbox("grade", "--problem", problem, "--source", SUM_PAIRS_AC))


def test_problem_with_bad_limits_or_compare(tmp_path):
    for extra in ({"time_limit_s": "fast"}, {"time_limit_s": -1}, {"compare": "fuzzy"},
                  {"kind": "interactive"}, {"kind": "functional"}):
        problem = tmp_path / "problem.json"
        problem.write_text(json.dumps({"id": "x", "tests": [{"input": "1", "output": "1"}],
                                       **extra}))
        assert_one_line_error(sandbox("grade", "--problem", problem, "--source", SUM_PAIRS_AC))


def test_problem_limit_above_server_maximum_is_a_clean_error(tmp_path):
    problem = tmp_path / "problem.json"
    problem.write_text(json.dumps({"id": "x", "tests": [{"input": "1", "output": "1"}],
                                   "time_limit_s": 10_000}))
    assert_one_line_error(sandbox("grade", "--problem", problem, "--source", SUM_PAIRS_AC),
                          "time_limit_s")


def test_unreachable_server():
    result = sandbox("grade", "--problem", SUM_PAIRS, "--source", SUM_PAIRS_AC,
                     "--server", "unix:/nonexistent.sock", env={"SANDBOX_CONNECT_TIMEOUT": "2"},
                     timeout=60)
    assert_one_line_error(result, "unix:/nonexistent.sock")
    for command in (["info"], ["run", SUM_PAIRS_AC]):
        other = sandbox(*command, "--server", "unix:/nonexistent.sock",
                        env={"SANDBOX_CONNECT_TIMEOUT": "2"}, timeout=60)
        assert_one_line_error(other, "nonexistent")


# ---------------------------------------------------------------- run, info, examples

def test_run_with_piped_stdin(tmp_path):
    program = tmp_path / "reverse.py"
    program.write_text("import sys\nfor line in sys.stdin:\n    print(line.strip()[::-1])\n")
    result = sandbox("run", program, stdin=b"hello\nsandbox\n")
    assert result.returncode == 0, text(result.stderr)
    assert text(result.stdout) == "olleh\nxobdnas\n"
    assert "AC" in text(result.stderr)


def test_run_cpp_through_server_and_json(tmp_path, server):
    program = tmp_path / "sum.cpp"
    program.write_text("#include <bits/stdc++.h>\nint main(){long long a,b;std::cin>>a>>b;"
                       "std::cout<<a+b<<\"\\n\";}\n")
    result = sandbox("run", program, "--server", server.address, stdin=b"40 2\n")
    assert result.returncode == 0, text(result.stderr)
    assert text(result.stdout) == "42\n"
    as_json = sandbox("run", program, "--json", stdin=b"1 2\n")
    assert as_json.returncode == 0, text(as_json.stderr)
    data = json.loads(text(as_json.stdout))
    assert data["verdict"] == "AC"


def test_run_stdin_file_and_failing_program(tmp_path):
    program = tmp_path / "fail.py"
    program.write_text("import sys\nprint(sys.stdin.read().upper())\nsys.exit(4)\n")
    stdin_file = tmp_path / "in.txt"
    stdin_file.write_text("abc")
    result = sandbox("run", program, "--stdin", stdin_file)
    assert text(result.stdout).strip() == "ABC"
    assert "RE" in text(result.stderr)


def test_info_lists_languages():
    result = sandbox("info")
    assert result.returncode == 0, text(result.stderr)
    out = text(result.stdout)
    assert "python" in out and "cpp" in out
    assert "-std=c++17" in out
    as_json = sandbox("info", "--json")
    names = {lang["name"] for lang in json.loads(text(as_json.stdout))["languages"]}
    assert {"python", "cpp"} <= names


def test_info_through_server(server):
    result = sandbox("info", "--server", server.address)
    assert result.returncode == 0, text(result.stderr)
    assert "python" in text(result.stdout) and "cpp" in text(result.stdout)


def test_examples_table():
    result = sandbox("examples", timeout=600)
    out = text(result.stdout)
    assert result.returncode == 0, out + text(result.stderr)
    for problem, solution, expected in example_solutions(EXAMPLES):
        rows = [line for line in out.splitlines() if solution.name in line.split()]
        rows = [line for line in rows if problem.parent.name in line.split()]
        assert rows, f"{problem.parent.name}/{solution.name} missing from:\n{out}"
        assert expected in rows[0].split(), rows[0]
        assert "MISMATCH" not in rows[0], rows[0]


def test_help():
    top = sandbox("--help")
    assert top.returncode == 0
    out = text(top.stdout)
    for command in ("serve", "grade", "run", "info", "examples"):
        assert command in out, command
    grade = sandbox("grade", "--help")
    assert grade.returncode == 0
    out = text(grade.stdout)
    for option in ("--problem", "--source", "--language", "--server", "--json", "--all-tests"):
        assert option in out, option
    serve = sandbox("serve", "--help")
    assert serve.returncode == 0
    for option in ("--address", "--capacity", "--max-queue", "--grace"):
        assert option in text(serve.stdout), option


def test_usage_errors_exit_nonzero_without_traceback():
    for args in ([], ["grade"], ["grade", "--problem", SUM_PAIRS], ["frobnicate"]):
        result = sandbox(*args)
        assert result.returncode != 0, args
        assert "Traceback" not in text(result.stderr), args
        assert "usage:" in text(result.stderr), args

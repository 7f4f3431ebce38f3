"""Benchmark loaders on the real files in /work/shared/data and on rows / packages built here.

LiveCodeBench: SandboxFusion's compressed rows, rllm JSON, the official row layout (with
base64/zlib/pickle private tests) and selection by release / dates / platform / difficulty.
Codeforces: rllm JSON + metadata_cf.json, CodeContests rows, open-r1 rows, Polygon packages
(checker and interactor). Grading through the loaders reproduces the recorded verdicts.
"""
from __future__ import annotations

import base64
import json
import pickle
import zlib
from collections import Counter

import pytest

from conftest import SHARED_DATA
from sandbox.benchmarks import codeforces, livecodebench
from sandbox.evaluation.problems import load_benchmark
from sandbox.problem import Problem, ProblemError
from sandbox.v1 import sandbox_pb2 as pb

LCB_ROWS = SHARED_DATA / "lcb" / "code_eval_live_code_bench_v1.jsonl"
LCB_RLLM = SHARED_DATA / "lcb" / "livecodebench_public_2408_2501.json"
CF_RLLM = SHARED_DATA / "codeforces" / "deepcoder_codeforces_test.json"
CF_METADATA = SHARED_DATA / "codeforces" / "metadata_cf.json"
CODECONTESTS = SHARED_DATA / "codecontests" / "code_eval_code_contests.jsonl"
VERIFIED = SHARED_DATA / "verified" / "problems.jsonl"
MARKS = {pb.AC: ".", pb.WA: "W", pb.TLE: "T", pb.RE: "R", pb.PE: "P", pb.MLE: "M"}


def verified() -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, VERIFIED.read_text().splitlines())}


def grade(judge, problem: Problem, source: str, language: str = "python",
          all_tests: bool = True) -> pb.GradeResponse:
    request = problem.grade_request(source, language, stop_on_first_failure=not all_tests)
    return judge.grade(request, request.test_set)


# ---------------------------------------------------------------- LiveCodeBench, shared files

def test_sandboxfusion_lcb_rows_decode():
    problems = {p.id: p for p in livecodebench.detect_and_load(LCB_ROWS)}
    assert set(problems) == {"codeforces/1873_A", "leetcode/2727", "atcoder/abc301_a"}
    functional = problems["leetcode/2727"]
    assert functional.kind == "functional" and functional.func_name == "countSeniors"
    assert problems["codeforces/1873_A"].kind == "stdin"
    assert {p.platform for p in problems.values()} == {"codeforces", "leetcode", "atcoder"}
    assert {p.difficulty for p in problems.values()} == {"easy"}
    assert all(p.time_limit_s == 6 and p.compare == "lcb" for p in problems.values())
    known = verified()
    for problem_id, problem in problems.items():
        # The decoded tests are exactly the verified set's tests, in order.
        assert problem.tests == known[problem_id]["tests"], problem_id


@pytest.mark.parametrize("problem_id", ["codeforces/1873_A", "leetcode/2727", "atcoder/abc301_a"])
def test_lcb_grading_reproduces_recorded_verdicts(judge, problem_id):
    problem = {p.id: p for p in livecodebench.detect_and_load(LCB_ROWS)}[problem_id]
    record = verified()[problem_id]
    solutions = record["solutions"]["correct"] + record["solutions"]["incorrect"]
    assert len(solutions) >= 2
    for solution in solutions:
        response = grade(judge, problem, solution["code"], solution["language"])
        assert pb.Verdict.Name(response.verdict) == solution["observed_verdict"], solution["origin"]
        assert "".join(MARKS[t.verdict] for t in response.tests) == solution["observed_per_test"]


def test_rllm_lcb_json():
    problems = livecodebench.detect_and_load(LCB_RLLM)
    assert len(problems) == 279
    kinds = Counter(p.kind for p in problems)
    assert kinds == {"stdin": 175, "functional": 104}
    for problem in problems:
        assert problem.tests and problem.compare == "lcb"
        if problem.kind == "functional":
            assert problem.starter_code and problem.func_name.isidentifier()
            assert f"def {problem.func_name}(" in problem.starter_code
    assert len({p.id for p in problems}) == 279


# ---------------------------------------------------------------- LiveCodeBench, official rows

def _encode_private(tests: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def official_row(question_id, date, platform="atcoder", difficulty="easy", functional=False):
    if functional:
        public = [{"input": "[1, 2, 3]\n4", "output": "1", "testtype": "functional"}]
        private = [{"input": "[5, 5, 0]\n5", "output": "2", "testtype": "functional"},
                   {"input": "[]\n0", "output": "0", "testtype": "functional"}]
    else:
        public = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]
        private = [{"input": "5 7\n", "output": "12\n", "testtype": "stdin"},
                   {"input": "-1 1\n", "output": "0\n", "testtype": "stdin"}]
    return {
        "question_title": f"Problem {question_id}", "question_content": "Add two numbers.",
        "platform": platform, "question_id": question_id, "contest_id": "c1",
        "contest_date": f"{date}T00:00:00", "difficulty": difficulty,
        "starter_code": "class Solution:\n    def countSums(self, nums: List[int], k: int) -> int:\n        "
        if functional else "",
        "public_test_cases": json.dumps(public),
        "private_test_cases": _encode_private(private),
        "metadata": json.dumps({"func_name": "countSums"} if functional else {}),
    }


@pytest.fixture
def official_file(tmp_path):
    rows = [official_row("a1", "2024-03-15"),                                   # v1
            official_row("a2", "2024-05-10", platform="leetcode", functional=True),  # v2
            official_row("a3", "2024-07-20", difficulty="medium"),              # v3
            official_row("a4", "2024-12-01", platform="codeforces", difficulty="hard"),  # v5
            official_row("a5", "2025-04-01", difficulty="medium")]              # v6
    path = tmp_path / "lcb_official.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_official_rows_decode_private_tests(official_file, judge):
    problems = {p.id: p for p in livecodebench.detect_and_load(official_file)}
    stdin = problems["a1"]
    assert stdin.tests == [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12\n"},
                           {"input": "-1 1\n", "output": "0\n"}]
    assert stdin.meta["public_tests"] == 1
    assert stdin.contest_date == "2024-03-15" and stdin.platform == "atcoder"
    functional = problems["a2"]
    assert functional.kind == "functional" and functional.func_name == "countSums"
    assert len(functional.tests) == 3
    # Graded as LiveCodeBench would: the private tests count.
    assert grade(judge, stdin, "a, b = map(int, input().split())\nprint(a + b)\n").verdict == pb.AC
    partial = grade(judge, stdin, "a, b = map(int, input().split())\nprint(abs(a + b) if a > 0 else 1)\n")
    assert partial.verdict == pb.WA and partial.passed == 2
    # countSums(nums, k): pairs i < j with nums[i] + nums[j] == k.
    pairs = ("class Solution:\n    def countSums(self, nums, k):\n        return sum(1 for i in "
             "range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == k)\n")
    assert grade(judge, functional, pairs).verdict == pb.AC
    # Right on the public test only: "is there a pair" instead of "how many".
    any_pair = pairs.replace("return sum(1 for", "return int(any(True for").replace("== k)", "== k))")
    wrong = grade(judge, functional, any_pair)
    assert wrong.verdict == pb.WA and wrong.passed == 2
    assert [t.verdict for t in wrong.tests] == [pb.AC, pb.WA, pb.AC]


def test_selection_by_release_dates_platform_difficulty(official_file):
    problems = livecodebench.detect_and_load(official_file)
    ids = lambda chosen: [p.id for p in chosen]  # noqa: E731
    assert ids(livecodebench.select(problems, release="release_v1")) == ["a1"]
    assert ids(livecodebench.select(problems, release="release_v2")) == ["a1", "a2"]
    assert ids(livecodebench.select(problems, release="release_v6")) == ["a1", "a2", "a3", "a4", "a5"]
    assert ids(livecodebench.select(problems, release="v5_v6")) == ["a4", "a5"]
    assert ids(livecodebench.select(problems, release="v2_v3")) == ["a2", "a3"]
    assert ids(livecodebench.select(problems, start_date="2024-05-10", end_date="2024-12-01")) \
        == ["a2", "a3", "a4"]
    assert ids(livecodebench.select(problems, platforms=["LeetCode", "codeforces"])) == ["a2", "a4"]
    assert ids(livecodebench.select(problems, difficulties=["medium"])) == ["a3", "a5"]
    assert ids(livecodebench.select(problems, release="release_v5", difficulties=["medium", "hard"])) \
        == ["a3", "a4"]
    with pytest.raises(ProblemError):
        livecodebench.select(problems, release="release_v99")


# ---------------------------------------------------------------- Codeforces, shared files

def test_codeforces_rllm_with_metadata():
    problems = codeforces.load_rllm(CF_RLLM, CF_METADATA)
    assert len(problems) == 408
    ids = json.loads(CF_METADATA.read_text())
    assert [p.id for p in problems] == ids
    assert problems[0].id == "1971A" and problems[11].id == "1972D1"
    assert all(p.tests and p.compare == "tokens" and p.platform == "codeforces" for p in problems)
    # Limits come from the statements ("Time Limit: 1000 ms", "Memory Limit: 256 MB").
    assert (problems[0].time_limit_s, problems[0].memory_limit_mb) == (1.0, 256)
    assert {(p.time_limit_s, p.memory_limit_mb) for p in problems} >= {(2.0, 256), (4.0, 512)}
    via_detection = codeforces.detect_and_load(CF_RLLM, CF_METADATA)
    assert [p.id for p in via_detection] == ids


def test_codecontests_rows(judge):
    problems = codeforces.load_codecontests(CODECONTESTS)
    assert len(problems) == 20
    assert Counter(p.platform for p in problems) == {"codeforces": 17, "codechef": 3}
    assert sum(len(p.tests) for p in problems) == 2233
    by_id = {p.id: p for p in problems}
    shirts = by_id["1000_A. Codehorses T-shirts"]
    record = verified()["codeforces/1000A"]
    assert shirts.tests == record["tests"]
    assert shirts.difficulty == "a" and shirts.compare == "tokens"
    for solution in record["solutions"]["correct"] + record["solutions"]["incorrect"]:
        response = grade(judge, shirts, solution["code"], solution["language"])
        assert pb.Verdict.Name(response.verdict) == solution["observed_verdict"], solution["origin"]
        assert "".join(MARKS[t.verdict] for t in response.tests) == solution["observed_per_test"]
    assert [p.id for p in codeforces.detect_and_load(CODECONTESTS)] == [p.id for p in problems]


# ---------------------------------------------------------------- open-r1 rows

# open-r1's convention: `checker input answer output`, AC iff it prints 1 (or 100).
FILE_IO_CHECKER = r"""
import sys
a, b = map(int, open(sys.argv[1]).read().split())
out = open(sys.argv[3]).read().split()
print(1 if out == [str(a + b)] else 0)
"""


def open_r1_row(**extra):
    row = {"id": "2000A", "contest_id": 2000, "index": "A", "title": "Sum in a file",
           "description": "Read a and b from input.txt; write a + b to output.txt.",
           "input_format": "Two integers.", "output_format": "Their sum.", "note": None,
           "time_limit": 1.5, "memory_limit": 128, "input_mode": "file", "rating": 800,
           "tags": ["math"], "interaction_format": None,
           "official_tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "40 2\n", "output": "42\n"}],
           "generated_checker": FILE_IO_CHECKER}
    row.update(extra)
    return row


def test_open_r1_row(tmp_path, judge):
    path = tmp_path / "open_r1.jsonl"
    path.write_text(json.dumps(open_r1_row()) + "\n"
                    + json.dumps(open_r1_row(id="2000B", index="B", input_mode="stdio",
                                             generated_checker=None,
                                             interaction_format="Ask queries.")) + "\n")
    problems = codeforces.detect_and_load(path)
    first, second = problems
    assert first.id == "2000A" and first.input_mode == "file"
    assert (first.time_limit_s, first.memory_limit_mb) == (1.5, 128)
    assert first.difficulty == "800" and first.meta["tags"] == ["math"]
    assert first.checker["language"] == "python" and "Their sum." in first.statement
    assert first.checker["convention"] == "open-r1" and first.compare == "open-r1"
    assert second.input_mode == "stdin" and second.checker is None and second.meta["interactive"]
    files = ("a, b = map(int, open('input.txt').read().split())\n"
             "open('output.txt', 'w').write(str(a + b))\n")
    assert grade(judge, first, files).verdict == pb.AC
    assert grade(judge, first, "a, b = map(int, input().split())\nprint(a + b)\n").verdict != pb.AC
    wrong = files.replace("a + b", "a * b")
    assert grade(judge, first, wrong).verdict == pb.WA
    with pytest.raises(ProblemError):
        codeforces.problem_from_open_r1_row(open_r1_row(official_tests=[], examples=[]))


# ---------------------------------------------------------------- Polygon packages

POLYGON_XML = """<?xml version="1.0" encoding="utf-8"?>
<problem revision="3" short-name="{name}">
  <names><name language="english" value="{title}"/></names>
  <judging cpu-name="Intel(R) Core(TM) i3-8100" cpu-speed="3600" input-file="" output-file="">
    <testset name="tests">
      <time-limit>1000</time-limit>
      <memory-limit>268435456</memory-limit>
      <test-count>{count}</test-count>
      <input-path-pattern>tests/%02d</input-path-pattern>
      <answer-path-pattern>tests/%02d.a</answer-path-pattern>
      <tests>{tests}</tests>
    </testset>
  </judging>
  <assets>
    {helper}
    <solutions>
      <solution tag="main"><source path="solutions/main.py" type="python.3"/></solution>
      <solution tag="wrong-answer"><source path="solutions/wa.py" type="python.3"/></solution>
    </solutions>
  </assets>
</problem>
"""


def write_package(root, name, title, tests, helper_xml, files, solutions):
    root.mkdir(parents=True)
    (root / "problem.xml").write_text(POLYGON_XML.format(
        name=name, title=title, count=len(tests), helper=helper_xml,
        tests="".join('<test method="manual"/>' for _ in tests)))
    for folder in ("tests", "files", "solutions"):
        (root / folder).mkdir()
    for number, (test_input, answer) in enumerate(tests, start=1):
        (root / "tests" / f"{number:02d}").write_text(test_input)
        (root / "tests" / f"{number:02d}.a").write_text(answer)
    for relative, text in {**files, **solutions}.items():
        (root / relative).write_text(text)
    return root


DIVISOR_CHECKER = r"""
import sys
n = int(open(sys.argv[1]).read())
out = open(sys.argv[2]).read().split()
if len(out) != 1:
    sys.exit(2)
d = int(out[0])
sys.exit(0 if 1 < d < n and n % d == 0 else 1)
"""

GUESS_INTERACTOR = r"""
import sys
n, secret = map(int, open(sys.argv[1]).read().split())
print(n, flush=True)
for _ in range(20):
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "?":
        sys.exit(1)
    x = int(line[1])
    if x == secret:
        print("=", flush=True)
        sys.exit(0)
    print("<" if secret < x else ">", flush=True)
sys.exit(1)
"""


@pytest.fixture
def packages(tmp_path):
    root = tmp_path / "packages"
    write_package(
        root / "divisor", "any-divisor", "Any Divisor",
        [("12\n", "2\n"), ("35\n", "5\n"), ("91\n", "7\n")],
        '<checker name="check.py" type="python.3"><source path="files/check.py" type="python.3"/></checker>',
        {"files/check.py": DIVISOR_CHECKER},
        {"solutions/main.py": "n = int(input())\nprint(max(d for d in range(2, n) if n % d == 0))\n",
         "solutions/wa.py": "print(1)\n"})
    write_package(
        root / "guess", "guess", "Guess the Number",
        [("100 37\n", ""), ("100 100\n", "")],
        '<interactor name="interactor.py"><source path="files/interactor.py" type="python.3"/></interactor>',
        {"files/interactor.py": GUESS_INTERACTOR},
        {"solutions/main.py": ("n = int(input())\nlo, hi = 1, n\nwhile True:\n    m = (lo + hi) // 2\n"
                               "    print('?', m, flush=True)\n    r = input()\n    if r == '=':\n"
                               "        break\n    if r == '<':\n        hi = m - 1\n    else:\n"
                               "        lo = m + 1\n"),
         "solutions/wa.py": "n = int(input())\nprint('?', 1, flush=True)\ninput()\n"})
    return root


def test_polygon_package_with_python_checker(packages, judge):
    problem = codeforces.load_polygon_package(packages / "divisor")
    assert problem.id == "any-divisor" and problem.title == "Any Divisor"
    assert (problem.time_limit_s, problem.memory_limit_mb) == (1.0, 256)
    assert problem.tests[2] == {"input": "91\n", "output": "7\n"}
    assert problem.checker["language"] == "python" and problem.interactor is None
    solutions = problem.meta["solutions"]
    main_code = solutions["main"][0]["code"]
    # The largest divisor differs from the answer file: only the checker accepts it.
    assert grade(judge, problem, main_code).verdict == pb.AC
    assert grade(judge, problem, solutions["wrong-answer"][0]["code"]).verdict == pb.WA
    # two tokens: the checker exits 2 (testlib presentation error)
    assert grade(judge, problem, "n = int(input())\nprint(2, 2)\n").verdict == pb.PE


def test_polygon_package_with_python_interactor(packages, judge):
    problem = codeforces.load_polygon_package(packages / "guess")
    assert problem.interactor["language"] == "python" and problem.checker is None
    assert len(problem.tests) == 2
    solutions = problem.meta["solutions"]
    assert grade(judge, problem, solutions["main"][0]["code"]).verdict == pb.AC
    assert grade(judge, problem, solutions["wrong-answer"][0]["code"]).verdict == pb.WA


def test_polygon_detection_and_errors(packages, tmp_path):
    both = codeforces.detect_and_load(packages)
    assert [p.id for p in both] == ["any-divisor", "guess"]
    assert [p.id for p in codeforces.detect_and_load(packages / "guess")] == ["guess"]
    (packages / "divisor" / "tests" / "03").unlink()
    with pytest.raises(ProblemError, match="missing"):
        codeforces.load_polygon_package(packages / "divisor")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProblemError):
        codeforces.detect_and_load(tmp_path / "empty")


def test_load_benchmark_detects_formats(tmp_path):
    assert len(load_benchmark("livecodebench", LCB_ROWS)) == 3
    assert "1971A" in load_benchmark("codeforces", CF_RLLM, CF_METADATA)
    assert "1000_A. Codehorses T-shirts" in load_benchmark("codeforces", CODECONTESTS)
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"question": "?"}) + "\n")
    with pytest.raises(ProblemError, match="not rllm, CodeContests or open-r1"):
        load_benchmark("codeforces", odd)
    with pytest.raises(ProblemError, match="not a LiveCodeBench row"):
        load_benchmark("livecodebench", odd)


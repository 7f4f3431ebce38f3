"""`sandbox eval` end to end: real gradings (embedded and over gRPC), resume after a subset
and after Ctrl-C, the reports, and the Codeforces rating from a local standings cache."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, SHARED_DATA
from sandbox.cli import main
from sandbox import digest
from sandbox.evaluation.problems import load_benchmark
from sandbox.evaluation.results import ResultsFile
from sandbox.evaluation.runner import Grader, run_samples
from sandbox.evaluation.samples import read_samples
from test_cf_rating import write_contest

LCB_ROWS = SHARED_DATA / "lcb" / "code_eval_live_code_bench_v1.jsonl"
VERIFIED = SHARED_DATA / "verified" / "problems.jsonl"
P1, P2, P3 = "codeforces/1873_A", "leetcode/2727", "atcoder/abc301_a"


def solutions() -> dict[str, tuple[str, str]]:
    """{problem id: (correct code, wrong code)} for the three LiveCodeBench problems."""
    found = {}
    for row in map(json.loads, VERIFIED.read_text().splitlines()):
        if row["id"] in (P1, P2, P3):
            found[row["id"]] = (row["solutions"]["correct"][0]["code"],
                                row["solutions"]["incorrect"][0]["code"])
    return found


def fenced(code: str, language: str = "python") -> str:
    return (f"<think>First try:\n```python\nprint('draft')\n```\n</think>\n"
            f"Here is the solution.\n```{language}\n{code}\n```\nDone.")


def lcb_samples() -> list[dict]:
    """P1: AC WA AC NO_CODE; P2: AC WA AC AC (a `code` sample); P3: WA WA AC WA (C++).

    Budgets: samples 0 and 1 at 1024 tokens, 2 and 3 at 2048.
    """
    code = solutions()
    plan = {P1: ["ac", "wa", "ac", "none"], P2: ["ac", "wa", "ac", "code"],
            P3: ["wa", "wa", "ac", "cpp"]}
    rows = []
    for problem_id, kinds in plan.items():
        good, bad = code[problem_id]
        for index, kind in enumerate(kinds):
            row = {"problem_id": problem_id, "sample_index": index,
                   "budget": {"thinking": 1024 * (1 + index // 2), "solution": 512}}
            if kind == "ac":
                row["completion"] = fenced(good)
            elif kind == "wa":
                row["completion"] = fenced(bad)
            elif kind == "none":
                row["completion"] = "I could not solve it.\n</think> Sorry, no code this time."
            elif kind == "code":
                row |= {"code": good, "language": "python"}
            else:
                row["completion"] = fenced("int main() { return 0; }", "cpp")
            rows.append(row)
    return rows


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def keys(rows) -> list[tuple[str, int]]:
    return [(row["problem_id"], row["sample_index"]) for row in rows]


def test_eval_end_to_end_and_resume_from_a_subset(tmp_path, capsys):
    rows = lcb_samples()
    subset, full = tmp_path / "subset.jsonl", tmp_path / "samples.jsonl"
    write_jsonl(subset, rows[:6])
    write_jsonl(full, rows)
    out = tmp_path / "out"
    base = ["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--out", str(out),
            "--k", "1,2,5", "--concurrency", "3", "--no-progress"]
    assert main(base + ["--samples", str(subset)]) == 0
    assert len(read_jsonl(out / "results.jsonl")) == 6
    first = (out / "results.jsonl").read_text()

    assert main(base + ["--samples", str(full)]) == 0
    results = read_jsonl(out / "results.jsonl")
    # Nothing graded twice, everything graded, the first six lines untouched.
    assert len(results) == 12 and len(set(keys(results))) == 12
    assert (out / "results.jsonl").read_text().startswith(first)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["graded_this_run"] == 6 and summary["run"]["already_graded"] == 6

    by_key = {(r["problem_id"], r["sample_index"]): r for r in results}
    assert [by_key[(P1, i)]["verdict"] for i in range(4)] == ["AC", "WA", "AC", "NO_CODE"]
    assert [by_key[(P2, i)]["verdict"] for i in range(4)] == ["AC", "WA", "AC", "AC"]
    assert [by_key[(P3, i)]["verdict"] for i in range(4)] == ["WA", "WA", "AC", "WA"]
    ac = by_key[(P1, 0)]
    assert ac["tests"] == "....." and ac["passed"] == ac["total"] == 5
    assert by_key[(P1, 1)]["tests"].startswith("W") and by_key[(P1, 1)]["passed"] == 0
    assert by_key[(P1, 3)]["tests"] == "" and by_key[(P1, 3)]["total"] == 5
    assert by_key[(P3, 3)]["language"] == "cpp"
    assert ac["budget"] == {"thinking": 1024, "solution": 512}
    assert set(ac["timings"]) >= {"total_s", "compile_s", "run_s"}

    # P1 n=4 c=2, P2 n=4 c=3, P3 n=4 c=1.
    # pass@1 = (0.5 + 0.75 + 0.25)/3 = 0.5
    # pass@2 = ((1 − 1/6) + 1 + (1 − 3/6))/3 = 0.7778
    assert summary["pass_at_k"]["pass@1"] == {"value": pytest.approx(0.5), "problems": 3}
    assert summary["pass_at_k"]["pass@2"]["value"] == pytest.approx((5 / 6 + 1 + 0.5) / 3)
    assert summary["pass_at_k"]["pass@5"] == {"value": None, "problems": 0}
    assert summary["verdicts"] == {"AC": 6, "WA": 5, "NO_CODE": 1}
    assert set(summary["breakdowns"]["platform"]) == {"codeforces", "leetcode", "atcoder"}
    assert summary["breakdowns"]["difficulty"]["easy"]["problems"] == 3
    # 1536 tokens: P1 .5, P2 .5, P3 0 → 1/3; 2560 tokens: P1 .5, P2 1, P3 .5 → 2/3.
    budgets = summary["budgets"]
    assert [b["total"] for b in budgets] == [1536, 2560]
    assert [b["pass@1"] for b in budgets] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]

    png = out / "accuracy_vs_budget.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| k | pass@k | problems |" in report and "| pass@1 | 50.0% | 3 |" in report
    assert "| pass@2 | 77.8% | 3 |" in report
    for title in ("Per difficulty", "Per platform", "Per month", "Verdict distribution",
                  "Accuracy vs budget"):
        assert f"## {title}" in report
    assert "| NO_CODE | 1 | 8.3% |" in report
    assert "![Accuracy vs budget](accuracy_vs_budget.png)" in report
    assert "solution=512, thinking=1024" in report
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<td>pass@1</td><td class=num>50.0%</td>" in page
    assert "data:image/png;base64," in page and "Verdict distribution" in page
    assert "pass@1 50.0%" in capsys.readouterr().out


def test_eval_through_the_server_uploads_tests_once(tmp_path, server, client):
    rows = [r for r in lcb_samples() if r["problem_id"] in (P1, P2)]
    samples_file = tmp_path / "samples.jsonl"
    write_jsonl(samples_file, rows)
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--samples",
                 str(samples_file), "--out", str(out), "--server", server.address, "--k", "1",
                 "--no-progress"]) == 0
    results = {(r["problem_id"], r["sample_index"]): r["verdict"]
               for r in read_jsonl(out / "results.jsonl")}
    assert results == {(P1, 0): "AC", (P1, 1): "WA", (P1, 2): "AC", (P1, 3): "NO_CODE",
                       (P2, 0): "AC", (P2, 1): "WA", (P2, 2): "AC", (P2, 3): "AC"}
    problems = load_benchmark("livecodebench", LCB_ROWS)
    assert client.has_test_set(digest.test_set_digest(problems[P1].test_set()))

    class Counting:
        """The real client, counting test-set uploads."""

        def __init__(self, inner):
            self.inner, self.puts = inner, 0

        def put_test_set(self, test_set):
            self.puts += 1
            return self.inner.put_test_set(test_set)

        def grade(self, request, timeout=None):
            assert request.WhichOneof("tests") == "test_set_digest"
            return self.inner.grade(request, timeout)

        def close(self):
            pass

    counting = Counting(client)
    samples = read_samples(samples_file)
    with ResultsFile(tmp_path / "again" / "results.jsonl") as results_file:
        stats = run_samples(problems, samples, Grader(counting), results_file, concurrency=4,
                            progress=False)
    assert stats.graded == 8 and not stats.failed
    assert counting.puts == 2          # one per problem, however many samples run at once


def test_unknown_problem_ids_are_a_clear_error(tmp_path, capsys):
    rows = lcb_samples()[:2] + [{"problem_id": f"nope/{i}", "sample_index": 0, "code": "print(1)"}
                                for i in range(7)]
    samples_file = tmp_path / "samples.jsonl"
    write_jsonl(samples_file, rows)
    code = main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--samples",
                 str(samples_file), "--out", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "7 problem id(s)" in error and "'nope/0'" in error and "and 2 more" in error
    assert not (tmp_path / "out" / "results.jsonl").exists()
    write_jsonl(samples_file, [{"problem_id": P1, "sample_index": 0}])
    assert main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--samples",
                 str(samples_file), "--out", str(tmp_path / "out")]) == 2
    assert "completion" in capsys.readouterr().err


# ---------------------------------------------------------------- Ctrl-C, then resume

SUM = "a, b = map(int, input().split())\nprint(a + b)\n"
MAX = "input()\nprint(max(map(int, input().split())))\n"
SLEEPS = "import time\ntime.sleep(60)\n"   # TLE at the wall-clock cap (3 s for a 1 s limit)


def open_r1_row(index: str, tests: list[tuple[str, str]]) -> dict:
    return {"id": f"9001{index}", "contest_id": 9001, "index": index, "title": f"Problem {index}",
            "description": "…", "time_limit": 1, "memory_limit": 256, "input_mode": "stdio",
            "rating": 800 if index == "A" else 1200, "official_tests":
            [{"input": i, "output": o} for i, o in tests]}


def test_interrupt_then_resume_and_codeforces_rating(tmp_path):
    problems = tmp_path / "problems.jsonl"
    write_jsonl(problems, [open_r1_row("A", [("1 2\n", "3\n"), ("40 2\n", "42\n")]),
                           open_r1_row("B", [("3\n1 5 2\n", "5\n")])])
    rows = [{"problem_id": "9001A", "sample_index": 0, "completion": fenced(SUM)}]
    rows += [{"problem_id": "9001A", "sample_index": i, "completion": fenced(SLEEPS)}
             for i in (1, 2, 3)]
    rows += [{"problem_id": "9001A", "sample_index": 4, "completion": fenced(SUM)},
             {"problem_id": "9001A", "sample_index": 5, "code": "print(0)"},
             {"problem_id": "9001B", "sample_index": 0, "completion": fenced(MAX)},
             {"problem_id": "9001B", "sample_index": 1, "code": "print(0)"},
             {"problem_id": "9001B", "sample_index": 2, "completion": "no code"}]
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, rows)
    out = tmp_path / "out"
    results_file = out / "results.jsonl"
    command = [sys.executable, "-m", "sandbox.cli", "eval", "--benchmark", "codeforces",
               "--problems", str(problems), "--samples", str(samples), "--out", str(out),
               "--k", "1,2", "--no-progress"]

    process = subprocess.Popen(command + ["--concurrency", "1"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if results_file.exists() and results_file.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same command again" in stderr
    first_run = read_jsonl(results_file)
    # Sample 0 was graded; the sleeping samples take 3 s each at concurrency 1, so the run
    # stopped well before the end, and what it wrote is whole lines.
    assert 1 <= len(first_run) < len(rows)
    assert results_file.read_text().endswith("\n")
    assert first_run[0]["sample_index"] == 0 and first_run[0]["verdict"] == "AC"
    assert not (out / "summary.json").exists()

    cache = tmp_path / "cache"
    # Four rated participants at 1500. The model: A at sample 0 (500) + B at sample 0 (1000)
    # = 1500 points; p3 (1400) is the first behind it → rank 3; 1 + 4/(1 + 10^x) = 3 → 1500.
    write_contest(cache, 9001, [("A", 500), ("B", 1000)],
                  [("p1", 2500, 0), ("p2", 1600, 0), ("p3", 1400, 0), ("p4", 300, 0)],
                  {f"p{i}": 1500 for i in range(1, 5)})
    ratings = tmp_path / "ratings.json"
    ratings.write_text(json.dumps({"1000": 2, "1500": 3, "1700": 1, "1800": 4}))
    second = subprocess.run(command + ["--concurrency", "3", "--cf-cache", str(cache),
                                       "--ratings", str(ratings), "--min-participants", "2"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    results = read_jsonl(results_file)
    assert len(results) == len(rows) and len(set(keys(results))) == len(rows)
    assert results[:len(first_run)] == first_run
    verdicts = {(r["problem_id"], r["sample_index"]): r["verdict"] for r in results}
    assert [verdicts[("9001A", i)] for i in range(6)] == ["AC", "TLE", "TLE", "TLE", "AC", "WA"]
    assert [verdicts[("9001B", i)] for i in range(3)] == ["AC", "WA", "NO_CODE"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["already_graded"] == len(first_run)
    assert summary["run"]["graded_this_run"] == len(rows) - len(first_run)
    rating = summary["codeforces_rating"]
    assert rating["rating"] == 1500 and rating["percentile"] == pytest.approx(20.0)
    assert rating["contests"][0]["rank"] == 3 and rating["contests"][0]["solved"] == ["A", "B"]
    assert summary["breakdowns"]["difficulty"]["800"]["pass_at_k"]["pass@1"]["value"] == \
        pytest.approx(2 / 6)
    report = (out / "report.md").read_text()
    assert "## Codeforces rating" in report and "| rating | 1500 |" in report
    assert "| percentile | 20.0% |" in report
    assert "Codeforces rating" in (out / "report.html").read_text()
    assert not (out / "accuracy_vs_budget.png").exists()      # no budgets in these samples
    assert "Codeforces rating 1500, percentile 20.0%" in second.stdout


def test_submission_the_sandbox_refuses_is_recorded_invalid(tmp_path):
    samples_file = tmp_path / "samples.jsonl"
    write_jsonl(samples_file, [
        {"problem_id": P1, "sample_index": 0, "code": "print(1)", "language": "brainfuck"},
        {"problem_id": P1, "sample_index": 1, "completion": "```python\n   \n```"}])
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--samples",
                 str(samples_file), "--out", str(out), "--k", "1", "--no-progress"]) == 0
    invalid, empty = sorted(read_jsonl(out / "results.jsonl"), key=lambda r: r["sample_index"])
    assert invalid["verdict"] == "INVALID" and "unknown language" in invalid["message"]
    assert empty["verdict"] == "NO_CODE"      # an empty code block is no code
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass_at_k"]["pass@1"]["value"] == 0


def test_platform_selection_grades_only_the_chosen_problems(tmp_path):
    samples_file = tmp_path / "samples.jsonl"
    write_jsonl(samples_file, lcb_samples())
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--samples",
                 str(samples_file), "--out", str(out), "--platform", "leetcode",
                 "--no-progress"]) == 0
    graded = {row["problem_id"] for row in read_jsonl(out / "results.jsonl")}
    assert graded == {P2}
    # The SandboxFusion rows carry no contest date: a date window selects nothing, clearly.
    assert main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_ROWS), "--samples",
                 str(samples_file), "--out", str(tmp_path / "out2"), "--release", "release_v6",
                 "--no-progress"]) == 2

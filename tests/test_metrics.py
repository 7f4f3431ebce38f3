"""pass@k (unbiased estimator) and the summary's breakdowns, against hand-computed values."""
from __future__ import annotations

import pytest

from sandbox.benchmarks.metrics import (Counts, breakdown, counts_by_problem, mean_pass_at_k,
                                        month_of, pass_at_k)
from sandbox.evaluation.samples import Sample
from sandbox.evaluation.summary import summarize
from sandbox.problem import Problem


@pytest.mark.parametrize("n, c, k, expected", [
    (5, 2, 2, 0.7),            # 1 − C(3,2)/C(5,2) = 1 − 3/10
    (5, 2, 1, 0.4),            # pass@1 is c/n
    (10, 3, 1, 0.3),
    (10, 3, 5, 1 - 21 / 252),  # 1 − C(7,5)/C(10,5) = 1 − 21/252 = 0.91666…
    (4, 1, 4, 1.0),            # every sample drawn: the correct one is among them
    (5, 4, 2, 1.0),            # n − c < k: C(1,2) = 0
    (5, 0, 3, 0.0),
    (8, 8, 8, 1.0),
    (6, 1, 3, 0.5),            # 1 − C(5,3)/C(6,3) = 1 − 10/20
])
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n, c, k, message", [
    (3, 1, 4, "need 1 <= k <= n, got k=4, n=3"), (3, 4, 1, "need 0 <= c <= n, got n=3, c=4"),
    (3, 1, 0, "need 1 <= k <= n, got k=0, n=3"), (-1, 0, 1, "need 0 <= c <= n, got n=-1, c=0"),
    (3, -1, 1, "need 0 <= c <= n, got n=3, c=-1"),
    (0, 0, 1, "need 1 <= k <= n, got k=1, n=0"),  # no samples: c is fine, k is not
])
def test_pass_at_k_rejects_impossible_arguments(n, c, k, message):
    with pytest.raises(ValueError) as error:
        pass_at_k(n, c, k)
    assert str(error.value) == message


def test_mean_skips_problems_with_fewer_samples_than_k():
    counts = [Counts(5, 2), Counts(1, 1), Counts(2, 0)]
    table = mean_pass_at_k(counts, [1, 2, 5])
    # pass@1: (0.4 + 1 + 0) / 3
    assert table[1] == {"value": pytest.approx(1.4 / 3), "problems": 3}
    # pass@2: the n=1 problem is left out: (0.7 + 0) / 2
    assert table[2] == {"value": pytest.approx(0.35), "problems": 2}
    # pass@5: only the n=5 problem: 1 − C(3,5)/C(5,5) = 1
    assert table[5] == {"value": pytest.approx(1.0), "problems": 1}
    assert mean_pass_at_k(counts, [10])[10] == {"value": None, "problems": 0}


def test_breakdown_groups_and_unknown():
    counts = {"a": Counts(4, 4), "b": Counts(4, 0), "c": Counts(4, 2), "d": Counts(2, 1)}
    level = {"a": "easy", "b": "easy", "c": "hard", "d": ""}
    table = breakdown(counts, level.get, [1, 4])
    assert list(table) == ["easy", "hard", "unknown"]
    assert table["easy"]["problems"] == 2 and table["easy"]["samples"] == 8
    assert table["easy"]["passed"] == 4
    assert table["easy"]["pass_at_k"][1]["value"] == pytest.approx(0.5)      # (1 + 0) / 2
    assert table["easy"]["pass_at_k"][4]["value"] == pytest.approx(0.5)      # (1 + 0) / 2
    # c: pass@4 with n=4, c=2 is 1; pass@1 is 0.5
    assert table["hard"]["pass_at_k"][1]["value"] == pytest.approx(0.5)
    assert table["hard"]["pass_at_k"][4]["value"] == pytest.approx(1.0)
    assert table["unknown"]["pass_at_k"][4] == {"value": None, "problems": 0}


def test_month_and_counts():
    assert month_of("2024-08-17") == "2024-08"
    assert month_of("2024-08-17T10:00:00") == "2024-08"
    assert month_of("") == "unknown"
    assert month_of("2024-08") == "2024-08"  # exactly a month
    assert month_of("2024") == "unknown"
    counts = counts_by_problem([("x", True), ("x", False), ("y", False), ("x", True)])
    assert counts == {"x": Counts(3, 2), "y": Counts(1, 0)}


def _problem(pid, difficulty, platform, date):
    return Problem(id=pid, tests=[{"input": "", "output": ""}], difficulty=difficulty,
                   platform=platform, contest_date=date)


def test_summary_breakdowns_verdicts_and_budgets():
    problems = {"p1": _problem("p1", "easy", "atcoder", "2024-08-03"),
                "p2": _problem("p2", "hard", "leetcode", "2024-09-21"),
                "p3": _problem("p3", "hard", "atcoder", "2024-09-01")}
    samples = [Sample("p1", i, "x", "python", budget=1024 * (1 + i % 2)) for i in range(4)] \
        + [Sample("p2", i, "x", "python", budget=1024 * (1 + i % 2)) for i in range(4)] \
        + [Sample("p3", 0, "x", "python", budget=1024)]
    verdicts = {("p1", 0): "AC", ("p1", 1): "AC", ("p1", 2): "WA", ("p1", 3): "AC",
                ("p2", 0): "NO_CODE", ("p2", 1): "AC", ("p2", 2): "TLE", ("p2", 3): "WA"}
    results = [{"problem_id": p, "sample_index": i, "verdict": v} for (p, i), v in verdicts.items()]
    results.append({"problem_id": "other", "sample_index": 0, "verdict": "AC"})  # not a sample
    summary = summarize(problems, samples, results, [1, 2], benchmark="livecodebench")

    counts = summary["counts"]
    assert counts["samples"] == 9 and counts["graded"] == 8 and counts["not_graded"] == 1
    assert counts["problems_evaluated"] == 2 and counts["passed"] == 4
    # p1: n=4 c=3 → pass@1 0.75, pass@2 1 − C(1,2)/C(4,2) = 1; p2: n=4 c=1 → 0.25, 1 − 3/6 = 0.5
    assert summary["pass_at_k"]["pass@1"]["value"] == pytest.approx(0.5)
    assert summary["pass_at_k"]["pass@2"]["value"] == pytest.approx(0.75)
    by_platform = summary["breakdowns"]["platform"]
    assert set(by_platform) == {"atcoder", "leetcode"}     # p3 has no graded sample yet
    assert by_platform["leetcode"]["pass_at_k"]["pass@1"]["value"] == pytest.approx(0.25)
    by_month = summary["breakdowns"]["month"]
    assert by_month["2024-08"]["pass_at_k"]["pass@2"]["value"] == pytest.approx(1.0)
    assert by_month["2024-09"]["problems"] == 1
    assert summary["verdicts"] == {"AC": 4, "WA": 2, "NO_CODE": 1, "TLE": 1}
    # budget 1024: p1 samples 0, 2 (AC, WA) → 0.5; p2 samples 0, 2 (NO_CODE, TLE) → 0 → 0.25
    # budget 2048: p1 samples 1, 3 (AC, AC) → 1; p2 samples 1, 3 (AC, WA) → 0.5 → 0.75
    budgets = {b["label"]: b for b in summary["budgets"]}
    assert budgets["1024"]["pass@1"] == pytest.approx(0.25)
    assert budgets["2048"]["pass@1"] == pytest.approx(0.75)
    assert [b["total"] for b in summary["budgets"]] == [1024, 2048]

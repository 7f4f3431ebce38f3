"""summary.json: pass@k overall and by difficulty / platform / month, verdicts, accuracy by
budget, and the Codeforces rating when it was computed.

Only results of the samples in the current samples file count; a sample that was not graded
(yet) is left out, a NO_CODE or INVALID one counts as a failure.
"""
from __future__ import annotations

from collections import Counter

from sandbox.benchmarks.metrics import Counts, breakdown, mean_pass_at_k, month_of
from sandbox.evaluation.results import result_key
from sandbox.evaluation.samples import Sample, budget_label, budget_total
from sandbox.problem import Problem

BREAKDOWNS = (("difficulty", "difficulty"), ("platform", "platform"), ("month", "month"))


def _attribute(problem: Problem, name: str) -> str:
    if name == "month":
        return month_of(problem.contest_date)
    return str(getattr(problem, name) or "")


def _pass_table(table: dict[int, dict]) -> dict[str, dict]:
    return {f"pass@{k}": value for k, value in table.items()}


def summarize(problems: dict[str, Problem], samples: list[Sample], results: list[dict],
              ks: list[int], *, benchmark: str = "", rating: dict | None = None) -> dict:
    wanted = {sample.key: sample for sample in samples}
    graded = {}
    for row in results:
        key = result_key(row)
        if key in wanted:
            graded[key] = row
    outcomes: dict[str, list[bool]] = {}
    for (problem_id, _index), row in graded.items():
        outcomes.setdefault(problem_id, []).append(row.get("verdict") == "AC")
    counts = {pid: Counts(len(flags), sum(flags)) for pid, flags in sorted(outcomes.items())}

    summary = {
        "benchmark": benchmark,
        "counts": {
            "problems": len(problems),
            "problems_with_samples": len({s.problem_id for s in samples}),
            "problems_evaluated": len(counts),
            "samples": len(samples),
            "graded": len(graded),
            "not_graded": len(samples) - len(graded),
            "passed": sum(c.c for c in counts.values()),
        },
        "ks": ks,
        "pass_at_k": _pass_table(mean_pass_at_k(counts.values(), ks)),
        "breakdowns": {},
        "verdicts": dict(Counter(row.get("verdict", "?") for row in graded.values()).most_common()),
        "budgets": budget_table(wanted, graded),
        "problems": [
            {"id": pid, "samples": c.n, "passed": c.c,
             "difficulty": problems[pid].difficulty, "platform": problems[pid].platform,
             "month": month_of(problems[pid].contest_date)}
            for pid, c in counts.items()],
    }
    for title, attribute in BREAKDOWNS:
        table = breakdown(counts, lambda pid: _attribute(problems[pid], attribute), ks)
        summary["breakdowns"][title] = {
            group: {"problems": entry["problems"], "samples": entry["samples"],
                    "passed": entry["passed"], "pass_at_k": _pass_table(entry["pass_at_k"])}
            for group, entry in table.items()}
    if rating is not None:
        summary["codeforces_rating"] = rating
    return summary


def budget_table(wanted: dict, graded: dict) -> list[dict]:
    """Accuracy per budget: pass@1 (the mean over problems of each one's pass rate) and the
    plain share of samples accepted. Empty when no sample has a budget."""
    if all(sample.budget is None for sample in wanted.values()):
        return []
    groups: dict[str, dict] = {}
    for key, row in graded.items():
        budget = wanted[key].budget
        label = budget_label(budget)
        group = groups.setdefault(label, {"budget": budget, "label": label,
                                          "total": budget_total(budget), "by_problem": {}})
        flags = group["by_problem"].setdefault(key[0], [])
        flags.append(row.get("verdict") == "AC")
    table = []
    for group in groups.values():
        by_problem = group.pop("by_problem")
        rates = [sum(flags) / len(flags) for flags in by_problem.values()]
        all_flags = [flag for flags in by_problem.values() for flag in flags]
        table.append(group | {"problems": len(by_problem), "samples": len(all_flags),
                              "pass@1": sum(rates) / len(rates),
                              "accepted": sum(all_flags) / len(all_flags)})
    table.sort(key=lambda g: (g["total"] is None, g["total"] or 0, g["label"]))
    return table

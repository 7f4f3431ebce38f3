"""The samples file: one JSON object per line,

    {problem_id, sample_index, completion | code, language?, budget?}

`completion` is a model's answer: its code is the last fenced block after the last
`</think>`, in the fence's language (`language`, else python, when the fence names none).
`code` is taken as it is, in `language` (default python). `budget` (a number, or an object
like {"thinking": 1024, "solution": 1024}) is carried into the results and the reports.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sandbox.benchmarks.extract import extract_code, solution_part
from sandbox.problem import ProblemError

DEFAULT_LANGUAGE = "python"


@dataclass
class Sample:
    problem_id: str
    sample_index: int
    code: str | None        # None: the completion has no code block (verdict NO_CODE)
    language: str
    budget: object = None

    @property
    def key(self) -> tuple[str, int]:
        return self.problem_id, self.sample_index


def sample_from_row(row: dict, where: str) -> Sample:
    if not isinstance(row, dict):
        raise ProblemError(f"{where}: a sample must be a JSON object")
    if "problem_id" not in row:
        raise ProblemError(f"{where}: `problem_id` is missing")
    index = row.get("sample_index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ProblemError(f"{where}: `sample_index` must be a non-negative integer")
    language = row.get("language") or DEFAULT_LANGUAGE
    if not isinstance(language, str):
        raise ProblemError(f"{where}: `language` must be a string")
    budget = row.get("budget")
    if budget is not None and not _valid_budget(budget):
        raise ProblemError(f"{where}: `budget` must be a number or an object of numbers")
    if isinstance(row.get("code"), str):
        code = row["code"]
    elif isinstance(row.get("completion"), str):
        found = extract_code(solution_part(row["completion"]), default_language=language)
        code, language = found if found else (None, language)
    else:
        raise ProblemError(f"{where}: a sample needs a `completion` or `code` string")
    if code is not None and not code.strip():
        code = None
    return Sample(str(row["problem_id"]), index, code, language, budget)


def _valid_budget(budget) -> bool:
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(budget, dict):
        return bool(budget) and all(number(v) for v in budget.values())
    return number(budget)


def read_samples(path: str | Path) -> list[Sample]:
    """All samples of a JSONL file; raises ProblemError on a bad line or a repeated key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemError(f"samples file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"cannot read {path}: {exc}") from None
    samples, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProblemError(f"{where}: not a JSON line: {exc}") from None
        sample = sample_from_row(row, where)
        if sample.key in seen:
            raise ProblemError(f"{where}: problem {sample.problem_id!r} sample "
                               f"{sample.sample_index} appears twice")
        seen.add(sample.key)
        samples.append(sample)
    if not samples:
        raise ProblemError(f"{path}: no samples")
    return samples


def budget_label(budget) -> str:
    """A stable, readable name for a budget: "1024" or "solution=1024, thinking=1024"."""
    if budget is None:
        return "none"
    if isinstance(budget, dict):
        return ", ".join(f"{key}={_number(value)}" for key, value in sorted(budget.items()))
    return _number(budget)


def budget_total(budget) -> float | None:
    """The budget as one number (the sum of an object's parts), for plotting."""
    if budget is None:
        return None
    if isinstance(budget, dict):
        return float(sum(budget.values()))
    return float(budget)


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"

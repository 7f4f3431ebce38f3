"""LiveCodeBench problems from local files, in the formats RL and evaluation use.

- the official `livecodebench/code_generation_lite` rows (JSONL): public tests as a JSON
  string, private tests as plain JSON or base64 → zlib → pickle → JSON, `metadata.func_name`;
- DeepCoder / rllm rows: `{problem, starter_code, tests: [{input, output, testtype}]}`;
- SandboxFusion's LCB rows: `{id, content, test, labels}` (`test` encoded like private tests,
  holding `{"input_output": "{inputs, outputs, fn_name}"}`).

Tests keep LiveCodeBench's order: all public tests, then the private ones.
"""
from __future__ import annotations

import ast
import base64
import json
import pickle
import re
import zlib
from datetime import date, datetime
from pathlib import Path

from sandbox.benchmarks.io import read_rows
from sandbox.problem import Problem, ProblemError

LCB_TIME_LIMIT_S = 6.0

# Last contest date of each release (from the dataset card); a release holds every problem
# up to its cutoff. `vA_vB` selects what releases A..B added.
RELEASE_CUTOFFS = {
    1: date(2024, 3, 31),
    2: date(2024, 5, 31),
    3: date(2024, 7, 31),
    4: date(2024, 9, 30),
    5: date(2025, 1, 31),
    6: date(2025, 4, 30),
}


def decode_private_tests(text: str) -> list[dict]:
    """Plain JSON, or LiveCodeBench's base64 → zlib → pickle → JSON encoding."""
    if not text:
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        # The payload is the benchmark's own file; pickle here decodes trusted dataset text.
        decoded = pickle.loads(zlib.decompress(base64.b64decode(text.encode("utf-8"))))
    except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as exc:
        raise ProblemError(f"private tests are neither JSON nor LiveCodeBench-encoded: {exc}") from None
    return json.loads(decoded) if isinstance(decoded, (str, bytes)) else decoded


def func_name_from_starter(starter_code: str) -> str:
    """The method a LeetCode starter defines (`def name(self, ...)`)."""
    names = re.findall(r"def\s+([A-Za-z_]\w*)\s*\(\s*self", starter_code or "")
    return names[-1] if names else ""


def _parse_date(value) -> str:
    if not value:
        return ""
    if isinstance(value, (int, float)):
        return datetime.utcfromtimestamp(value).date().isoformat()
    return str(value)[:10]


def _kind(tests: list[dict]) -> str:
    return "functional" if tests and tests[0].get("testtype") == "functional" else "stdin"


def problem_from_official_row(row: dict) -> Problem:
    public = row.get("public_test_cases") or "[]"
    public_tests = json.loads(public) if isinstance(public, str) else list(public)
    private = row.get("private_test_cases") or ""
    private_tests = decode_private_tests(private) if isinstance(private, str) else list(private)
    metadata = row.get("metadata") or "{}"
    metadata = json.loads(metadata) if isinstance(metadata, str) else dict(metadata)
    tests = public_tests + private_tests
    kind = _kind(tests)
    func_name = metadata.get("func_name") or (
        func_name_from_starter(row.get("starter_code", "")) if kind == "functional" else "")
    return Problem(
        id=str(row.get("question_id") or row.get("question_title")),
        kind=kind, func_name=func_name or "",
        tests=[{"input": t["input"], "output": t["output"]} for t in tests],
        starter_code=row.get("starter_code") or "", time_limit_s=LCB_TIME_LIMIT_S,
        compare="lcb", title=row.get("question_title") or "",
        statement=row.get("question_content") or "", platform=row.get("platform") or "",
        difficulty=(row.get("difficulty") or "").lower(),
        contest_date=_parse_date(row.get("contest_date")),
        meta={"contest_id": row.get("contest_id"), "public_tests": len(public_tests),
              "benchmark": "livecodebench"})


def _literal_tests(value) -> list[dict]:
    if isinstance(value, list):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)  # rllm files store Python reprs


def problem_from_rllm_row(row: dict, index: int, source: str = "livecodebench") -> Problem:
    tests = _literal_tests(row.get("tests") or "[]")
    kind = _kind(tests)
    starter = row.get("starter_code") or ""
    func_name = ""
    if kind == "functional":
        func_name = (tests[0].get("metadata") or {}).get("func_name") if isinstance(
            tests[0].get("metadata"), dict) else ""
        func_name = func_name or func_name_from_starter(starter)
        if not func_name:
            raise ProblemError(f"row {index}: functional tests but no func_name in starter_code")
    return Problem(
        id=str(row.get("id") or row.get("question_id") or f"{source}-{index}"), kind=kind,
        func_name=func_name, tests=[{"input": t["input"], "output": t["output"]} for t in tests],
        starter_code=starter, time_limit_s=LCB_TIME_LIMIT_S, compare="lcb",
        statement=row.get("problem") or row.get("question") or "",
        difficulty=(row.get("difficulty") or "").lower(), platform=row.get("platform") or "",
        contest_date=_parse_date(row.get("contest_date")),
        meta={"benchmark": "livecodebench", "format": "rllm", "public_tests": len(tests)})


def problem_from_sandboxfusion_row(row: dict) -> Problem:
    labels = row.get("labels") or "{}"
    labels = json.loads(labels) if isinstance(labels, str) else labels
    payload = decode_private_tests(row["test"])
    in_out = payload["input_output"] if isinstance(payload, dict) else payload
    in_out = json.loads(in_out) if isinstance(in_out, str) else in_out
    func_name = in_out.get("fn_name") or ""
    tests = [{"input": i, "output": o} for i, o in zip(in_out["inputs"], in_out["outputs"])]
    task = labels.get("task_id") or str(row.get("id"))
    return Problem(
        id=task, kind="functional" if func_name else "stdin", func_name=func_name, tests=tests,
        time_limit_s=LCB_TIME_LIMIT_S, compare="lcb", statement=row.get("content") or "",
        platform=(labels.get("category") or task.split("/")[0]).lower(),
        difficulty=(labels.get("difficulty") or "").lower(),
        meta={"benchmark": "livecodebench", "format": "sandboxfusion"})


def detect_and_load(path: str | Path) -> list[Problem]:
    """Loads any of the three formats, told apart by their fields."""
    rows = read_rows(path)
    problems = []
    for index, row in enumerate(rows):
        if "public_test_cases" in row:
            problems.append(problem_from_official_row(row))
        elif "test" in row and "content" in row:
            problems.append(problem_from_sandboxfusion_row(row))
        elif "tests" in row:
            problems.append(problem_from_rllm_row(row, index))
        else:
            raise ProblemError(f"{path}: row {index} is not a LiveCodeBench row "
                               f"(fields: {', '.join(sorted(row)[:8])})")
    return problems


def release_window(version: str) -> tuple[date | None, date]:
    """`release_v5` → (None, cutoff v5); `v4_v5` → (after cutoff v3, cutoff v5)."""
    match = re.fullmatch(r"(?:release_)?v(\d+)(?:_v(\d+))?", version.strip().lower())
    if not match:
        raise ProblemError(f"unknown release version {version!r} (use release_vN or vA_vB)")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if last not in RELEASE_CUTOFFS or first not in RELEASE_CUTOFFS:
        raise ProblemError(f"unknown release version {version!r}")
    start = RELEASE_CUTOFFS.get(first - 1) if match.group(2) else None
    return start, RELEASE_CUTOFFS[last]


def select(problems: list[Problem], *, release: str | None = None, start_date: str | None = None,
           end_date: str | None = None, platforms: list[str] | None = None,
           difficulties: list[str] | None = None) -> list[Problem]:
    """Filters by release version or date window (inclusive), platform and difficulty."""
    after, until = (None, None)
    if release:
        after, until = release_window(release)
    chosen = []
    for problem in problems:
        day = date.fromisoformat(problem.contest_date) if problem.contest_date else None
        if (release or start_date or end_date) and day is None:
            continue
        if after and day <= after:
            continue
        if until and day > until:
            continue
        if start_date and day < date.fromisoformat(start_date):
            continue
        if end_date and day > date.fromisoformat(end_date):
            continue
        if platforms and problem.platform.lower() not in {p.lower() for p in platforms}:
            continue
        if difficulties and problem.difficulty.lower() not in {d.lower() for d in difficulties}:
            continue
        chosen.append(problem)
    return chosen

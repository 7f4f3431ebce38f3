"""The `reward_model.ground_truth` string of the plugin's parquet rows, and its parsing.

It is a JSON object in the sandbox's problem-file format (see README.md, "The problem file"),
plus bookkeeping:

    {"format": "code-sandbox/v1", "id", "kind": "stdin"|"functional", "func_name",
     "tests": [{"input", "output"}], "time_limit_s", "memory_limit_mb", "compare",
     "checker"?: {language, source, convention, files?: {name: {text}}},
     "input_mode"?: "stdin"|"file",
     "source": "livecodebench"|"primeintellect"|"taco"|"codeforces"|...,
     "total_tests": N (before selection), "selection": "all" | "longest-15"}

Functional tests follow LiveCodeBench: one JSON value per input line (one positional argument),
the output is JSON.

The ground truth of verl's own code rewards (prime_code, sandbox_fusion), `{"inputs": [...],
"outputs": [...], "fn_name"?}`, is read too, so that rows made for them need no conversion: all
their tests, verl's 10 s per test, 1024 MB, whitespace tokens for stdin and `lcb:data` for
functional tests (verl_plugin/apps_tests.py).
"""
from __future__ import annotations

import json
from functools import lru_cache

from sandbox.problem import Problem, ProblemError, problem_from_dict
from verl_plugin import apps_tests

FORMAT = "code-sandbox/v1"


def to_ground_truth(problem: Problem, *, source: str, total_tests: int | None = None,
                    selection: str = "all") -> str:
    data = {"format": FORMAT, "id": problem.id, "kind": problem.kind, "func_name": problem.func_name,
            "tests": [{"input": t["input"], "output": t["output"]} for t in problem.tests],
            "time_limit_s": problem.time_limit_s, "memory_limit_mb": problem.memory_limit_mb,
            "compare": problem.compare, "source": source,
            "total_tests": len(problem.tests) if total_tests is None else int(total_tests),
            "selection": selection}
    if problem.checker:
        checker = {"language": problem.checker["language"], "source": problem.checker["source"],
                   "convention": problem.checker.get("convention") or "testlib"}
        files = problem.checker.get("files") or {}
        if files:  # e.g. testlib.h, inline
            checker["files"] = {name: {"text": content if isinstance(content, str)
                                       else content.decode("utf-8", errors="replace")}
                                for name, content in files.items()}
        data["checker"] = checker
    if problem.input_mode != "stdin":
        data["input_mode"] = problem.input_mode
    if problem.max_processes:
        data["max_processes"] = problem.max_processes
    return json.dumps(data, ensure_ascii=False)


def parse_ground_truth(ground_truth, cache: bool = True) -> Problem:
    """A Problem from the ground-truth JSON string (or an already decoded dict)."""
    if isinstance(ground_truth, (bytes, bytearray)):
        ground_truth = ground_truth.decode("utf-8")
    if isinstance(ground_truth, str):
        return _parse_cached(ground_truth) if cache else _parse_text(ground_truth)
    if isinstance(ground_truth, dict):
        return _parse(dict(ground_truth))
    raise ProblemError(f"ground_truth must be a JSON string, got {type(ground_truth).__name__}")


@lru_cache(maxsize=256)
def _parse_cached(text: str) -> Problem:
    # The 8 samples of a GRPO group carry the same (possibly megabytes long) string: parse it once.
    return _parse_text(text)


def _parse_text(text: str) -> Problem:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(f"ground_truth is not JSON: {exc}") from None
    return _parse(data)


VERL_TIME_LIMIT_S = 10.0  # verl's sandbox_fusion reward: its default per-test timeout
VERL_MEMORY_LIMIT_MB = 1024


def _from_verl(data: dict) -> dict:
    """verl's `{inputs, outputs, fn_name?}` ground truth as a problem of ours."""
    kind, func_name, tests = apps_tests.from_inputs_outputs(data, "ground_truth")
    if not tests:
        raise ProblemError("ground_truth has no tests (`inputs` is empty)")
    return {"kind": kind, "func_name": func_name, "tests": tests, "source": "verl",
            "time_limit_s": VERL_TIME_LIMIT_S, "memory_limit_mb": VERL_MEMORY_LIMIT_MB,
            "compare": "lcb:data" if kind == "functional" else "tokens"}


def _parse(data: dict) -> Problem:
    if not isinstance(data, dict):
        raise ProblemError("ground_truth must be a JSON object")
    if "format" not in data and "tests" not in data and "inputs" in data:
        data = _from_verl(data)
    if data.get("format") not in (None, FORMAT):
        raise ProblemError(f"unknown ground_truth format {data.get('format')!r} (expected {FORMAT})")
    problem = problem_from_dict(data)
    problem.meta = {"source": data.get("source", ""), "total_tests": data.get("total_tests"),
                    "selection": data.get("selection", "all")}
    return problem

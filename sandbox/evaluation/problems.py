"""A benchmark's problems, loaded with the loaders of sandbox/benchmarks."""
from __future__ import annotations

from pathlib import Path

from sandbox.benchmarks import codeforces, livecodebench
from sandbox.problem import Problem, ProblemError

BENCHMARKS = ("livecodebench", "codeforces")


def load_benchmark(benchmark: str, path: str | Path,
                   cf_metadata: str | Path | None = None) -> dict[str, Problem]:
    """{problem id: Problem}; raises ProblemError on bad input or duplicate ids."""
    if benchmark == "livecodebench":
        if Path(path).is_dir():
            raise ProblemError(f"{path} is a directory; livecodebench needs a JSON / JSONL file")
        problems = livecodebench.detect_and_load(path)
    elif benchmark == "codeforces":
        problems = codeforces.detect_and_load(path, cf_metadata)
    else:
        raise ProblemError(f"unknown benchmark {benchmark!r} (use {' or '.join(BENCHMARKS)})")
    by_id: dict[str, Problem] = {}
    for problem in problems:
        if problem.id in by_id:
            raise ProblemError(f"{path}: problem id {problem.id!r} appears twice")
        by_id[problem.id] = problem
    if not by_id:
        raise ProblemError(f"{path}: no problems")
    return by_id

"""Grades the bundled examples/ and prints a verdict table (the README's main job)."""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sandbox.problem import load_problem
from sandbox.v1 import sandbox_pb2 as pb

EXTENSIONS = {".py": "python", ".cpp": "cpp"}


def example_solutions(directory: Path) -> list[tuple[Path, Path, str]]:
    """(problem.json, solution file, expected verdict) for every example solution."""
    found = []
    for problem_file in sorted(directory.glob("*/problem.json")):
        for solution in sorted((problem_file.parent / "solutions").iterdir()):
            if solution.suffix in EXTENSIONS:
                found.append((problem_file, solution, solution.name.split("_", 1)[0].upper()))
    return found


def grade_examples(directory: Path, backend, as_json: bool = False) -> int:
    items = example_solutions(directory)
    if not items:
        print(f"no examples found under {directory}", file=sys.stderr)
        return 2

    def grade(item):
        problem_file, solution, _expected = item
        problem = load_problem(problem_file)
        request = problem.grade_request(solution.read_text(), EXTENSIONS[solution.suffix],
                                        request_id=solution.name)
        return backend.grade(request)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = []
        for index, response in enumerate(pool.map(grade, items), start=1):
            results.append(response)
            if not as_json:
                print(f"\rgraded {index}/{len(items)}", end="", file=sys.stderr, flush=True)
    if not as_json:
        print("\r", end="", file=sys.stderr)
    mismatches = 0
    rows = []
    for (problem_file, solution, expected), response in zip(items, results):
        got = pb.Verdict.Name(response.verdict)
        ok = got == expected
        mismatches += not ok
        rows.append((problem_file.parent.name, solution.name, expected, got,
                     f"{response.passed}/{response.total}", f"{response.timings.total_s:.2f}s",
                     "ok" if ok else "MISMATCH"))
        if as_json:
            print(json.dumps({"problem": rows[-1][0], "solution": rows[-1][1], "expected": expected,
                              "verdict": got, "passed": response.passed, "total": response.total}))
    if not as_json:
        header = ("problem", "solution", "expected", "verdict", "passed", "time", "")
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        print(f"\n{len(rows)} solutions graded in {time.monotonic() - started:.1f} s; "
              f"{len(rows) - mismatches} as expected, {mismatches} not")
    return 0 if mismatches == 0 else 1

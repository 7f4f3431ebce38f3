"""`compare: lcb` grades as lcb_runner does: its execution model, not only its comparison.

tests/data/lcb_runner_verdicts.json holds our own programs (tests/lcb_differential_cases.py:
stdin reading and writing styles, SystemExit and its relatives, the main guard, top-level
globals / return / yield, `class Solution` text, reliability_guard's disabled names, numpy,
big int strings, CRLF input, sNaN, sleeping; the functional path with the same ideas) and
the outcome lcb_runner (LiveCodeBench @28fef95) gave each, recorded by
tests/tools/record_lcb_verdicts.py. Each is graded here through the real jail and must get
the same verdict.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import make_tests
from sandbox.v1 import sandbox_pb2 as pb

FIXTURE = Path(__file__).resolve().parent / "data" / "lcb_runner_verdicts.json"
DOCUMENT = json.loads(FIXTURE.read_text())
CASES = DOCUMENT["cases"]
# lcb_runner's per-test alarm there, our time limit here (TLE is on CPU time here; a sleep
# past it is TLE in both).
TIME_LIMIT_S = DOCUMENT["time_limit_s"]


def lcb_verdicts(outcome: dict) -> set[str]:
    """The verdicts of ours that mean what lcb_runner's outcome means."""
    code = outcome["metadata"].get("error_code")
    if code is None:
        # lcb_runner's pass: every test's `==` result > 0 (True, or what a result's own
        # __eq__ gave); a truthy one that is not (-1) fails with no error code.
        results = outcome["results"]
        assert all(isinstance(r, int) for r in results), outcome
        return {"AC"} if all(r > 0 for r in results) else {"WA"}
    if code == -2:
        return {"WA"}
    if code == -3:
        return {"TLE"}
    if code == -4:
        if outcome["metadata"].get("error_message", "").startswith("Error during testing"):
            return {"RE", "CE"}  # raised before the tests ran: a syntax error is a CE here
        if outcome["metadata"].get("error", "").startswith("MemoryError"):
            return {"RE", "MLE"}  # here a failed allocation is MLE
        return {"RE"}
    if code == -5:  # the worker process died without a result (os._exit, BaseException)
        return {"RE"}
    raise AssertionError(f"unknown lcb_runner outcome {outcome}")


def request_for(case: dict) -> pb.GradeRequest:
    kind = pb.FUNCTIONAL if case["kind"] == "functional" else pb.STDIN
    return pb.GradeRequest(
        language="python", source=case["source"], kind=kind, func_name=case.get("func_name", ""),
        test_set=make_tests([(t["input"], t["output"]) for t in case["tests"]]),
        comparison=pb.Comparison(mode=pb.Comparison.LCB),
        limits=pb.Limits(time_limit_s=TIME_LIMIT_S, memory_limit_mb=512))


def grade_all(judge, cases: list[dict]) -> dict[str, pb.GradeResponse]:
    def grade(case):
        request = request_for(case)
        return case["id"], judge.grade(request, request.test_set)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(grade, cases))


def disagreements(judge, cases: list[dict]) -> list[str]:
    responses = grade_all(judge, cases)
    found = []
    for case in cases:
        response = responses[case["id"]]
        ours = pb.Verdict.Name(response.verdict)
        wanted = lcb_verdicts(case["lcb"])
        if ours not in wanted:
            found.append(f"{case['id']}: ours {ours} ({response.message[:160]!r}), lcb_runner "
                         f"{sorted(wanted)} {case['lcb']['metadata'].get('error_message', '')[:80]!r}")
    return found


def test_fixture_covers_the_families():
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 400
    assert DOCUMENT["lcb_runner_commit"].startswith("28fef95")
    families = {case_id.split("/")[0] for case_id in ids}
    assert {"io", "lines", "end", "guard", "structure", "input", "func"} <= families
    # lcb_runner's verdicts vary: the suite is not all one verdict
    seen = {frozenset(lcb_verdicts(case["lcb"])) for case in CASES}
    assert len(seen) >= 5


@pytest.mark.parametrize("kind", ["stdin", "functional"])
def test_same_verdict_as_lcb_runner(judge, kind):
    cases = [case for case in CASES if case["kind"] == kind]
    found = disagreements(judge, cases)
    assert not found, f"{len(found)} of {len(cases)} differ from lcb_runner:\n" + "\n".join(found)


def test_results_compared_in_the_programs_process(judge):
    """A result that is not plain data is compared where lcb_runner compares it, in the
    program's process: its own __eq__ (or numpy's) decides, as there."""
    cases = [case for case in CASES if case["id"].startswith("func/eq/")
             or case["id"] == "func/custom-eq"]
    assert len(cases) >= 30
    assert not disagreements(judge, cases)
    accepted = grade_all(judge, [case for case in cases if case["id"] == "func/custom-eq"])
    response = accepted["func/custom-eq"]
    assert pb.Verdict.Name(response.verdict) == "AC"
    assert "own ==" in response.tests[0].message  # an accepted object says how it was


# With python_fast_path off every test is a fresh interpreter, so what one test leaves is not
# seen by the next (lcb_runner's worker, and the warm path here, run them in one process).
COLD_STATE_DIFFERENCES = {"func/instance-state", "func/module-counter"}


def cold_differs(case: dict) -> bool:
    """The cases the cold path (a testing mode) grades differently: state across tests, and
    results compared in the program's process (there they are compared as data, outside)."""
    return (case["id"] in COLD_STATE_DIFFERENCES or case["id"] == "func/custom-eq"
            or case["id"].startswith("func/eq/"))


def test_state_a_test_leaves_is_seen_by_the_next(judge):
    """lcb_runner runs a submission's tests in one process with one Solution instance."""
    cases = [case for case in CASES if case["id"] in COLD_STATE_DIFFERENCES]
    assert len(cases) == len(COLD_STATE_DIFFERENCES)
    assert not disagreements(judge, cases)


def test_cold_interpreters_agree_too(cold_judge):
    """Every 8th case with a fresh interpreter per test (python_fast_path off)."""
    cases = [case for case in CASES[::8] if not cold_differs(case)]
    found = disagreements(cold_judge, cases)
    assert not found, "\n".join(found)


def test_lcb_process_keeps_the_process_model(judge):
    """lcb-process: a script on the real stdin; SystemExit's status counts, iteration works."""
    def verdict(source: str, given: str = "3 4\n") -> str:
        request = pb.GradeRequest(language="python", source=source,
                                  test_set=make_tests([(given, "7\n")]),
                                  comparison=pb.Comparison(mode=pb.Comparison.LCB_PROCESS),
                                  limits=pb.Limits(time_limit_s=2, memory_limit_mb=256))
        return pb.Verdict.Name(judge.grade(request, request.test_set).verdict)

    assert verdict("import sys\nprint(7)\nsys.exit(1)\n") == "RE"
    assert verdict("import sys\nfor line in sys.stdin:\n    print(sum(map(int, line.split())))\n") == "AC"
    assert verdict("print(7)\nquit()\n") == "AC"
    assert verdict("print(gcd(14, 7))\n") == "AC"  # LiveCodeBench's import header
    assert verdict("import os\nos.write(1, b'7\\n')\n") == "AC"


def test_info_lists_the_importable_third_party_modules(judge):
    """scripts/setup.sh installs LiveCodeBench's numpy & co for the jail's python3."""
    from sandbox.info import build_info
    info = build_info(judge, capacity=1, max_queue=0)
    python = next(language for language in info.languages if language.name == "python")
    assert {"numpy", "scipy", "sympy", "networkx"} <= set(python.modules)
    assert "sortedcontainers" not in python.modules  # not in LiveCodeBench's environment

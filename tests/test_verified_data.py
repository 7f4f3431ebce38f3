"""Agreement with real problems whose solutions' verdicts are known.

/work/shared/data/verified/problems.jsonl (see /work/shared/data/README.md): for every
problem, each `solutions.correct` solution must be AC and each `solutions.incorrect` one
must get its recorded `observed_verdict`, failing first on the test where it was seen to
fail first. Everything goes through the real gRPC server, with the problem's test set
uploaded once and referred to by digest.
"""
from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA
from sandbox.problem import problem_from_dict
from sandbox.v1 import sandbox_pb2 as pb

PROBLEMS_FILE = SHARED_DATA / "verified" / "problems.jsonl"

if not PROBLEMS_FILE.is_file():
    pytest.skip(f"shared data set not present ({PROBLEMS_FILE} is missing)",
                allow_module_level=True)

ROWS = [json.loads(line) for line in PROBLEMS_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip()]

# The data set's language names -> this server's.
LANGUAGES = {"python": "python", "python3": "python", "py": "python", "pypy": "pypy",
             "pypy3": "pypy", "cpp": "cpp", "c++": "cpp", "cpp17": "cpp", "g++": "cpp"}
VERDICTS = {"AC": pb.AC, "WA": pb.WA, "TLE": pb.TLE, "MLE": pb.MLE, "RE": pb.RE, "CE": pb.CE,
            "OLE": pb.OLE, "PE": pb.PE}
PER_TEST = {".": pb.AC, "W": pb.WA, "T": pb.TLE, "R": pb.RE, "P": pb.PE, "M": pb.MLE}

V = pb.Verdict.Name


def test_data_set_is_well_formed():
    assert len(ROWS) >= 40  # README: 40 problems
    ids = [row["id"] for row in ROWS]
    assert len(set(ids)) == len(ids)
    for row in ROWS:
        for group in ("correct", "incorrect"):
            for solution in row["solutions"][group]:
                assert solution["language"] in LANGUAGES, solution["language"]
                assert solution["observed_verdict"] in VERDICTS
                assert len(solution["observed_per_test"]) == len(row["tests"])
                assert set(solution["observed_per_test"]) <= set(PER_TEST)


@pytest.fixture(scope="module")
def digests(client):
    """Test sets are uploaded lazily, once per problem."""
    return {}


def _summary(response) -> str:
    return (f"{V(response.verdict)} {response.message!r} passed {response.passed}/"
            f"{response.total}\nstderr: {response.first_failure.stderr[-800:]!r}\n"
            f"stdout: {response.first_failure.stdout[:300]!r}\n"
            f"expected: {response.first_failure.expected[:300]!r}")


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_recorded_verdicts(client, judge, digests, row):
    problem = problem_from_dict(row)
    if row["id"] not in digests:
        digests[row["id"]] = client.put_test_set(problem.test_set())
    digest = digests[row["id"]]
    assert client.has_test_set(digest)
    solutions = [("correct", s) for s in row["solutions"]["correct"]] + \
                [("incorrect", s) for s in row["solutions"]["incorrect"]]
    failures = []
    for number, (group, solution) in enumerate(solutions):
        language = LANGUAGES[solution["language"]]
        if language not in judge.languages:
            continue
        # Correct solutions run every test (they pass anyway, and a regression then shows
        # all of its failing tests); incorrect ones stop at their first failure.
        request = problem.grade_request(solution["code"], language,
                                        request_id=f"{row['id']}#{number}", digest=digest,
                                        stop_on_first_failure=group == "incorrect")
        assert request.limits.time_limit_s == row["time_limit_s"]
        assert request.limits.memory_limit_mb == (row["memory_limit_mb"] or 1024)
        assert request.comparison.mode == pb.Comparison.LCB
        assert request.kind == (pb.FUNCTIONAL if row["kind"] == "functional" else pb.STDIN)
        assert request.func_name == (row["func_name"] or "")
        response = client.grade(request)
        assert response.request_id == request.request_id
        assert response.test_set_digest == digest
        assert response.total == len(row["tests"])
        label = f"{group} #{number} ({solution['language']}, {solution['origin'][:60]})"
        if response.verdict == pb.SE:
            failures.append(f"{label}: sandbox error {response.message}")
            continue
        observed = solution["observed_per_test"]
        if group == "correct":
            if response.verdict != pb.AC or response.passed != response.total:
                failing = [r.index for r in response.tests if r.verdict != pb.AC]
                failures.append(f"{label}: expected AC, got {_summary(response)}\n"
                                f"failing tests: {failing[:20]}")
            continue
        expected = VERDICTS[solution["observed_verdict"]]
        first = next(i for i, mark in enumerate(observed) if mark != ".")
        got = [t.verdict for t in response.tests]
        if response.verdict != expected:
            failures.append(f"{label}: expected {solution['observed_verdict']}, got "
                            f"{_summary(response)}")
            continue
        got_first = next(i for i, v in enumerate(got) if v != pb.AC)
        if observed[first] == "T":
            # A slow solution's earlier tests may also run long (one here spends 4.3 s of CPU
            # on a test it passes under a 6 s limit): on a loaded machine the wall-clock cap
            # can catch one of those first. It must still be TLE, and no later than recorded.
            position_ok = got_first <= first and got[got_first] == pb.TLE
        else:
            position_ok = got_first == first and got[first] == PER_TEST[observed[first]]
        if not position_ok:
            failures.append(f"{label}: recorded first failure at test {first} "
                            f"({observed[first]}), got per-test {[V(v) for v in got[:first + 1]]}")
        elif any(v != pb.SKIPPED for v in got[got_first + 1:]):
            failures.append(f"{label}: tests after the first failure were not skipped")
    assert not failures, "\n\n".join(failures)

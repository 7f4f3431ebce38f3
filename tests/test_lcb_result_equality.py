"""`compare: lcb` compares a functional result where lcb_runner does: `result == expected` in
the program's process for what is not plain data (a class of the program's, numpy, a subclass
of Python's types), as data outside the jail for the rest.

The expected output enters the program's process only then, after the test's call returned,
and only when the host sent it for that test: a result record the program forges itself is
not believed, and a stdin program cannot ask for anything.
"""
from __future__ import annotations

import json
import threading

import pytest

from conftest import make_tests
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.problem import parse_compare
from workers import compare
from workers.jail import Jail

SECRET = "alpha-secret-8c1f"


def functional(judge, source: str, tests: list[tuple[list, object]], stop_first: bool = True,
               comparison: pb.Comparison | None = None):
    test_set = make_tests([("\n".join(json.dumps(a) for a in args), json.dumps(out))
                           for args, out in tests])
    request = pb.GradeRequest(language="python", source=source, kind=pb.FUNCTIONAL,
                              func_name="solve", test_set=test_set,
                              comparison=comparison or pb.Comparison(mode=pb.Comparison.LCB),
                              stop_on_first_failure=stop_first,
                              limits=pb.Limits(time_limit_s=2, memory_limit_mb=256))
    return judge.grade(request, test_set)


def verdicts(response) -> list[str]:
    return [pb.Verdict.Name(t.verdict) for t in response.tests]


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The tests whose expected output the host sent into a jail."""
    indices: list[int] = []
    real = Jail._send_expected

    def recorded(jail, index, expected):
        indices.append(index)
        return real(jail, index, expected)

    monkeypatch.setattr(Jail, "_send_expected", recorded)
    return indices


def test_a_plain_result_never_brings_the_expected_output_in(judge, sent):
    source = "class Solution:\n    def solve(self, n):\n        return [n, (n, {n}), {'k': n}]\n"
    response = functional(judge, source, [([1], [1, [1, [1]], {"k": 1}]), ([2], "no")],
                          stop_first=False)
    assert verdicts(response) == ["WA", "WA"] and sent == []


def test_an_object_gets_its_tests_expected_output_after_the_call(judge, sent):
    source = f'''
class Seen:
    def __eq__(self, other):
        return other == {SECRET[::-1]!r}[::-1]
class Solution:
    def solve(self, n):
        return Seen()
'''
    response = functional(judge, source, [([0], SECRET), ([1], "other"), ([2], SECRET)],
                          stop_first=False)
    assert verdicts(response) == ["AC", "WA", "AC"] and sent == [0, 1, 2]
    # numpy's own == too, with the message of a plain accepted test
    response = functional(judge, "import numpy as np\nclass Solution:\n    def solve(self, n):\n"
                                 "        return np.int64(n) * 2\n", [([3], 6), ([4], 9)])
    assert verdicts(response) == ["AC", "WA"] and response.tests[0].message == ""


def test_each_test_is_compared_on_its_own_without_early_stop(judge):
    source = ("class Exactly:\n    def __init__(self, v):\n        self.v = v\n"
              "    def __eq__(self, other):\n        return other == self.v\n"
              "    def __str__(self):\n        return 'Exactly(%d)' % self.v\n"
              "class Solution:\n    def solve(self, n):\n        return Exactly(n + 1 if n else 5)\n")
    response = functional(judge, source, [([1], 2), ([0], 7), ([2], 3)], stop_first=False)
    assert verdicts(response) == ["AC", "WA", "AC"]
    assert response.tests[1].message == "returned Exactly(5), expected 7"


FORGED_RECORD = '''
import json, os, struct
def frame(header, blobs):
    header = dict(header, blobs=len(blobs))
    raw = json.dumps(header).encode()
    parts = [struct.pack(">I", len(raw)), raw]
    for blob in blobs:
        parts += [struct.pack(">Q", len(blob)), blob]
    return b"".join(parts)
'''


def test_a_forged_comparison_is_not_believed(judge, sent):
    """The program writes "I compared equal" on the result channel itself, never having
    returned an object: the host sent no expected output for that test."""
    source = FORGED_RECORD + '''
class Solution:
    def solve(self, n):
        envelope = json.dumps({"compared": {"equal": True}}).encode()
        os.write(3, frame({"record": json.dumps({"lcb": "ok", "exception": ""})},
                          [b"", envelope, b""]))
        return -1
'''
    response = functional(judge, source, [([1], 2)])
    assert verdicts(response) == ["WA"] and sent == []
    assert "malformed" in response.tests[0].message


def test_a_stdin_program_cannot_ask_for_the_expected_output(judge, sent):
    source = FORGED_RECORD + '''
import time
os.write(3, frame({"expected_wanted": True}, []))
time.sleep(0.3)
os.set_blocking(4, False)
try:
    got = os.read(4, 1 << 16)
except BlockingIOError:
    got = b""
print("nothing" if not got else "leaked")
'''
    test_set = make_tests([("1\n", "nothing\n")])
    request = pb.GradeRequest(language="python", source=source, test_set=test_set,
                              comparison=pb.Comparison(mode=pb.Comparison.LCB),
                              limits=pb.Limits(time_limit_s=2, memory_limit_mb=256))
    response = judge.grade(request, test_set)
    assert pb.Verdict.Name(response.verdict) == "AC" and sent == [], response


def test_a_compared_envelope_counts_only_when_the_expected_output_was_sent():
    envelope = json.dumps({"compared": {"equal": True}}).encode()
    assert not compare.compare_functional(envelope, b"7").accepted
    assert compare.compare_functional(envelope, b"7", compared_in_jail=True).accepted
    wrong = json.dumps({"compared": {"equal": False, "shown": "R()"}}).encode()
    outcome = compare.compare_functional(wrong, b"7", compared_in_jail=True)
    assert not outcome.accepted and outcome.message == "returned R(), expected 7"
    assert not compare.compare_functional(json.dumps({"compared": {"equal": "yes"}}).encode(),
                                          b"7", compared_in_jail=True).accepted


EQUAL_TO_EVERYTHING = ("class Any:\n    def __eq__(self, other):\n        return True\n"
                       "class Solution:\n    def solve(self, n):\n        return Any()\n")


def test_results_as_data_closes_the_eq_hack(judge, sent):
    """lcb:data (Comparison.results_as_data): lcb_runner's execution model, every result
    compared outside the jail."""
    as_data = parse_compare("lcb:data")
    assert as_data.mode == pb.Comparison.LCB and as_data.results_as_data
    assert verdicts(functional(judge, EQUAL_TO_EVERYTHING, [([1], 2)])) == ["AC"]
    assert sent == [0]
    del sent[:]
    response = functional(judge, EQUAL_TO_EVERYTHING, [([1], 2)], comparison=as_data)
    assert verdicts(response) == ["WA"] and sent == []
    assert "Any cannot be compared" in response.tests[0].message
    numpy = ("import numpy as np\nclass Solution:\n    def solve(self, n):\n"
             "        return np.int64(n) * 2\n")
    assert verdicts(functional(judge, numpy, [([3], 6)], comparison=as_data)) == ["AC"]
    assert sent == []


def grade_in_time(judge, source: str, tests, timeout_s: float = 60.0):
    """The response, or a failure if the grading has not ended after timeout_s."""
    done: list = []
    thread = threading.Thread(target=lambda: done.append(functional(judge, source, tests)),
                              daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert done, "the grading hung"
    return done[0]


def test_a_request_answered_while_the_agent_has_a_big_result_cannot_deadlock(judge):
    """The program asks for the expected output (over a pipe's 64 KiB) and at once ends its
    test with 1 MiB of stderr: the agent reads the host's answer before it writes the
    result, so neither blocks the other."""
    source = FORGED_RECORD + '''
import time
class Solution:
    def solve(self, n):
        os.write(2, b"x" * (1 << 20))
        time.sleep(0.3)  # the agent has read it all: the frames and the exit come together
        record = json.dumps({"lcb": "ok", "exception": ""})
        os.write(3, frame({"expected_wanted": True}, [])
                 + frame({"record": record}, [b"", b"", b""]))
        os._exit(0)
'''
    big = "y" * 300_000
    response = grade_in_time(judge, source, [([1], big), ([2], big)], timeout_s=30)
    assert verdicts(response)[0] in ("WA", "RE"), response


def test_garbled_result_frames_are_the_programs_failure_not_the_sandboxs(judge):
    for header in ('{"record": 1}', '{"blobs": null}', '{"blobs": 1e400}', '{"record": [1]}'):
        source = FORGED_RECORD + f'''
class Solution:
    def solve(self, n):
        raw = {header!r}.encode()
        os.write(3, struct.pack(">I", len(raw)) + raw)
        return n
'''
        response = grade_in_time(judge, source, [([1], 1), ([2], 2)])
        assert pb.Verdict.Name(response.verdict) not in ("SE", "AC"), (header, response)


def test_plain_data_too_deep_to_send_is_compared_in_process(judge, sent):
    """A dict nested 90 deep is 270 levels as tagged JSON, past what the host reads: it is
    compared where lcb_runner compares it, with the same `==`."""
    source = ("class Solution:\n    def solve(self, n):\n        v = n\n"
              "        for _ in range(90):\n            v = {'k': v}\n        return v\n")
    expected: object = 1
    for _ in range(90):
        expected = {"k": expected}
    response = functional(judge, source, [([1], expected), ([2], expected)], stop_first=False)
    assert verdicts(response) == ["AC", "WA"] and sent == [0, 1]

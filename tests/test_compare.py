"""Unit tests of workers/compare.py: the output comparison modes.

`lcb` follows LiveCodeBench's lcb_runner (grade_stdio / grade_call_based); functional
payloads are built with the agent's own encoder, exactly as the in-jail child writes them.
"""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from workers import compare
from workers.agent import encode_result


@pytest.fixture(autouse=True)
def strict_comparisons(monkeypatch):
    """Every comparison answers a real bool, and a rejection says why (a None or an empty message
    would still read as "not accepted" in a plain `assert not`)."""
    for name in [n for n in dir(compare) if n.startswith("compare_")]:
        original = getattr(compare, name)

        def checked(*args, _original=original, **kwargs):
            result = _original(*args, **kwargs)
            assert isinstance(result.accepted, bool), result
            assert isinstance(result.message, str)
            assert result.accepted or result.message, result
            return result
        monkeypatch.setattr(compare, name, checked)


def lcb(output, expected) -> bool:
    if isinstance(output, str):
        output = output.encode()
    if isinstance(expected, str):
        expected = expected.encode()
    return compare.compare_lcb_stdin(output, expected).accepted


# ---------------------------------------------------------------- lcb (stdin)

@pytest.mark.parametrize("output, expected", [
    ("42", "42"),
    ("42\n", "42"),
    ("42", "42\n"),
    ("1 2 3\n4 5 6\n", "1 2 3\n4 5 6"),
    ("  1 2 3  \n\t4 5 6 \n", "1 2 3\n4 5 6"),       # each line is stripped
    ("1 2\n3\n\n\n   \n", "1 2\n3"),                   # trailing blank lines ignored
    ("\n\n1\n2", "1\n2"),                              # leading blank lines too (whole text stripped)
    ("1\r\n2\r\n", "1\n2"),                            # \r is whitespace: stripped per line
    ("Yes", "Yes"),
    ("", ""),
    ("   \n\n", ""),
    # non-numeric lines: only the per-line strip makes these equal (no Decimal fallback)
    ("Yes \r\nNo\t\n", "Yes\nNo"),
    ("abc  ", "abc"),
    ("  hello world\t\n", "hello world"),
])
def test_lcb_accepts_equal_lines(output, expected):
    assert lcb(output, expected)


@pytest.mark.parametrize("output, expected", [
    ("1.0", "1"),
    ("1", "1.0"),
    ("1e2", "100"),
    ("100", "1E+2"),
    ("0.50 2.000", "0.5 2"),
    ("-0", "0"),
    ("1   2", "1 2"),              # tokens compared as Decimals: runs of spaces don't matter
    ("007", "7"),
    ("3.14159", "3.141590"),
])
def test_lcb_lines_equal_as_decimals(output, expected):
    assert lcb(output, expected)


@pytest.mark.parametrize("output, expected", [
    ("1.0000001", "1"),            # no tolerance: Decimal equality is exact
    ("0.3333333", "0.3333334"),
    ("2", "1"),
    ("yes", "Yes"),                # case matters
    ("YES", "Yes"),
    ("1 2", "1 2 3"),              # fewer tokens on a line
    ("1 2 3", "1 2"),
    ("a  b", "a b"),               # not numbers: runs of spaces inside a line matter
    ("1\n2", "1 2"),               # line structure matters
    ("1 2", "1\n2"),
    ("1\n\n2", "1\n2"),            # an extra line in the middle fails
    ("1\n2\n3", "1\n2"),
    ("1", "1\n2"),
    ("", "0"),
    ("0", ""),
    ("nan", "NAN"),                # "nan" vs "NAN": strings differ and NaN != NaN
    ("1 nan", "1  nan"),           # NaN never equals NaN as a Decimal
    ("abc 1", "abc 1.0"),          # one token not a number: the whole line must match as text
])
def test_lcb_rejects(output, expected):
    assert not lcb(output, expected)


def test_lcb_identical_nan_text_is_accepted():
    # lcb_runner compares the stripped line text first: identical text passes.
    assert lcb("nan", "nan")
    assert lcb("1 nan\n", "1 nan")


def test_lcb_failure_message_names_the_line():
    outcome = compare.compare_lcb_stdin(b"1\n2\n4\n", b"1\n2\n3\n")
    assert not outcome.accepted
    assert "3" in outcome.message
    outcome = compare.compare_lcb_stdin(b"1\n2\n", b"1\n2\n3\n")
    assert not outcome.accepted
    assert "lines" in outcome.message


def test_lcb_invalid_utf8_does_not_crash():
    assert lcb(b"\xff\xfe", b"\xff\xfe")
    assert not lcb(b"\xff", b"1")


@pytest.mark.parametrize("output", ["sNaN", "1 sNaN", "-sNaN", "sNaN\n2"])
def test_lcb_signaling_nan_output_is_a_wrong_answer_not_a_crash(output):
    """A program may print anything. "sNaN" parses as a signaling-NaN Decimal, and comparing
    it raises decimal.InvalidOperation; that must be a wrong answer, never an exception
    (which the judge turns into an INTERNAL error for the whole request)."""
    expected = "1 2" if output.startswith("1 ") else "1\n2" if "\n" in output else "1"
    outcome = compare.compare_lcb_stdin(output.encode(), expected.encode())
    assert not outcome.accepted


# ---------------------------------------------------------------- exact

def test_exact():
    assert compare.compare_exact(b"1 2\n", b"1 2\n").accepted
    assert compare.compare_exact(b"", b"").accepted
    for output, expected in [(b"1 2", b"1 2\n"), (b"1 2\n", b"1 2"), (b"1  2\n", b"1 2\n"),
                             (b"1 2\r\n", b"1 2\n"), (b"1.0\n", b"1\n"), (b"", b"x")]:
        assert not compare.compare_exact(output, expected).accepted, (output, expected)


def test_exact_messages():
    assert "byte 2" in compare.compare_exact(b"abX", b"abc").message
    assert "lengths differ" in compare.compare_exact(b"abc", b"abcd").message


# ---------------------------------------------------------------- tokens

def test_tokens():
    ok = compare.compare_tokens
    assert ok(b"1 2 3", b"1 2 3").accepted
    assert ok(b"  1\n2\t3\n\n", b"1 2 3").accepted
    assert ok(b"1\r\n2\r\n", b"1\n2\n").accepted
    assert ok(b"", b"  \n").accepted
    assert not ok(b"1 2", b"1 2 3").accepted
    assert not ok(b"1 2 3 4", b"1 2 3").accepted
    assert not ok(b"1.0", b"1").accepted          # tokens are compared as text
    assert not ok(b"yes", b"YES").accepted
    assert "token 2" in ok(b"1 3", b"1 2").message


# ---------------------------------------------------------------- float

def fl(output, expected, abs_eps=1e-6, rel_eps=1e-6) -> bool:
    return compare.compare_float(output.encode(), expected.encode(), abs_eps, rel_eps).accepted


def test_float_absolute_epsilon():
    assert fl("0.30000000000000004", "0.3", 1e-9, 0)
    assert fl("1.0000005", "1", 1e-6, 0)
    assert not fl("1.000002", "1", 1e-6, 0)
    assert fl("0.0000001", "0", 1e-6, 0)
    assert not fl("0.00001", "0", 1e-6, 0)


def test_float_relative_epsilon():
    assert fl("1000000.5", "1000000", 0, 1e-6)        # diff 0.5 <= 1e-6 * 1e6
    assert not fl("1000002", "1000000", 0, 1e-6)
    assert not fl("1000000.5", "1000000", 1e-6, 0)    # the absolute one alone would fail
    assert fl("1000000.5", "1000000", 1e-6, 1e-6)     # either epsilon suffices
    assert not fl("1e-7", "0", 0, 1e-6)               # relative to 0 is 0


def test_float_epsilons_are_inclusive():
    # binary-exact values: a difference equal to the epsilon is accepted
    assert fl("0.5", "0.25", 0.25, 0)
    assert not fl("0.5", "0.25", 0.125, 0)
    assert fl("1.5", "1", 0, 0.5)
    assert not fl("1.5", "1", 0, 0.25)


def test_float_exact_zero_epsilon():
    assert fl("0.5", "0.5", 0, 0)
    assert fl("0.50", "0.5", 0, 0)
    assert not fl("0.5000001", "0.5", 0, 0)


def test_float_special_values():
    assert fl("nan", "nan")
    assert fl("NaN", "nan")
    assert not fl("nan", "1")
    assert not fl("1", "nan")
    assert fl("inf", "inf")
    assert fl("inf", "Infinity")
    assert fl("-inf", "-inf")


@pytest.mark.parametrize("output, expected", [
    ("inf", "-inf"), ("-inf", "inf"), ("5", "inf"), ("1e308", "inf"), ("0", "-inf"),
    ("inf", "5"), ("-inf", "1e308"),
])
def test_float_infinity_only_matches_the_same_infinity(output, expected):
    """An infinite expected value must not accept a finite (or opposite) answer: with
    rel_epsilon > 0, `diff <= rel_eps * abs(expected)` is `inf <= inf`, always true."""
    assert not fl(output, expected, 1e-6, 1e-6)
    assert not fl(output, expected, 1e-6, 0)


def test_float_non_numeric_tokens():
    assert fl("YES 0.5", "YES 0.5000001")
    assert not fl("NO 0.5", "YES 0.5")
    assert not fl("abc", "1")
    assert not fl("1", "abc")
    assert fl("abc", "abc")


def test_float_token_counts_and_layout():
    assert fl("1 2\n3\n", "1\n2 3")                   # whitespace layout does not matter
    assert not fl("1 2", "1 2 3")
    assert not fl("1 2 3", "1 2")
    message = compare.compare_float(b"1 2.5", b"1 2", 1e-6, 1e-6).message
    assert "token 2" in message


# ---------------------------------------------------------------- functional

def payload(value) -> bytes:
    """The bytes a functional child writes on its result fd for `value`."""
    return json.dumps({"ok": encode_result(value)}).encode()


def fn(value, expected) -> bool:
    return compare.compare_functional(payload(value), json.dumps(expected).encode()).accepted


def test_functional_plain_values():
    assert fn(3, 3)
    assert fn("abc", "abc")
    assert fn([1, 2, 3], [1, 2, 3])
    assert fn(None, None)
    assert fn(True, True)
    assert fn([[1, 2], [3]], [[1, 2], [3]])
    assert not fn(3, 4)
    assert not fn([1, 2, 3], [3, 2, 1])
    assert not fn("3", 3)


def test_functional_numbers_compare_like_python():
    assert fn(1.0, 1)
    assert fn(1, 1.0)
    assert fn([2.0, 3], [2, 3.0])
    assert fn(True, 1)                  # Python: True == 1
    assert not fn(0.1 + 0.2, 0.3)       # exact equality, as lcb_runner
    assert fn(10 ** 30, 10 ** 30)       # big ints survive


def test_functional_top_level_tuple_is_a_list():
    assert fn((1, 2), [1, 2])
    assert fn((), [])
    assert not fn((1, 2), [2, 1])


def test_functional_nested_tuple_is_not_a_list():
    # lcb_runner converts only the top-level tuple; nested ones compare as in Python `==`.
    assert not fn([(1, 2)], [[1, 2]])
    assert not fn(((1, 2), (3, 4)), [[1, 2], [3, 4]])
    assert not fn({"a": (1,)}, {"a": [1]})


def test_functional_dicts():
    assert fn({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1})
    assert not fn({"a": 1}, {"a": 2})
    assert not fn({"a": 1}, {"a": 1, "b": 2})
    # JSON keys are strings: an int-keyed dict is not equal to the JSON object, as in Python.
    assert not fn({1: 2}, {"1": 2})
    # Odd keys survive encoding (tuples as keys, keys that look like encoder tags).
    decoded = compare.decode_result(encode_result({(1, 2): "x", "__tuple__": 5}))
    assert decoded == {(1, 2): "x", "__tuple__": 5}


def test_functional_sets():
    assert not fn({1, 2}, [1, 2])       # a set never equals a JSON list
    assert compare.decode_result(encode_result({1, 2})) == {1, 2}
    assert compare.decode_result(encode_result(frozenset({3}))) == {3}


def test_functional_round_trip_of_odd_values():
    for value in [(1, [2, (3,)]), {"k": {1, 2}}, b"\x00\xff", [float("inf"), float("-inf")],
                  {"a": {"b": (None, True)}}]:
        assert compare.decode_result(json.loads(json.dumps(encode_result(value)))) == value
    nan = compare.decode_result(encode_result(float("nan")))
    assert math.isnan(nan)


def test_functional_nan_never_equals():
    # Python: float("nan") == float("nan") is False, so the lcb rule rejects it.
    assert not compare.compare_functional(payload(float("nan")), b"NaN").accepted


def test_functional_non_comparable_type_is_reported():
    with pytest.raises(TypeError):
        encode_result(object())
    # What the agent writes when encoding fails:
    envelope = json.dumps({"error": "result of type object cannot be compared"}).encode()
    outcome = compare.compare_functional(envelope, b"1")
    assert not outcome.accepted
    assert "object" in outcome.message


@pytest.mark.parametrize("raw, message", [
    (None, "the function returned no result"), (b"", "the function returned no result"),
    (b"not json", "the result channel held malformed data"),
    (b"[1]", "the result channel held malformed data"),
    (b"{}", "the result channel held malformed data"),
    (b'{"x": 1}', "the result channel held malformed data"),
    (b'{"ok": {"__float__": "not a float"}}', "the result channel held malformed data"),
])
def test_functional_missing_or_malformed_payload(raw, message):
    outcome = compare.compare_functional(raw, b"1")
    assert outcome.accepted is False
    assert outcome.message == message


def test_functional_failure_message_shows_values():
    outcome = compare.compare_functional(payload([1, 2]), b"[1, 3]")
    assert not outcome.accepted
    assert "[1, 2]" in outcome.message and "[1, 3]" in outcome.message
    long = compare.compare_functional(payload(list(range(1000))), b"[]").message
    shown = repr(list(range(1000)))[:200] + "…"
    assert long == f"returned {shown}, expected []"  # values cut at 200 characters
    exact = "x" * 198  # repr is exactly 200 characters: shown whole
    assert len(repr(exact)) == 200
    assert compare.compare_functional(payload(exact), b"[]").message == f"returned {exact!r}, expected []"


# ---------------------------------------------------------------- bytes are bytes (lcb)

@pytest.mark.parametrize("output, expected", [
    (b"caf\xfe", b"caf\xe9"),                 # two different invalid bytes
    (b"\xff", "\ufffd".encode()),             # an invalid byte is not U+FFFD
    (b"1 \xff\n", b"1 \xfe\n"),
    (b"\xe3\x80", b"\xe3\x81"),               # truncated sequences
])
def test_lcb_different_invalid_bytes_differ(output, expected):
    """errors="replace" read every invalid byte as U+FFFD, so these compared equal."""
    assert not lcb(output, expected)


def test_lcb_invalid_bytes_still_follow_the_line_rules():
    assert lcb(b"caf\xfe  \r\n\n", b"caf\xfe")             # stripped, trailing lines dropped
    assert lcb(b"\xff 1.0\n2", b"\xff 1.0\n2\n")
    assert not lcb(b"\xff 1.0", b"\xff 1")                  # not all numbers: text must match
    assert lcb("caf\u00e9\u3000\n".encode(), "caf\u00e9".encode())  # Unicode whitespace strips


# ---------------------------------------------------------------- chunked walks = whole walks

def reference_lcb(output: bytes, expected: bytes) -> tuple[bool, str]:
    """lcb_runner's grade_stdio written plainly over whole texts (surrogateescape decoding)."""
    def lines(data: bytes) -> list[str]:
        return [line.strip() for line in data.decode("utf-8", "surrogateescape").strip().split("\n")]
    got, want = lines(output), lines(expected)
    if len(got) != len(want):
        return False, f"expected {len(want)} lines, got {len(got)}"
    for number, (a, b) in enumerate(zip(got, want), start=1):
        if a == b:
            continue
        try:
            x, y = [Decimal(t) for t in a.split()], [Decimal(t) for t in b.split()]
        except (InvalidOperation, ValueError):
            return False, f"line {number} differs"
        if any(v.is_snan() for v in x + y) or x != y:
            return False, f"line {number} differs"
    return True, ""


def reference_tokens(output: bytes, expected: bytes) -> tuple[bool, str]:
    got, want = output.split(), expected.split()
    for index, (a, b) in enumerate(zip(got, want), start=1):
        if a != b:
            return False, f"token {index} differs"
    if len(got) != len(want):
        return False, f"expected {len(want)} tokens, got {len(got)}"
    return True, ""


def reference_float(output: bytes, expected: bytes, eps: float = 1e-6) -> tuple[bool, str]:
    def close(a: float, b: float) -> bool:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= eps or abs(a - b) <= eps * abs(b)
    got, want = output.split(), expected.split()
    if len(got) != len(want):
        return False, f"expected {len(want)} tokens, got {len(got)}"
    for index, (a, b) in enumerate(zip(got, want), start=1):
        if a == b:
            continue
        try:
            fa, fb = float(a), float(b)
        except ValueError:
            return False, f"token {index} differs"
        if not close(fa, fb):
            return False, f"token {index}: {fa!r} not within tolerance of {fb!r}"
    return True, ""


def reference_exact(output: bytes, expected: bytes) -> tuple[bool, str]:
    if output == expected:
        return True, ""
    for position, (a, b) in enumerate(zip(output, expected)):
        if a != b:
            return False, f"first difference at byte {position}"
    return False, f"lengths differ ({len(output)} vs {len(expected)} bytes)"


# Pieces that stress chunk boundaries: multibyte whitespace (U+00A0, U+0085, U+2005, U+3000),
# characters of 2-4 bytes, truncated and stray continuation bytes, numbers that are equal as
# Decimals, NaNs, \x1c (whitespace to str, not to bytes).
PIECES = [b" ", b"\n", b"\t", b"\r", b"1", b"2", b"1.0", b"0", b"-0", b"a", b"e3", b".",
          b"\xc2\xa0", b"\xc2\x85", b"\xe3\x80\x80", b"\xe2\x80\x85", b"\xe2\x80", b"\x80", b"\xc2",
          b"\xff", b"\xe9", b"NaN", b"sNaN", b"\x1c", b"\x0b", b"\xf0\x9f\x98\x80", b"\xbf",
          "\u0661".encode()]


def _random_pair(rng: random.Random) -> tuple[bytes, bytes]:
    output = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(80)))
    if rng.random() < 0.3:
        return output, b"".join(rng.choice(PIECES) for _ in range(rng.randrange(80)))
    edited = bytearray(output)
    for _ in range(rng.randrange(3)):
        piece, at = rng.choice(PIECES), rng.randrange(len(edited) + 1)
        if rng.random() < 0.5:
            edited[at:at] = piece
        else:
            edited[at:at + len(piece)] = piece
    return output, bytes(edited)


def _numeric_pair(rng: random.Random) -> tuple[bytes, bytes]:
    """Lines of numbers, the expected ones respelled: mostly accepted, through Decimals."""
    respell = {"1": "1.0", "1.0": "1", "0": "-0", "2": "2.00", "10": "1e1"}
    lines = [" ".join(rng.choice(["1", "1.0", "2", "0", "10", "x", "NaN", "\u0661"])
                      for _ in range(rng.randrange(12))) + rng.choice(["", " ", "\r", "\u3000"])
             for _ in range(rng.randrange(1, 6))]
    expected = "\n".join(" ".join(respell.get(t, t) if rng.random() < 0.5 else t
                                  for t in line.split(" ")) for line in lines)
    return "\n".join(lines).encode(), (expected + rng.choice(["", "", "\n\n ", " 1"])).encode()


@pytest.mark.parametrize("chunk", [4, 5, 7, 16, 64, compare.CHUNK_BYTES])
def test_chunked_comparisons_agree_with_whole_text_ones(monkeypatch, chunk):
    """Every mode, walked a chunk at a time (down to 4 bytes, so that lines, tokens and
    characters straddle chunks and lines become longer than a chunk), gives exactly the
    verdict and message of the plain whole-output rules."""
    monkeypatch.setattr(compare, "CHUNK_BYTES", chunk)
    rng = random.Random(chunk)
    accepted = 0
    for _ in range(1500):
        output, expected = _random_pair(rng) if rng.random() < 0.7 else _numeric_pair(rng)
        outcome = compare.compare_lcb_stdin(output, expected)
        assert (outcome.accepted, outcome.message) == reference_lcb(output, expected), \
            (output, expected)
        accepted += outcome.accepted
        for mode, reference in [(compare.compare_tokens, reference_tokens),
                                (compare.compare_exact, reference_exact)]:
            outcome = mode(output, expected)
            assert (outcome.accepted, outcome.message) == reference(output, expected), \
                (mode, output, expected)
        outcome = compare.compare_float(output, expected, 1e-6, 1e-6)
        assert (outcome.accepted, outcome.message) == reference_float(output, expected), \
            (output, expected)
    assert accepted > 200  # the numeric cases really went through the Decimal rule


def test_lines_longer_than_a_chunk(monkeypatch):
    monkeypatch.setattr(compare, "CHUNK_BYTES", 16)
    numbers = " ".join(["1"] * 200)
    respelled = " ".join(["1.0"] * 200)
    assert lcb(numbers, respelled)                                    # Decimal rule, streamed
    assert not lcb(numbers, respelled + " 1")                          # one token more
    assert not lcb(numbers + " 2", respelled + " 1")                   # the last token differs
    assert lcb(" " * 100 + "5" + "\u3000" * 50 + "\n2", "5\n2")        # stripped to short text
    assert lcb("x" * 100 + "\n" + numbers, "x" * 100 + "  \n" + respelled + "\n\n")
    assert not lcb("x" * 100, "x" * 99 + "y")
    assert compare.compare_lcb_stdin(("x" * 100 + "\n" + numbers).encode(),
                                     ("x" * 100 + "\n" + numbers + "9").encode()).message \
        == "line 2 differs"
    token = "1" * 100                                                  # one token, 7 chunks
    assert lcb(token, token + ".000")
    assert not lcb(token, token + "1")
    assert compare.compare_tokens((" a" * 50).encode(), (" a" * 49 + " b").encode()).message \
        == "token 50 differs"


# ---------------------------------------------------------------- bounded memory, GIL

MEMORY_CHECK = r"""
import json, resource, threading, time
from workers import compare
size = 30 << 20
output = b"ab\n" * (size // 3)
expected = b"ab \n" * (size // 3)     # equal lines after the strip: every line is walked
numbers, respelled = b"1\n" * (4 << 20), b"1.0\n" * (4 << 20)  # float: every token parsed
gaps, done = [], threading.Event()
def tick():
    last = time.perf_counter()
    while not done.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
ticker = threading.Thread(target=tick)
ticker.start()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
results = [compare.compare_lcb_stdin(output, expected).accepted,
           compare.compare_tokens(output, expected).accepted,
           compare.compare_float(numbers, respelled, 1e-9, 0).accepted]
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - before
done.set()
ticker.join()
print(json.dumps({"results": results, "growth": growth, "gap": max(gaps)}))
"""


def test_stdout_comparisons_run_in_bounded_memory_and_release_the_gil():
    """30 MiB of 2-character lines (lcb, tokens) and 4 Mi numbers respelled (float). The old
    walks built Python objects for every line or token at once (lcb: 1.8 GiB for 63 MiB,
    +2.2 GiB here) in single C calls that held the GIL for about half a second. Now peak
    memory grows by well under half the output, and another thread never waits long."""
    run = subprocess.run([sys.executable, "-c", MEMORY_CHECK], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=240, check=False)
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)
    assert measured["results"] == [True, True, True]
    assert measured["growth"] < (30 << 20) // 2, f"peak memory grew by {measured['growth'] >> 20} MiB"
    assert measured["gap"] < 0.25, f"another thread waited {measured['gap']:.3f} s for the GIL"


# ---------------------------------------------------------------- deeply nested results

def nested_list_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_dict_json(depth: int) -> str:
    """encode_result of {1: {1: ... {1: 2}}}: three JSON levels per dict."""
    return '{"__dict__": [[1, ' * depth + "2" + "]]}" * depth


def nested_tuple_json(depth: int) -> str:
    return '{"__tuple__": [' * depth + "]}" * depth


def nested_set_json(depth: int) -> str:
    return '{"__set__": [' * depth + "]}" * depth


def nested_object_json(depth: int) -> str:
    return '{"k": ' * depth + "1" + "}" * depth


def nested_value(depth: int, wrap) -> object:
    value: object = []
    for _ in range(depth):
        value = wrap(value)
    return value


def test_nested_json_builders_are_what_the_agent_writes():
    assert json.loads(nested_list_json(3)) == encode_result(nested_value(2, lambda v: [v]))
    assert json.loads(nested_tuple_json(3)) == encode_result((((),),))
    assert json.loads(nested_set_json(1)) == encode_result(set())  # deeper: forged (unhashable)
    assert json.loads(nested_dict_json(3)) == encode_result({1: {1: {1: 2}}})


@pytest.mark.parametrize("depth", [5000, 100000])
@pytest.mark.parametrize("build", [nested_list_json, nested_dict_json, nested_tuple_json,
                                   nested_set_json, nested_object_json])
def test_deeply_nested_result_is_a_wrong_answer_with_a_reason(depth, build):
    """The agent encodes results up to 10000 deep (and a submission can write any bytes on
    the result fd); json.loads, decoding, `==` and repr on the host recursed and raised
    RecursionError, which became INTERNAL for the whole request."""
    raw = ('{"ok": ' + build(depth) + "}").encode()
    for expected in (b"[]", b"1", nested_list_json(200).encode()):
        outcome = compare.compare_functional(raw, expected)
        assert not outcome.accepted
        assert outcome.message == "the result is nested too deeply (more than 256 levels)"
    outcome = compare.compare_functional(('{"error": ' + build(depth) + "}").encode(), b"1")
    assert not outcome.accepted and "nested too deeply" in outcome.message


def test_deeply_nested_result_fails_fast():
    started = time.monotonic()
    compare.compare_functional(('{"ok": ' + nested_list_json(1_000_000) + "}").encode(), b"[]")
    assert time.monotonic() - started < 5


def test_nesting_up_to_the_limit_is_compared_by_the_rules():
    value = nested_value(255, lambda v: [v])
    expected = nested_list_json(256).encode()
    assert compare.compare_functional(payload(value), expected).accepted
    outcome = compare.compare_functional(payload(value), nested_list_json(255).encode())
    assert not outcome.accepted
    assert outcome.message == f"returned {'[' * 200}…, expected {'[' * 200}…"
    top_tuple = tuple(nested_value(255, lambda v: [v]))  # envelope + tag + 256 levels
    assert compare.compare_functional(payload(top_tuple), nested_list_json(256).encode()).accepted


def test_brackets_inside_strings_do_not_nest():
    text = "[{" * 5000 + '\\"]'
    assert fn(text, text)
    assert fn([text, {"k": text}], [text, {"k": text}])
    assert not fn(text, text + "x")


def test_parse_json_refuses_deep_json_without_recursing():
    for text in (nested_list_json(257), nested_object_json(100000), "[" * 300 + '"',
                 "[" * 300 + "1 x"):
        with pytest.raises(compare.NestingError):
            compare.parse_json(text)
    assert issubclass(compare.NestingError, ValueError)  # validation reads it as bad JSON
    assert compare.parse_json(nested_list_json(256)) == json.loads(nested_list_json(256))
    assert compare.parse_json(b'{"a": [1, 2.5, "x", null, NaN]}')["a"][:4] == [1, 2.5, "x", None]
    assert compare.parse_json('"[[["') == "[[["
    assert compare.parse_json("[1]".encode("utf-16")) == [1]  # json.loads's encodings
    with pytest.raises(ValueError):
        compare.parse_json(b"[1,")


def test_deep_expected_output_is_a_value_error_not_a_crash():
    with pytest.raises(ValueError):
        compare.compare_functional(payload(1), nested_list_json(5000).encode())


def test_decode_result_does_not_recurse():
    encoded = nested_value(100000, lambda v: {"__tuple__": [v, 1]})
    decoded = compare.decode_result(encoded)
    for _ in range(100000):
        assert type(decoded) is tuple and decoded[1] == 1
        decoded = decoded[0]
    assert decoded == []


def test_failure_message_is_repr_cut_at_the_limit():
    """The message is built a part at a time (never the whole repr of a huge result): it
    must still read exactly as repr(result) cut at 200 characters."""
    rng = random.Random(3)

    def value(depth: int = 0) -> object:
        kind = rng.randrange(10 if depth < 3 else 4)
        if kind == 0:
            return rng.choice([0, -7, 10 ** 30, 2.5, float("inf"), True, False])
        if kind == 1:
            return rng.choice(["", "a'b", 'q"', "\\", "\u00e9", "[{", "x" * 90])
        if kind == 2:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(3)))
        if kind == 3:
            return rng.choice([(), set(), {}, [], None])
        if kind in (4, 5):
            return [value(depth + 1) for _ in range(rng.randrange(6))]
        if kind == 6:
            return tuple(value(depth + 1) for _ in range(rng.randrange(3)))
        if kind == 7:
            return {rng.choice([1, "a", (1, 2), None]): value(depth + 1) for _ in range(3)}
        if kind == 8:
            return ((value(depth + 1),),)  # one-element tuples print as (x,)
        return {rng.choice([1, "a", (1,), 3.5]) for _ in range(rng.randrange(4))}

    for _ in range(3000):
        item = value()
        if item is None:
            continue
        prediction = compare.decode_result(json.loads(payload(item))["ok"])  # set order
        text = repr(list(prediction) if isinstance(prediction, tuple) else prediction)
        shown = text if len(text) <= 200 else text[:200] + "…"
        outcome = compare.compare_functional(payload(item), b"null")
        assert outcome.message == f"returned {shown}, expected None", item


# ---------------------------------------------------------------- integers over 4300 digits

BIG = "1" + "0" * 5000          # 10 ** 5000, written without str(int) (the limit applies)
BIG_PLUS_ONE = "1" + "0" * 4999 + "1"


def test_functional_integers_over_the_int_string_limit():
    """json.loads raised ValueError over 4300 digits: the result read as malformed (WA) and
    the expected output could not be read at all. They are exact values now."""
    ok = compare.compare_functional
    assert ok(f'{{"ok": {BIG}}}'.encode(), BIG.encode()).accepted
    assert ok(f'{{"ok": -{BIG}}}'.encode(), f"-{BIG}".encode()).accepted
    assert not ok(f'{{"ok": {BIG}}}'.encode(), f"-{BIG}".encode()).accepted
    assert not ok(f'{{"ok": {BIG}}}'.encode(), BIG_PLUS_ONE.encode()).accepted
    assert not ok(f'{{"ok": {BIG}}}'.encode(), b"1e5000").accepted      # inf, as for an int
    assert not ok(f'{{"ok": {BIG}}}'.encode(), b"1").accepted
    assert ok(f'{{"ok": [1, {BIG}, "x"]}}'.encode(), f'[1, {BIG}, "x"]'.encode()).accepted
    assert ok(f'{{"ok": {{"__tuple__": [{BIG}, 2]}}}}'.encode(), f"[{BIG}, 2]".encode()).accepted
    outcome = ok(f'{{"ok": [{BIG_PLUS_ONE}]}}'.encode(), f"[{BIG}]".encode())
    assert not outcome.accepted
    assert outcome.message == f"returned [{BIG_PLUS_ONE[:199]}…, expected [{BIG[:199]}…"
    limit = "9" * 4300                                  # at the limit: a plain int, as before
    assert ok(f'{{"ok": {limit}}}'.encode(), limit.encode()).accepted
    assert ok(f'{{"ok": {limit}9}}'.encode(), f"{limit}9".encode()).accepted


def test_big_integers_are_ints_to_sets_dicts_and_equality():
    big = compare.parse_json(BIG)
    assert big == 10 ** 5000 and hash(big) == hash(10 ** 5000)
    assert big != 10 ** 5000 + 1 and big != float("inf") and big != BIG
    assert compare.parse_json(f"[{BIG}, 1]") == [10 ** 5000, 1]
    assert repr(big) == BIG
    decoded = compare.decode_result(compare.parse_json(
        f'{{"__dict__": [[{BIG}, {{"__set__": [{BIG}, 1]}}]]}}'))
    assert decoded == {10 ** 5000: {10 ** 5000, 1}}

"""Unit tests of workers/compare.py: the output comparison modes.

`lcb` follows LiveCodeBench's lcb_runner (grade_stdio / grade_call_based); functional
payloads are built with the agent's own encoder, exactly as the in-jail child writes them.
"""
from __future__ import annotations

import json
import math

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

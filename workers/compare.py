"""Output comparison modes: lcb (LiveCodeBench's lcb_runner rules), exact, tokens, float."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class Comparison:
    accepted: bool
    message: str = ""


ACCEPTED = Comparison(True)


def _lcb_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        values = [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None
    # A signaling NaN cannot even be compared (it raises): it is not a number here.
    return None if any(value.is_snan() for value in values) else values


def compare_lcb_stdin(output: bytes, expected: bytes) -> Comparison:
    """lcb_runner's grade_stdio: stripped lines, equal counts, line equal or all-Decimal equal."""
    got = _lcb_lines(output.decode("utf-8", errors="replace"))
    want = _lcb_lines(expected.decode("utf-8", errors="replace"))
    if len(got) != len(want):
        return Comparison(False, f"expected {len(want)} lines, got {len(got)}")
    for number, (line, wanted) in enumerate(zip(got, want), start=1):
        if line == wanted:
            continue
        got_dec, want_dec = _decimals(line), _decimals(wanted)
        if got_dec is None or want_dec is None or got_dec != want_dec:
            return Comparison(False, f"line {number} differs")
    return ACCEPTED


def compare_exact(output: bytes, expected: bytes) -> Comparison:
    if output == expected:
        return ACCEPTED
    for position, (a, b) in enumerate(zip(output, expected)):
        if a != b:
            return Comparison(False, f"first difference at byte {position}")
    return Comparison(False, f"lengths differ ({len(output)} vs {len(expected)} bytes)")


def compare_tokens(output: bytes, expected: bytes) -> Comparison:
    got, want = output.split(), expected.split()
    for index, (a, b) in enumerate(zip(got, want), start=1):
        if a != b:
            return Comparison(False, f"token {index} differs")
    if len(got) != len(want):
        return Comparison(False, f"expected {len(want)} tokens, got {len(got)}")
    return ACCEPTED


def _close(a: float, b: float, abs_eps: float, rel_eps: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    if a == b:
        return True
    diff = abs(a - b)
    return diff <= abs_eps or diff <= rel_eps * abs(b)


def compare_float(output: bytes, expected: bytes, abs_eps: float, rel_eps: float) -> Comparison:
    """Tokens equal, or both numbers within the absolute or relative epsilon."""
    got, want = output.split(), expected.split()
    if len(got) != len(want):
        return Comparison(False, f"expected {len(want)} tokens, got {len(got)}")
    for index, (a, b) in enumerate(zip(got, want), start=1):
        if a == b:
            continue
        try:
            fa, fb = float(a), float(b)
        except ValueError:
            return Comparison(False, f"token {index} differs")
        if not _close(fa, fb, abs_eps, rel_eps):
            return Comparison(False, f"token {index}: {fa!r} not within tolerance of {fb!r}")
    return ACCEPTED


# ---------------------------------------------------------------- functional (call-based)

def decode_result(value):
    """Inverse of workers.agent.encode_result: rebuilds tuples, sets, dicts, odd floats."""
    if isinstance(value, list):
        return [decode_result(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(decode_result(v) for v in value["__tuple__"])
        if "__set__" in value:
            return {decode_result(v) for v in value["__set__"]}
        if "__dict__" in value:
            return {_hashable(decode_result(k)): decode_result(v) for k, v in value["__dict__"]}
        if "__float__" in value:
            return float(value["__float__"])
        if "__bytes__" in value:
            return bytes.fromhex(value["__bytes__"])
    return value


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def compare_functional(result_payload: bytes | None, expected: bytes) -> Comparison:
    """lcb_runner's grade_call_based: a top-level tuple becomes a list, then `==`."""
    if not result_payload:
        return Comparison(False, "the function returned no result")
    try:
        envelope = json.loads(result_payload)
    except ValueError:
        return Comparison(False, "the result channel held malformed data")
    if not isinstance(envelope, dict) or ("ok" not in envelope and "error" not in envelope):
        return Comparison(False, "the result channel held malformed data")
    if "error" in envelope:
        return Comparison(False, str(envelope["error"]))
    try:
        prediction = decode_result(envelope["ok"])
    except (TypeError, ValueError):
        return Comparison(False, "the result channel held malformed data")
    if isinstance(prediction, tuple):
        prediction = list(prediction)
    wanted = json.loads(expected)
    if prediction == wanted:
        return ACCEPTED
    return Comparison(False, f"returned {_short(prediction)}, expected {_short(wanted)}")


def _short(value, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"

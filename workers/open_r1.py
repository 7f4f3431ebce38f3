"""open-r1/codeforces' grading conventions, as its Piston `codeforces` package applies them.

open-r1's rows are graded by that package's `run` script: the input loses the carriage
return at the end of each line before the program reads it; the program's output and the
answer lose their empty lines; a row's `generated_checker` is called as
`checker.py INPUT ANSWER OUTPUT` for at most 10 s and accepts iff it prints `1` or `100`
(whitespace ignored); without a checker, whole words "yes" / "no" in any case become
"YES" / "NO" and the whitespace-separated tokens must be equal. Each function here is one
of those steps, on bytes, in one or two passes of the `re` engine (bounded memory: no
per-line objects).
"""
from __future__ import annotations

import re

from workers.compare import Comparison, compare_tokens

CHECKER_SECONDS = 10.0  # `timeout 10 python3 checker.py ...`
ACCEPTED_PRINTS = (b"1", b"100")

_CR_AT_LINE_END = re.compile(rb"\r(\n|\Z)")
_EMPTY_LINES = re.compile(rb"\n{2,}")
_YES_NO = re.compile(rb"\b(yes|no)\b", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


def strip_carriage_returns(data: bytes) -> bytes:
    """`sed 's/\\r$//'`: one carriage return before each line end goes."""
    return _CR_AT_LINE_END.sub(rb"\1", data)


def drop_empty_lines(data: bytes) -> bytes:
    """`sed '/^$/d'`: lines with no characters at all go (a line of spaces stays)."""
    return _EMPTY_LINES.sub(b"\n", data).lstrip(b"\n")


def normalize_answer(answer: bytes) -> bytes:
    """The answer file as the checker sees it: read through `$(cat ...)` (trailing newlines
    and NUL bytes dropped), written back by `echo` (one newline), then stripped of
    carriage returns and empty lines."""
    return drop_empty_lines(strip_carriage_returns(answer.replace(b"\0", b"").rstrip(b"\n")
                                                   + b"\n"))


def _upper_yes_no(data: bytes) -> bytes:
    return _YES_NO.sub(lambda match: match.group(1).upper(), data)


def compare_plain(output: bytes, answer: bytes) -> Comparison:
    """Its `diff -b` of both sides with yes/no upper-cased and whitespace squeezed."""
    return compare_tokens(_upper_yes_no(drop_empty_lines(output)),
                          _upper_yes_no(normalize_answer(answer)))


def checker_accepts(stdout: bytes) -> bool:
    """`tr -d '[:space:]'` of what the checker printed is `1` or `100`."""
    return _WHITESPACE.sub(b"", stdout) in ACCEPTED_PRINTS

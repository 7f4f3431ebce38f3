"""Output comparison modes: lcb (LiveCodeBench's lcb_runner rules), exact, tokens, float.

Everything compared here was produced by a submission, so no comparison may cost the host
memory or time out of proportion to it, or recurse as deep as it is nested:

- stdout comparisons walk the output CHUNK_BYTES at a time: their memory is a few chunks'
  worth (plus, for lcb, one Decimal token at a time of a line longer than a chunk), never
  Python objects for every line or token at once, and no single C call holds the GIL for
  more than a chunk's work;
- functional results (tagged JSON) nested deeper than MAX_JSON_DEPTH levels are wrong
  answers, checked before any parsing; decode_result and the failure message never recurse;
- integers longer than Python's int-string limit (sys.get_int_max_str_digits) are kept
  exact (as BigInt) instead of failing to parse.
"""
from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import accumulate, repeat, zip_longest
from typing import AnyStr, TypeVar

_T = TypeVar("_T")

# How much of an output one step decodes, splits or scans. Module-level (read at call time)
# so that tests can shrink it to exercise chunk boundaries; must stay >= 4 (the longest
# UTF-8 sequence), see _skip_space_back.
CHUNK_BYTES = 1 << 16
# Deepest JSON nesting parsed on the host (an expected output, or a functional result plus
# its envelope and tags): the JSON parser, `==`, hashing and repr all recurse in C per level.
MAX_JSON_DEPTH = 256
_SURROGATE_ESCAPE = "surrogateescape"


@dataclass(frozen=True)
class Comparison:
    accepted: bool
    message: str = ""
    # lcb_runner's own comparison raised (a signaling NaN compared): its run_test reports
    # that as a runtime error of the program.
    raised: bool = False


ACCEPTED = Comparison(True)


# ---------------------------------------------------------------- chunked text helpers
#
# Output bytes are decoded as UTF-8 with surrogateescape: valid UTF-8 reads exactly as
# before, and each invalid byte becomes a character of its own, so different bytes never
# read as equal text (errors="replace" made b"caf\xfe" equal b"caf\xe9").
#
# A chunk of an output may end inside a character; the helpers below cut only where no
# character can straddle: at a "\n", at either end of the output, or at a byte that is not
# a UTF-8 continuation byte (10xxxxxx), since Python's decoder never reads such a byte as
# part of the character before it.

def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(_SURROGATE_ESCAPE)


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def _skip_space(data: bytes, start: int, end: int) -> int:
    """Where data[start:end] stops being whitespace (as str.lstrip sees it), or end."""
    decoder = _decoder()
    done = start  # whitespace characters decoded so far end here
    for pos in range(start, end, CHUNK_BYTES):
        stop = min(pos + CHUNK_BYTES, end)
        text = decoder.decode(data[pos:stop], stop == end)
        kept = text.lstrip()
        # whitespace characters are valid UTF-8: their byte length is their encoding's
        done += len(text[:len(text) - len(kept)].encode())
        if kept:
            return done
    return end


def _skip_space_back(data: bytes, start: int, end: int) -> int:
    """Where the trailing whitespace of data[start:end] (as str.rstrip sees it) starts."""
    stop = end
    while stop > start:
        low = max(start, stop - CHUNK_BYTES)
        if low > start:  # low may be inside a character: move to the next one
            while low < stop and _is_continuation(data[low]):
                low += 1
            if low == stop:
                # CHUNK_BYTES (>= 4) continuation bytes end at stop: the last one cannot
                # belong to a valid character (at most 3 follow their lead byte), so it is
                # an escaped byte, which is not whitespace.
                return stop
        text = data[low:stop].decode("utf-8", _SURROGATE_ESCAPE)
        kept = text.rstrip()
        if kept:
            return stop - len(text[len(kept):].encode())
        stop = low
    return start


def _count(data: bytes, byte: bytes, start: int, end: int) -> int:
    """data.count(byte, start, end), a chunk per call."""
    step = CHUNK_BYTES * 16
    return sum(data.count(byte, pos, min(pos + step, end)) for pos in range(start, end, step))


def _split_pieces(pieces: Iterable[AnyStr]) -> Iterator[list[AnyStr]]:
    """`"".join(pieces).split()` in batches, one per piece, without joining the pieces: a
    token cut by a piece boundary is joined back (once, however many pieces it spans)."""
    partial: list[AnyStr] = []  # a token that reached the end of the pieces so far
    for piece in pieces:
        if not piece:
            continue
        parts = piece.split()
        if partial:
            if not parts or piece[:1].isspace():  # it ended where the last piece did
                yield [piece[:0].join(partial)]
                partial = []
            elif len(parts) == 1 and not piece[-1:].isspace():  # it goes on
                partial.append(parts[0])
                continue
            else:
                partial.append(parts[0])
                parts[0] = piece[:0].join(partial)
                partial = []
        if parts and not piece[-1:].isspace():
            partial = [parts.pop()]
        if parts:
            yield parts
    if partial:
        yield [partial[0][:0].join(partial)]


def _byte_chunks(data: bytes) -> Iterator[bytes]:
    return (data[pos:pos + CHUNK_BYTES] for pos in range(0, len(data), CHUNK_BYTES))


def _aligned(first: Iterator[list[_T]], second: Iterator[list[_T]]
             ) -> Iterator[tuple[list[_T], list[_T]]]:
    """Two streams of batches as pairs of equal-length batches, in order, until either ends."""
    a: list[_T] | None = []
    b: list[_T] | None = []
    while True:
        if not a:
            a = next(filter(None, first), None)
        if not b:
            b = next(filter(None, second), None)
        if a is None or b is None:
            return
        n = min(len(a), len(b))
        yield a[:n], b[:n]
        a, b = a[n:], b[n:]


# ---------------------------------------------------------------- lcb (stdin)

@dataclass(frozen=True, eq=False)  # eq=False: a span equals nothing but itself
class _Span:
    """A stripped line longer than a chunk: data[start:end], compared without decoding it
    whole."""
    data: bytes
    start: int
    end: int


def _lcb_core(data: bytes) -> tuple[int, int, int]:
    """(start, end, lines) of `text.strip()`, whose `.split("\\n")` are lcb_runner's lines."""
    start = _skip_space(data, 0, len(data))
    if start == len(data):
        return start, start, 1  # "".split("\n") == [""]
    end = _skip_space_back(data, start, len(data))
    return start, end, _count(data, b"\n", start, end) + 1


def _stripped(text: str) -> list[str]:
    return list(map(str.strip, text.split("\n")))


def _lcb_lines(data: bytes, start: int, end: int) -> Iterator[list[str | _Span]]:
    """`[line.strip() for line in text.split("\\n")]` for data[start:end], in batches of about
    a chunk; a line that does not fit in one is a _Span unless its stripped text is short."""
    pos = start
    while True:
        high = pos + CHUNK_BYTES
        if high >= end:
            yield _stripped(data[pos:end].decode("utf-8", _SURROGATE_ESCAPE))
            return
        cut = data.rfind(b"\n", pos, high)
        if cut >= 0:
            yield _stripped(data[pos:cut].decode("utf-8", _SURROGATE_ESCAPE))
            pos = cut + 1
            continue
        cut = data.find(b"\n", high, end)
        line_end = end if cut < 0 else cut
        first = _skip_space(data, pos, line_end)
        last = _skip_space_back(data, first, line_end) if first < line_end else first
        if last - first <= CHUNK_BYTES:
            yield [data[first:last].decode("utf-8", _SURROGATE_ESCAPE)]
        else:
            yield [_Span(data, first, last)]
        if cut < 0:
            return
        pos = cut + 1


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def _decimal(token: str) -> Decimal | None:
    try:
        return Decimal(token)
    except (InvalidOperation, ValueError):
        return None


class _ComparisonRaised(Exception):
    """Comparing a signaling NaN raises decimal.InvalidOperation, in lcb_runner too."""


def _first_difference(x: Decimal, y: Decimal) -> str | None:
    """One pair of list equality: "raises" (a signaling NaN is compared), "differs", None."""
    if x.is_snan() or y.is_snan():
        return "raises"
    return "differs" if x != y else None


def _decimal_lists_equal(got: list[Decimal], want: list[Decimal]) -> bool:
    """`got == want` as Python compares the lists: lengths, then pairs in order."""
    if len(got) != len(want):
        return False
    for x, y in zip(got, want):
        found = _first_difference(x, y)
        if found == "raises":
            raise _ComparisonRaised
        if found:
            return False
    return True


def _as_span(line: str | _Span) -> _Span:
    if isinstance(line, _Span):
        return line
    raw = line.encode("utf-8", _SURROGATE_ESCAPE)
    return _Span(raw, 0, len(raw))


def _spans_equal(a: _Span, b: _Span) -> bool:
    if a.end - a.start != b.end - b.start:
        return False
    size = a.end - a.start
    return all(a.data[a.start + offset:a.start + min(offset + CHUNK_BYTES, size)]
               == b.data[b.start + offset:b.start + min(offset + CHUNK_BYTES, size)]
               for offset in range(0, size, CHUNK_BYTES))


def _span_tokens(span: _Span) -> Iterator[str]:
    decoder = _decoder()
    pieces = (decoder.decode(span.data[pos:min(pos + CHUNK_BYTES, span.end)],
                             pos + CHUNK_BYTES >= span.end)
              for pos in range(span.start, span.end, CHUNK_BYTES))
    for batch in _split_pieces(pieces):
        yield from batch


def _same_line(got: str | _Span, want: str | _Span) -> bool:
    """lcb_runner's test for one stripped line: equal text, or the same Decimals."""
    if isinstance(got, str) and isinstance(want, str):
        if got == want:
            return True
        got_dec, want_dec = _decimals(got), _decimals(want)
        return got_dec is not None and want_dec is not None and _decimal_lists_equal(got_dec,
                                                                                   want_dec)
    a, b = _as_span(got), _as_span(want)
    if _spans_equal(a, b):
        return True
    # The Decimal lists, a token at a time: both lines must parse and be as long (else not
    # equal, whatever comes first); then the first pair that is not equal decides.
    first = None
    for x, y in zip_longest(_span_tokens(a), _span_tokens(b)):
        if x is None or y is None:
            return False
        x_dec, y_dec = _decimal(x), _decimal(y)
        if x_dec is None or y_dec is None:
            return False
        if first is None:
            first = _first_difference(x_dec, y_dec)
    if first == "raises":
        raise _ComparisonRaised
    return first is None


def compare_lcb_stdin(output: bytes, expected: bytes) -> Comparison:
    """lcb_runner's grade_stdio: stripped lines, equal counts, line equal or all-Decimal equal."""
    if output == expected:
        return ACCEPTED
    got_start, got_end, got_count = _lcb_core(output)
    want_start, want_end, want_count = _lcb_core(expected)
    if got_count != want_count:
        return Comparison(False, f"expected {want_count} lines, got {got_count}")
    number = 0
    for got, want in _aligned(_lcb_lines(output, got_start, got_end),
                              _lcb_lines(expected, want_start, want_end)):
        if got != want:
            for offset, (line, wanted) in enumerate(zip(got, want), start=1):
                try:
                    if line != wanted and not _same_line(line, wanted):
                        return Comparison(False, f"line {number + offset} differs")
                except _ComparisonRaised:
                    return Comparison(False, f"line {number + offset} differs", raised=True)
        number += len(got)
    return ACCEPTED


# ---------------------------------------------------------------- exact

def compare_exact(output: bytes, expected: bytes) -> Comparison:
    if output == expected:
        return ACCEPTED
    for pos in range(0, min(len(output), len(expected)), CHUNK_BYTES):
        a, b = output[pos:pos + CHUNK_BYTES], expected[pos:pos + CHUNK_BYTES]
        if a != b:
            for offset, (x, y) in enumerate(zip(a, b)):
                if x != y:
                    return Comparison(False, f"first difference at byte {pos + offset}")
    return Comparison(False, f"lengths differ ({len(output)} vs {len(expected)} bytes)")


# ---------------------------------------------------------------- tokens and float

# bytes.split() splits on these (ASCII whitespace); every other byte is part of a token.
_TOKEN_MAP = bytes(0x20 if bytes([i]).isspace() else 0x78 for i in range(256))


def _count_tokens(data: bytes) -> int:
    """len(data.split()) without building it: token starts are non-space after space."""
    count, after_space = 0, True
    step = CHUNK_BYTES * 16
    for pos in range(0, len(data), step):
        chunk = data[pos:pos + step].translate(_TOKEN_MAP)
        count += chunk.count(b" x") + (after_space and chunk[:1] == b"x")
        after_space = chunk[-1:] == b" "
    return count


def _token_batches(data: bytes) -> Iterator[list[bytes]]:
    return _split_pieces(_byte_chunks(data))


def compare_tokens(output: bytes, expected: bytes) -> Comparison:
    if output == expected:
        return ACCEPTED
    index = 0
    for got, want in _aligned(_token_batches(output), _token_batches(expected)):
        if got != want:
            for offset, (a, b) in enumerate(zip(got, want), start=1):
                if a != b:
                    return Comparison(False, f"token {index + offset} differs")
        index += len(got)
    got_count, want_count = _count_tokens(output), _count_tokens(expected)
    if got_count != want_count:
        return Comparison(False, f"expected {want_count} tokens, got {got_count}")
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
    got_count, want_count = _count_tokens(output), _count_tokens(expected)
    if got_count != want_count:
        return Comparison(False, f"expected {want_count} tokens, got {got_count}")
    index = 0
    for got, want in _aligned(_token_batches(output), _token_batches(expected)):
        if got != want:
            for offset, (a, b) in enumerate(zip(got, want), start=1):
                if a == b:
                    continue
                try:
                    fa, fb = float(a), float(b)
                except ValueError:
                    return Comparison(False, f"token {index + offset} differs")
                if not _close(fa, fb, abs_eps, rel_eps):
                    return Comparison(
                        False, f"token {index + offset}: {fa!r} not within tolerance of {fb!r}")
        index += len(got)
    return ACCEPTED


# ---------------------------------------------------------------- functional (call-based)

class BigInt(Decimal):
    """A JSON integer longer than Python's int-string limit allows int() to read
    (sys.get_int_max_str_digits, 4300 digits by default). Exact, and equal, hashed and
    printed as that int would be, so it compares like one; built without a quadratic
    decimal-to-binary conversion, which the limit exists to prevent."""

    def __repr__(self) -> str:
        return str(self)  # an exact integer: its digits


def _parse_int(digits: str) -> int | BigInt:
    try:
        return int(digits)
    except ValueError:  # over the int-string limit
        return BigInt(digits)


# A JSON string, opening quote to closing quote, or to the end of the text if it has no
# closing quote (json.loads fails there): always a match, so the scan is linear.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether any point of the JSON text is inside more than `limit` arrays/objects.

    Never under-counts what json.loads would recurse into: up to where the text stops
    being valid JSON, this reads strings exactly as JSON does, and json.loads stops there.
    Brackets are counted a piece at a time; only a piece that could reach past the limit
    (its depth on entry plus its openings) is walked bracket by bracket.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    bare = _JSON_STRING.sub("", text)
    depth = 0
    for pos in range(0, len(bare), CHUNK_BYTES):
        chunk = bare[pos:pos + CHUNK_BYTES]
        opened = chunk.count("[") + chunk.count("{")
        if depth + opened <= limit:
            depth += opened - chunk.count("]") - chunk.count("}")
            continue
        for low in range(0, len(chunk), 256):
            piece = chunk[low:low + 256]
            opened = piece.count("[") + piece.count("{")
            if depth + opened > limit and max(
                    accumulate(map(_NESTING.get, piece, repeat(0)), initial=depth)) > limit:
                return True
            depth += opened - piece.count("]") - piece.count("}")
    return False


class NestingError(ValueError):
    """JSON nested deeper than the host parses."""


def parse_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> object:
    """json.loads for submission- or client-given JSON: the same values (bytes in any
    encoding json.loads detects), except that integers over the int-string limit are
    BigInt instead of an error, and NestingError (a ValueError) is raised, without
    recursing, for JSON nested deeper than `max_depth`. Use it to validate expected
    outputs too, so that what validates is what compare_functional can read."""
    text = data if isinstance(data, str) else data.decode(json.detect_encoding(data),
                                                          "surrogatepass")
    if _nesting_exceeds(text, max_depth):
        raise NestingError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer over the int-string limit: the slower, exact way
        return json.loads(text, parse_int=_parse_int)


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _container(value: object) -> tuple[str, Iterator[object]] | None:
    """How decode_result rebuilds a list or tagged container: (kind, the encoded items)."""
    if isinstance(value, list):
        return "list", iter(value)
    if isinstance(value, dict):
        if "__tuple__" in value:
            return "tuple", iter(value["__tuple__"])
        if "__set__" in value:
            return "set", iter(value["__set__"])
        if "__dict__" in value:
            return "dict", _flat_pairs(value["__dict__"])
    return None


def _flat_pairs(pairs: Iterable[Sequence[object]]) -> Iterator[object]:
    for key, item in pairs:
        yield key
        yield item


def _leaf(value: object) -> object:
    if isinstance(value, dict):
        if "__float__" in value:
            return float(value["__float__"])
        if "__bytes__" in value:
            return bytes.fromhex(value["__bytes__"])
    return value


def _build(kind: str, items: list[object]) -> object:
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    if kind == "set":
        return set(items)
    return {_hashable(key): item for key, item in zip(items[0::2], items[1::2])}


def decode_result(value: object) -> object:
    """Inverse of workers.agent.encode_result: rebuilds tuples, sets, dicts, odd floats.

    With an explicit stack: the nesting is the submission's choice. Untagged objects are
    returned as they are; malformed tags raise TypeError or ValueError.
    """
    opened = _container(value)
    if opened is None:
        return _leaf(value)
    stack: list[tuple[str, Iterator[object], list[object]]] = [(*opened, [])]
    while True:
        kind, items, built = stack[-1]
        for item in items:
            if not isinstance(item, (list, dict)):  # the common case, kept fast
                built.append(item)
                continue
            opened = _container(item)
            if opened is not None:
                stack.append((*opened, []))
                break
            built.append(_leaf(item))
        else:
            stack.pop()
            done = _build(kind, built)
            if not stack:
                return done
            stack[-1][2].append(done)


def compare_functional(result_payload: bytes | None, expected: bytes,
                       compared_in_jail: bool = False) -> Comparison:
    """lcb_runner's grade_call_based: a top-level tuple becomes a list, then `==`.

    `expected` must be valid for parse_json (ValueError otherwise): test sets are
    validated before grading. compared_in_jail: the expected output was sent to
    lcb_runner's worker, which compared a result that is not plain data in the program's
    process (its "compared" envelope); otherwise such an envelope is not believed.
    """
    if not result_payload:
        return Comparison(False, "the function returned no result")
    # The envelope and a top-level tuple's tag add 3 levels to what could equal an
    # expected output; deeper results cannot, and are not parsed.
    try:
        envelope = parse_json(result_payload, MAX_JSON_DEPTH + 3)
    except NestingError:
        return Comparison(False, f"the result is nested too deeply (more than "
                                 f"{MAX_JSON_DEPTH} levels)")
    except ValueError:
        return Comparison(False, "the result channel held malformed data")
    if not isinstance(envelope, dict) or not {"ok", "error", "compared"} & envelope.keys():
        return Comparison(False, "the result channel held malformed data")
    if "error" in envelope:
        return Comparison(False, _short(envelope["error"], 1000, quoted=False))
    if "compared" in envelope:
        return _compared_in_jail(envelope["compared"], expected, compared_in_jail)
    try:
        prediction = decode_result(envelope["ok"])
    except (TypeError, ValueError):
        return Comparison(False, "the result channel held malformed data")
    if isinstance(prediction, tuple):
        prediction = list(prediction)
    wanted = parse_json(expected)
    if prediction == wanted:
        return ACCEPTED
    return Comparison(False, f"returned {_short(prediction)}, expected {_short(wanted)}")


def _compared_in_jail(compared: object, expected: bytes, believed: bool) -> Comparison:
    """The outcome of `result == expected` as lcb_runner's worker computed it in the
    program's process (workers/lcb_harness.py, settle)."""
    if (not believed or not isinstance(compared, dict)
            or not isinstance(compared.get("equal"), bool)):
        return Comparison(False, "the result channel held malformed data")
    if compared["equal"]:
        kind = compared.get("type")
        if not isinstance(kind, str):
            return ACCEPTED  # numpy's == (or a subclass's of Python's types)
        return Comparison(True, f"accepted by the returned {_short(kind, 100, quoted=False)}'s "
                                "own ==, in the program's process (lcb_runner compares there)")
    why = compared.get("why") if isinstance(compared.get("why"), str) else ""
    shown = compared.get("shown") if isinstance(compared.get("shown"), str) else ""
    message = f"returned {_short(shown, quoted=False)}, expected {_short(parse_json(expected))}"
    return Comparison(False, f"{message} ({_short(why, 300, quoted=False)})" if why else message)


class _Raw(str):
    """Punctuation of a repr being built (a str value is printed with repr)."""


def _repr_parts(value: object) -> Iterator[object]:
    """The parts of repr(value) for a list, tuple, set or dict: punctuation and items."""
    if type(value) is dict:
        if not value:
            yield _Raw("{}")
            return
        yield _Raw("{")
        for number, (key, item) in enumerate(value.items()):
            if number:
                yield _Raw(", ")
            yield key
            yield _Raw(": ")
            yield item
        yield _Raw("}")
        return
    if type(value) is set and not value:
        yield _Raw("set()")
        return
    opening, closing = {list: "[]", tuple: "()", set: "{}"}[type(value)]
    yield _Raw(opening)
    for number, item in enumerate(value):
        if number:
            yield _Raw(", ")
        yield item
    if type(value) is tuple and len(value) == 1:
        yield _Raw(",")
    yield _Raw(closing)


def _short(value: object, limit: int = 200, quoted: bool = True) -> str:
    """repr(value) (str(value) unless quoted) cut at `limit` characters: built a part at a
    time, without recursing and without printing more of a huge value than is shown."""
    if not quoted and isinstance(value, str):
        parts: list[str] = [value[:limit + 1]]
    else:
        parts = []
        size = 0
        stack: list[Iterator[object]] = [iter((value,))]
        while stack and size <= limit:
            item = next(stack[-1], _Raw())
            if type(item) is _Raw:
                if not item:
                    stack.pop()
                    continue
                part = str(item)
            elif type(item) in (list, tuple, set, dict):
                stack.append(_repr_parts(item))
                continue
            else:
                part = repr(item)[:limit + 1]
            parts.append(part)
            size += len(part)
    text = "".join(parts)
    return text if len(text) <= limit else text[:limit] + "…"

"""pass@k with the unbiased estimator, overall and broken down by problem attributes.

For one problem with n graded samples of which c passed,

    pass@k = 1 − C(n − c, k) / C(n, k)

(the probability that at least one of k samples drawn without replacement passes). The
benchmark score is the mean over problems; a problem with fewer than k samples is left out
of pass@k (and only of that k), and the number of problems each value averages is kept.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from math import comb

UNKNOWN = "unknown"


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k for one problem (n samples, c correct)."""
    if n < 0 or c < 0 or c > n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass(frozen=True)
class Counts:
    """Samples graded (n) and passed (c) for one problem."""

    n: int
    c: int


def mean_pass_at_k(counts: Iterable[Counts], ks: Iterable[int]) -> dict[int, dict]:
    """{k: {"value": mean pass@k or None, "problems": how many problems it averages}}."""
    counts = list(counts)
    table = {}
    for k in ks:
        values = [pass_at_k(item.n, item.c, k) for item in counts if item.n >= k]
        table[k] = {"value": sum(values) / len(values) if values else None,
                    "problems": len(values)}
    return table


def month_of(contest_date: str) -> str:
    """"2024-08-17" → "2024-08"; empty → "unknown"."""
    return contest_date[:7] if contest_date and len(contest_date) >= 7 else UNKNOWN


def breakdown(counts: Mapping[str, Counts], key: Callable[[str], str],
              ks: Iterable[int]) -> dict[str, dict]:
    """pass@k per group: {group: {"problems", "samples", "passed", "pass_at_k": {k: ...}}}.

    `key(problem_id)` names the group of a problem (empty → "unknown"); groups are sorted.
    """
    ks = list(ks)
    groups: dict[str, list[Counts]] = {}
    for problem_id, item in counts.items():
        groups.setdefault(key(problem_id) or UNKNOWN, []).append(item)
    return {name: {"problems": len(items), "samples": sum(i.n for i in items),
                   "passed": sum(i.c for i in items), "pass_at_k": mean_pass_at_k(items, ks)}
            for name, items in sorted(groups.items())}


def counts_by_problem(outcomes: Iterable[tuple[str, bool]]) -> dict[str, Counts]:
    """(problem_id, passed) pairs → {problem_id: Counts}."""
    tally: dict[str, list[int]] = {}
    for problem_id, passed in outcomes:
        entry = tally.setdefault(problem_id, [0, 0])
        entry[0] += 1
        entry[1] += bool(passed)
    return {problem_id: Counts(n, c) for problem_id, (n, c) in tally.items()}

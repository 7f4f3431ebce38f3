"""A Codeforces rating for a model, the CodeElo way (as DeepCoder and Elastic Reasoning report it).

For each contest the model took part in (a contest holding a problem it was evaluated on):

1. the official standings (`contest.standings`) and rating changes (`contest.ratingChanges`)
   are read from a local cache; only rated participants present in both are kept, and a
   contest with `min_participants` (200) or fewer of them is skipped;
2. the model solves a problem when one of its first `pass_n` samples passes, at the position
   `i` (0-based) of the first passing one; it scores `max(0, points − 50·i)` for a problem
   with points, else 1 point plus a penalty of `10·i`;
3. its rank is the 1-based position of the first participant with fewer points, or equal
   points and more penalty (everyone ahead of it: last + 1);
4. its contest rating is the rating `r` at which the expected seed
   `1 + Σ_j 1/(1 + 10^((r − oldRating_j)/400))` meets that rank, found by binary search
   over integers (the largest `r` whose seed is still ≥ the rank), clamped to
   [min oldRating − 400, max oldRating + 400].

The rating is the mean over rated contests; its percentile is the share (in %) of users with a
lower rating in a `{rating: users}` table (e.g. the 2024 distribution). Nothing here uses
the network: `fetch_contest` fills the cache and is the only function that does.
"""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

API_BASE = "https://codeforces.com/api/"
STANDINGS_FILE = "standings.json"
RATING_CHANGES_FILE = "ratingChanges.json"
MIN_PARTICIPANTS = 200
SEARCH_MARGIN = 400
_PROBLEM_ID = re.compile(r"(?:^|[/_-])(\d+)[_/-]?([A-Za-z]\d*)$")
_CODECONTESTS_NAME = re.compile(r"^(\d+)_([A-Za-z]\d*)\.\s")  # "1000_A. Codehorses T-shirts"


class RatingError(ValueError):
    """A missing or malformed cache file, or no contest to rate."""


class OfflineError(RuntimeError):
    """codeforces.com cannot be reached."""


def parse_problem_id(problem_id: str) -> tuple[int, str] | None:
    """"1971A" → (1971, "A"); "1972D1" → (1972, "D1"); "codeforces/1873_A" → (1873, "A");
    "1000_A. Codehorses T-shirts" (CodeContests) → (1000, "A")."""
    match = _PROBLEM_ID.search(problem_id.strip()) or _CODECONTESTS_NAME.match(problem_id.strip())
    if not match:
        return None
    return int(match.group(1)), match.group(2).upper()


# ---------------------------------------------------------------- contest data

@dataclass
class Contest:
    """What rating needs from one contest, restricted to rated participants."""

    contest_id: int
    problems: list[dict]                  # [{"index": "A", "points": 500.0 | None}]
    rows: list[tuple[float, float]]       # (points, penalty) in standings order
    old_ratings: list[int]


def _result(payload, name: str):
    if not isinstance(payload, dict) or payload.get("status") != "OK" or "result" not in payload:
        comment = payload.get("comment") if isinstance(payload, dict) else ""
        raise RatingError(f"{name}: not an OK Codeforces API answer{': ' + comment if comment else ''}")
    return payload["result"]


def contest_from_api(contest_id: int, standings: dict, rating_changes: dict) -> Contest:
    """Keeps the standings rows and rating changes of participants present in both."""
    result = _result(standings, "standings")
    changes = _result(rating_changes, "ratingChanges")
    try:
        old_by_handle = {change["handle"]: int(change["oldRating"]) for change in changes}
        problems = [{"index": str(problem["index"]),
                     "points": float(problem["points"]) if problem.get("points") else None}
                    for problem in result["problems"]]
        rows, kept = [], set()
        for row in sorted(result["rows"], key=lambda r: r.get("rank", 0)):
            handles = [member["handle"] for member in row["party"]["members"]]
            rated = [handle for handle in handles if handle in old_by_handle]
            if not rated or rated[0] in kept:
                continue
            kept.add(rated[0])
            rows.append((float(row["points"]), float(row.get("penalty") or 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise RatingError(f"contest {contest_id}: unexpected standings / ratingChanges "
                          f"layout ({exc!r})") from None
    return Contest(contest_id, problems, rows, [old_by_handle[h] for h in old_by_handle if h in kept])


def load_contest(cache_dir: str | Path, contest_id: int) -> Contest:
    """Reads DIR/<contest_id>/standings.json and ratingChanges.json."""
    base = Path(cache_dir) / str(contest_id)
    payloads = []
    for name in (STANDINGS_FILE, RATING_CHANGES_FILE):
        path = base / name
        try:
            payloads.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RatingError(f"contest {contest_id}: {path} is missing "
                              f"(fill the cache with `sandbox cf-fetch --contests {contest_id}`)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RatingError(f"contest {contest_id}: cannot read {path}: {exc}") from None
    return contest_from_api(contest_id, *payloads)


# ---------------------------------------------------------------- the rating math

def first_pass_indices(results: Iterable[Mapping], pass_n: int) -> dict[str, int | None]:
    """{problem_id: position of the first passing sample among its first pass_n, or None}.

    Samples are ordered by `sample_index`; a result passes when `passed` is true or its
    verdict is "AC".
    """
    by_problem: dict[str, list[tuple[int, bool]]] = {}
    for result in results:
        passed = result.get("verdict") == "AC" if "verdict" in result else bool(result.get("passed"))
        by_problem.setdefault(str(result["problem_id"]), []).append(
            (int(result.get("sample_index", 0)), passed))
    first = {}
    for problem_id, samples in by_problem.items():
        samples.sort()
        first[problem_id] = next((i for i, (_, ok) in enumerate(samples[:pass_n]) if ok), None)
    return first


def model_score(problems: list[dict], solved_at: Mapping[str, int | None]) -> tuple[float, float]:
    """(points, penalty) of the model: `solved_at` maps a problem index to its first pass."""
    points = penalty = 0.0
    for problem in problems:
        i = solved_at.get(problem["index"])
        if i is None:
            continue
        if problem["points"]:
            points += max(0.0, problem["points"] - 50 * i)
        else:
            points += 1
            penalty += 10 * i
    return points, penalty


def model_rank(rows: list[tuple[float, float]], points: float, penalty: float) -> int:
    """1-based place: before the first row with fewer points, or equal points and more penalty."""
    for position, (row_points, row_penalty) in enumerate(rows, start=1):
        if row_points < points or (row_points == points and row_penalty > penalty):
            return position
    return len(rows) + 1


def expected_seed(rating: float, old_ratings: Iterable[int]) -> float:
    """1 + Σ_j P(participant j beats a player rated `rating`)."""
    return 1.0 + sum(1.0 / (1.0 + 10 ** ((rating - old) / 400.0)) for old in old_ratings)


def contest_rating(old_ratings: list[int], rank: int, margin: int = SEARCH_MARGIN) -> int:
    """The largest integer r with expected_seed(r) ≥ rank, within the ratings ± margin."""
    if not old_ratings:
        raise RatingError("no rated participants")
    low, high = min(old_ratings) - margin, max(old_ratings) + margin
    if expected_seed(low, old_ratings) < rank:
        return low
    while high - low > 0:  # invariant: seed(low) >= rank
        middle = (low + high + 1) // 2
        if expected_seed(middle, old_ratings) >= rank:
            low = middle
        else:
            high = middle - 1
    return low


# ---------------------------------------------------------------- a model's rating

@dataclass
class ContestRating:
    contest_id: int
    participants: int
    solved: list[str]
    attempted: list[str]
    points: float
    penalty: float
    rank: int
    rating: int


@dataclass
class RatingReport:
    rating: float | None
    contests: list[ContestRating] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)     # {contest_id, reason}
    percentile: float | None = None

    def to_dict(self) -> dict:
        return {"rating": self.rating, "percentile": self.percentile,
                "contests": [vars(c) for c in self.contests], "skipped": self.skipped}


def rate_model(results: Iterable[Mapping], cache_dir: str | Path, *, pass_n: int = 8,
               min_participants: int = MIN_PARTICIPANTS) -> RatingReport:
    """Rates every contest with a problem in `results` (eval results.jsonl rows).

    Contests missing from the cache, or with `min_participants` or fewer rated participants,
    are listed in `skipped`; `rating` is None when no contest could be rated.
    """
    if pass_n < 1:
        raise RatingError("pass_n must be at least 1")
    first = first_pass_indices(results, pass_n)
    by_contest: dict[int, dict[str, int | None]] = {}
    for problem_id, i in first.items():
        parsed = parse_problem_id(problem_id)
        if parsed is not None:
            by_contest.setdefault(parsed[0], {})[parsed[1]] = i
    if not by_contest:
        raise RatingError("no result has a Codeforces problem id like 1971A")
    report = RatingReport(rating=None)
    for contest_id in sorted(by_contest):
        solved_at = by_contest[contest_id]
        try:
            contest = load_contest(cache_dir, contest_id)
        except RatingError as exc:
            report.skipped.append({"contest_id": contest_id, "reason": str(exc)})
            continue
        participants = len(contest.rows)
        if participants <= min_participants:
            report.skipped.append({"contest_id": contest_id, "reason":
                                   f"{participants} rated participants (needs more than "
                                   f"{min_participants})"})
            continue
        points, penalty = model_score(contest.problems, solved_at)
        rank = model_rank(contest.rows, points, penalty)
        known = {problem["index"] for problem in contest.problems}
        report.contests.append(ContestRating(
            contest_id=contest_id, participants=participants,
            solved=sorted(index for index, i in solved_at.items() if i is not None and index in known),
            attempted=sorted(index for index in solved_at if index in known),
            points=points, penalty=penalty, rank=rank,
            rating=contest_rating(contest.old_ratings, rank)))
    if report.contests:
        report.rating = sum(c.rating for c in report.contests) / len(report.contests)
    return report


# ---------------------------------------------------------------- percentile

def load_rating_distribution(path: str | Path) -> dict[int, int]:
    """A `{rating: number of users}` JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {int(float(rating)): int(count) for rating, count in data.items()}
    except FileNotFoundError:
        raise RatingError(f"ratings file not found: {path}") from None
    except (OSError, AttributeError, ValueError, TypeError) as exc:
        raise RatingError(f"{path} is not a {{rating: users}} JSON object: {exc}") from None


def percentile(rating: float, distribution: Mapping[int, int]) -> float:
    """The share of users rated strictly below `rating`, in %."""
    total = sum(distribution.values())
    if total <= 0:
        raise RatingError("the rating distribution is empty")
    below = sum(count for value, count in distribution.items() if value < rating)
    return 100.0 * below / total


# ---------------------------------------------------------------- filling the cache

def api_url(method: str, contest_id: int, api_base: str = API_BASE) -> str:
    params = {"contestId": contest_id}
    if method == "contest.standings":
        params["showUnofficial"] = "false"
    return f"{api_base.rstrip('/')}/{method}?{urllib.parse.urlencode(params)}"


def standings_url(contest_id: int, api_base: str = API_BASE) -> str:
    return api_url("contest.standings", contest_id, api_base)


def rating_changes_url(contest_id: int, api_base: str = API_BASE) -> str:
    return api_url("contest.ratingChanges", contest_id, api_base)


def _get_json(url: str, timeout: float) -> dict:
    request = urllib.request.Request(url, headers={"User-Agent": "code-sandbox cf-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()  # the API answers errors as JSON with status FAILED
        try:
            payload = json.loads(body)
        except ValueError:
            raise RatingError(f"{url}: HTTP {exc.code}") from None
        raise RatingError(f"{url}: {payload.get('comment') or f'HTTP {exc.code}'}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(f"cannot reach {urllib.parse.urlsplit(url).netloc} ({reason}); "
                           "cf-fetch needs a machine that is online") from None
    try:
        payload = json.loads(body)
    except ValueError:
        raise RatingError(f"{url}: the answer is not JSON") from None
    _result(payload, url)
    return payload


def fetch_contest(contest_id: int, cache_dir: str | Path, *, api_base: str = API_BASE,
                  timeout: float = 60.0, pause_s: float = 2.0) -> Path:
    """Downloads a contest's standings and rating changes into DIR/<contest_id>/.

    The Codeforces API allows about one call per 2 seconds; `pause_s` waits between calls.
    Files are written only when both answers are OK.
    """
    standings = _get_json(standings_url(contest_id, api_base), timeout)
    time.sleep(pause_s)
    changes = _get_json(rating_changes_url(contest_id, api_base), timeout)
    target = Path(cache_dir) / str(contest_id)
    target.mkdir(parents=True, exist_ok=True)
    for name, payload in ((STANDINGS_FILE, standings), (RATING_CHANGES_FILE, changes)):
        temporary = target / (name + ".tmp")
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        temporary.replace(target / name)
    return target

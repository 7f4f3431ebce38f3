"""The Codeforces rating (CodeElo method) against small standings written for these tests.

The expected ratings are solved by hand from the seed equation
    seed(r) = 1 + Σ_j 1 / (1 + 10^((r − oldRating_j)/400)),
which for N participants all rated R reads seed(r) = 1 + N / (1 + 10^((r − R)/400)), so the
rating where seed(r) = rank is r = R + 400·log10(N/(rank − 1) − 1); the search returns the
largest integer r with seed(r) ≥ rank.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from conftest import REPO
from sandbox.benchmarks import cf_rating
from sandbox.benchmarks.cf_rating import (contest_rating, expected_seed, model_rank, model_score,
                                          parse_problem_id, percentile, rate_model)
from sandbox.cli import main


def write_contest(cache, contest_id, problems, rows, ratings, *, extra_rows=(), extra_changes=()):
    """Standings and rating changes in the Codeforces API's JSON layout.

    problems: [(index, points or None)]; rows: [(handle, points, penalty)] in rank order;
    ratings: {handle: oldRating}. extra_rows are unrated (not in ratingChanges), extra_changes
    rated but absent from the standings: both must be ignored.
    """
    all_rows = sorted(list(rows) + list(extra_rows), key=lambda r: (-r[1], r[2]))
    standings = {"status": "OK", "result": {
        "contest": {"id": contest_id, "name": f"Test Round {contest_id}", "type": "CF"},
        "problems": [{"contestId": contest_id, "index": index, "name": f"Problem {index}",
                      "type": "PROGRAMMING", **({"points": points} if points else {})}
                     for index, points in problems],
        "rows": [{"party": {"contestId": contest_id, "members": [{"handle": handle}],
                            "participantType": "CONTESTANT", "ghost": False},
                  "rank": position, "points": float(points), "penalty": penalty,
                  "successfulHackCount": 0, "unsuccessfulHackCount": 0, "problemResults": []}
                 for position, (handle, points, penalty) in enumerate(all_rows, start=1)]}}
    changes = {"status": "OK", "result": [
        {"contestId": contest_id, "contestName": f"Test Round {contest_id}", "handle": handle,
         "rank": position, "ratingUpdateTimeSeconds": 1700000000, "oldRating": old,
         "newRating": old}
        for position, (handle, old) in enumerate(list(ratings.items()) + list(extra_changes), 1)]}
    folder = cache / str(contest_id)
    folder.mkdir(parents=True)
    (folder / "standings.json").write_text(json.dumps(standings))
    (folder / "ratingChanges.json").write_text(json.dumps(changes))


def results_for(problem_id, verdicts):
    return [{"problem_id": problem_id, "sample_index": i, "verdict": v}
            for i, v in enumerate(verdicts)]


@pytest.fixture
def three_contests(tmp_path):
    cache = tmp_path / "cache"
    # Contest 9001, points: A 500, B 1000, C 1500; four rated participants, all 1500, plus an
    # unrated row (2000 points) and a rating change for someone not in the standings (3000).
    write_contest(cache, 9001, [("A", 500), ("B", 1000), ("C", 1500)],
                  [("p1", 2500, 0), ("p2", 1400, 0), ("p3", 900, 0), ("p4", 300, 0)],
                  {f"p{i}": 1500 for i in range(1, 5)},
                  extra_rows=[("unrated", 2000, 0)], extra_changes=[("absent", 3000)])
    # Contest 9002, ICPC style (no points): three participants rated 1500.
    write_contest(cache, 9002, [("A", None), ("B", None), ("C", None)],
                  [("q1", 3, 100), ("q2", 2, 5), ("q3", 2, 30)], {"q1": 1500, "q2": 1500, "q3": 1500})
    # Contest 9003, points: nine participants rated 2000.
    write_contest(cache, 9003, [("A", 1000), ("B", 2000)],
                  [(f"r{i}", 3000 - 100 * i, 0) for i in range(1, 10)],
                  {f"r{i}": 2000 for i in range(1, 10)})
    results = (
        # 9001: A passes at sample 0 → 500; B first passes at sample 2 → 1000 − 100 = 900;
        # C never passes. 1400 points: p2 has 1400 and equal penalty (not more), p3 has 900
        # → rank 3. seed(r) = 1 + 4/(1 + 10^((r−1500)/400)) = 3 ⇔ 10^(…) = 1 ⇔ r = 1500.
        results_for("9001A", ["AC", "WA", "AC"]) + results_for("9001B", ["WA", "TLE", "AC", "AC"])
        + results_for("9001C", ["WA"] * 3)
        # 9002: A at sample 1 (1 point, penalty 10), B at sample 0 (1 point, penalty 0):
        # 2 points, penalty 10. q2 (2, 5) is ahead, q3 (2, 30) has more penalty → rank 3.
        # 1 + 3/(1 + 10^x) = 3 ⇔ 10^x = 1/2 ⇔ r = 1500 − 400·log10 2 = 1379.588 → 1379.
        + results_for("9002A", ["WA", "AC"]) + results_for("9002B", ["AC"])
        # 9003: A at sample 0 → 1000; B first passes at sample 3 → 2000 − 150 = 1850:
        # 2850 points. r1 (2900) is ahead, r2 (2800) behind → rank 2.
        # 1 + 9/(1 + 10^x) = 2 ⇔ 10^x = 8 ⇔ r = 2000 + 400·log10 8 = 2361.24 → 2361.
        + results_for("9003A", ["AC"]) + results_for("9003B", ["WA", "WA", "RE", "AC"]))
    return cache, results


def test_three_contests_rated_by_hand(three_contests):
    cache, results = three_contests
    report = rate_model(results, cache, pass_n=8, min_participants=2)
    by_id = {c.contest_id: c for c in report.contests}
    assert set(by_id) == {9001, 9002, 9003} and not report.skipped
    assert (by_id[9001].participants, by_id[9001].points, by_id[9001].rank) == (4, 1400, 3)
    assert by_id[9001].solved == ["A", "B"] and by_id[9001].attempted == ["A", "B", "C"]
    assert by_id[9001].rating == 1500
    assert (by_id[9002].points, by_id[9002].penalty, by_id[9002].rank) == (2, 10, 3)
    assert by_id[9002].rating == 1379
    assert (by_id[9003].points, by_id[9003].rank) == (2850, 2)
    assert by_id[9003].rating == 2361
    # The rating is the mean over contests: (1500 + 1379 + 2361) / 3 = 1746.67.
    assert report.rating == pytest.approx(5240 / 3)


def test_pass_n_limits_the_samples_that_count(three_contests):
    cache, results = three_contests
    # With pass_n = 2, 9001B (first AC at sample 2) and 9003B (sample 3) are unsolved.
    report = rate_model(results, cache, pass_n=2, min_participants=2)
    by_id = {c.contest_id: c for c in report.contests}
    assert by_id[9001].points == 500 and by_id[9001].rank == 4      # p3 has 900, p4 300
    assert by_id[9003].points == 1000 and by_id[9003].rank == 10    # behind all nine (≥ 2100)
    # Rank 10 = last + 1 with nine participants: seed(r) < 10 for every r, so the lower clamp.
    assert by_id[9003].rating == 2000 - cf_rating.SEARCH_MARGIN


def test_contests_with_too_few_rated_participants_are_skipped(tmp_path):
    cache = tmp_path / "cache"
    handles = [f"u{i}" for i in range(201)]
    # 9100: exactly 200 rated participants → skipped (the rule is "≤ 200").
    write_contest(cache, 9100, [("A", 500)], [(h, 500 - i, 0) for i, h in enumerate(handles[:200])],
                  {h: 1500 for h in handles[:200]})
    # 9101: 200 rated + 1 unrated: still 200 → skipped.
    write_contest(cache, 9101, [("A", 500)], [(h, 500 - i, 0) for i, h in enumerate(handles[:200])],
                  {h: 1500 for h in handles[:200]}, extra_rows=[("ghost", 499, 0)])
    # 9102: 201 rated participants → rated.
    write_contest(cache, 9102, [("A", 500)], [(h, 500 - i, 0) for i, h in enumerate(handles)],
                  {h: 1500 for h in handles})
    results = (results_for("9100A", ["AC"]) + results_for("9101A", ["AC"])
               + results_for("9102A", ["AC"]) + results_for("9103A", ["AC"]))  # 9103: no cache
    report = rate_model(results, cache)
    assert [c.contest_id for c in report.contests] == [9102]
    skipped = {s["contest_id"]: s["reason"] for s in report.skipped}
    assert set(skipped) == {9100, 9101, 9103}
    assert "200 rated participants" in skipped[9100] and "200 rated" in skipped[9101]
    assert "cf-fetch" in skipped[9103]
    # 500 points ties u0 (500, penalty 0: not more) → rank 2 among 201 rated at 1500:
    # 1 + 201/(1 + 10^x) = 2 ⇔ 10^x = 200 ⇔ r = 1500 + 400·log10 200 = 2420.4, above the
    # clamp max + 400 = 1900.
    assert report.contests[0].rank == 2 and report.contests[0].rating == 1900
    assert rate_model(results[:1], cache).rating is None


def test_rank_and_seed_rules():
    rows = [(3000, 0), (2000, 50), (2000, 80), (1000, 0)]
    assert model_rank(rows, 3500, 0) == 1
    assert model_rank(rows, 2000, 60) == 3      # ties 2000 but (2000, 80) has more penalty
    assert model_rank(rows, 2000, 50) == 3      # equal points and equal penalty: behind it
    assert model_rank(rows, 0, 0) == 5          # nobody behind: last + 1
    assert expected_seed(1500, [1500, 1500]) == pytest.approx(2.0)
    assert contest_rating([1500] * 4, 3) == 1500
    assert contest_rating([1500] * 4, 1) == 1900        # clamped at max + 400
    # 1 + 1/(1+10^((r−1200)/400)) + 1/(1+10^((r−1800)/400)) = 1.5 lies between the two;
    # the result must satisfy the search's definition exactly.
    r = contest_rating([1200, 1800], 2)
    assert expected_seed(r, [1200, 1800]) >= 2 > expected_seed(r + 1, [1200, 1800])
    assert model_score([{"index": "A", "points": 500.0}, {"index": "B", "points": None}],
                       {"A": 20, "B": 3}) == (1, 30)   # 500 − 1000 floors at 0; B: +1, 10·3


def test_problem_ids():
    assert parse_problem_id("1971A") == (1971, "A")
    assert parse_problem_id("1972D1") == (1972, "D1")
    assert parse_problem_id("codeforces/1873_A") == (1873, "A")
    assert parse_problem_id("1000_A. Codehorses T-shirts") == (1000, "A")
    assert parse_problem_id("leetcode/2727") is None
    assert parse_problem_id("atcoder/abc301_a") is None


def test_percentile_from_a_tiny_table(tmp_path):
    table = {"1000": 2, "1500": 3, "1700": 1, "1800": 4}
    path = tmp_path / "ratings.json"
    path.write_text(json.dumps(table))
    distribution = cf_rating.load_rating_distribution(path)
    # Below 1746.67: 2 + 3 + 1 = 6 of 10 users.
    assert percentile(5240 / 3, distribution) == pytest.approx(60.0)
    assert percentile(1500, distribution) == pytest.approx(20.0)   # strictly below
    assert percentile(999, distribution) == 0.0
    assert percentile(5000, distribution) == 100.0
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(cf_rating.RatingError):
        cf_rating.load_rating_distribution(tmp_path / "bad.json")


def test_cf_rating_command(three_contests, tmp_path, capsys):
    cache, results = three_contests
    results_file = tmp_path / "results.jsonl"
    results_file.write_text("".join(json.dumps(r) + "\n" for r in results))
    ratings = tmp_path / "ratings.json"
    ratings.write_text(json.dumps({"1000": 2, "1500": 3, "1700": 1, "1800": 4}))
    assert main(["cf-rating", "--results", str(results_file), "--cache", str(cache),
                 "--ratings", str(ratings), "--min-participants", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rating"] == pytest.approx(5240 / 3) and data["percentile"] == pytest.approx(60)
    assert main(["cf-rating", "--results", str(results_file), "--cache", str(cache),
                 "--min-participants", "2"]) == 0
    out = capsys.readouterr().out
    assert "contest 9002" in out and "rating 1379" in out and "rating 1747 over 3 contest(s)" in out
    # The default threshold (200) skips these tiny contests: nothing to rate.
    assert main(["cf-rating", "--results", str(results_file), "--cache", str(cache)]) == 1
    assert "skipped" in capsys.readouterr().out


def test_cf_fetch_urls():
    assert cf_rating.standings_url(1971) == \
        "https://codeforces.com/api/contest.standings?contestId=1971&showUnofficial=false"
    assert cf_rating.rating_changes_url(1971) == \
        "https://codeforces.com/api/contest.ratingChanges?contestId=1971"
    assert cf_rating.standings_url(5, "http://mirror.local/api") == \
        "http://mirror.local/api/contest.standings?contestId=5&showUnofficial=false"


def test_cf_fetch_offline_error(tmp_path):
    """No network: the API base is a closed local port, which is what offline looks like."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = tmp_path / "cache"
    run = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "cf-fetch", "--contests", "1971,1972", "--cache",
         str(cache), "--api-base", f"http://127.0.0.1:{port}/api/", "--timeout", "5"],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach 127.0.0.1" in lines[0] and "online" in lines[0]
    assert not (cache / "1971" / "standings.json").exists()
    bad = subprocess.run([sys.executable, "-m", "sandbox.cli", "cf-fetch", "--contests", "x1",
                          "--cache", str(cache)], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert bad.returncode == 2 and "--contests" in bad.stderr

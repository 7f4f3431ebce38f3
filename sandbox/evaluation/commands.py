"""The `sandbox eval`, `sandbox cf-rating` and `sandbox cf-fetch` commands."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from sandbox.benchmarks import cf_rating, livecodebench
from sandbox.cli import CliError, _backend
from sandbox.evaluation.problems import BENCHMARKS, load_benchmark
from sandbox.evaluation.results import RESULTS_FILE, ResultsFile, read_results, result_key
from sandbox.evaluation.runner import Grader, run_samples
from sandbox.evaluation.samples import read_samples
from sandbox.problem import TESTLIB_HELP, ProblemError, with_testlib

SUMMARY_FILE = "summary.json"
SHOWN_IDS = 5


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise CliError(f"--k must be a comma-separated list of integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise CliError(f"--k values must be positive integers, got {text!r}")
    return ks


def parse_contests(text: str) -> list[int]:
    try:
        contests = [int(part) for part in text.replace(" ", ",").split(",") if part.strip()]
    except ValueError:
        raise CliError(f"--contests must be contest ids like 1971,1972, got {text!r}") from None
    if not contests or min(contests) <= 0:
        raise CliError(f"--contests must be positive contest ids, got {text!r}")
    return contests


def _rate(results: list[dict], cache: str, args):
    """The model's rating over the cached contests, with its percentile when asked for."""
    report = cf_rating.rate_model(results, cache, pass_n=args.pass_n,
                                  min_participants=args.min_participants)
    if report.rating is not None and args.ratings:
        report.percentile = cf_rating.percentile(
            report.rating, cf_rating.load_rating_distribution(args.ratings))
    return report


def _rating(results: list[dict], args) -> dict:
    """The Codeforces rating block of summary.json (with `error` when it cannot be computed)."""
    try:
        report = _rate(results, args.cf_cache, args)
    except cf_rating.RatingError as exc:
        print(f"sandbox: warning: no Codeforces rating: {exc}", file=sys.stderr)
        return {"error": str(exc), "pass_n": args.pass_n}
    data = report.to_dict() | {"pass_n": args.pass_n}
    if report.rating is None:
        data["error"] = "no contest could be rated (see skipped)"
        first = report.skipped[0] if report.skipped else {"reason": "-"}
        print(f"sandbox: warning: no Codeforces rating: no contest could be rated "
              f"(first skipped: {first['reason']})", file=sys.stderr)
    return data


def _selection(args) -> dict:
    """The problem filters given on the command line (release, dates, platform, difficulty)."""
    chosen = {"release": args.release, "start_date": args.start_date, "end_date": args.end_date,
              "platforms": args.platform.split(",") if args.platform else None,
              "difficulties": args.difficulty.split(",") if args.difficulty else None}
    return {key: value for key, value in chosen.items() if value}


def cmd_eval(args) -> int:
    from sandbox.evaluation.plot import PLOT_FILE, PlotUnavailable, plot_accuracy_vs_budget
    from sandbox.evaluation.report import write_reports
    from sandbox.evaluation.summary import summarize

    ks = parse_ks(args.k)
    if args.cf_cache and args.benchmark != "codeforces":
        raise CliError("--cf-cache rates Codeforces contests: use it with --benchmark codeforces")
    if args.ratings and not args.cf_cache:
        raise CliError("--ratings needs --cf-cache (the contests' standings)")
    if args.concurrency is not None and args.concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    _check_rating_args(args)
    try:
        problems = load_benchmark(args.benchmark, args.problems, args.cf_metadata)
        with_testlib(list(problems.values()), args.testlib)
        samples = read_samples(args.samples)
    except (ProblemError, ValueError) as exc:
        raise CliError(str(exc)) from None
    unknown = sorted({s.problem_id for s in samples} - set(problems))
    if unknown:
        shown = ", ".join(repr(pid) for pid in unknown[:SHOWN_IDS])
        more = f" and {len(unknown) - SHOWN_IDS} more" if len(unknown) > SHOWN_IDS else ""
        known = ", ".join(repr(pid) for pid in list(problems)[:3])
        raise CliError(f"{len(unknown)} problem id(s) in {args.samples} are not in "
                       f"{args.problems}: {shown}{more} (its ids look like {known})")
    selection = _selection(args)
    if selection:
        try:
            chosen = livecodebench.select(list(problems.values()), **selection)
        except (ProblemError, ValueError) as exc:
            raise CliError(str(exc)) from None
        problems = {problem.id: problem for problem in chosen}
        samples = [sample for sample in samples if sample.problem_id in problems]
        if not samples:
            raise CliError("no sample belongs to a problem of the selection "
                           f"({', '.join(f'{k}={v}' for k, v in selection.items())})")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {out}: {exc}") from None

    backend = _backend(args.server)
    try:
        concurrency = args.concurrency or _default_concurrency(backend, args.server)
        grader = Grader(backend)
        with ResultsFile(out / RESULTS_FILE) as results:
            stats = run_samples(problems, samples, grader, results, concurrency=concurrency,
                                progress=not args.no_progress)
    finally:
        backend.close()
    if stats.interrupted:
        done = stats.already_done + stats.graded
        print(f"sandbox: interrupted: {done}/{stats.total} samples graded and kept in "
              f"{out / RESULTS_FILE}; run the same command again to resume", file=sys.stderr)
        return 130

    wanted = {s.key for s in samples}
    rows = [row for row in read_results(out / RESULTS_FILE) if result_key(row) in wanted]
    rating = _rating(rows, args) if args.cf_cache else None
    summary = summarize(problems, samples, rows, ks, benchmark=args.benchmark, rating=rating)
    image = None
    if summary["budgets"]:
        try:
            plot_accuracy_vs_budget(summary["budgets"], out / PLOT_FILE,
                                    f"{args.benchmark}: accuracy vs budget")
            image = PLOT_FILE
        except (PlotUnavailable, ValueError) as exc:
            print(f"sandbox: warning: no {PLOT_FILE}: {exc}", file=sys.stderr)
    summary["run"] = {"problems_file": str(args.problems), "samples_file": str(args.samples),
                      "server": args.server or "embedded", "concurrency": concurrency,
                      "graded_this_run": stats.graded, "already_graded": stats.already_done,
                      "not_graded": [list(item) for item in stats.failed[:50]],
                      "plot": image}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_reports(summary, out, image)

    line = "  ".join(f"{name} {_percent(value['value'])}"
                     for name, value in summary["pass_at_k"].items())
    print(f"{args.benchmark}: {summary['counts']['problems_evaluated']} problems, "
          f"{summary['counts']['graded']} samples: {line}")
    if rating and rating.get("rating") is not None:
        extra = f", percentile {rating['percentile']:.1f}%" if rating.get("percentile") is not None else ""
        print(f"Codeforces rating {rating['rating']:.0f}{extra}")
    print(f"report: {out / 'report.md'}, {out / 'report.html'}; summary: {out / SUMMARY_FILE}")
    if stats.failed or stats.stopped:
        first = stats.failed[0] if stats.failed else ("", "", stats.stopped)
        print(f"sandbox: {len(stats.failed)} sample(s) could not be graded (first: {first[0]} "
              f"#{first[1]}: {first[2]}){'; stopped: ' + stats.stopped if stats.stopped else ''};"
              " run again to retry them", file=sys.stderr)
        return 1
    return 0


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _default_concurrency(backend, server: str | None) -> int:
    if server:
        try:
            return max(1, 2 * int(backend.info().capacity))
        except Exception:  # noqa: BLE001 - an old server: a modest default
            return 8
    return max(1, os.cpu_count() or 1)


def _check_rating_args(args) -> None:
    if args.pass_n < 1:
        raise CliError("--pass-n must be at least 1")
    if args.min_participants < 0:
        raise CliError("--min-participants must be 0 or more")


def cmd_cf_rating(args) -> int:
    _check_rating_args(args)
    results = read_results(args.results)
    if not results:
        raise CliError(f"no results in {args.results}")
    try:
        report = _rate(results, args.cache, args)
    except cf_rating.RatingError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_dict() | {"pass_n": args.pass_n}))
        return 0 if report.rating is not None else 1
    for contest in report.contests:
        print(f"contest {contest.contest_id}: solved {len(contest.solved)}/"
              f"{len(contest.attempted)} ({','.join(contest.solved) or '-'}), points "
              f"{contest.points:g}, penalty {contest.penalty:g}, rank {contest.rank}/"
              f"{contest.participants + 1}, rating {contest.rating}")
    for skipped in report.skipped:
        print(f"contest {skipped['contest_id']}: skipped: {skipped['reason']}")
    if report.rating is None:
        print("sandbox: error: no contest could be rated", file=sys.stderr)
        return 1
    extra = f", percentile {report.percentile:.1f}%" if report.percentile is not None else ""
    print(f"rating {report.rating:.0f} over {len(report.contests)} contest(s){extra}")
    return 0


def cmd_cf_fetch(args) -> int:
    contests = parse_contests(args.contests)
    cache = Path(args.cache)
    fetched = 0
    for position, contest_id in enumerate(contests):
        target = cache / str(contest_id)
        if not args.force and (target / cf_rating.STANDINGS_FILE).exists() \
                and (target / cf_rating.RATING_CHANGES_FILE).exists():
            print(f"contest {contest_id}: already cached in {target}")
            continue
        try:
            cf_rating.fetch_contest(contest_id, cache, api_base=args.api_base,
                                    timeout=args.timeout, pause_s=args.pause)
        except cf_rating.OfflineError as exc:
            raise CliError(str(exc)) from None
        except cf_rating.RatingError as exc:
            raise CliError(f"contest {contest_id}: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot write the cache {cache}: {exc}") from None
        fetched += 1
        print(f"contest {contest_id}: saved in {target}")
        if position + 1 < len(contests):
            time.sleep(args.pause)
    print(f"{fetched} contest(s) fetched into {cache}")
    return 0


def _reporting(func, error_class):
    """Raises the calling CLI's own CliError class (it differs under `python -m sandbox.cli`)."""
    def run(args) -> int:
        try:
            return func(args)
        except CliError as exc:
            if error_class is None or isinstance(exc, error_class):
                raise
            raise error_class(str(exc)) from None
    return run


def add_commands(sub, error_class: type[Exception] | None = None) -> None:
    """Registers eval, cf-rating and cf-fetch on the `sandbox` parser's subparsers.

    `error_class` is the CliError of the module whose main() runs (its one-line errors).
    """
    evaluate = sub.add_parser(
        "eval", help="grade a model's samples on a benchmark; pass@k, rating, reports",
        description="Grade a samples file (JSONL: problem_id, sample_index, completion | code, "
                    "language?, budget?) against a benchmark's problems, resumably, and write "
                    "results.jsonl, summary.json, report.md, report.html (and "
                    "accuracy_vs_budget.png when samples carry budgets) in --out.")
    evaluate.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    evaluate.add_argument("--problems", required=True,
                          help="problems file (JSON / JSONL, .gz ok) or a Polygon package directory")
    evaluate.add_argument("--samples", required=True, help="samples file (JSONL)")
    evaluate.add_argument("--server", help="grade through this gRPC server (default: embedded)")
    evaluate.add_argument("--k", default="1,5,10", help="pass@k values (default 1,5,10)")
    evaluate.add_argument("--out", default="eval-out", help="output directory (default eval-out)")
    evaluate.add_argument("--concurrency", type=int,
                          help="gradings at once (default: cores; 2 × capacity with --server)")
    evaluate.add_argument("--cf-metadata", help="metadata_cf.json: ids of rllm Codeforces rows")
    evaluate.add_argument("--cf-cache", help="Codeforces standings cache (see cf-fetch): "
                                             "computes the rating")
    evaluate.add_argument("--ratings", help="{rating: users} JSON for the rating's percentile")
    evaluate.add_argument("--pass-n", type=int, default=8,
                          help="samples per problem that count for the rating (default 8)")
    evaluate.add_argument("--min-participants", type=int, default=cf_rating.MIN_PARTICIPANTS,
                          help="skip contests with this many rated participants or fewer "
                               "(default 200)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.add_argument("--release", help="LiveCodeBench release: release_vN, or vA_vB for "
                                            "what releases A..B added (by contest date)")
    evaluate.add_argument("--start-date", help="only problems from this contest date (YYYY-MM-DD)")
    evaluate.add_argument("--end-date", help="only problems up to this contest date (YYYY-MM-DD)")
    evaluate.add_argument("--platform", help="only these platforms, e.g. leetcode,atcoder")
    evaluate.add_argument("--difficulty", help="only these difficulties, e.g. easy,medium")
    evaluate.add_argument("--testlib", metavar="PATH", help=TESTLIB_HELP)
    evaluate.set_defaults(func=_reporting(cmd_eval, error_class))

    rating = sub.add_parser(
        "cf-rating", help="Codeforces rating of eval results (offline, from a standings cache)",
        description="Rate eval results (results.jsonl) on the Codeforces contests of their "
                    "problems, from standings cached by cf-fetch (DIR/<contest>/standings.json "
                    "and ratingChanges.json).")
    rating.add_argument("--results", required=True, help="results.jsonl of `sandbox eval`")
    rating.add_argument("--cache", required=True, help="standings cache directory")
    rating.add_argument("--ratings", help="{rating: users} JSON for the percentile")
    rating.add_argument("--pass-n", type=int, default=8, help="samples that count (default 8)")
    rating.add_argument("--min-participants", type=int, default=cf_rating.MIN_PARTICIPANTS,
                        help="skip contests with this many rated participants or fewer")
    rating.add_argument("--json", action="store_true", help="print one JSON object")
    rating.set_defaults(func=_reporting(cmd_cf_rating, error_class))

    fetch = sub.add_parser(
        "cf-fetch", help="download Codeforces standings into a cache (needs the network)",
        description="Fetch contest.standings and contest.ratingChanges from the Codeforces API "
                    "into DIR/<contest>/ for cf-rating and eval --cf-cache.")
    fetch.add_argument("--contests", required=True, help="contest ids, e.g. 1971,1972")
    fetch.add_argument("--cache", required=True, help="cache directory")
    fetch.add_argument("--force", action="store_true", help="fetch contests already cached")
    fetch.add_argument("--api-base", default=cf_rating.API_BASE,
                       help=f"Codeforces API base URL (default {cf_rating.API_BASE})")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    fetch.add_argument("--pause", type=float, default=2.0,
                       help="seconds between API calls (the API allows ~1 per 2 s)")
    fetch.set_defaults(func=_reporting(cmd_cf_fetch, error_class))

"""`python -m verl_plugin.math_eval`: grade math samples (AIME / MATH500) as the math reward does.

    python -m verl_plugin.math_eval --benchmark aime2024 --problems aime_2024.jsonl \\
        --samples eval-out/samples.jsonl --out eval-out

The math equivalent of `sandbox eval` for `verl_plugin.evaluate`'s samples file: each sample's
last `\\boxed{}` after `</think>` judged against the problem's answer by math-verify in child
processes (verl_plugin.math_verifier, a real per-sample timeout). Writes OUT/results.jsonl (one
line per sample: problem_id, sample_index, verdict CORRECT | WRONG | NO_ANSWER | NO_SOLUTION |
TIMEOUT, correct, answer, control, tokens) and OUT/math_summary.json (accuracy per control).
A TIMEOUT is reported as such and counts as not correct.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from verl_plugin.math_answer import after_think, ground_truths, last_boxed
from verl_plugin.math_verifier import VerifierError, VerifierPool


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def grade_sample(pool: VerifierPool, gold: str, sample: dict, timeout_s: float,
                 require_think_end: bool = True) -> dict:
    row = {"problem_id": sample["problem_id"], "sample_index": sample["sample_index"],
           "control": sample.get("control"), "tokens": sample.get("tokens"), "budget": sample.get("budget"),
           "answer": "", "correct": False}
    completion = str(sample.get("completion") or "")
    solution = after_think(completion)
    if solution is None and require_think_end:
        return row | {"verdict": "NO_SOLUTION"}
    answer = last_boxed(completion if solution is None else solution)
    if not answer or not answer.strip():
        return row | {"verdict": "NO_ANSWER"}
    check = pool.check(ground_truths(gold), answer.strip(), timeout_s)
    verdict = "TIMEOUT" if check.timed_out else "CORRECT" if check.equal else "WRONG"
    return row | {"verdict": verdict, "correct": verdict == "CORRECT", "answer": answer.strip()[:300]}


def grade_all(problems: dict, samples: list[dict], *, timeout_s: float = 10.0, workers: int = 4,
              require_think_end: bool = True) -> list[dict]:
    unknown = sorted({s["problem_id"] for s in samples} - set(problems))
    if unknown:
        raise ValueError(f"samples name unknown problems: {', '.join(map(str, unknown[:5]))}")
    pool = VerifierPool(workers)
    try:
        with ThreadPoolExecutor(workers) as executor:
            return list(executor.map(lambda s: grade_sample(pool, problems[s["problem_id"]].answer, s, timeout_s,
                                                            require_think_end), samples))
    finally:
        pool.close()


def control_label(control: dict | None) -> str:
    if not control:
        return "none"
    settings = ",".join(f"{k}={v}" for k, v in control.items() if k != "method")
    return f"{control.get('method', '?')}({settings})" if settings else str(control.get("method"))


def summarize(results: list[dict]) -> dict:
    by_control: dict[str, list[dict]] = {}
    for row in results:
        by_control.setdefault(control_label(row.get("control")), []).append(row)
    return {"samples": len(results), "correct": sum(r["correct"] for r in results),
            "timeouts": sum(r["verdict"] == "TIMEOUT" for r in results),
            "controls": {label: {"samples": len(rows), "accuracy": sum(r["correct"] for r in rows) / len(rows)}
                         for label, rows in by_control.items()}}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m verl_plugin.math_eval",
                                     description="Grade math samples (verl_plugin.evaluate's samples.jsonl) "
                                                 "with math-verify, as verl_plugin.math_reward does.")
    parser.add_argument("--benchmark", required=True, help="aime2024, aime2025, math500 or deepscaler")
    parser.add_argument("--problems", required=True, help="the benchmark's rows (see verl_plugin.math_data)")
    parser.add_argument("--samples", required=True, help="samples.jsonl: {problem_id, sample_index, completion, ...}")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per sample (default 10)")
    parser.add_argument("--workers", type=int, default=4, help="math-verify processes (default 4)")
    parser.add_argument("--no-require-think-end", action="store_true",
                        help="grade responses without </think> as a whole (default: NO_SOLUTION)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from verl_plugin.math_data import MathDataError, load_math, parse_spec

    args = parse_args(argv)
    try:
        source, path = parse_spec(f"{args.benchmark}={args.problems}")
        problems = {p.id: p for p in load_math(path, source)}
        results = grade_all(problems, read_jsonl(args.samples), timeout_s=args.timeout, workers=args.workers,
                            require_think_end=not args.no_require_think_end)
    except (MathDataError, VerifierError, OSError, ValueError, KeyError) as exc:
        print(f"verl_plugin.math_eval: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    summary = summarize(results)
    (out / "math_summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{summary['correct']}/{summary['samples']} correct ({summary['timeouts']} timeouts); "
          f"results in {out / 'results.jsonl'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

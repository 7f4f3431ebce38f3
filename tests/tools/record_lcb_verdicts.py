"""Records lcb_runner's verdicts for the differential suite (not run in CI).

    /usr/bin/python3 tests/tools/record_lcb_verdicts.py /path/to/LiveCodeBench </dev/null >/dev/null

runs every case of tests/lcb_differential_cases.py through lcb_runner's own
`evaluate_generations_by_problem` (lcb_runner/evaluation/compute_code_generation_metrics.py:
check_correctness forks a worker per case running `run_test`, its reliability_guard
included, so the recording process itself is never poisoned) and writes tests/data/lcb_runner_verdicts.json: each case with
lcb_runner's per-test results and metadata. Use the interpreter the jail runs (/usr/bin/python3,
with the Debian packages scripts/setup.sh installs) so that ast.unparse and the importable
modules are the same, and /dev/null as stdin: a program that reads fd 0 itself (open(0),
os.read(0)) reads the runner's own stdin. tqdm, imported by that module for progress bars, is
stubbed when it is not installed. Nothing of LiveCodeBench is copied into this repository.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
OUT = TESTS / "data" / "lcb_runner_verdicts.json"


def load_lcb(checkout: Path):
    """compute_code_generation_metrics, imported without lcb_runner's package __init__ (which
    pulls in the model runners)."""
    for name, folder in (("lcb_runner", checkout / "lcb_runner"),
                         ("lcb_runner.evaluation", checkout / "lcb_runner" / "evaluation")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    try:
        import tqdm  # noqa: F401
    except ImportError:
        stub = types.ModuleType("tqdm")
        stub.tqdm = lambda iterable=None, *args, **kwargs: iterable
        sys.modules["tqdm"] = stub
    from lcb_runner.evaluation import compute_code_generation_metrics
    return compute_code_generation_metrics


def sample(case: dict) -> dict:
    in_outs = {"inputs": [t["input"] for t in case["tests"]],
               "outputs": [t["output"] for t in case["tests"]]}
    if case["kind"] == "functional":
        in_outs["fn_name"] = case["func_name"]
    return {"input_output": json.dumps(in_outs)}


def recorded(result: object) -> object:
    """A per-test result as JSON: a bool, an int (an error code, or what a result's own
    __eq__ returned), else its repr (e.g. a numpy array lcb_runner failed to read)."""
    if isinstance(result, bool):
        return result
    try:
        return int(result)
    except (TypeError, ValueError):
        return repr(result)


def lcb_commit(checkout: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a LiveCodeBench checkout (28fef95)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", help="record the cases whose id starts with this")
    parser.add_argument("--commit", help="the checkout's commit, when it is no git work tree "
                                         "(e.g. extracted with git archive)")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    from lcb_differential_cases import TIME_LIMIT_S, all_cases

    metrics = load_lcb(args.checkout.resolve())
    cases = [c for c in all_cases() if not args.only or c["id"].startswith(args.only)]
    for number, case in enumerate(cases, 1):
        # lcb_runner's per-problem entry (check_correctness, and its TestRunnerError
        # fallback when the worker died without a result).
        all_results, all_metadata = metrics.evaluate_generations_by_problem(
            ([case["source"]], sample(case), False, TIME_LIMIT_S))
        results, metadata = all_results[0], all_metadata[0]
        case["lcb"] = {"results": [recorded(r) for r in results],
                       "metadata": {k: v for k, v in dict(metadata).items()
                                    if k in ("error_code", "error_message", "error")}}
        print(f"{number}/{len(cases)} {case['id']}: {case['lcb']['results']}", file=sys.stderr)
    document = {"lcb_runner_commit": args.commit or lcb_commit(args.checkout), "python": sys.version.split()[0],
                "time_limit_s": TIME_LIMIT_S, "cases": cases}
    args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

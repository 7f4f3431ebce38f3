"""One GRPO step's worth of code rewards, scored three ways side by side (prints a table).

Samples: P prompts × 8 samples built from /work/shared/data/verified/problems.jsonl (real problems,
their full real tests). Each prompt's group: 4 × a verified correct solution, 2 × a verified
incorrect one (real WA / RE / TLE submissions where the problem has them, else a synthetic wrong
answer), 1 × a syntax error, 1 × an answer without a code block. Every completion is wrapped as a
model response (`<think>…</think>` then a ```python block). Python solutions only (prime_code runs
Python only). Expected reward: 1 for the correct ones, 0 for the rest.

Scorers:
  floor         the same programs run bare (bench/floor_runner.py): no isolation, warm interpreters
                forking per test, the first failure stops a sample, `cores` samples at once
  plugin        verl_plugin.reward.compute_score through a `sandbox serve` subprocess on a unix
                socket (capacity = cores), all samples of the step awaited at once (as verl's reward
                loop does), test sets uploaded once per problem by digest
  prime_code    verl.utils.reward_score.prime_code.compute_score(continuous=True): what verl 0.9's
                default reward uses for code without a SandboxFusion URL; runs the code unsandboxed
                in forked processes on this machine; `cores` threads at once
  sandbox_fusion verl.utils.reward_score.sandbox_fusion (verl's own SandboxFusion client, one HTTP
                request per test, `cores` samples at once) pointed at our server's SandboxFusion API
                (`sandbox serve --http-address`, the same server process as the plugin row), and at a
                SandboxFusion server when --sandbox-fusion-url is given (none here: n/a otherwise)

Usage: .venv/bin/python bench/bench_reward.py [--prompts 16] [--skip-prime-code]
       (--prompts 128 is a full E1 step: 1024 samples; takes far longer than the default on 2 cores)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.client import SandboxClient  # noqa: E402
from sandbox.problem import Problem  # noqa: E402
from verl_plugin import reward  # noqa: E402
from verl_plugin.groundtruth import to_ground_truth  # noqa: E402

VERIFIED = REPO.parent / "shared" / "data" / "verified" / "problems.jsonl"
GROUP = 8


def load_problems() -> list[dict]:
    rows = [json.loads(line) for line in VERIFIED.read_text().splitlines() if line.strip()]
    usable = []
    for row in rows:
        correct = [s for s in row["solutions"]["correct"] if s["language"] == "python"]
        if correct:
            row["py_correct"] = correct
            row["py_incorrect"] = [s for s in row["solutions"]["incorrect"] if s["language"] == "python"]
            usable.append(row)
    # Problems with real incorrect submissions first, so small runs still contain them.
    usable.sort(key=lambda r: (not r["py_incorrect"], r["id"]))
    return usable


def synthetic_wrong(row: dict) -> str:
    if row["kind"] == "functional":
        return f"class Solution:\n    def {row['func_name']}(self, *args):\n        return None\n"
    return "print(0)\n"


def wrap(code: str) -> str:
    return f"<think>\nI will solve it.\n</think>\nHere is my solution.\n```python\n{code}\n```\n"


def build_step(prompts: int, seed: int) -> list[dict]:
    problems = load_problems()
    rng = random.Random(seed)
    samples = []
    for p in range(prompts):
        row = problems[p % len(problems)]
        problem = Problem(id=row["id"], kind=row["kind"], func_name=row.get("func_name") or "",
                          tests=row["tests"], time_limit_s=row["time_limit_s"],
                          memory_limit_mb=row.get("memory_limit_mb") or 1024, compare="lcb")
        truth = to_ground_truth(problem, source="livecodebench")
        prime_truth = {"inputs": [t["input"] for t in row["tests"]], "outputs": [t["output"] for t in row["tests"]]}
        if row["kind"] == "functional":
            prime_truth["fn_name"] = row["func_name"]
        correct = row["py_correct"][0]["code"]
        wrong = [s["code"] for s in row["py_incorrect"]] or [synthetic_wrong(row)]
        group = [(wrap(correct), 1.0, "correct")] * 4
        group += [(wrap(wrong[i % len(wrong)]), 0.0, "incorrect") for i in range(2)]
        group.append((wrap(correct.replace(":", "", 1) if ":" in correct else "def f(:\n"), 0.0, "syntax error"))
        group.append(("<think>\nhmm\n</think>\nI could not finish.", 0.0, "no code"))
        rng.shuffle(group)
        for completion, expected, label in group:
            samples.append({"prompt": p, "problem": row["id"], "completion": completion, "expected": expected,
                            "label": label, "ground_truth": truth, "prime_truth": json.dumps(prime_truth),
                            "time_limit_s": row["time_limit_s"]})
    return samples


# ------------------------------------------------------------------ scorers


def start_server(socket: str, capacity: int, http_port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "serve", "--address", f"unix:{socket}",
                                "--capacity", str(capacity), "--http-address", f"127.0.0.1:{http_port}"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with SandboxClient(f"unix:{socket}") as client:
        client.wait_ready(30)
    return process


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def score_plugin(samples: list[dict], address: str) -> tuple[list[float], float, dict]:
    async def main():
        settings = reward.Settings.from_kwargs({"addresses": address})
        started = time.perf_counter()
        try:
            results = await asyncio.gather(*[
                reward.compute_score("livecodebench", s["completion"], s["ground_truth"], {"index": s["prompt"]},
                                     addresses=address) for s in samples])
            elapsed = time.perf_counter() - started
            return results, elapsed, reward.get_pool(settings).uploads
        finally:
            await reward.close_pools()
    results, elapsed, uploads = asyncio.run(main())
    verdicts = {}
    for result in results:
        verdicts[result["verdict"]] = verdicts.get(result["verdict"], 0) + 1
    return [r["score"] for r in results], elapsed, {"uploads": uploads, "verdicts": verdicts}


def score_prime_code(samples: list[dict], workers: int) -> tuple[list[float], float, dict]:
    from verl.utils.reward_score import prime_code

    def one(sample):
        success, _ = prime_code.compute_score(sample["completion"], sample["prime_truth"], continuous=True)
        return float(success)
    devnull = open(os.devnull, "w")
    saved = sys.stdout, sys.stderr
    started = time.perf_counter()
    try:
        sys.stdout = sys.stderr = devnull  # prime_code prints tracebacks of failing samples
        with ThreadPoolExecutor(workers) as pool:
            scores = list(pool.map(one, samples))
    finally:
        sys.stdout, sys.stderr = saved
        devnull.close()
    return scores, time.perf_counter() - started, {}


def score_sandbox_fusion(samples: list[dict], url: str, workers: int) -> tuple[list[float], float, dict]:
    import threading

    from verl.utils.reward_score import sandbox_fusion
    semaphore = threading.Semaphore(workers)

    def one(sample):
        score, _ = sandbox_fusion.compute_score(url, semaphore, 1024, sample["completion"],
                                                sample["prime_truth"], continuous=True)
        return float(score)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        scores = list(pool.map(one, samples))
    return scores, time.perf_counter() - started, {}


def score_floor(samples: list[dict], workers: int) -> tuple[list[float], float, dict]:
    """The same programs, unisolated: warm interpreters forking per test, the first failure
    stopping each sample, `workers` at once (bench/floor_runner.py): the reward's floor."""
    import re
    sys.path.insert(0, str(REPO / "bench"))
    from floor_runner import grade_all_bare
    jobs = []
    for sample in samples:
        blocks = re.findall(r"```python\n(.*?)```", sample["completion"], re.S)
        truth = json.loads(sample["prime_truth"])
        tests = [{"input": i, "output": o} for i, o in zip(truth["inputs"], truth["outputs"])]
        kind = "functional" if truth.get("fn_name") else "stdin"
        jobs.append((blocks[-1] if blocks else None, tests, kind, truth.get("fn_name", ""),
                     sample["time_limit_s"]))
    started = time.perf_counter()
    passed = grade_all_bare(jobs, workers)
    return [1.0 if ok else 0.0 for ok in passed], time.perf_counter() - started, {}


def summarize(name: str, samples: list[dict], scores: list[float], elapsed: float, notes: str) -> dict:
    binary = [1.0 if s >= 1.0 else 0.0 for s in scores]
    agree = sum(b == s["expected"] for b, s in zip(binary, samples))
    false_neg = sum(b == 0.0 and s["expected"] == 1.0 for b, s in zip(binary, samples))
    false_pos = sum(b == 1.0 and s["expected"] == 0.0 for b, s in zip(binary, samples))
    partial = sum(0.0 < x < 1.0 for x in scores)
    return {"scorer": name, "samples": len(samples), "wall_s": elapsed, "rate": len(samples) / elapsed,
            "agree": agree, "false_neg": false_neg, "false_pos": false_pos, "partial": partial, "notes": notes}


def print_table(rows: list[dict], prompts: int) -> None:
    print(f"\nOne GRPO step: {prompts} prompts x {GROUP} samples, real problems and tests "
          f"(verified/problems.jsonl), {os.cpu_count()} cores\n")
    header = ("scorer", "samples", "wall s", "samples/s", "agree w/ label", "false 0 (correct)",
              "false 1 (wrong)", "partial", "notes")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        if row.get("na"):
            print(f"| {row['scorer']} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | {row['notes']} |")
            continue
        print(f"| {row['scorer']} | {row['samples']} | {row['wall_s']:.1f} | {row['rate']:.1f} | "
              f"{row['agree']}/{row['samples']} | {row['false_neg']} | {row['false_pos']} | {row['partial']} | "
              f"{row['notes']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16, help="prompts in the step (8 samples each; E1: 128)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-prime-code", action="store_true")
    parser.add_argument("--skip-http", action="store_true",
                        help="skip verl's SandboxFusion client on our /run_code (one request per test: slow)")
    parser.add_argument("--sandbox-fusion-url", help="a SandboxFusion run_code URL, if you have one")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    samples = build_step(args.prompts, args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-reward-") as tmp:
        socket = f"{tmp}/sandbox.sock"
        http_port = free_port()
        server = start_server(socket, cores, http_port)
        try:
            scores, elapsed, info = score_plugin(samples, f"unix:{socket}")
            ours_url = f"http://127.0.0.1:{http_port}/run_code"
            if not args.skip_http:
                http_scores, http_elapsed, _ = score_sandbox_fusion(samples, ours_url, cores)
        finally:
            server.terminate()
            server.wait(30)
    problems = len({s["problem"] for s in samples})
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(info["verdicts"].items()))
    rows.append(summarize("verl_plugin (sandbox gRPC)", samples, scores, elapsed,
                          f"{info['uploads']} test-set uploads for {problems} problems; {verdicts}"))
    if not args.skip_http:
        rows.append(summarize("verl sandbox_fusion -> ours", samples, http_scores, http_elapsed,
                              f"verl's client on our /run_code, one request per test; "
                              f"{http_elapsed / elapsed:.1f}x the plugin's time"))
    scores, floor_elapsed, _ = score_floor(samples, cores)
    rows.append(summarize("floor (bare, unisolated)", samples, scores, floor_elapsed,
                          f"warm forks, first failure stops, {cores} at once; the plugin takes "
                          f"{elapsed / floor_elapsed:.2f}x its time"))
    if not args.skip_prime_code:
        scores, elapsed, _ = score_prime_code(samples, cores)
        rows.append(summarize("verl prime_code", samples, scores, elapsed,
                              "unsandboxed exec on the host; continuous=True gives partial scores"))
    if args.sandbox_fusion_url:
        scores, elapsed, _ = score_sandbox_fusion(samples, args.sandbox_fusion_url, cores)
        rows.append(summarize("verl sandbox_fusion", samples, scores, elapsed, args.sandbox_fusion_url))
    else:
        rows.append({"scorer": "verl sandbox_fusion", "na": True,
                     "notes": "needs a SandboxFusion server: none here (pass --sandbox-fusion-url)"})
    print_table(rows, args.prompts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Budgeted evaluation: generate under a grid of length controls with vLLM offline, then grade
(the sandbox for code, math-verify for math) and compare accuracy with the tokens used.

    python -m verl_plugin.evaluate --model Salesforce/E1-Code-14B --tp 4 \\
        --benchmark livecodebench --problems test_livecodebench.jsonl \\
        --budgets 1024:1024,2048:1024,4096:1024 --n 8 --out eval-e1 [--grade --server HOST:PORT]
    python -m verl_plugin.evaluate --model l3lab/L1-Qwen-1.5B-Exact --benchmark aime2024 \\
        --problems aime_2024.jsonl --targets 512,1024,2048 --out eval-l1 --grade

The grid's three kinds of control (any mix, one grid point each):
- `--budgets T:S,...`: E1's two phases (below);
- `--targets N,...` / `--max-targets N,...`: L1's "Think for N tokens." / "Think for maximum N
  tokens." in the prompt (verl_plugin.length_prompt), one ordinary generation of at most
  `--target-cap` × N tokens (2, as L1's evaluation scripts);
- `--no-control`: the plain prompt, one ordinary generation of at most `--max-tokens` tokens.
Every sample records `control` ({method: e1 | l1-exact | l1-max | none, ...}) and `tokens`, the
tokens it actually generated; `python -m verl_plugin.compare` puts accuracy against tokens for
every method and setting in one table and one plot.

Generation is the rollout's two-phase logic (verl_plugin.budget, shared with the verl agent loop):
phase 1 ≤ t tokens stopping at </think>, a forced </think> when needed, phase 2 ≤ s tokens. Each
budget's requests go to vLLM as two batches (all thinking phases, then all solution phases).

Writes OUT/samples.jsonl, one line per sample:
    {problem_id, sample_index, completion, budget: {thinking, solution} (E1) | {target} (L1) |
     {max_tokens} (none), control, tokens, thinking_tokens, solution_tokens, think_forced}
sample_index runs over the whole grid (budget b, sample i → b × n + i), so `sandbox eval` keys stay
unique and its report breaks accuracy down by budget. `--grade` runs `sandbox eval` on it (embedded
sandbox, or --server) into OUT/ for code, `python -m verl_plugin.math_eval` for math (aime2024,
aime2025, math500), then `python -m verl_plugin.compare OUT`; or run them yourself:
    sandbox eval --benchmark livecodebench --problems ... --samples OUT/samples.jsonl --out OUT
vLLM is optional: without it the command says so in one line and exits with status 3.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from verl_plugin import length_prompt
from verl_plugin.budget import BudgetConfig, Generation, SpecialTokens, generate_budgeted_batch

CODE_BENCHMARKS = ("livecodebench", "codeforces")
MATH_BENCHMARKS = ("aime2024", "aime2025", "math500")
TARGET_CAP = 2.0  # L1's evaluation scripts: max_tokens = 2 x the target
DEFAULT_MAX_TOKENS = 8192


def parse_budgets(text: str) -> list[tuple[int, int]]:
    budgets = []
    for part in text.split(","):
        thinking, sep, solution = part.strip().partition(":")
        if not sep:
            raise ValueError(f"budget {part!r}: write THINKING:SOLUTION, e.g. 1024:1024")
        budgets.append((int(thinking), int(solution)))
    if not budgets:
        raise ValueError("no budgets")
    return budgets


def parse_targets(text: str | None) -> list[int]:
    if not text:
        return []
    targets = [int(part) for part in text.split(",") if part.strip()]
    if any(t < 1 for t in targets):
        raise ValueError(f"targets {text!r}: every target length must be >= 1 token")
    return targets


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The chat template with the generation prompt, tokenized (what verl's agent loop builds)."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


def completion_text(tokenizer, response_ids: list[int], special: SpecialTokens) -> str:
    """The response as text, </think> kept (EOS dropped) so `sandbox eval` can split it."""
    return tokenizer.decode([t for t in response_ids if t not in special.eos_ids], skip_special_tokens=False)


def benchmark_messages(problem, benchmark: str, prompt_style: str = "deepcoder") -> list[dict]:
    """The training prompt of a problem: verl_plugin.data's for code, verl_plugin.math_data's for math."""
    if benchmark in MATH_BENCHMARKS:
        from verl_plugin.math_data import prompt_messages as math_messages

        return math_messages(problem)
    from verl_plugin.data import prompt_messages

    return prompt_messages(problem, benchmark, prompt_style)


def run_grid(problems: dict, tokenizer, generate, budgets: list[tuple[int, int]], n: int, *,
             benchmark: str, prompt_style: str = "deepcoder", think_end: str = "</think>",
             eos_in_thinking: str = "stop", targets: list[int] = (), max_targets: list[int] = (),
             no_control: bool = False, max_tokens: int = DEFAULT_MAX_TOKENS,
             target_cap: float = TARGET_CAP) -> list[dict]:
    """Samples for every (problem, grid point, sample); `generate` is a BatchGenerate (budget.py).
    Grid points in order: the E1 budgets, the L1 exact targets, the L1 max targets, no control."""
    special = SpecialTokens.from_tokenizer(tokenizer, think_end)
    ids = list(problems)
    messages = [benchmark_messages(problems[pid], benchmark, prompt_style) for pid in ids]
    prompts = [prompt_ids(tokenizer, m) for m in messages]
    rows = e1_rows(ids, prompts, tokenizer, generate, budgets, n, special, think_end, eos_in_thinking)
    separator = " " if benchmark in MATH_BENCHMARKS else "\n\n"
    plain = [("l1-exact", "exact", t) for t in targets] + [("l1-max", "max", t) for t in max_targets]
    point = len(budgets)
    for method, mode, target in plain:
        controlled = [prompt_ids(tokenizer, length_prompt.with_instruction(m, mode, target, separator))
                      for m in messages]
        rows += plain_rows(ids, controlled, tokenizer, generate, n, special, point,
                           {"method": method, "target": target},
                           {"target" if mode == "exact" else "max_target": target},
                           max(1, int(target_cap * target)))
        point += 1
    if no_control:
        rows += plain_rows(ids, prompts, tokenizer, generate, n, special, point,
                           {"method": "none", "max_tokens": max_tokens}, {"max_tokens": max_tokens}, max_tokens)
    return rows


def plain_rows(ids: list[str], prompts: list[list[int]], tokenizer, generate, n: int, special: SpecialTokens,
               point: int, control: dict, budget: dict, cap: int) -> list[dict]:
    """One ordinary generation per sample (L1 targets, no control), stopping at EOS or `cap`."""
    requests = [(prompt, cap, sorted(special.eos_ids)) for prompt in prompts for _ in range(n)]
    rows = []
    for k, generation in enumerate(generate(requests)):
        problem_index, i = divmod(k, n)
        tokens = list(generation.token_ids)[:cap]
        rows.append({"problem_id": ids[problem_index], "sample_index": point * n + i,
                     "completion": completion_text(tokenizer, tokens, special), "budget": budget,
                     "control": control, "tokens": len(tokens)})
    return rows


def e1_rows(ids: list[str], prompts: list[list[int]], tokenizer, generate, budgets, n: int,
            special: SpecialTokens, think_end: str, eos_in_thinking: str) -> list[dict]:
    rows = []
    for b, (thinking, solution) in enumerate(budgets):
        config = BudgetConfig(thinking_budget=thinking, solution_budget=solution,
                              eos_in_thinking=eos_in_thinking, think_end=think_end)
        flat = [prompt for prompt in prompts for _ in range(n)]
        results = generate_budgeted_batch(generate, flat, config, special)
        for k, result in enumerate(results):
            problem_index, i = divmod(k, n)
            rows.append({"problem_id": ids[problem_index], "sample_index": b * n + i,
                         "completion": completion_text(tokenizer, result.response_ids, special),
                         "budget": {"thinking": thinking, "solution": solution},
                         "control": {"method": "e1", "thinking": thinking, "solution": solution},
                         "tokens": len(result.response_ids),
                         "thinking_tokens": result.thinking_tokens,
                         "solution_tokens": result.solution_tokens,
                         "think_forced": result.think_forced})
    return rows


def vllm_generate(llm, temperature: float, top_p: float, seed: int | None):
    """A BatchGenerate over vLLM's offline LLM (token ids in, token ids out)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    def generate(requests):
        params = [SamplingParams(max_tokens=max_tokens, stop_token_ids=list(stop_ids) or None,
                                 temperature=temperature, top_p=top_p, skip_special_tokens=False,
                                 seed=None if seed is None else seed + index)
                  for index, (_, max_tokens, stop_ids) in enumerate(requests)]
        prompts = [TokensPrompt(prompt_token_ids=list(prompt)) for prompt, _, _ in requests]
        outputs = llm.generate(prompts, params, use_tqdm=True)
        return [Generation(token_ids=list(output.outputs[0].token_ids)) for output in outputs]
    return generate


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m verl_plugin.evaluate",
        description="Generate under a grid of (thinking, solution) budgets with vLLM offline (the "
                    "rollout's two-phase logic), write samples.jsonl for `sandbox eval`, optionally grade.")
    parser.add_argument("--model", required=True, help="HF model path or name (vLLM loads it)")
    parser.add_argument("--benchmark", required=True, choices=CODE_BENCHMARKS + MATH_BENCHMARKS)
    parser.add_argument("--problems", required=True, help="problems file, as for `sandbox eval`")
    parser.add_argument("--cf-metadata", help="metadata_cf.json for rllm Codeforces rows")
    parser.add_argument("--budgets", default=None,
                        help="E1: THINKING:SOLUTION,... (default 1024:1024 when no other control is given)")
    parser.add_argument("--targets", default=None, help="L1-Exact: target lengths N,... ('Think for N tokens.')")
    parser.add_argument("--max-targets", default=None,
                        help="L1-Max: target lengths N,... ('Think for maximum N tokens.')")
    parser.add_argument("--no-control", action="store_true", help="also the plain prompt, no length control")
    parser.add_argument("--target-cap", type=float, default=TARGET_CAP,
                        help="L1 points: at most this x N tokens (default 2, as L1's evaluation)")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                        help=f"--no-control: at most this many tokens (default {DEFAULT_MAX_TOKENS})")
    parser.add_argument("--label", default=None, help="the method's name in the comparison (default: --model)")
    parser.add_argument("--n", type=int, default=8, help="samples per problem and budget (default 8)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--tp", type=int, default=1, help="vLLM tensor parallel size")
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--prompt-style", choices=("deepcoder", "chat"), default="deepcoder")
    parser.add_argument("--eos-in-thinking", choices=("stop", "force", "mask"), default="stop")
    parser.add_argument("--limit", type=int, default=0, help="first N problems only")
    parser.add_argument("--out", default="eval-budgets", help="output directory")
    parser.add_argument("--grade", action="store_true", help="run `sandbox eval` on the samples")
    parser.add_argument("--server", help="with --grade: grade through this sandbox server")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        targets, max_targets = parse_targets(args.targets), parse_targets(args.max_targets)
        given = args.budgets or not (targets or max_targets or args.no_control)
        budgets = parse_budgets(args.budgets or "1024:1024") if given else []
    except ValueError as exc:
        print(f"verl_plugin.evaluate: {exc}", file=sys.stderr)
        return 2
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("verl_plugin.evaluate: vLLM is not installed (pip install vllm, on a GPU machine); "
              "generation needs it", file=sys.stderr)
        return 3
    from transformers import AutoTokenizer
    from vllm import LLM

    from sandbox.problem import ProblemError
    from verl_plugin.math_data import MathDataError

    try:
        problems = load_problems(args.benchmark, args.problems, args.cf_metadata)
    except (ProblemError, MathDataError) as exc:
        print(f"verl_plugin.evaluate: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        problems = dict(list(problems.items())[:args.limit])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    llm_kwargs = {"model": args.model, "tensor_parallel_size": args.tp,
                  "gpu_memory_utilization": args.gpu_memory_utilization}
    if args.max_model_len:
        llm_kwargs["max_model_len"] = args.max_model_len
    if args.seed is not None:
        llm_kwargs["seed"] = args.seed
    llm = LLM(**llm_kwargs)
    rows = run_grid(problems, tokenizer, vllm_generate(llm, args.temperature, args.top_p, args.seed),
                    budgets, args.n, benchmark=args.benchmark, prompt_style=args.prompt_style,
                    eos_in_thinking=args.eos_in_thinking, targets=targets, max_targets=max_targets,
                    no_control=args.no_control, max_tokens=args.max_tokens, target_cap=args.target_cap)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = out / "samples.jsonl"
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} samples to {samples}", file=sys.stderr)
    (out / "method.json").write_text(json.dumps({"label": args.label or args.model, "model": args.model,
                                                 "benchmark": args.benchmark}))
    if not args.grade:
        return 0
    status = grade(args, samples, out)
    if status != 0:
        return status
    from verl_plugin.compare import main as compare_main

    return compare_main([str(out), "--out", str(out)])


def load_problems(benchmark: str, path: str, cf_metadata: str | None = None) -> dict:
    """{problem_id: problem}: the sandbox's loaders for code, verl_plugin.math_data's for math."""
    if benchmark in MATH_BENCHMARKS:
        from verl_plugin.math_data import load_math

        return {p.id: p for p in load_math(path, benchmark)}
    from sandbox.evaluation.problems import load_benchmark

    return load_benchmark(benchmark, path, cf_metadata)


def grade(args: argparse.Namespace, samples: Path, out: Path) -> int:
    if args.benchmark in MATH_BENCHMARKS:
        from verl_plugin.math_eval import main as math_eval_main

        return math_eval_main(["--benchmark", args.benchmark, "--problems", args.problems,
                               "--samples", str(samples), "--out", str(out)])
    from sandbox.cli import main as sandbox_main

    command = ["eval", "--benchmark", args.benchmark, "--problems", args.problems,
               "--samples", str(samples), "--out", str(out)]
    if args.cf_metadata:
        command += ["--cf-metadata", args.cf_metadata]
    if args.server:
        command += ["--server", args.server]
    return sandbox_main(command)


if __name__ == "__main__":
    sys.exit(main())

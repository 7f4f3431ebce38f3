"""Budgeted evaluation: generate under a grid of (thinking, solution) budgets with vLLM offline,
then grade with the sandbox.

    python -m verl_plugin.evaluate --model Salesforce/E1-Code-14B --tp 4 \\
        --benchmark livecodebench --problems test_livecodebench.jsonl \\
        --budgets 1024:1024,2048:1024,4096:1024 --n 8 --out eval-e1 [--grade --server HOST:PORT]

Generation is the rollout's two-phase logic (verl_plugin.budget, shared with the verl agent loop):
phase 1 ≤ t tokens stopping at </think>, a forced </think> when needed, phase 2 ≤ s tokens. Each
budget's requests go to vLLM as two batches (all thinking phases, then all solution phases).

Writes OUT/samples.jsonl, one line per sample:
    {problem_id, sample_index, completion, budget: {thinking, solution}, thinking_tokens,
     solution_tokens, think_forced}
sample_index runs over the whole grid (budget b, sample i → b × n + i), so `sandbox eval` keys stay
unique and its report breaks accuracy down by budget. `--grade` runs `sandbox eval` on it (embedded
sandbox, or --server) into OUT/; or run it yourself:
    sandbox eval --benchmark livecodebench --problems ... --samples OUT/samples.jsonl --out OUT
vLLM is optional: without it the command says so in one line and exits with status 3.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from verl_plugin.budget import BudgetConfig, Generation, SpecialTokens, generate_budgeted_batch


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


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The chat template with the generation prompt, tokenized (what verl's agent loop builds)."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


def completion_text(tokenizer, response_ids: list[int], special: SpecialTokens) -> str:
    """The response as text, </think> kept (EOS dropped) so `sandbox eval` can split it."""
    return tokenizer.decode([t for t in response_ids if t not in special.eos_ids], skip_special_tokens=False)


def run_grid(problems: dict, tokenizer, generate, budgets: list[tuple[int, int]], n: int, *,
             benchmark: str, prompt_style: str = "deepcoder", think_end: str = "</think>",
             eos_in_thinking: str = "stop") -> list[dict]:
    """Samples for every (problem, budget, sample); `generate` is a BatchGenerate (see budget.py)."""
    from verl_plugin.data import prompt_messages

    special = SpecialTokens.from_tokenizer(tokenizer, think_end)
    ids = list(problems)
    prompts = [prompt_ids(tokenizer, prompt_messages(problems[pid], benchmark, prompt_style)) for pid in ids]
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
    parser.add_argument("--benchmark", required=True, choices=("livecodebench", "codeforces"))
    parser.add_argument("--problems", required=True, help="problems file, as for `sandbox eval`")
    parser.add_argument("--cf-metadata", help="metadata_cf.json for rllm Codeforces rows")
    parser.add_argument("--budgets", default="1024:1024", help="THINKING:SOLUTION,... (default 1024:1024)")
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
        budgets = parse_budgets(args.budgets)
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

    from sandbox.evaluation.problems import load_benchmark
    from sandbox.problem import ProblemError

    try:
        problems = load_benchmark(args.benchmark, args.problems, args.cf_metadata)
    except ProblemError as exc:
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
                    eos_in_thinking=args.eos_in_thinking)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = out / "samples.jsonl"
    samples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} samples to {samples}", file=sys.stderr)
    if not args.grade:
        return 0
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

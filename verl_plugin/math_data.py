"""Math problems → verl RL parquet (E1-Math-1.5B, L1): DeepScaleR, AIME 2024 / 2025, MATH500.

    python -m verl_plugin.math_data deepscaler=deepscaler.json -o data/deepscaler_train.parquet
    python -m verl_plugin.math_data aime2024=aime_2024.jsonl --split test -o data/aime.parquet
    python -m verl_plugin.math_data deepscaler=deepscaler.json --length-control exact -o data/l1_exact_train.parquet

Inputs, `[SOURCE=]PATH` (JSON list, JSONL or parquet; SOURCE guessed from the file name), in
their public row formats:
- deepscaler (agentica-org/DeepScaleR-Preview-Dataset, the E1-Math and L1 training set):
  `{problem, answer, solution}`;
- aime2024: HuggingFaceH4/aime_2024 `{id, problem, solution, answer, url, year}` or
  Maxwell-Jia/AIME_2024 `{ID, Problem, Solution, Answer}` (an integer answer);
- aime2025: opencompass/AIME2025 `{question, answer}` (configs AIME2025-I / -II), or
  MathArena/aime_2025 `{problem_idx, problem, answer}`;
- math500: HuggingFaceH4/MATH-500 `{problem, solution, answer, subject, level, unique_id}`.
The statement is the first of problem / Problem / question; the answer the first of answer /
Answer, else the last `\\boxed{}` of solution / Solution; the id the first of id / ID / unique_id
/ problem_idx, else SOURCE-INDEX.

Rows (as the E1 reference's `scripts/data/deepscaler_dataset.py`): one user message, the
statement, a space and "Let's think step by step and output the final answer within \\boxed{}.";
`reward_model.ground_truth` is the answer string; `ability` "math"; `extra_info` {split, index,
problem_id, level, subject}; `agent_name` the budgeted rollout (`budgeted_rollout_math`), or
with `--length-control exact|max` L1's instruction and the `l1_rollout` loop (verl_plugin.length_prompt).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from verl_plugin import length_prompt
from verl_plugin.math_answer import last_boxed

SOURCES = ("deepscaler", "aime2024", "aime2025", "math500")
ALIASES = {"aime24": "aime2024", "aime_2024": "aime2024", "aime25": "aime2025", "aime_2025": "aime2025",
           "math-500": "math500", "math_500": "math500", "deepscaler_train": "deepscaler"}
INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."
DEFAULT_AGENT = "budgeted_rollout_math"


class MathDataError(ValueError):
    """A row or file that is not in one of the formats above."""


@dataclass
class MathProblem:
    id: str
    problem: str
    answer: str
    meta: dict = field(default_factory=dict)


def guess_source(path: str) -> str:
    name = Path(path).name.lower().replace("-", "").replace("_", "")
    for source in SOURCES:
        if source in name:
            return source
    if "aime" in name:
        raise MathDataError(f"{path}: which AIME? write aime2024=PATH or aime2025=PATH")
    raise MathDataError(f"cannot tell the source of {path}: write SOURCE=PATH (SOURCE one of {', '.join(SOURCES)})")


def read_math_rows(path: str) -> list[dict]:
    if str(path).endswith(".parquet"):
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    from sandbox.benchmarks.io import read_rows
    from sandbox.problem import ProblemError

    try:
        return list(read_rows(path))
    except ProblemError as exc:
        raise MathDataError(str(exc)) from None


def _first(row: dict, names: tuple[str, ...]):
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return value
    return None


def problem_from_row(row: dict, source: str, index: int, where: str) -> MathProblem:
    if not isinstance(row, dict):
        raise MathDataError(f"{where}: a row must be an object")
    statement = _first(row, ("problem", "Problem", "question"))
    if statement is None:
        raise MathDataError(f"{where}: no problem / Problem / question field")
    answer = _first(row, ("answer", "Answer"))
    if answer is None:
        solution = _first(row, ("solution", "Solution"))
        answer = last_boxed(str(solution)) if solution is not None else None
    if answer is None or not str(answer).strip():
        raise MathDataError(f"{where}: no answer / Answer field and no \\boxed{{}} in the solution")
    ident = _first(row, ("id", "ID", "unique_id", "problem_idx"))
    meta = {key: str(row[key]) for key in ("level", "subject", "year", "url") if row.get(key) is not None}
    return MathProblem(id=str(ident) if ident is not None else f"{source}-{index}",
                       problem=str(statement).strip(), answer=str(answer).strip(), meta=meta)


def load_math(path: str, source: str) -> list[MathProblem]:
    rows = read_math_rows(path)
    problems = [problem_from_row(row, source, i, f"{path}: row {i}") for i, row in enumerate(rows)]
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise MathDataError(f"{path}: problem id {problem.id!r} appears twice")
        seen.add(problem.id)
    return problems


def prompt_messages(problem: MathProblem) -> list[dict]:
    return [{"role": "user", "content": f"{problem.problem} {INSTRUCTION}"}]


def build_rows(problems: list[MathProblem], source: str, *, split: str, agent_name: str,
               start_index: int = 0) -> list[dict]:
    rows = []
    for offset, problem in enumerate(problems):
        row = {"data_source": source, "prompt": prompt_messages(problem), "ability": "math",
               "reward_model": {"style": "rule", "ground_truth": problem.answer},
               "extra_info": {"split": split, "index": start_index + offset, "problem_id": problem.id,
                              "level": problem.meta.get("level", ""), "subject": problem.meta.get("subject", "")}}
        if agent_name:
            row["agent_name"] = agent_name
        rows.append(row)
    return rows


def parse_spec(spec: str) -> tuple[str, str]:
    source, sep, path = spec.partition("=")
    source = ALIASES.get(source.lower(), source.lower())
    if not sep or source not in SOURCES:
        return guess_source(spec), spec
    return source, path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m verl_plugin.math_data",
        description="Turn DeepScaleR / AIME 2024 / AIME 2025 / MATH500 rows into a verl RL parquet graded "
                    "by verl_plugin.math_reward (E1-Math) or verl_plugin.l1_reward (L1).")
    parser.add_argument("inputs", nargs="+", metavar="[SOURCE=]PATH",
                        help=f"input files; SOURCE one of {', '.join(SOURCES)} (else guessed from the name)")
    parser.add_argument("--output", "-o", required=True, help="parquet file to write")
    parser.add_argument("--split", default="train", help="extra_info.split (default train)")
    parser.add_argument("--agent-name", default=None,
                        help=f"agent loop per row (default {DEFAULT_AGENT}, or l1_rollout with "
                             "--length-control; '' for none)")
    parser.add_argument("--limit", type=int, default=0, help="at most N problems per input (0: all)")
    length_prompt.add_arguments(parser)
    return length_prompt.default_agent_name(parser.parse_args(argv), DEFAULT_AGENT)


def main(argv=None) -> int:
    from verl_plugin.data import write_parquet

    args = parse_args(argv)
    rows: list[dict] = []
    try:
        for spec in args.inputs:
            source, path = parse_spec(spec)
            problems = load_math(path, source)
            if args.limit:
                problems = problems[:args.limit]
            new = build_rows(problems, source, split=args.split, agent_name=args.agent_name,
                             start_index=len(rows))
            print(f"{path}: {len(new)} {source} problems", file=sys.stderr)
            rows.extend(new)
        if not rows:
            raise MathDataError("no problems in the inputs")
        length_prompt.annotate_from_args(rows, args, separator=" ")
        write_parquet(rows, args.output)
    except (MathDataError, OSError, ValueError) as exc:
        print(f"verl_plugin.math_data: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Code problems → verl RL parquet (prompt, data_source, reward_model.ground_truth, extra_info, agent_name).

    python -m verl_plugin.data livecodebench=lcb_train.json primeintellect=pi.json taco=taco.json \\
        --output data/deepcoder_train.parquet
    python -m verl_plugin.data /data/test_livecodebench.jsonl --output data/lcb_test.parquet --split test

Inputs, `[SOURCE=]PATH` (JSON list or JSONL, .gz ok; SOURCE guessed from the file name):
- livecodebench: official `livecodebench/code_generation_lite` rows, DeepCoder / rllm rows
  `{problem, starter_code, tests: [{input, output, testtype, metadata?}]}`, SandboxFusion rows;
- primeintellect / taco (DeepCoder / rllm rows `{problem, tests, starter_code?, metadata?}`): tests as
  a list `[{input, output, type?: stdin_stdout|function_call, fn_name?}]` or a dict
  `{inputs, outputs, fn_name?}` (TACO / APPS);
- codeforces: rllm rows `{problem, tests}` (`--cf-metadata metadata_cf.json` gives their ids),
  CodeContests rows `{id, content, labels, test}`, open-r1 rows.

Grading rules (E1 / DeepCoder):
- livecodebench: every test, 6 s per test, LiveCodeBench comparison (`lcb`);
- everything else: the 15 tests with the longest inputs (`--max-tests`), 12 s per test
  (`--time-limit`), whitespace-token comparison for stdin problems (`--compare`), LiveCodeBench's
  JSON comparison for functional ones with every result compared as data (`lcb:data`: a returned
  object's own __eq__ is not trusted with a reward). Selected tests keep their original order (cheap sample
  tests first, so wrong answers fail fast). Memory: 1024 MB (`--memory-limit`).
- Functional tests in APPS / TACO / PrimeIntellect form (a list of arguments, the output wrapped in
  a one-element list) become LiveCodeBench form: one JSON argument per input line, the unwrapped
  return value as JSON.

Prompts (`--prompt-style`):
- deepcoder (default, as DeepCoder / E1 train): one user message. livecodebench: LiveCodeBench's
  system sentence, a blank line, then LiveCodeBench's user prompt (sandbox/benchmarks/prompts.py:
  question, format line, ```python starter or `# YOUR CODE HERE` block, "### Answer: ...").
  PrimeIntellect and TACO: the statement as it is (as E1 / DeepCoder train: their
  `deepcoder_dataset.py` adds nothing). Other sources (Codeforces, CodeContests, APPS): the
  statement followed by this plugin's own instruction to answer in Python 3 inside a ```python
  block at the end (stdin / stdout, or the function to implement with its starter code).
  `--instruction always|never` overrides this; statements that already ask for a ```python block
  never get it.
- chat: livecodebench as a system + user pair (lcb_chat_messages); others as above.
The chat template (e.g. DeepSeek-R1-Distill's, which opens `<think>`) is applied by verl.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from sandbox.benchmarks import codeforces, livecodebench
from sandbox.benchmarks.io import read_rows
from sandbox.benchmarks.prompts import SYSTEM_MESSAGE, lcb_chat_messages, lcb_user_prompt
from sandbox.problem import TESTLIB_HELP, Problem, ProblemError, with_testlib
from verl_plugin import apps_tests, length_prompt
from verl_plugin.groundtruth import to_ground_truth

LCB = "livecodebench"
SOURCES = (LCB, "primeintellect", "taco", "codeforces", "codecontests", "apps")
E1_MAX_TESTS = 15
E1_TIME_LIMIT_S = 12.0
LCB_TIME_LIMIT_S = 6.0
MEMORY_LIMIT_MB = 1024
DEFAULT_AGENT = "budgeted_rollout"
ALIASES = {"lcb": LCB, "lcbv5": LCB, "cf": "codeforces", "code_contests": "codecontests"}

STDIN_INSTRUCTION = ("Write a Python 3 program that solves the problem above: read the input from "
                     "standard input and write the answer to standard output. Present the final "
                     "program in a single ```python code block at the end of your answer.")
FUNCTIONAL_INSTRUCTION = ("Write Python 3 code that solves the problem above by implementing "
                          "`{func_name}`. Present the final code in a single ```python code block "
                          "at the end of your answer.")


# ------------------------------------------------------------------ loading


def guess_source(path: str) -> str:
    name = Path(path).name.lower()
    for source in SOURCES:
        if source in name or (source == LCB and "lcb" in name):
            return source
    raise ProblemError(f"cannot tell the source of {path}: write SOURCE=PATH "
                       f"(SOURCE one of {', '.join(SOURCES)})")


def _parse_tests(value):
    if isinstance(value, (list, dict)):
        return value
    if not value:
        return []
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)  # some rllm files store Python reprs


def tests_from_row(row: dict, where: str) -> tuple[str, str, list[dict]]:
    """(kind, func_name, tests) of a DeepCoder / rllm row of any source."""
    tests = _parse_tests(row.get("tests") or row.get("input_output") or [])
    metadata = row.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata) if metadata.strip() else {}
    func_name = (metadata or {}).get("func_name") or ""
    if isinstance(tests, dict):  # TACO / APPS: {inputs, outputs, fn_name?}
        return apps_tests.from_inputs_outputs(tests, where, func_name)
    if not isinstance(tests, list):
        raise ProblemError(f"{where}: tests must be a list or an {{inputs, outputs}} object")
    out: list[dict] = []
    kind = "stdin"
    for test in tests:
        if not isinstance(test, dict) or "input" not in test or "output" not in test:
            raise ProblemError(f"{where}: every test needs input and output")
        testtype = test.get("testtype") or test.get("type") or ""
        test_meta = test.get("metadata") if isinstance(test.get("metadata"), dict) else {}
        name = test.get("fn_name") or test_meta.get("func_name") or ""
        if testtype in ("functional", "function_call") or name:
            kind, func_name = "functional", name or func_name
            if testtype == "functional":  # LiveCodeBench form already
                out.append({"input": apps_tests.as_text(test["input"]),
                            "output": apps_tests.as_text(test["output"])})
            else:
                out.append({"input": apps_tests.functional_args(test["input"]),
                            "output": apps_tests.functional_output(test["output"])})
        else:
            out.append({"input": apps_tests.as_text(test["input"]),
                        "output": apps_tests.as_text(test["output"])})
    if kind == "functional" and not func_name:
        func_name = livecodebench.func_name_from_starter(row.get("starter_code") or "")
        if not func_name:
            raise ProblemError(f"{where}: functional tests but no function name")
    return kind, func_name, out


def load_source(path: str, source: str, cf_metadata: str | None = None) -> list[Problem]:
    if source == LCB:
        return livecodebench.detect_and_load(path)
    if source in ("codeforces", "codecontests"):
        return codeforces.detect_and_load(path, cf_metadata)
    problems = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}: row {index}"
        kind, func_name, tests = tests_from_row(row, where)
        problems.append(Problem(
            id=str(row.get("id") or row.get("problem_id") or f"{source}-{index}"), kind=kind,
            func_name=func_name, tests=tests, starter_code=row.get("starter_code") or "",
            statement=row.get("problem") or row.get("question") or row.get("content") or "",
            difficulty=str(row.get("difficulty") or "").lower(), platform=source,
            meta={"source": source}))
    return problems


# ------------------------------------------------------------------ E1 rules and prompts


def select_longest(tests: list[dict], max_tests: int) -> list[dict]:
    """The `max_tests` tests with the longest inputs, in their original order."""
    if max_tests <= 0 or len(tests) <= max_tests:
        return list(tests)
    order = sorted(range(len(tests)), key=lambda i: len(tests[i]["input"]), reverse=True)
    keep = set(order[:max_tests])
    return [test for i, test in enumerate(tests) if i in keep]


def apply_rules(problem: Problem, source: str, *, max_tests: int = E1_MAX_TESTS,
                time_limit_s: float | None = None, memory_limit_mb: int = MEMORY_LIMIT_MB,
                compare: str | None = None) -> tuple[Problem, int, str]:
    """(graded problem, tests before selection, selection) under the E1 rules."""
    total = len(problem.tests)
    if source == LCB:
        tests, selection = list(problem.tests), "all"
        limit = time_limit_s or LCB_TIME_LIMIT_S
        mode = compare or "lcb"
    else:
        tests = select_longest(problem.tests, max_tests)
        selection = f"longest-{max_tests}" if len(tests) < total else "all"
        limit = time_limit_s or E1_TIME_LIMIT_S
        # open-r1 rows keep open-r1's own grading (its checker convention and comparison).
        own = "open-r1" if problem.compare == "open-r1" else "tokens"
        # Functional rows: lcb_runner's model, results compared as data (no __eq__ hack).
        mode = "lcb:data" if problem.kind == "functional" else (compare or own)
    graded = Problem(id=problem.id, kind=problem.kind, tests=tests, func_name=problem.func_name,
                     starter_code=problem.starter_code, time_limit_s=limit,
                     memory_limit_mb=memory_limit_mb, compare=mode, checker=problem.checker,
                     max_processes=problem.max_processes,
                     title=problem.title, statement=problem.statement, platform=problem.platform,
                     difficulty=problem.difficulty, contest_date=problem.contest_date,
                     input_mode=problem.input_mode, meta=problem.meta)
    return graded, total, selection


# Sources the E1 / DeepCoder reference trains on with the bare statement.
BARE_STATEMENT_SOURCES = ("primeintellect", "taco")
INSTRUCTION_MODES = ("auto", "always", "never")


def wants_instruction(source: str, mode: str = "auto") -> bool:
    if mode not in INSTRUCTION_MODES:
        raise ValueError(f"instruction must be one of {INSTRUCTION_MODES}, got {mode!r}")
    if mode == "auto":
        return source not in BARE_STATEMENT_SOURCES
    return mode == "always"


def prompt_messages(problem: Problem, source: str, style: str = "deepcoder",
                    instruction: str = "auto") -> list[dict]:
    statement = problem.statement.strip()
    if source == LCB:
        if "### Format:" in statement:  # SandboxFusion rows carry the finished LCB prompt
            return [{"role": "user", "content": statement}]
        if style == "chat":
            return lcb_chat_messages(statement, problem.starter_code)
        return [{"role": "user",
                 "content": SYSTEM_MESSAGE + "\n\n" + lcb_user_prompt(statement, problem.starter_code)}]
    if "```python" in statement or not wants_instruction(source, instruction):
        return [{"role": "user", "content": statement}]
    if problem.kind == "functional":
        text = FUNCTIONAL_INSTRUCTION.format(func_name=problem.func_name)
        if problem.starter_code:
            text += f"\n\n```python\n{problem.starter_code}\n```"
    else:
        text = STDIN_INSTRUCTION
    return [{"role": "user", "content": f"{statement}\n\n{text}"}]


def build_rows(problems: list[Problem], source: str, *, split: str, agent_name: str,
               style: str, start_index: int = 0, instruction: str = "auto", **rules) -> list[dict]:
    rows = []
    for offset, problem in enumerate(problems):
        if not problem.tests:
            continue
        graded, total, selection = apply_rules(problem, source, **rules)
        row = {
            "data_source": source,
            "prompt": prompt_messages(problem, source, style, instruction),
            "ability": "code",
            "reward_model": {"style": "rule",
                             "ground_truth": to_ground_truth(graded, source=source, total_tests=total,
                                                             selection=selection)},
            "extra_info": {"split": split, "index": start_index + offset, "problem_id": problem.id,
                           "kind": problem.kind, "num_tests": len(graded.tests), "total_tests": total,
                           "time_limit_s": graded.time_limit_s, "difficulty": problem.difficulty or "",
                           "contest_date": problem.contest_date or "", "platform": problem.platform or ""},
        }
        if agent_name:
            row["agent_name"] = agent_name
        rows.append(row)
    return rows


def write_parquet(rows: list[dict], path: str | Path) -> None:
    import pandas as pd  # verl's own dependency; imported late so --help works without it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)


# ------------------------------------------------------------------ CLI


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m verl_plugin.data",
        description="Turn LiveCodeBench / DeepCoder (PrimeIntellect, TACO, LiveCodeBench) / Codeforces "
                    "rows into a verl RL parquet graded by the sandbox reward (E1 rules: LiveCodeBench "
                    "all tests at 6 s; others the 15 longest-input tests at 12 s).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="[SOURCE=]PATH",
                        help=f"input files; SOURCE one of {', '.join(SOURCES)} (else guessed from the name)")
    parser.add_argument("--output", "-o", required=True, help="parquet file to write")
    parser.add_argument("--split", default="train", help="extra_info.split (default train)")
    parser.add_argument("--agent-name", default=None,
                        help=f"agent loop per row (default {DEFAULT_AGENT}, or l1_rollout with "
                             "--length-control; '' for none)")
    parser.add_argument("--prompt-style", choices=("deepcoder", "chat"), default="deepcoder")
    parser.add_argument("--instruction", choices=INSTRUCTION_MODES, default="auto",
                        help="append the plugin's answer-format instruction to non-LiveCodeBench "
                             "statements: auto (default: not for primeintellect / taco, as the E1 "
                             "reference; yes for the others), always, never")
    parser.add_argument("--max-tests", type=int, default=E1_MAX_TESTS,
                        help="non-LiveCodeBench sources: keep the N longest-input tests (0: all)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds per test (default 6 for livecodebench, 12 otherwise)")
    parser.add_argument("--memory-limit", type=int, default=MEMORY_LIMIT_MB, help="MB per test")
    parser.add_argument("--compare", default=None,
                        help="stdin comparison (default: tokens; livecodebench: lcb, lcb_runner's "
                             "execution model; lcb-process: its comparison, the program run as a "
                             "process)")
    parser.add_argument("--cf-metadata", help="metadata_cf.json: ids of rllm Codeforces rows")
    parser.add_argument("--testlib", metavar="PATH", help=TESTLIB_HELP)
    parser.add_argument("--release", help="livecodebench: release window, e.g. release_v5 or v5_v6")
    parser.add_argument("--start-date", help="livecodebench: first contest date (YYYY-MM-DD)")
    parser.add_argument("--end-date", help="livecodebench: last contest date (YYYY-MM-DD)")
    parser.add_argument("--limit", type=int, default=0, help="at most N problems per input (0: all)")
    length_prompt.add_arguments(parser)
    return length_prompt.default_agent_name(parser.parse_args(argv), DEFAULT_AGENT)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows: list[dict] = []
    try:
        for spec in args.inputs:
            source, sep, path = spec.partition("=")
            source = ALIASES.get(source.lower(), source.lower())
            if not sep or source not in SOURCES:
                source, path = guess_source(spec), spec
            problems = load_source(path, source, args.cf_metadata)
            with_testlib(problems, args.testlib)
            if source == LCB and (args.release or args.start_date or args.end_date):
                problems = livecodebench.select(problems, release=args.release,
                                                start_date=args.start_date, end_date=args.end_date)
            if args.limit:
                problems = problems[:args.limit]
            new = build_rows(problems, source, split=args.split, agent_name=args.agent_name,
                             style=args.prompt_style, start_index=len(rows),
                             instruction=args.instruction, max_tests=args.max_tests,
                             time_limit_s=args.time_limit, memory_limit_mb=args.memory_limit,
                             compare=args.compare)
            print(f"{path}: {len(new)} {source} problems", file=sys.stderr)
            rows.extend(new)
        if not rows:
            raise ProblemError("no problems with tests in the inputs")
        # L1: "Think for N tokens." after a blank line (code prompts end in a block or a format line)
        length_prompt.annotate_from_args(rows, args, separator="\n\n")
        write_parquet(rows, args.output)
    except (ProblemError, OSError, ValueError) as exc:
        print(f"verl_plugin.data: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

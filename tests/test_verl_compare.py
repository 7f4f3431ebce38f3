"""One budgeted comparison: `verl_plugin.evaluate`'s grid with E1 budgets, L1 targets and no
control (a scripted engine instead of vLLM), graded by `verl_plugin.math_eval` (math-verify) and
put side by side by `verl_plugin.compare`; and the code path through `sandbox eval`."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("math_verify")

from verl_plugin import compare, evaluate, math_eval  # noqa: E402
from verl_plugin.budget import Generation  # noqa: E402
from verl_plugin.cpu.tiny_model import train_tokenizer  # noqa: E402
from verl_plugin.math_data import load_math  # noqa: E402

# AIME 2025 rows in opencompass/AIME2025's format: {question, answer}
AIME_ROWS = [{"question": "What is 2 + 3?", "answer": "5"}, {"question": "What is 1 / 2?", "answer": "0.5"}]
RIGHT = {"2 + 3": "5", "1 / 2": "\\frac{1}{2}"}
TOK = train_tokenizer(["What is 2 + 3? 1 / 2 Think for maximum tokens. \\boxed{5} \\frac{1}{2} x y"])
THINK_END = TOK.convert_tokens_to_ids("</think>")
EOS = TOK.eos_token_id
X = TOK.encode("x", add_special_tokens=False)


def ids(text: str) -> list[int]:
    return TOK.encode(text, add_special_tokens=False)


class ScriptedEngine:
    """Thinks 20 tokens; answers right. Under an L1 target N it thinks N // 2 tokens and answers
    right only when N >= 16; with no control it thinks 40 tokens."""

    def __init__(self):
        self.caps = []

    def __call__(self, requests):
        out = []
        for prompt, max_tokens, stop_ids in requests:
            text = TOK.decode(prompt)
            right = next(v for k, v in RIGHT.items() if k in text)
            answer = ids(f" \\boxed{{{right}}}") + [EOS]
            if stop_ids == [THINK_END]:          # E1 phase 1: runs past small budgets
                tokens = X * 20 + [THINK_END]
            elif prompt[-1] == THINK_END:        # E1 phase 2
                tokens = answer
            else:                                # one ordinary generation
                self.caps.append(max_tokens)
                asked = text.split("Think for ")[1].split(" tokens.")[0] if "Think for " in text else None
                target = int(asked.split()[-1]) if asked else None
                thinking = 40 if target is None else target // 2
                wrong = ids(" \\boxed{7}") + [EOS]
                tokens = X * thinking + [THINK_END] + (answer if target is None or target >= 16 else wrong)
            out.append(Generation(token_ids=tokens[:max_tokens]))
        return out


def test_grid_math_grading_and_comparison(tmp_path):
    rows_file = tmp_path / "aime2025.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in AIME_ROWS))
    problems = {p.id: p for p in load_math(str(rows_file), "aime2025")}
    engine = ScriptedEngine()
    rows = evaluate.run_grid(problems, TOK, engine, [(8, 16), (32, 16)], 2, benchmark="aime2025",
                             targets=[8, 32], max_targets=[32], no_control=True, max_tokens=100)
    assert len(rows) == 2 * 2 * 6 and len({(r["problem_id"], r["sample_index"]) for r in rows}) == len(rows)
    assert engine.caps == [16] * 4 + [64] * 4 + [64] * 4 + [100] * 4  # 2 x N for L1, --max-tokens for none
    by_method = {}
    for row in rows:
        by_method.setdefault((row["control"]["method"], row["budget"].get("thinking") or
                              row["control"].get("target") or "none"), []).append(row)
    # E1, t = 8: 8 thinking + forced </think> + answer; t = 32: 20 + </think> + answer
    answer_len = len(ids(" \\boxed{5}")) + 1
    assert all(r["tokens"] == 9 + answer_len for r in by_method[("e1", 8)] if r["problem_id"] == "aime2025-0")
    assert all(r["tokens"] == 21 + answer_len for r in by_method[("e1", 32)] if r["problem_id"] == "aime2025-0")
    samples = tmp_path / "eval" / "samples.jsonl"
    samples.parent.mkdir()
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (samples.parent / "method.json").write_text(json.dumps({"label": "scripted"}))
    assert math_eval.main(["--benchmark", "aime2025", "--problems", str(rows_file), "--samples", str(samples),
                           "--out", str(samples.parent), "--workers", "2"]) == 0
    results = [json.loads(l) for l in (samples.parent / "results.jsonl").read_text().splitlines()]
    assert {r["verdict"] for r in results} == {"CORRECT", "WRONG"}
    assert compare.main([str(samples.parent), "--out", str(tmp_path / "cmp")]) == 0
    table = {(r["method"], r["setting"]): r for r in json.loads((tmp_path / "cmp" / "comparison.json").read_text())}
    assert set(table) == {("e1", "t=8,s=16"), ("e1", "t=32,s=16"), ("l1-exact", "N=8"), ("l1-exact", "N=32"),
                          ("l1-max", "N=32"), ("none", "max_tokens=100")}
    assert table[("l1-exact", "N=8")]["accuracy"] == 0.0 and table[("l1-exact", "N=32")]["accuracy"] == 1.0
    assert table[("e1", "t=8,s=16")]["accuracy"] == 1.0 and table[("none", "max_tokens=100")]["accuracy"] == 1.0
    # tokens actually used: N // 2 thinking + </think> + the answer (+ EOS)
    wrong_len = len(ids(" \\boxed{7}")) + 1
    assert table[("l1-exact", "N=8")]["tokens_mean"] == 4 + 1 + wrong_len
    assert table[("none", "max_tokens=100")]["problems"] == 2 and table[("none", "max_tokens=100")]["samples"] == 4
    report = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| scripted | l1-max | N=32 | 2 | 4 | 100.0% |" in report
    assert (tmp_path / "cmp" / compare.PLOT_FILE).stat().st_size > 1000


def test_l1_prompts_in_the_grid():
    problems = {"p": load_math_row()}
    seen = []

    def engine(requests):
        seen.extend(TOK.decode(prompt) for prompt, _, _ in requests)
        return [Generation(token_ids=[EOS]) for _ in requests]
    rows = evaluate.run_grid(problems, TOK, engine, [], 1, benchmark="aime2025", targets=[64], max_targets=[128])
    assert "within \\boxed{}. Think for 64 tokens." in seen[0]
    assert "within \\boxed{}. Think for maximum 128 tokens." in seen[1]
    assert [r["budget"] for r in rows] == [{"target": 64}, {"max_target": 128}]
    assert [r["tokens"] for r in rows] == [1, 1]


def load_math_row():
    from verl_plugin.math_data import MathProblem

    return MathProblem(id="p", problem="What is 2 + 3?", answer="5")


def test_code_grid_through_sandbox_eval_and_compare(tmp_path):
    from conftest import SHARED_DATA
    from sandbox.cli import main as sandbox_main
    from sandbox.evaluation.problems import load_benchmark

    lcb = SHARED_DATA / "lcb" / "code_eval_live_code_bench_v1.jsonl"
    problems = load_benchmark("livecodebench", lcb)

    def engine(requests):
        return [Generation(token_ids=ids("</think>```python\nprint(1)\n```") + [EOS]) for _ in requests]
    rows = evaluate.run_grid(problems, TOK, engine, [], 1, benchmark="livecodebench", targets=[256],
                             no_control=True, max_tokens=512)
    assert all(r["completion"].endswith("```") for r in rows)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert sandbox_main(["eval", "--benchmark", "livecodebench", "--problems", str(lcb), "--samples", str(samples),
                         "--out", str(tmp_path), "--no-progress"]) == 0
    assert compare.main([f"{tmp_path}=base", "--out", str(tmp_path / "cmp")]) == 0
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert {(r["label"], r["method"], r["setting"]) for r in table} == {("base", "l1-exact", "N=256"),
                                                                        ("base", "none", "max_tokens=512")}
    assert all(r["accuracy"] == 0.0 and r["problems"] == len(problems) for r in table)  # print(1) solves none


def test_compare_refuses_ungraded_samples(tmp_path, capsys):
    (tmp_path / "samples.jsonl").write_text(json.dumps({"problem_id": "a", "sample_index": 0, "tokens": 3}) + "\n")
    (tmp_path / "results.jsonl").write_text("")
    assert compare.main([str(tmp_path), "--out", str(tmp_path / "cmp")]) == 2
    assert "has no result" in capsys.readouterr().err

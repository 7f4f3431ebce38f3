"""Budgeted evaluation (python -m verl_plugin.evaluate): the CPU path and its samples file."""
from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("transformers")

from conftest import SHARED_DATA  # noqa: E402
from test_verl_rollout import EOS, THINK_END, TOK, words  # noqa: E402
from sandbox.evaluation.problems import load_benchmark  # noqa: E402
from sandbox.evaluation.samples import read_samples  # noqa: E402
from verl_plugin import evaluate  # noqa: E402
from verl_plugin.budget import Generation  # noqa: E402

LCB_SF = SHARED_DATA / "lcb" / "code_eval_live_code_bench_v1.jsonl"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_one_line_and_nonzero(capsys):
    status = evaluate.main(["--model", "nowhere", "--benchmark", "livecodebench", "--problems", str(LCB_SF)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 3 and len(err) == 1 and "vLLM is not installed" in err[0]


def test_bad_budget_grid(capsys):
    assert evaluate.main(["--model", "m", "--benchmark", "livecodebench", "--problems", str(LCB_SF),
                          "--budgets", "1024"]) == 2
    assert "THINKING:SOLUTION" in capsys.readouterr().err


class FakeEngine:
    """A BatchGenerate: thinks 10 words (then </think> for even requests), answers 3 words + EOS."""

    def __init__(self):
        self.batches = []

    def __call__(self, requests):
        self.batches.append(requests)
        out = []
        for index, (prompt, max_tokens, stop_ids) in enumerate(requests):
            if stop_ids == [THINK_END]:
                tokens = words(10, 10) + ([THINK_END] if index % 2 == 0 else words(30, 20))
            else:
                assert prompt[-1] == THINK_END
                tokens = words(60, 3) + [EOS]
            out.append(Generation(token_ids=tokens[:max_tokens]))
        return out


def test_grid_samples_feed_sandbox_eval(tmp_path):
    problems = load_benchmark("livecodebench", LCB_SF)
    engine = FakeEngine()
    rows = evaluate.run_grid(problems, TOK, engine, [(8, 4), (16, 8)], 2, benchmark="livecodebench")
    assert len(rows) == len(problems) * 2 * 2
    assert len(engine.batches) == 4  # per budget: one thinking batch, one solution batch
    assert [max_tokens for _, max_tokens, _ in engine.batches[0]] == [8] * 6
    small = [r for r in rows if r["budget"] == {"thinking": 8, "solution": 4}]
    assert all(r["think_forced"] and r["thinking_tokens"] == 8 and r["solution_tokens"] == 4 for r in small)
    large = [r for r in rows if r["budget"]["thinking"] == 16]
    assert [r["think_forced"] for r in large] == [False, True] * 3
    assert all("</think>" in r["completion"] and "<eos>" not in r["completion"] for r in rows)
    assert sorted({r["sample_index"] for r in rows}) == [0, 1, 2, 3]
    samples_file = tmp_path / "samples.jsonl"
    samples_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = read_samples(samples_file)  # `sandbox eval`'s reader: keys unique, budgets valid
    assert len(samples) == len(rows) and {s.problem_id for s in samples} == set(problems)

    from sandbox.cli import main as sandbox_main
    out = tmp_path / "report"
    assert sandbox_main(["eval", "--benchmark", "livecodebench", "--problems", str(LCB_SF),
                         "--samples", str(samples_file), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["budgets"]) == 2

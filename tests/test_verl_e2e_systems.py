"""One real GRPO step of E1-Math (math reward) and of L1-Exact (L1 reward, code correctness from
the sandbox) on CPU, through `python -m verl_plugin.smoke --system ...` (verl's trainer, the
tiny local model, Ray on 127.0.0.1)."""
from __future__ import annotations

import pytest

pytest.importorskip("verl")
pytest.importorskip("math_verify")

from test_verl_e2e import SANDBOX_VERDICTS, model_cache, start_smoke  # noqa: E402,F401
from verl_plugin.cpu import smoke_math  # noqa: E402

MATH_VERDICTS = {"CORRECT", "WRONG", "NO_ANSWER", "NO_SOLUTION"}


def test_e1_math_one_grpo_step(tmp_path, model_cache):
    run = start_smoke(tmp_path, model_cache, "--system", "e1-math", "--trainer", "legacy", "--steps", "1").wait()
    result = run.result
    print("e1-math:", result, f"{run.seconds:.0f} s")
    assert result["system"] == "e1-math" and result["steps"] == 1 and result["params_changed"] is True
    assert result["verdicts"].get("CORRECT", 0) > 0 and set(result["verdicts"]) - {"CORRECT"}
    assert 0 < result["think_forced_frac"] < 1  # long thinking runs past t = 32
    rewards = run.rewards()
    assert rewards and all(r["verdict"] in MATH_VERDICTS for r in rewards)
    for row in rewards:
        assert row["score"] == (1.0 if row["verdict"] == "CORRECT" else 0.0), row
        assert row["verifier_timeout"] is False and "budget_think_forced" in row
    # Equivalent forms are recognised (0.5 answered as \frac{1}{2}, 7 as 7\text{ cm}, (1,2] as
    # \left(1,2\right]) and wrong ones are not, whichever of them this step happened to sample.
    problems = {p["id"]: p for p in smoke_math.PROBLEMS}
    for row in rewards:
        problem = problems[row["problem_id"]]
        if row["answer"] == problem["right"]:
            assert row["verdict"] == "CORRECT", row
        elif row["answer"] == problem["wrong"]:
            assert row["verdict"] == "WRONG", row


def test_l1_exact_one_grpo_step_with_sandbox_correctness(tmp_path, model_cache):
    run = start_smoke(tmp_path, model_cache, "--system", "l1-exact", "--trainer", "legacy", "--steps", "1").wait()
    result = run.result
    print("l1-exact:", result, f"{run.seconds:.0f} s")
    assert result["system"] == "l1-exact" and result["steps"] == 1 and result["params_changed"] is True
    assert result["think_forced_frac"] is None  # an ordinary rollout: nothing forced
    rewards = run.rewards()
    assert rewards and all(r["verdict"] in SANDBOX_VERDICTS for r in rewards)
    for row in rewards:
        assert row["length_mode"] == "exact" and 16 <= row["target_tokens"] <= 64 and row["response_tokens"] > 0
        correct = 1.0 if row["verdict"] == "AC" else 0.0
        assert row["correct"] == correct
        expected = correct - 0.0003 * abs(row["target_tokens"] - row["response_tokens"])
        assert row["score"] == pytest.approx(expected), row
    rollouts = run.dumps("rollouts")
    assert rollouts and all("response_tokens" in r and "length_term" in r for r in rollouts)

"""L1-Exact / L1-Max (verl_plugin.l1_reward, verl_plugin.length_prompt): the rewards on known
(correct, N, length) triples computed by hand, the prompts, and the data tools' L1 rows."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import random

import pytest

from verl_plugin import l1_reward, length_prompt
from verl_plugin.l1_reward import L1RewardError, L1Settings, exact_reward, max_reward

# (correct, N, L, reward) by hand, alpha = 0.0003: r = c - 0.0003 * |N - L|
EXACT_CASES = [
    (True, 1000, 1000, 1.0),
    (True, 1000, 1500, 1.0 - 0.15),     # 0.0003 * 500 = 0.15
    (True, 1000, 500, 0.85),            # symmetric
    (False, 1000, 1000, 0.0),
    (False, 2000, 1000, -0.3),          # wrong and 1000 tokens off
    (True, 100, 4100, 1.0 - 1.2),       # 0.0003 * 4000 = 1.2: no clipping
]
# alpha = 0.0003, delta = 0.5: r = c * clip(0.0003 * (N - L) + 0.5, 0, 1)
MAX_CASES = [
    (True, 1000, 1000, 0.5),
    (True, 1000, 0, 0.8),               # 0.3 + 0.5
    (True, 4000, 100, 1.0),             # 1.17 + 0.5 -> clipped at 1
    (True, 1000, 2000, 0.2),            # -0.3 + 0.5
    (True, 1000, 3000, 0.0),            # -0.6 + 0.5 -> clipped at 0
    (False, 1000, 500, 0.0),            # wrong: 0 whatever the length
]


@pytest.mark.parametrize("correct, target, length, expected", EXACT_CASES)
def test_exact_reward_by_hand(correct, target, length, expected):
    assert exact_reward(correct, target, length) == pytest.approx(expected)


@pytest.mark.parametrize("correct, target, length, expected", MAX_CASES)
def test_max_reward_by_hand(correct, target, length, expected):
    assert max_reward(correct, target, length) == pytest.approx(expected)


def test_constants_default_to_l1s_and_are_configurable():
    assert l1_reward.ALPHA == 0.0003 and l1_reward.MAX_ALPHA == 0.0003 and l1_reward.MAX_DELTA == 0.5
    settings = L1Settings.from_kwargs({"alpha": 0.001, "max_alpha": 0.002, "max_delta": 0.25})
    assert settings.score("exact", True, 1000, 1500) == pytest.approx((0.5, -0.5))
    assert settings.score("max", True, 1000, 1100) == pytest.approx((0.05, 0.05))  # -0.2 + 0.25
    # the L1 code's own Max form, (clip(a' (N - L), -1, 1) + 1) / 2 with a' = 0.0006, is alpha = a'/2
    code_form = (min(1, max(-1, 0.0006 * (1000 - 1800))) + 1) / 2
    assert max_reward(True, 1000, 1800, alpha=0.0003, delta=0.5) == pytest.approx(code_form)
    with pytest.raises(L1RewardError):
        L1Settings.from_kwargs({"correctness": "vibes"})
    with pytest.raises(L1RewardError):
        settings.score("about", True, 1, 1)


def test_instruction_wording_as_l1():
    assert length_prompt.instruction("exact", 512) == "Think for 512 tokens."
    assert length_prompt.instruction("max", 1024) == "Think for maximum 1024 tokens."
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "Q. Let's think."}]
    out = length_prompt.with_instruction(messages, "exact", 7)
    assert out[1]["content"] == "Q. Let's think. Think for 7 tokens." and messages[1]["content"] == "Q. Let's think."
    with pytest.raises(ValueError):
        length_prompt.instruction("exact", 0)


def test_draws_follow_l1s_data_script():
    rng = random.Random(3)
    exact = [length_prompt.draw("exact", rng) for _ in range(400)]
    assert {m for m, _ in exact} == {"exact"} and all(100 <= n <= 4000 for _, n in exact)
    mixed = [length_prompt.draw("max", rng) for _ in range(400)]
    share = sum(m == "max" for m, _ in mixed) / len(mixed)
    assert 0.4 < share < 0.6  # L1-Max's data: half "maximum" rows, half exact
    assert length_prompt.draw("exact", rng, fixed=256) == ("exact", 256)


def run_reward(correctness, response, truth, extra, **kwargs):
    return asyncio.run(l1_reward.compute_score("x", response, truth, extra, correctness=correctness, **kwargs))


@pytest.mark.skipif(importlib.util.find_spec("math_verify") is None, reason="needs math-verify")
def test_math_correctness_through_the_math_reward():
    extra = {"length_mode": "exact", "target_tokens": 1000, "response_tokens": 1500}
    right = run_reward("math", "<think>t</think>\\boxed{\\frac12}", "0.5", extra)
    assert right["score"] == pytest.approx(0.85) and right["correct"] == 1.0 and right["verdict"] == "CORRECT"
    assert right["length_term"] == pytest.approx(-0.15) and right["response_tokens"] == 1500
    wrong = run_reward("math", "<think>t</think>\\boxed{3}", "0.5", {**extra, "length_mode": "max"})
    assert wrong["score"] == 0.0 and wrong["length_term"] == pytest.approx(0.35)
    assert set(right) == set(wrong)


def test_missing_target_or_length_is_an_error():
    with pytest.raises(L1RewardError, match="length-control"):
        run_reward("math", "x", "1", {"response_tokens": 3})
    with pytest.raises(L1RewardError, match="l1_rollout"):
        run_reward("math", "x", "1", {"length_mode": "exact", "target_tokens": 3})


def test_code_correctness_through_the_sandbox(server):
    from sandbox.problem import Problem
    from verl_plugin.groundtruth import to_ground_truth
    from verl_plugin.reward import close_pools

    truth = to_ground_truth(Problem(id="double", tests=[{"input": "2\n", "output": "4\n"},
                                                       {"input": "5\n", "output": "10\n"}], time_limit_s=2),
                            source="taco")
    extra = {"length_mode": "max", "target_tokens": 1000, "response_tokens": 2000}

    async def both():
        try:
            good = await l1_reward.compute_score("taco", "</think>```python\nprint(2*int(input()))\n```", truth,
                                                 extra, correctness="code", addresses=server.address)
            bad = await l1_reward.compute_score("taco", "</think>```python\nprint(int(input()))\n```", truth,
                                                {**extra, "length_mode": "exact"}, correctness="code",
                                                addresses=server.address)
            return good, bad
        finally:
            await close_pools()
    good, bad = asyncio.run(both())
    assert good["verdict"] == "AC" and good["score"] == pytest.approx(0.2)  # 1 * (-0.3 + 0.5)
    assert bad["verdict"] == "WA" and bad["score"] == pytest.approx(-0.3)   # 0 - 0.0003 * 1000


def test_data_tools_write_l1_rows(tmp_path):
    import pandas as pd

    from verl_plugin import data, math_data
    from verl_plugin.cpu.smoke_problems import taco_rows

    rows = tmp_path / "deepscaler.json"
    rows.write_text(json.dumps([{"problem": f"What is {i} + {i}?", "answer": str(2 * i), "solution": "..."}
                                for i in range(40)]))
    out = tmp_path / "l1max.parquet"
    assert math_data.main([f"deepscaler={rows}", "-o", str(out), "--length-control", "max", "--length-seed", "1"]) == 0
    frame = pd.read_parquet(out)
    modes = [e["length_mode"] for e in frame["extra_info"]]
    assert set(modes) == {"exact", "max"} and set(frame["agent_name"]) == {"l1_rollout"}
    for prompt, extra in zip(frame["prompt"], frame["extra_info"]):
        text, n = prompt[0]["content"], extra["target_tokens"]
        assert 100 <= n <= 4000
        tail = f"Think for maximum {n} tokens." if extra["length_mode"] == "max" else f"Think for {n} tokens."
        assert text.endswith(f"within \\boxed{{}}. {tail}"), text

    taco = tmp_path / "taco.json"
    taco.write_text(json.dumps(taco_rows()))
    code_out = tmp_path / "code.parquet"
    assert data.main([f"taco={taco}", "-o", str(code_out), "--length-control", "exact",
                      "--target-length", "64"]) == 0
    frame = pd.read_parquet(code_out)
    assert all(p[-1]["content"].endswith("\n\nThink for 64 tokens.") for p in frame["prompt"])
    assert {e["target_tokens"] for e in frame["extra_info"]} == {64}
    assert set(frame["agent_name"]) == {"l1_rollout"}
    # an explicit --agent-name wins
    assert data.main([f"taco={taco}", "-o", str(code_out), "--length-control", "exact",
                      "--agent-name", "mine"]) == 0
    assert set(pd.read_parquet(code_out)["agent_name"]) == {"mine"}
    # without --length-control nothing changes
    assert data.main([f"taco={taco}", "-o", str(code_out)]) == 0
    frame = pd.read_parquet(code_out)
    assert "target_tokens" not in frame["extra_info"][0] and set(frame["agent_name"]) == {"budgeted_rollout"}

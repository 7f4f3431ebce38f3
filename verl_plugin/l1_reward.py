"""L1-Exact and L1-Max rewards (LCPO, arXiv 2503.04697) for math and for code.

    reward:
      custom_reward_function:
        path: pkg://verl_plugin.l1_reward
        name: compute_score
        reward_kwargs: {correctness: math, alpha: 0.0003}       # or correctness: code (+ sandbox kwargs)

With c = 1 for a correct answer, 0 otherwise, N the row's target (`extra_info.target_tokens`) and
L the response's length in tokens (`extra_info.response_tokens`, from the `l1_rollout` agent loop):

- Exact rows ("Think for N tokens."):        r = c − α·|N − L|
- Max rows ("Think for maximum N tokens."):  r = c · clip(α_max·(N − L) + δ, 0, 1)

Sources (cmu-l3/l1): `math_reward.py` — `get_delta_score_linear` gives −α·|N − L| and the
additive combination (`delta_score + correctness_score`, correctness 0/1) is what
`scripts/train/run_l1_exact.sh` trains with (`linear_reward=True`, `multiplier_reward=False`,
`alpha=0.0003`); `get_delta_score_linear_both` (a negative N marks a Max row) gives
(clip(α'·(N − L), −1, 1) + 1) / 2 = clip(α'/2·(N − L) + 1/2, 0, 1), multiplied by correctness
under `multiplier_reward`: the form above with δ = 1/2 and α_max = α'/2. `run_l1_max.sh` sets no
α, so α_max defaults to the only α an L1 script sets, 0.0003, and δ to 0.5; both are kwargs.
L is the whole response, as there (`valid_response_length`, EOS included).

Correctness comes from `verl_plugin.math_reward` (`correctness: math`) or from the sandbox
(`verl_plugin.reward`, `correctness: code`, acc = 1 iff every test passes); every other
reward_kwarg is passed to that reward, whose errors (an unreachable sandbox, a verifier that
cannot judge) stop the step as they do there. The result is that reward's result with `score`
replaced and `correct`, `length_mode`, `target_tokens`, `response_tokens`, `length_term` added;
`results_log` gets that result (not the inner one).
"""
from __future__ import annotations

from dataclasses import dataclass

from verl_plugin import math_reward, reward

ALPHA = 0.0003
MAX_ALPHA = 0.0003
MAX_DELTA = 0.5
CORRECTNESS = ("math", "code")
L1_KWARGS = ("correctness", "alpha", "max_alpha", "max_delta")


class L1RewardError(RuntimeError):
    """A row or sample the L1 reward cannot score (no target, no length)."""


def exact_term(target: int, length: int, alpha: float = ALPHA) -> float:
    """−α·|N − L|."""
    return -alpha * abs(target - length)


def max_factor(target: int, length: int, alpha: float = MAX_ALPHA, delta: float = MAX_DELTA) -> float:
    """clip(α·(N − L) + δ, 0, 1)."""
    return min(1.0, max(0.0, alpha * (target - length) + delta))


def exact_reward(correct: bool, target: int, length: int, alpha: float = ALPHA) -> float:
    return (1.0 if correct else 0.0) + exact_term(target, length, alpha)


def max_reward(correct: bool, target: int, length: int, alpha: float = MAX_ALPHA,
               delta: float = MAX_DELTA) -> float:
    return (1.0 if correct else 0.0) * max_factor(target, length, alpha, delta)


@dataclass(frozen=True)
class L1Settings:
    correctness: str = "math"
    alpha: float = ALPHA
    max_alpha: float = MAX_ALPHA
    max_delta: float = MAX_DELTA

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "L1Settings":
        correctness = str(kwargs.get("correctness", "math"))
        if correctness not in CORRECTNESS:
            raise L1RewardError(f"correctness must be one of {CORRECTNESS}, got {correctness!r}")
        return cls(correctness=correctness, alpha=float(kwargs.get("alpha", ALPHA)),
                   max_alpha=float(kwargs.get("max_alpha", MAX_ALPHA)),
                   max_delta=float(kwargs.get("max_delta", MAX_DELTA)))

    def score(self, mode: str, correct: bool, target: int, length: int) -> tuple[float, float]:
        """(reward, length term: the additive penalty for exact rows, the factor for max rows)."""
        if mode == "exact":
            return exact_reward(correct, target, length, self.alpha), exact_term(target, length, self.alpha)
        if mode == "max":
            return (max_reward(correct, target, length, self.max_alpha, self.max_delta),
                    max_factor(target, length, self.max_alpha, self.max_delta))
        raise L1RewardError(f"length_mode must be 'exact' or 'max', got {mode!r}")


def row_target(extra_info: dict) -> tuple[str, int]:
    mode, target = extra_info.get("length_mode"), extra_info.get("target_tokens")
    if mode is None or target is None:
        raise L1RewardError("the row has no extra_info.length_mode / target_tokens: build the data with "
                            "--length-control exact|max (python -m verl_plugin.data / verl_plugin.math_data)")
    return str(mode), int(target)


def response_tokens(extra_info: dict) -> int:
    length = extra_info.get("response_tokens")
    if length is None:
        raise L1RewardError("the sample has no extra_info.response_tokens: roll out with the `l1_rollout` "
                            "agent loop (verl_plugin/config/agent_loops.yaml), which reports it")
    return int(length)


async def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """verl reward: the correctness reward's result, its score replaced by the L1 reward."""
    settings = L1Settings.from_kwargs(kwargs)
    extra_info = extra_info if isinstance(extra_info, dict) else {}
    mode, target = row_target(extra_info)
    length = response_tokens(extra_info)
    inner_kwargs = {k: v for k, v in kwargs.items() if k not in L1_KWARGS}
    log_path = inner_kwargs.pop("results_log", None)  # logged here, with the L1 fields
    judge = math_reward.compute_score if settings.correctness == "math" else reward.compute_score
    result = dict(await judge(data_source, solution_str, ground_truth, extra_info, **inner_kwargs))
    correct = float(result.get("acc", 0.0)) == 1.0
    score, term = settings.score(mode, correct, target, length)
    result.update(score=score, correct=1.0 if correct else 0.0, length_mode=mode, target_tokens=target,
                  response_tokens=length, length_term=term)
    if log_path:
        math_reward.append_jsonl(str(log_path), {"data_source": data_source, "index": extra_info.get("index"),
                                                 "problem_id": extra_info.get("problem_id"), **result})
    return result

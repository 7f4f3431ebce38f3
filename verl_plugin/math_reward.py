"""Math reward for verl (E1-Math-1.5B): `async def compute_score(...)`, awaited by verl's reward loop.

    reward:
      custom_reward_function:
        path: pkg://verl_plugin.math_reward
        name: compute_score
        reward_kwargs: {verify_timeout_s: 10, verifier_workers: 2}

One sample, as the E1 reference's math reward (rllm `rewards/math_reward.py`): the text after the
last `</think>` (none → score 0, verdict NO_SOLUTION, unless `require_think_end: false`), its last
`\\boxed{...}` (none → 0, NO_ANSWER), judged equivalent to one of the ground truths by Hugging
Face's math-verify (`\\frac{1}{2}` = `0.5`, units and `^\\circ` dropped, intervals, sets,
symbolic equality) → 1.0 (CORRECT) or 0.0 (WRONG).

The judge runs in a child process (`verl_plugin.math_verifier`): a sample it does not finish
within `verify_timeout_s` gets the judge killed and verdict TIMEOUT with `verifier_timeout: true`
— not WRONG. By default (`on_timeout: zero`) it scores 0, flagged, because a model can write an
answer that no verifier finishes (e.g. a power tower) and one sample must not stop a run; the run
stops (`MathRewardError`) when more than `timeout_max_share` of a worker's last `timeout_window`
samples timed out (a broken verifier, not a sample). `on_timeout: raise` stops at the first.
A judge that crashes or fails to start raises `MathRewardError` too.

reward_kwargs: require_think_end (true), verify_timeout_s (10), verifier_workers (2 judges per
reward worker process), on_timeout (zero | raise), timeout_window (256), timeout_max_share
(0.05), results_log (a JSONL audit file; env MATH_REWARD_LOG). Every result has the same keys:
score, acc, verdict, answer, reason, verify_s, verifier_timeout, verifier_timeout_share, plus
the budgeted rollout's budget_* fields when the sample carries them.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

from verl_plugin.math_answer import after_think, ground_truths, last_boxed
from verl_plugin.math_verifier import VerifierError, get_pool
from verl_plugin.reward import BUDGET_FIELDS, SandboxErrorWindow, process_window

TIMEOUT_POLICIES = ("zero", "raise")


class MathRewardError(RuntimeError):
    """The verifier could not judge: the step must stop rather than score a wrong reward."""


@dataclass(frozen=True)
class MathSettings:
    require_think_end: bool = True
    verify_timeout_s: float = 10.0
    verifier_workers: int = 2
    on_timeout: str = "zero"
    timeout_window: int = 256
    timeout_max_share: float = 0.05
    results_log: str = ""

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "MathSettings":
        on_timeout = str(kwargs.get("on_timeout", "zero"))
        if on_timeout not in TIMEOUT_POLICIES:
            raise MathRewardError(f"on_timeout must be one of {TIMEOUT_POLICIES}, got {on_timeout!r}")
        settings = cls(require_think_end=bool(kwargs.get("require_think_end", True)),
                       verify_timeout_s=float(kwargs.get("verify_timeout_s", 10.0)),
                       verifier_workers=int(kwargs.get("verifier_workers", 2)),
                       on_timeout=on_timeout,
                       timeout_window=int(kwargs.get("timeout_window", 256)),
                       timeout_max_share=float(kwargs.get("timeout_max_share", 0.05)),
                       results_log=str(kwargs.get("results_log") or os.environ.get("MATH_REWARD_LOG") or ""))
        if settings.verify_timeout_s <= 0 or settings.verifier_workers < 1 or settings.timeout_window < 1 \
                or not 0.0 <= settings.timeout_max_share <= 1.0:
            raise MathRewardError(f"bad math reward settings: {settings}")
        return settings


def timeout_window(settings: MathSettings) -> SandboxErrorWindow:
    """The last `timeout_window` judged samples of this process and how many timed out."""
    return process_window(settings, settings.timeout_window)


def empty_result(extra_info: dict, share: float) -> dict:
    result = {"score": 0.0, "acc": 0.0, "verdict": "", "answer": "", "reason": "", "verify_s": 0.0,
              "verifier_timeout": False, "verifier_timeout_share": share}
    for name in BUDGET_FIELDS:
        if name in extra_info:
            value = extra_info[name]
            result[name] = float(value) if isinstance(value, (bool, int, float)) else value
    return result


async def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """verl reward: {score, acc, verdict, answer, reason, verify_s, verifier_timeout, ...}."""
    settings = MathSettings.from_kwargs(kwargs)
    extra_info = extra_info if isinstance(extra_info, dict) else {}
    result = await score_math(settings, solution_str or "", ground_truth, extra_info)
    if settings.results_log:
        append_jsonl(settings.results_log, {"data_source": data_source, "index": extra_info.get("index"),
                                            "problem_id": extra_info.get("problem_id"), **result})
    return result


async def score_math(settings: MathSettings, response: str, ground_truth, extra_info: dict) -> dict:
    golds = ground_truths(ground_truth)
    if not golds:
        raise MathRewardError(f"empty ground truth {ground_truth!r} (row {extra_info.get('index')})")
    window = timeout_window(settings)
    result = empty_result(extra_info, window.share)
    solution = after_think(response)
    if solution is None:
        if settings.require_think_end:
            result.update(verdict="NO_SOLUTION", reason="no </think>: the thinking never ended")
            return result
        solution = response
    answer = last_boxed(solution)
    if answer is None or not answer.strip():
        result.update(verdict="NO_ANSWER", reason="no \\boxed{} answer after </think>")
        return result
    answer = answer.strip()
    result["answer"] = answer[:300]
    pool = get_pool(settings.verifier_workers)
    try:
        check = await asyncio.to_thread(pool.check, golds, answer, settings.verify_timeout_s)
    except VerifierError as exc:
        raise MathRewardError(str(exc)) from None
    result["verify_s"] = round(check.seconds, 4)
    window.add(check.timed_out)
    result["verifier_timeout_share"] = window.share
    if check.timed_out:
        reason = (f"math-verify did not finish within {settings.verify_timeout_s:g} s on answer "
                  f"{answer[:100]!r} (judge killed)")
        if settings.on_timeout == "raise":
            raise MathRewardError(reason + "; raise verify_timeout_s or set on_timeout=zero")
        if window.errors > settings.timeout_max_share * settings.timeout_window:
            raise MathRewardError(f"math-verify timed out on {window.errors} of the last "
                                  f"{settings.timeout_window} samples (> timeout_max_share "
                                  f"{settings.timeout_max_share:.1%}): the verifier is failing; last: {reason}")
        result.update(verdict="TIMEOUT", verifier_timeout=True, reason=reason)
        return result
    score = 1.0 if check.equal else 0.0
    result.update(score=score, acc=score, verdict="CORRECT" if check.equal else "WRONG")
    return result


def append_jsonl(path: str, record: dict) -> None:
    """One O_APPEND write per line, so several reward workers can share the file."""
    line = (json.dumps(record, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)

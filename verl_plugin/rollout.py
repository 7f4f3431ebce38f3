"""BudgetedRollout: verl agent loop for Elastic Reasoning's budgeted thinking + solution.

Registered in verl's agent-loop registry as "budgeted_rollout" (at import) and through
`verl_plugin/config/agent_loops.yaml` (`actor_rollout_ref.rollout.agent.agent_loop_config_path`).
The two-phase logic is `verl_plugin.budget`; this file adapts it to verl's server manager:

    await self.server_manager.generate(request_id, prompt_ids=..., sampling_params=...) -> TokenOutput

Both phases use the same request_id (sticky routing: phase 2 lands on the server that holds
phase 1's KV cache). `max_tokens` is always passed. TokenOutput.stop_reason says "completed" for a
stop token and for the length limit alike, so the tokens themselves are inspected.

Per-sample statistics go to `extra_fields` (budget_thinking_tokens, budget_solution_tokens,
budget_think_forced, budget_think_closed, budget_eos_in_thinking, budget_solution_truncated).
verl 0.9 stores extra_fields in the batch (non_tensor_batch) and hands them to the reward function
as `extra_info`; `verl_plugin.reward` echoes them in its result, so they reach verl's
reward_extra_info: validation metrics (val-aux/<data_source>/budget_*/mean@N) and rollout dumps.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer

from verl_plugin.budget import BudgetConfig, Generation, SpecialTokens, generate_budgeted

logger = logging.getLogger(__name__)

AGENT_NAME = "budgeted_rollout"
ABORT_RETRIES = 8
ABORT_BACKOFF_S, ABORT_BACKOFF_MAX_S = 0.25, 5.0
# TokenOutput.extra_fields entries that are per-request bulk data, not sample metadata.
_BULK_FIELDS = ("prompt_ids", "prompt_logprobs", "routed_experts", "kv_transfer_params")


@register(AGENT_NAME)
class BudgetedRollout(AgentLoopBase):
    """Thinking phase (≤ thinking_budget tokens, stops at </think>), forced </think> when needed,
    then solution phase (≤ solution_budget tokens, stops at EOS)."""

    def __init__(self, *args, thinking_budget: int = 1024, solution_budget: int = 1024,
                 mask_forced_token: bool = False, eos_in_thinking: str = "stop",
                 forced_logprob: str = "zero", think_end_token: str = "</think>",
                 extra_eos_token_ids: list[int] | None = None, **kwargs):
        kwargs.pop("name", None)  # the registry entry's own name travels with its kwargs
        super().__init__(*args, **kwargs)
        self.budget = BudgetConfig(thinking_budget=int(thinking_budget),
                                   solution_budget=int(solution_budget),
                                   mask_forced_token=bool(mask_forced_token),
                                   eos_in_thinking=str(eos_in_thinking),
                                   forced_logprob=str(forced_logprob), think_end=str(think_end_token))
        self.special = SpecialTokens.from_tokenizer(self.tokenizer, self.budget.think_end,
                                                    list(extra_eos_token_ids or []))
        self.response_length = int(self.rollout_config.response_length)
        check_rollout_correction(self.config, self.budget)
        if self.budget.max_response_tokens > self.response_length:
            logger.warning("thinking %d + 1 + solution %d > rollout.response_length %d: the solution "
                           "phase gets what is left", self.budget.thinking_budget,
                           self.budget.solution_budget, self.response_length)
        # verl decodes responses with skip_special_tokens=True: when that drops </think> (a special
        # token, or one added with special=True outside the special-tokens map) the reward cannot
        # find it in the text, so the solution text travels in extra_fields. Decoding is the test.
        self._send_solution_text = think_end_stripped(self.tokenizer, self.special.think_end_id,
                                                      self.budget.think_end)

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs) -> AgentLoopOutput:
        priority = int(priority)
        messages = list(kwargs["raw_prompt"])
        prompt_ids = await self.ct_build_initial_tokens(messages)
        request_id = sample_request_id(kwargs, priority)
        want_logprobs = bool(sampling_params.get("logprobs"))
        preempted = []

        async def generate(prompt: list[int], max_tokens: int, stop_ids: list[int],
                           last_prompt_logprob: bool) -> Generation:
            params = dict(sampling_params)
            params["max_tokens"] = int(max_tokens)
            params["stop_token_ids"] = sorted(set(params.get("stop_token_ids") or []) | set(stop_ids))
            if last_prompt_logprob:
                params["prompt_logprobs"] = 0
            output, tokens, log_probs = await self._generate_completed(request_id, prompt, params,
                                                                       priority, want_logprobs)
            if output.num_preempted is not None:
                preempted.append(output.num_preempted)
            lp = None
            if last_prompt_logprob:
                lp = _last_prompt_logprob(output.extra_fields, len(prompt), self.special.think_end_id)
            return Generation(token_ids=tokens, log_probs=log_probs,
                              last_prompt_logprob=lp, extra=dict(output.extra_fields or {}))

        metrics: dict[str, Any] = {}
        with simple_timer("generate_sequences", metrics):
            result, raw = await generate_budgeted(generate, prompt_ids, self.budget, self.special,
                                                  self.response_length)
        metrics["num_preempted"] = sum(preempted) if preempted else -1
        if want_logprobs and result.response_logprobs is None:
            # As verl's single-turn loop: a backend without log-probs gives none (never partial ones).
            logger.warning("the rollout server returned no log-probs although they were asked for")

        n = self.response_length
        extra = {k: v for k, v in raw[-1].extra.items() if k not in _BULK_FIELDS}
        if "min_global_steps" in raw[0].extra:
            extra["min_global_steps"] = raw[0].extra["min_global_steps"]
        extra.update({f"budget_{key}": value for key, value in result.stats().items()})
        extra.update({"turn_scores": [], "tool_rewards": []})
        if self._send_solution_text:
            start = (result.forced_index + 1) if result.forced_index is not None else (
                result.thinking_tokens if result.think_closed else len(result.response_ids))
            extra["solution_text"] = self.tokenizer.decode(result.response_ids[start:n],
                                                           skip_special_tokens=True)
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=result.response_ids[:n],
            response_mask=result.response_mask[:n],
            response_logprobs=result.response_logprobs[:n] if result.response_logprobs is not None else None,
            num_turns=2,
            metrics=metrics,
            extra_fields=extra,
        )


    async def _generate_completed(self, request_id: str, prompt: list[int], params: dict,
                                  priority: int, want_logprobs: bool):
        """One request to completion. An aborted generation (stop_reason "aborted": a weight sync
        or a partial-rollout pause cut it, possibly with no tokens) is never taken for a finished
        phase: the request is resumed from the tokens it already has, a bounded number of times,
        then RolloutAbortedError is raised (the sample is not trained on)."""
        tokens: list[int] = []
        log_probs: list[float] | None = [] if want_logprobs else None
        first = None
        for attempt in range(ABORT_RETRIES + 1):
            request = dict(params)
            request["max_tokens"] = int(params["max_tokens"]) - len(tokens)
            if tokens:
                request.pop("prompt_logprobs", None)  # only the first request's prompt matters
            output = await self.server_manager.generate(
                request_id=request_id, prompt_ids=prompt + tokens, sampling_params=request, priority=priority)
            first = first or output
            tokens.extend(int(t) for t in output.token_ids)
            if log_probs is not None:
                if output.log_probs is None:
                    log_probs = None
                else:
                    log_probs.extend(float(v) for v in output.log_probs)
            if output.stop_reason != "aborted":
                if first is not output and "prompt_logprobs" in (first.extra_fields or {}):
                    output.extra_fields = {**(output.extra_fields or {}),
                                           "prompt_logprobs": first.extra_fields["prompt_logprobs"],
                                           "prompt_ids": first.extra_fields.get("prompt_ids")}
                return output, tokens, log_probs
            if request["max_tokens"] - len(output.token_ids) <= 0:
                return output, tokens, log_probs  # aborted exactly at its budget: nothing is missing
            await asyncio.sleep(min(ABORT_BACKOFF_MAX_S, ABORT_BACKOFF_S * 2 ** attempt))
        raise RolloutAbortedError(f"request {request_id}: the rollout server aborted the generation "
                                  f"{ABORT_RETRIES + 1} times ({len(tokens)} tokens so far); the sample "
                                  "is not trained on as if it had been sampled to the end")


def check_rollout_correction(trainer_config, budget: BudgetConfig) -> None:
    """Refuses verl's rollout-correction modes that would misuse the forced token's log-prob 0.0.

    With `forced_logprob: zero` the forced `</think>` has rollout log-prob 0.0 (probability 1 under
    the rollout, which appended it), while the actor gives it its own, usually small, probability.
    `bypass_mode` (old log-probs := rollout log-probs) would then clip the forced token's ratio,
    and `rollout_is` / `rollout_rs` would weight or reject every forced sample by that mismatch.
    `training/rollout_probs_diff_*` also counts it (a difference of probabilities near 1): a
    metric, not a defect. `mask_forced_token: true` or `forced_logprob: compute` avoid all of it.
    """
    if budget.forced_logprob != "zero" or budget.mask_forced_token:
        return
    algorithm = trainer_config.get("algorithm", {}) if hasattr(trainer_config, "get") else {}
    correction = algorithm.get("rollout_correction", None) if algorithm else None
    if not correction:
        return
    used = [name for name in ("rollout_is", "rollout_rs") if correction.get(name)]
    if correction.get("bypass_mode"):
        used.insert(0, "bypass_mode")
    if used:
        raise ValueError(
            f"algorithm.rollout_correction.{'/'.join(used)} with the budgeted rollout's forced_logprob: "
            "zero: the forced </think> has rollout log-prob 0.0, so its importance ratio would clip, "
            "weight or reject every forced sample. Set mask_forced_token: true or forced_logprob: "
            "compute in the agent-loop entry, or turn those options off")


class RolloutAbortedError(RuntimeError):
    """The rollout server kept aborting a generation: a truncated sample must not be trained on."""


def think_end_stripped(tokenizer, think_end_id: int, think_end: str = "</think>") -> bool:
    """True when `decode(..., skip_special_tokens=True)` (what verl's reward manager does) drops
    `</think>`, whatever the tokenizer's special-tokens map says."""
    return think_end not in tokenizer.decode([think_end_id], skip_special_tokens=True)


def sample_request_id(kwargs: dict, priority: int) -> str:
    """A request id derived from the sample: its group's `uid` and its `session_id` (v1) or
    `priority` (the legacy trainer numbers samples there), so that verl's `full_determinism`
    routing (a hash of the id) and sticky routing see the same id for both phases and for the
    same sample in every run. A uuid only when the batch carries no uid."""
    uid = kwargs.get("uid")
    if uid is None:
        return uuid4().hex
    member = kwargs.get("session_id")
    return f"{uid}-s{member}" if member is not None else f"{uid}-p{int(priority)}"


def _last_prompt_logprob(extra_fields: dict | None, prompt_length: int, expected_id: int) -> float | None:
    """The model log-prob of the last prompt token from vLLM prompt log-probs, when present.

    verl's vLLM server stores them shifted: entry j is the log-prob of prompt token j + 1 (and a
    dummy last entry), so the last prompt token's is entry prompt_length - 2.
    """
    if not extra_fields or "prompt_logprobs" not in extra_fields:
        return None
    logprobs, ids = extra_fields.get("prompt_logprobs"), extra_fields.get("prompt_ids")
    index = prompt_length - 2
    try:
        if ids is not None and int(ids[index][0]) != expected_id:
            return None
        return float(logprobs[index][0])
    except (IndexError, TypeError, ValueError):
        return None

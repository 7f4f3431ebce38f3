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

import logging
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer

from verl_plugin.budget import BudgetConfig, Generation, SpecialTokens, generate_budgeted

logger = logging.getLogger(__name__)

AGENT_NAME = "budgeted_rollout"
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
        if self.budget.max_response_tokens > self.response_length:
            logger.warning("thinking %d + 1 + solution %d > rollout.response_length %d: the solution "
                           "phase gets what is left", self.budget.thinking_budget,
                           self.budget.solution_budget, self.response_length)
        # verl decodes responses with skip_special_tokens=True: when </think> is a special token
        # the reward cannot find it in the text, so the solution text travels in extra_fields.
        self._send_solution_text = self.special.think_end_id in set(self.tokenizer.all_special_ids)

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs) -> AgentLoopOutput:
        priority = int(priority)
        messages = list(kwargs["raw_prompt"])
        prompt_ids = await self.ct_build_initial_tokens(messages)
        request_id = (f"det-{priority}-{uuid4().hex[:8]}"
                      if getattr(self.rollout_config, "full_determinism", False) else uuid4().hex)
        want_logprobs = bool(sampling_params.get("logprobs"))
        preempted = []

        async def generate(prompt: list[int], max_tokens: int, stop_ids: list[int],
                           last_prompt_logprob: bool) -> Generation:
            params = dict(sampling_params)
            params["max_tokens"] = int(max_tokens)
            params["stop_token_ids"] = sorted(set(params.get("stop_token_ids") or []) | set(stop_ids))
            if last_prompt_logprob:
                params["prompt_logprobs"] = 0
            output = await self.server_manager.generate(
                request_id=request_id, prompt_ids=prompt, sampling_params=params, priority=priority)
            if output.num_preempted is not None:
                preempted.append(output.num_preempted)
            lp = None
            if last_prompt_logprob:
                lp = _last_prompt_logprob(output.extra_fields, len(prompt), self.special.think_end_id)
            log_probs = list(output.log_probs) if (want_logprobs and output.log_probs is not None) else None
            return Generation(token_ids=list(output.token_ids), log_probs=log_probs,
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

"""Two-phase budgeted generation (Elastic Reasoning, arXiv 2505.05315), engine-agnostic.

Phase 1 (thinking) generates at most `thinking_budget` tokens and stops at `</think>`. If it did not
end with `</think>`, the rollout appends the `</think>` token itself ("forced"). Phase 2 (solution)
continues from prompt + phase 1 (+ forced token) for at most `solution_budget` tokens, stopping at
EOS. The response is phase 1 + (forced token) + phase 2: at most t + 1 + s tokens.

Only pure planning lives here; the caller supplies generation. `generate_budgeted` drives one
sample through an async `generate` callable (the verl agent loop, `verl_plugin.rollout`);
`generate_budgeted_batch` drives many through a batched callable (offline vLLM,
`verl_plugin.evaluate`). Both use `plan_solution` and `finish` below, so training and evaluation
cut, force and mask tokens identically.

Log-probs and masks (aligned: one entry per response token):
- sampled tokens get the engine's log-prob and mask 1;
- the forced `</think>` gets log-prob 0.0 by default: the rollout emits it with probability 1,
  so 0.0 is its exact log-probability under the behaviour policy that produced the sample
  (`forced_logprob="compute"` asks the engine for the model's own log-prob of it instead, via
  vLLM prompt log-probs); its mask is 1 (trained as if sampled, as the reference does) unless
  `mask_forced_token=True`.

EOS inside the thinking phase (`eos_in_thinking`):
- "stop" (default): the sample ends there (thinking + EOS); no `</think>`, no solution. The model
  chose to stop; a reward that needs a solution after `</think>` scores it 0.
- "force": the EOS is dropped and replaced by the forced `</think>`; the solution phase runs.
- "mask": the reference implementation's behaviour: the EOS is kept (trained as sampled), then
  `</think>` is appended and the solution generated, but forced token and solution get mask 0,
  so only the thinking part is trained (the reward still sees the solution).
"""
from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

EOS_POLICIES = ("stop", "force", "mask")
FORCED_LOGPROB_MODES = ("zero", "compute")


@dataclass(frozen=True)
class BudgetConfig:
    thinking_budget: int = 1024
    solution_budget: int = 1024
    mask_forced_token: bool = False
    eos_in_thinking: str = "stop"
    forced_logprob: str = "zero"
    think_end: str = "</think>"

    def __post_init__(self) -> None:
        if int(self.thinking_budget) < 1 or int(self.solution_budget) < 1:
            raise ValueError(f"budgets must be >= 1 token, got thinking={self.thinking_budget} "
                             f"solution={self.solution_budget}")
        if self.eos_in_thinking not in EOS_POLICIES:
            raise ValueError(f"eos_in_thinking must be one of {EOS_POLICIES}, got {self.eos_in_thinking!r}")
        if self.forced_logprob not in FORCED_LOGPROB_MODES:
            raise ValueError(f"forced_logprob must be one of {FORCED_LOGPROB_MODES}, "
                             f"got {self.forced_logprob!r}")

    @property
    def max_response_tokens(self) -> int:
        return int(self.thinking_budget) + 1 + int(self.solution_budget)


@dataclass(frozen=True)
class SpecialTokens:
    think_end_id: int
    eos_ids: frozenset[int]

    @classmethod
    def from_tokenizer(cls, tokenizer, think_end: str = "</think>",
                       extra_eos_ids: Iterable[int] = ()) -> "SpecialTokens":
        """Resolves `</think>` (must be one token) and the EOS ids from a HF tokenizer."""
        think_end_id = single_token_id(tokenizer, think_end)
        eos = set(int(i) for i in extra_eos_ids)
        eos_id = getattr(tokenizer, "eos_token_id", None)
        if isinstance(eos_id, int):
            eos.add(eos_id)
        elif isinstance(eos_id, (list, tuple)):
            eos.update(int(i) for i in eos_id)
        if not eos:
            raise ValueError("the tokenizer has no eos_token_id; pass extra EOS ids")
        if think_end_id in eos:
            raise ValueError(f"{think_end!r} is also an EOS token")
        return cls(think_end_id=think_end_id, eos_ids=frozenset(eos))


def single_token_id(tokenizer, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"{text!r} is not a single token in this tokenizer (encodes to {ids}); "
                         "budgeted generation needs a model with a dedicated </think> token")
    token_id = tokenizer.convert_tokens_to_ids(text)
    if isinstance(token_id, int) and token_id != ids[0] and token_id != getattr(tokenizer, "unk_token_id", None):
        raise ValueError(f"{text!r}: encode gives {ids[0]} but the vocabulary says {token_id}")
    return int(ids[0])


@dataclass
class Generation:
    """What an engine returned for one request."""
    token_ids: list[int]
    log_probs: list[float] | None = None
    # Model log-prob of the last prompt token (only when asked for, forced_logprob="compute").
    last_prompt_logprob: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class ThinkingPlan:
    """Phase 1 after cutting, and what phase 2 should do."""
    thinking_ids: list[int]
    thinking_logprobs: list[float] | None
    closed: bool  # the model wrote </think> itself
    forced: bool  # the rollout appends </think>
    eos_in_thinking: bool
    solution_budget: int  # max tokens of phase 2 (0: no phase 2)
    mask_solution: bool  # eos_in_thinking="mask": forced token and solution get mask 0

    def continuation(self, prompt_ids: Sequence[int], special: SpecialTokens) -> list[int]:
        """The phase 2 prompt: prompt + thinking (+ forced </think>)."""
        return list(prompt_ids) + self.thinking_ids + ([special.think_end_id] if self.forced else [])


@dataclass
class BudgetedResponse:
    response_ids: list[int]
    response_mask: list[int]
    response_logprobs: list[float] | None
    thinking_tokens: int  # phase 1 tokens kept (with a natural </think>, without the forced one)
    solution_tokens: int
    think_closed: bool
    think_forced: bool
    eos_in_thinking: bool
    solution_truncated: bool  # phase 2 hit its budget (or the response length) without EOS
    forced_index: int | None  # position of the forced </think> in response_ids
    forced_logprob_computed: bool = False

    def stats(self) -> dict:
        return {"thinking_tokens": self.thinking_tokens, "solution_tokens": self.solution_tokens,
                "think_forced": self.think_forced, "think_closed": self.think_closed,
                "eos_in_thinking": self.eos_in_thinking, "solution_truncated": self.solution_truncated}


def thinking_request(config: BudgetConfig, response_length: int | None = None) -> int:
    """max_tokens of phase 1 (the stop token is `special.think_end_id`)."""
    budget = int(config.thinking_budget)
    return min(budget, int(response_length)) if response_length else budget


def _cut(tokens: Sequence[int], logprobs: Sequence[float] | None, limit: int):
    tokens = list(tokens)[:limit]
    if logprobs is not None:
        logprobs = list(logprobs)[:len(tokens)]
        if len(logprobs) != len(tokens):
            raise ValueError(f"the engine returned {len(tokens)} tokens but {len(logprobs)} log-probs")
    return tokens, logprobs


def plan_solution(phase1: Generation, config: BudgetConfig, special: SpecialTokens,
                  response_length: int | None = None) -> ThinkingPlan:
    """Cuts phase 1 at the first </think> or EOS and decides on forcing and phase 2."""
    limit = thinking_request(config, response_length)
    tokens, logprobs = _cut(phase1.token_ids, phase1.log_probs, limit)
    closed = forced = eos = mask_solution = False
    stop_at = None
    for index, token in enumerate(tokens):
        if token == special.think_end_id or token in special.eos_ids:
            stop_at = index
            break
    if stop_at is not None and tokens[stop_at] == special.think_end_id:
        tokens, closed = tokens[:stop_at + 1], True
    elif stop_at is not None:  # EOS while thinking
        eos = True
        if config.eos_in_thinking == "stop":
            tokens = tokens[:stop_at + 1]
        elif config.eos_in_thinking == "force":
            tokens, forced = tokens[:stop_at], True
        else:  # "mask"
            tokens, forced, mask_solution = tokens[:stop_at + 1], True, True
    else:  # budget exhausted (or the engine stopped for another reason): force </think>
        forced = True
    if logprobs is not None:
        logprobs = logprobs[:len(tokens)]
    room = (int(response_length) if response_length else math.inf) - len(tokens) - (1 if forced else 0)
    if forced and room < 0:  # no room left even for the forced token: the response ends here
        forced = False
    solution = 0
    if closed or forced:
        solution = int(max(0, min(int(config.solution_budget), room)))
    return ThinkingPlan(thinking_ids=tokens, thinking_logprobs=logprobs, closed=closed, forced=forced,
                        eos_in_thinking=eos, solution_budget=solution, mask_solution=mask_solution)


def finish(plan: ThinkingPlan, phase2: Generation | None, config: BudgetConfig,
           special: SpecialTokens) -> BudgetedResponse:
    """Assembles the response, its mask and aligned log-probs."""
    if phase2 is not None and plan.solution_budget > 0:
        solution, solution_lps = _cut(phase2.token_ids, phase2.log_probs, plan.solution_budget)
    else:
        solution, solution_lps = [], ([] if plan.thinking_logprobs is not None else None)
    for index, token in enumerate(solution):
        if token in special.eos_ids:
            solution = solution[:index + 1]
            solution_lps = solution_lps[:index + 1] if solution_lps is not None else None
            break
    truncated = plan.solution_budget > 0 and len(solution) >= plan.solution_budget and \
        (not solution or solution[-1] not in special.eos_ids)

    response = list(plan.thinking_ids)
    mask = [1] * len(response)
    logprobs = list(plan.thinking_logprobs) if plan.thinking_logprobs is not None else None
    forced_index = None
    computed = False
    if plan.forced:
        forced_index = len(response)
        response.append(special.think_end_id)
        mask.append(0 if (config.mask_forced_token or plan.mask_solution) else 1)
        if logprobs is not None:
            value = 0.0
            if config.forced_logprob == "compute" and phase2 is not None \
                    and phase2.last_prompt_logprob is not None:
                value, computed = float(phase2.last_prompt_logprob), True
            logprobs.append(value)
    response.extend(solution)
    mask.extend([0 if plan.mask_solution else 1] * len(solution))
    if logprobs is not None:
        if solution_lps is None:
            logprobs = None  # phase 2 gave none: no partial log-probs
        else:
            logprobs.extend(solution_lps)
    return BudgetedResponse(
        response_ids=response, response_mask=mask, response_logprobs=logprobs,
        thinking_tokens=len(plan.thinking_ids), solution_tokens=len(solution),
        think_closed=plan.closed, think_forced=plan.forced, eos_in_thinking=plan.eos_in_thinking,
        solution_truncated=truncated, forced_index=forced_index, forced_logprob_computed=computed)


# A single-sample engine: (prompt_ids, max_tokens, stop_token_ids, want_last_prompt_logprob).
AsyncGenerate = Callable[[list[int], int, list[int], bool], Awaitable[Generation]]
# A batched engine: [(prompt_ids, max_tokens, stop_token_ids)] → [Generation].
BatchGenerate = Callable[[list[tuple[list[int], int, list[int]]]], list[Generation]]


async def generate_budgeted(generate: AsyncGenerate, prompt_ids: Sequence[int], config: BudgetConfig,
                            special: SpecialTokens, response_length: int | None = None
                            ) -> tuple[BudgetedResponse, list[Generation]]:
    """One sample through both phases; returns the response and the raw engine outputs."""
    prompt_ids = list(prompt_ids)
    first = await generate(prompt_ids, thinking_request(config, response_length),
                           [special.think_end_id], False)
    plan = plan_solution(first, config, special, response_length)
    outputs = [first]
    second = None
    if plan.solution_budget > 0:
        second = await generate(plan.continuation(prompt_ids, special), plan.solution_budget, [],
                                plan.forced and config.forced_logprob == "compute")
        outputs.append(second)
    return finish(plan, second, config, special), outputs


def generate_budgeted_batch(generate: BatchGenerate, prompts: Sequence[Sequence[int]],
                            config: BudgetConfig, special: SpecialTokens,
                            response_length: int | None = None) -> list[BudgetedResponse]:
    """Many samples: all phase 1 requests in one batch, then all phase 2 requests in one batch."""
    max_thinking = thinking_request(config, response_length)
    firsts = generate([(list(p), max_thinking, [special.think_end_id]) for p in prompts])
    plans = [plan_solution(g, config, special, response_length) for g in firsts]
    todo = [i for i, plan in enumerate(plans) if plan.solution_budget > 0]
    seconds: dict[int, Generation] = {}
    if todo:
        answers = generate([(plans[i].continuation(prompts[i], special), plans[i].solution_budget, [])
                            for i in todo])
        seconds = dict(zip(todo, answers))
    return [finish(plan, seconds.get(i), config, special) for i, plan in enumerate(plans)]

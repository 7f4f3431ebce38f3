"""verl_plugin.budget's pure planning, at its boundaries: where a thinking phase is cut, when
`</think>` is forced, how much room the solution gets, what is truncated, which log-prob the forced
token carries. Fast (no verl, no model), so mutation testing runs it per mutant."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from verl_plugin.budget import (BudgetConfig, Generation, SpecialTokens, ThinkingPlan, finish,
                                generate_budgeted, plan_solution, single_token_id, thinking_request)

END, EOS = 99, 100
SPECIAL = SpecialTokens(think_end_id=END, eos_ids=frozenset({EOS}))


def gen(tokens, logprobs=True, last=None) -> Generation:
    lps = [-0.01 * (i + 1) for i in range(len(tokens))] if logprobs else None
    return Generation(token_ids=list(tokens), log_probs=lps, last_prompt_logprob=last)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("thinking, solution", [(0, 1), (1, 0), (-3, 5)])
def test_budgets_below_one_token_are_refused(thinking, solution):
    with pytest.raises(ValueError, match=f"budgets must be >= 1 token, got thinking={thinking} "
                                         f"solution={solution}"):
        BudgetConfig(thinking_budget=thinking, solution_budget=solution)


def test_one_token_budgets_and_bad_policies():
    assert BudgetConfig(thinking_budget=1, solution_budget=1).max_response_tokens == 3
    with pytest.raises(ValueError, match="eos_in_thinking must be one of .* got 'drop'"):
        BudgetConfig(eos_in_thinking="drop")
    with pytest.raises(ValueError, match="forced_logprob must be one of .* got 'one'"):
        BudgetConfig(forced_logprob="one")


def test_engine_log_probs_must_match_its_tokens():
    broken = Generation(token_ids=[1, 2, 3], log_probs=[-0.1])
    with pytest.raises(ValueError, match="^the engine returned 3 tokens but 1 log-probs$"):
        plan_solution(broken, BudgetConfig(), SPECIAL)


def test_thinking_request_is_capped_by_the_response_length():
    config = BudgetConfig(thinking_budget=10, solution_budget=5)
    assert thinking_request(config, 4) == 4
    assert thinking_request(config, 40) == 10
    assert thinking_request(config) == 10


# ---------------------------------------------------------------- tokenizer


class WordTokenizer:
    """encode / convert_tokens_to_ids as a HF tokenizer answers them, with an optional BOS."""

    def __init__(self, vocab, eos_token_id=None, bos=None, unk_token_id=None):
        self.vocab, self.eos_token_id, self.bos, self.unk_token_id = vocab, eos_token_id, bos, unk_token_id

    def encode(self, text, add_special_tokens=True):
        ids = [self.vocab[w] for w in text.split("|")]
        return ([self.bos] if add_special_tokens and self.bos is not None else []) + ids

    def convert_tokens_to_ids(self, text):
        return self.vocab.get(text, self.unk_token_id)


def test_think_end_must_be_one_token_encoded_without_special_tokens():
    tokenizer = WordTokenizer({"</think>": 7, "</": 1, "think>": 2}, eos_token_id=3, bos=0)
    assert single_token_id(tokenizer, "</think>") == 7  # the BOS is not part of it
    with pytest.raises(ValueError) as error:
        single_token_id(tokenizer, "</|think>")
    assert str(error.value) == ("'</|think>' is not a single token in this tokenizer (encodes to [1, 2]); "
                                "budgeted generation needs a model with a dedicated </think> token")


def test_encode_and_vocabulary_must_agree():
    class Disagreeing(WordTokenizer):
        def convert_tokens_to_ids(self, text):
            return 8
    with pytest.raises(ValueError, match="'</think>': encode gives 7 but the vocabulary says 8"):
        single_token_id(Disagreeing({"</think>": 7}, eos_token_id=3), "</think>")
    no_unk = SimpleNamespace(encode=lambda t, add_special_tokens: [7], convert_tokens_to_ids=lambda t: 8)
    with pytest.raises(ValueError, match="encode gives 7 but the vocabulary says 8"):
        single_token_id(no_unk, "</think>")  # a tokenizer without unk_token_id at all
    # an unknown-token answer from the vocabulary is not a disagreement
    assert single_token_id(Disagreeing({"</think>": 7}, eos_token_id=3, unk_token_id=8), "</think>") == 7


def test_eos_ids_from_the_tokenizer_and_extra_ones():
    tokenizer = WordTokenizer({"</think>": 7}, eos_token_id=[3, 4])
    special = SpecialTokens.from_tokenizer(tokenizer, extra_eos_ids=[5])
    assert special == SpecialTokens(think_end_id=7, eos_ids=frozenset({3, 4, 5}))
    assert SpecialTokens.from_tokenizer(WordTokenizer({"</think>": 7}, eos_token_id=3)).eos_ids == {3}
    assert SpecialTokens.from_tokenizer(SimpleNamespace(
        encode=lambda t, add_special_tokens: [7], convert_tokens_to_ids=lambda t: 7),
        extra_eos_ids=[9]).eos_ids == {9}  # no eos_token_id attribute at all
    with pytest.raises(ValueError, match="^the tokenizer has no eos_token_id; pass extra EOS ids$"):
        SpecialTokens.from_tokenizer(WordTokenizer({"</think>": 7}))
    with pytest.raises(ValueError, match="^'</think>' is also an EOS token$"):
        SpecialTokens.from_tokenizer(WordTokenizer({"</think>": 7}, eos_token_id=7))


# ---------------------------------------------------------------- planning phase 2


def test_eos_while_thinking_is_cut_right_after_it():
    stop = plan_solution(gen([1, EOS, 2, 3]), BudgetConfig(eos_in_thinking="stop"), SPECIAL)
    assert stop.thinking_ids == [1, EOS] and not stop.forced and stop.solution_budget == 0
    assert stop.thinking_logprobs == [-0.01, -0.02]
    mask = plan_solution(gen([1, EOS, 2, 3]), BudgetConfig(eos_in_thinking="mask"), SPECIAL)
    assert mask.thinking_ids == [1, EOS] and mask.forced and mask.mask_solution
    force = plan_solution(gen([1, EOS, 2]), BudgetConfig(eos_in_thinking="force"), SPECIAL)
    assert force.thinking_ids == [1] and force.forced and not force.mask_solution


def test_phase_one_is_cut_at_the_response_length():
    plan = plan_solution(gen([1, 2, 3, 4, 5]), BudgetConfig(thinking_budget=10, solution_budget=5),
                         SPECIAL, response_length=3)
    assert plan.thinking_ids == [1, 2, 3] and plan.thinking_logprobs == [-0.01, -0.02, -0.03]
    # the forced token no longer fits: the response ends with the thinking
    assert plan.forced is False and plan.solution_budget == 0


def test_forced_token_fits_exactly_with_no_solution_room():
    plan = plan_solution(gen([1, 2, 3]), BudgetConfig(thinking_budget=3, solution_budget=5),
                         SPECIAL, response_length=4)
    assert plan.forced is True and plan.solution_budget == 0


def test_solution_room_is_what_the_response_length_leaves():
    config = BudgetConfig(thinking_budget=8, solution_budget=20)
    closed = plan_solution(gen([1, 2, END]), config, SPECIAL, response_length=10)
    assert closed.closed and not closed.forced and closed.solution_budget == 7  # 10 - 3
    forced = plan_solution(gen([1, 2, 3, 4, 5, 6, 7, 8]), config, SPECIAL, response_length=12)
    assert forced.forced and forced.solution_budget == 3  # 12 - 8 - the forced token
    full = plan_solution(gen([1, 2, END]), config, SPECIAL, response_length=3)
    assert full.closed and full.solution_budget == 0
    unbounded = plan_solution(gen([1, END]), config, SPECIAL)
    assert unbounded.solution_budget == 20


# ---------------------------------------------------------------- assembling the response


def plan(**kwargs) -> ThinkingPlan:
    fields = dict(thinking_ids=[1, 2], thinking_logprobs=[-0.1, -0.2], closed=False, forced=True,
                  eos_in_thinking=False, solution_budget=3, mask_solution=False)
    fields.update(kwargs)
    return ThinkingPlan(**fields)


def test_no_phase_two_means_no_solution():
    result = finish(plan(solution_budget=3), None, BudgetConfig(), SPECIAL)
    assert result.response_ids == [1, 2, END] and result.solution_tokens == 0
    assert result.response_logprobs == [-0.1, -0.2, 0.0]
    assert result.solution_truncated is False


def test_a_phase_two_without_log_probs_is_ignored_when_it_has_no_budget():
    closed = plan(forced=False, closed=True, thinking_ids=[1, END], solution_budget=0)
    result = finish(closed, gen([5], logprobs=False), BudgetConfig(), SPECIAL)
    assert result.response_ids == [1, END] and result.response_logprobs == [-0.1, -0.2]


def test_a_one_token_solution_budget_is_used():
    result = finish(plan(solution_budget=1), gen([5, 6]), BudgetConfig(), SPECIAL)
    assert result.response_ids == [1, 2, END, 5] and result.solution_truncated is True


def test_solution_ends_right_after_eos():
    result = finish(plan(solution_budget=5), gen([5, EOS, 6]), BudgetConfig(), SPECIAL)
    assert result.response_ids == [1, 2, END, 5, EOS]
    assert result.response_logprobs == [-0.1, -0.2, 0.0, -0.01, -0.02]
    assert result.solution_truncated is False


@pytest.mark.parametrize("budget, tokens, truncated", [
    (2, [5, 6], True), (2, [5, EOS], False), (3, [5, 6, EOS], False), (3, [5, EOS], False),
    (1, [EOS], False), (1, [5], True),
])
def test_truncated_only_when_the_budget_ran_out_without_eos(budget, tokens, truncated):
    assert finish(plan(solution_budget=budget), gen(tokens), BudgetConfig(), SPECIAL).solution_truncated \
        is truncated


def test_closed_thinking_without_room_is_not_truncated():
    closed = plan(forced=False, closed=True, thinking_ids=[1, END], solution_budget=0)
    result = finish(closed, None, BudgetConfig(), SPECIAL)
    assert result.solution_truncated is False and result.forced_index is None
    assert result.response_ids == [1, END]


def test_forced_token_index_and_logprob():
    zero = finish(plan(), gen([5], last=-2.5), BudgetConfig(forced_logprob="zero"), SPECIAL)
    assert zero.forced_index == 2 and zero.response_logprobs[2] == 0.0
    assert zero.forced_logprob_computed is False
    computed = finish(plan(), gen([5], last=-2.5), BudgetConfig(forced_logprob="compute"), SPECIAL)
    assert computed.response_logprobs[2] == -2.5 and computed.forced_logprob_computed is True
    missing = finish(plan(), gen([5], last=None), BudgetConfig(forced_logprob="compute"), SPECIAL)
    assert missing.response_logprobs[2] == 0.0 and missing.forced_logprob_computed is False
    no_phase2 = finish(plan(solution_budget=0), None, BudgetConfig(forced_logprob="compute"), SPECIAL)
    assert no_phase2.response_logprobs == [-0.1, -0.2, 0.0] and no_phase2.forced_logprob_computed is False


def test_log_probs_are_all_or_nothing():
    result = finish(plan(), gen([5], logprobs=False), BudgetConfig(), SPECIAL)
    assert result.response_logprobs is None
    assert result.response_mask == [1, 1, 1, 1]


# ---------------------------------------------------------------- the two calls


def run_budgeted(phases, config, response_length=None):
    calls = []

    async def generate(prompt, max_tokens, stop_ids, want_last):
        calls.append((list(prompt), max_tokens, list(stop_ids), want_last))
        return phases.pop(0)
    result, raw = asyncio.run(generate_budgeted(generate, [50, 51], config, SPECIAL, response_length))
    return result, raw, calls


def test_phase_one_request_and_a_one_token_phase_two():
    config = BudgetConfig(thinking_budget=6, solution_budget=20)
    result, raw, calls = run_budgeted([gen([1, 2, 3, 4]), gen([EOS])], config, response_length=6)
    assert calls[0] == ([50, 51], 6, [END], False)
    assert calls[1] == ([50, 51, 1, 2, 3, 4, END], 1, [], False)  # room 6 - 4 - 1 = 1
    assert len(raw) == 2 and result.response_ids == [1, 2, 3, 4, END, EOS]


def test_phase_one_max_tokens_is_capped_by_the_response_length():
    config = BudgetConfig(thinking_budget=10, solution_budget=20)
    result, _, calls = run_budgeted([gen([1, 2, 3, 4, 5, 6, 7])], config, response_length=6)
    assert calls[0][1] == 6 and len(calls) == 1  # t = 10 does not fit: 6 tokens, nothing forced
    assert result.response_ids == [1, 2, 3, 4, 5, 6] and not result.think_forced


def test_last_prompt_logprob_is_asked_for_only_for_a_forced_token():
    compute = BudgetConfig(thinking_budget=4, solution_budget=4, forced_logprob="compute")
    _, _, closed_calls = run_budgeted([gen([1, END]), gen([EOS])], compute)
    assert closed_calls[1][3] is False
    _, _, forced_calls = run_budgeted([gen([1, 2, 3, 4]), gen([EOS], last=-1.0)], compute)
    assert forced_calls[1][3] is True


def test_forced_without_room_makes_no_second_call():
    config = BudgetConfig(thinking_budget=3, solution_budget=4, forced_logprob="compute")
    result, raw, calls = run_budgeted([gen([1, 2, 3])], config, response_length=4)
    assert len(calls) == 1 and len(raw) == 1
    assert result.response_ids == [1, 2, 3, END] and result.response_logprobs[-1] == 0.0


def test_batch_runs_phase_one_for_all_then_phase_two_for_those_with_room():
    from verl_plugin.budget import generate_budgeted_batch
    config = BudgetConfig(thinking_budget=3, solution_budget=4, eos_in_thinking="stop")
    batches = []
    answers = [
        [gen([1, END]), gen([1, 2, 3]), gen([1, EOS])],  # closed, forced, EOS while thinking
        [gen([7, EOS]), gen([8, 9, 10, 11, 12])],        # phase 2 of the first two only
    ]

    def generate(requests):
        batches.append([(list(p), m, list(s)) for p, m, s in requests])
        return answers.pop(0)
    results = generate_budgeted_batch(generate, [[50], [51], [52]], config, SPECIAL, response_length=8)
    assert batches[0] == [([50], 3, [END]), ([51], 3, [END]), ([52], 3, [END])]
    assert batches[1] == [([50, 1, END], 4, []), ([51, 1, 2, 3, END], 4, [])]
    assert [r.response_ids for r in results] == [[1, END, 7, EOS], [1, 2, 3, END, 8, 9, 10, 11],
                                                 [1, EOS]]
    assert [r.think_forced for r in results] == [False, True, False]
    assert [r.solution_truncated for r in results] == [False, True, False]
    assert results[2].eos_in_thinking is True and results[2].solution_tokens == 0


def test_batch_with_no_phase_two_makes_one_call():
    from verl_plugin.budget import generate_budgeted_batch
    calls = []

    def generate(requests):
        calls.append(len(requests))
        return [gen([1, EOS]) for _ in requests]
    results = generate_budgeted_batch(generate, [[50], [51]], BudgetConfig(thinking_budget=2), SPECIAL)
    assert calls == [2] and all(r.response_ids == [1, EOS] for r in results)


def test_batch_respects_the_response_length_and_a_one_token_room():
    from verl_plugin.budget import generate_budgeted_batch
    config = BudgetConfig(thinking_budget=10, solution_budget=5)
    batches = []
    answers = [[gen([1, 2, 3, 4, 5]), gen([1, 2, 3, 4, 5, 6, 7, 8])], [gen([7, 8])]]

    def generate(requests):
        batches.append([(len(p), m) for p, m, _ in requests])
        return answers.pop(0)
    results = generate_budgeted_batch(generate, [[50], [51]], config, SPECIAL, response_length=7)
    # phase 1 asks for min(t, response length); the first sample has room for one solution token
    # (7 - 5 - the forced one), the second filled the response: no forced token, no phase 2
    assert batches == [[(1, 7), (1, 7)], [(7, 1)]]
    assert results[0].response_ids == [1, 2, 3, 4, 5, END, 7] and results[0].solution_truncated
    assert results[1].response_ids == [1, 2, 3, 4, 5, 6, 7] and not results[1].think_forced

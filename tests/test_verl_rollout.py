"""BudgetedRollout under a scripted server manager at verl's real interface.

The fake server manager has the signature of verl's LLMServerClient.generate and answers with
verl's own TokenOutput, behaving like vLLM: max_tokens honoured, generation stops after a stop
token id or EOS (the token is included), log-probs when asked for. The loop is instantiated the way
verl's AgentLoopWorker does it (hydra.utils.instantiate of the agent_loops.yaml entry with
trainer_config / server_manager / tokenizer / ... keyword arguments) on verl's composed trainer
config, and its output goes through verl's own per-sample post-processing (padding, masks).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("verl")

import hydra  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

import verl  # noqa: E402
from verl.experimental.agent_loop.agent_loop import (  # noqa: E402
    AgentLoopOutput, AgentLoopWorker, DictConfigWrap, ToolListWrap, _agent_loop_registry)
from verl.utils.dataset.rl_dataset import RLHFDataset  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from verl_plugin.budget import BudgetConfig, Generation, SpecialTokens, finish, plan_solution  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
AGENT_LOOPS = REPO / "verl_plugin" / "config" / "agent_loops.yaml"
WORDS = [f"w{i}" for i in range(200)]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> <think>{% endif %}")


def make_tokenizer(think_special: bool = False) -> PreTrainedTokenizerFast:
    """A tiny word-level tokenizer: <think>, </think>, <eos> and plain words, no downloads."""
    specials = ["[PAD]", "[UNK]", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"]
    vocab = {token: index for index, token in enumerate(specials + WORDS + ["```python", "```"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="[PAD]",
                                        unk_token="[UNK]")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>"]})
    if think_special:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    else:
        tokenizer.add_tokens(["<think>", "</think>"])  # ordinary added tokens, as in DeepSeek-R1 models
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


TOK = make_tokenizer()
THINK_END = TOK.convert_tokens_to_ids("</think>")
EOS = TOK.eos_token_id


def ids(text: str, tokenizer=TOK) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


class ScriptedServerManager:
    """verl's LLMServerClient.generate signature; answers from a script, like vLLM would."""

    def __init__(self, script: list[list[int]], eos_id: int = EOS, last_prompt_logprob: float | None = None):
        self.script = list(script)
        self.eos_id = eos_id
        self.calls: list[dict] = []
        self.last_prompt_logprob = last_prompt_logprob

    @staticmethod
    def logprob(position: int, token: int) -> float:
        return -0.001 * (position + 1) - 0.0001 * token  # distinct per token, for alignment checks

    async def generate(self, request_id, *, prompt_ids: list[int], sampling_params: dict,
                       image_data=None, video_data=None, audio_data=None, mm_processor_kwargs=None,
                       **kwargs) -> TokenOutput:
        assert "max_tokens" in sampling_params, "the rollout must always pass max_tokens"
        self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids),
                           "sampling_params": dict(sampling_params)})
        planned = self.script.pop(0)
        stops = set(sampling_params.get("stop_token_ids") or []) | {self.eos_id}
        out = []
        for token in planned[:sampling_params["max_tokens"]]:
            out.append(token)
            if token in stops:
                break
        logprobs = [self.logprob(len(prompt_ids) + i, t) for i, t in enumerate(out)] \
            if sampling_params.get("logprobs") else None
        extra = {"global_steps": 3}
        if sampling_params.get("prompt_logprobs") == 0 and self.last_prompt_logprob is not None:
            n = len(prompt_ids)
            extra["prompt_logprobs"] = [[-0.5]] * (n - 2) + [[self.last_prompt_logprob], [0.0]]
            extra["prompt_ids"] = [[t] for t in prompt_ids[1:]] + [[0]]
        return TokenOutput(token_ids=out, log_probs=logprobs, stop_reason="completed",
                           num_preempted=0, extra_fields=extra)


@pytest.fixture(scope="module")
def trainer_config():
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(config_name="ppo_trainer", overrides=[
            "data.max_prompt_length=64", "data.max_response_length=40",
            "actor_rollout_ref.rollout.name=vllm",
            f"actor_rollout_ref.rollout.agent.agent_loop_config_path={AGENT_LOOPS}",
            "actor_rollout_ref.rollout.agent.default_agent_loop=budgeted_rollout"])
    return config


def make_loop(config, server, tokenizer=TOK, **overrides):
    """As AgentLoopWorker._run_agent_loop: instantiate the registry entry with verl's keywords."""
    entries = {entry.name: entry for entry in OmegaConf.load(AGENT_LOOPS)}
    entry = OmegaConf.merge(entries["budgeted_rollout"], overrides)
    return hydra.utils.instantiate(
        config=entry, trainer_config=DictConfigWrap(config=config), server_manager=server,
        tokenizer=tokenizer, processor=None, hf_model_type=None, dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data), tools=ToolListWrap([]))


def run(config, server, logprobs: bool = True, tokenizer=TOK, **overrides) -> AgentLoopOutput:
    """Instantiates the loop inside the running event loop (as verl does) and runs one sample."""
    params = {"temperature": 0.6, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0,
              "logprobs": logprobs}

    async def main():
        loop = make_loop(config, server, tokenizer, **overrides)
        return await loop.run(params, raw_prompt=[{"role": "user", "content": "w1 w2 w3"}])
    return asyncio.run(main())


def words(start: int, count: int) -> list[int]:
    return ids(" ".join(WORDS[start:start + count]))


PROMPT = ids("<|user|> w1 w2 w3 <|assistant|> <think>")


def test_yaml_entry_and_registry():
    import verl_plugin.rollout as rollout
    assert _agent_loop_registry["budgeted_rollout"]["_target_"] == "verl_plugin.rollout.BudgetedRollout"
    assert hydra.utils.get_class(OmegaConf.load(AGENT_LOOPS)[0]._target_) is rollout.BudgetedRollout


def test_think_end_before_budget(trainer_config):
    thinking = words(10, 5) + [THINK_END]
    solution = words(50, 4) + [EOS]
    server = ScriptedServerManager([thinking + words(90, 3), solution])
    out = run(trainer_config, server, thinking_budget=12, solution_budget=10)
    assert out.prompt_ids == PROMPT
    assert out.response_ids == thinking + solution
    assert out.response_mask == [1] * len(out.response_ids)
    first, second = server.calls
    assert first["sampling_params"]["max_tokens"] == 12
    assert first["sampling_params"]["stop_token_ids"] == [THINK_END]
    assert second["prompt_ids"] == PROMPT + thinking
    assert second["sampling_params"]["max_tokens"] == 10
    assert first["request_id"] == second["request_id"]  # sticky: phase 2 reuses phase 1's cache
    expected = [server.logprob(len(PROMPT) + i, t) for i, t in enumerate(thinking)] + \
               [server.logprob(len(PROMPT) + len(thinking) + i, t) for i, t in enumerate(solution)]
    assert out.response_logprobs == pytest.approx(expected)
    extra = out.extra_fields
    assert extra["budget_thinking_tokens"] == 6 and extra["budget_solution_tokens"] == 5
    assert extra["budget_think_forced"] is False and extra["budget_think_closed"] is True
    assert extra["budget_solution_truncated"] is False and "solution_text" not in extra


def test_budget_exhausted_forces_think_end(trainer_config):
    server = ScriptedServerManager([words(10, 30), words(60, 3) + [EOS]])
    out = run(trainer_config, server, thinking_budget=8, solution_budget=10)
    assert out.response_ids == words(10, 8) + [THINK_END] + words(60, 3) + [EOS]
    assert server.calls[1]["prompt_ids"] == PROMPT + words(10, 8) + [THINK_END]
    assert out.response_mask == [1] * 13
    assert len(out.response_logprobs) == len(out.response_ids)
    assert out.response_logprobs[8] == 0.0  # the forced token: probability 1 under the rollout
    assert out.response_logprobs[9] == pytest.approx(server.logprob(len(PROMPT) + 9, words(60, 1)[0]))
    assert out.extra_fields["budget_think_forced"] is True
    assert out.extra_fields["budget_thinking_tokens"] == 8
    assert out.extra_fields["budget_solution_tokens"] == 4


def test_mask_forced_token(trainer_config):
    server = ScriptedServerManager([words(10, 30), words(60, 3) + [EOS]])
    out = run(trainer_config, server, thinking_budget=8, solution_budget=10,
                        mask_forced_token=True)
    assert out.response_ids[8] == THINK_END
    assert out.response_mask == [1] * 8 + [0] + [1] * 4


def test_forced_logprob_computed(trainer_config):
    server = ScriptedServerManager([words(10, 30), words(60, 3) + [EOS]], last_prompt_logprob=-7.25)
    out = run(trainer_config, server, thinking_budget=8, solution_budget=10,
                        forced_logprob="compute")
    assert server.calls[1]["sampling_params"]["prompt_logprobs"] == 0
    assert "prompt_logprobs" not in server.calls[0]["sampling_params"]
    assert out.response_logprobs[8] == -7.25
    assert "prompt_logprobs" not in out.extra_fields  # bulk data stays out of the batch


@pytest.mark.parametrize("policy", ["stop", "force", "mask"])
def test_eos_inside_thinking(trainer_config, policy):
    thinking = words(10, 4) + [EOS]
    server = ScriptedServerManager([thinking + words(90, 5), words(60, 2) + [EOS]])
    out = run(trainer_config, server, thinking_budget=12, solution_budget=10,
                        eos_in_thinking=policy)
    assert out.extra_fields["budget_eos_in_thinking"] is True
    if policy == "stop":
        assert out.response_ids == thinking and len(server.calls) == 1
        assert out.response_mask == [1] * 5
        assert out.extra_fields["budget_think_forced"] is False
        assert out.extra_fields["budget_solution_tokens"] == 0
    elif policy == "force":
        assert out.response_ids == words(10, 4) + [THINK_END] + words(60, 2) + [EOS]
        assert server.calls[1]["prompt_ids"] == PROMPT + words(10, 4) + [THINK_END]
        assert out.response_mask == [1] * 8
        assert out.response_logprobs[4] == 0.0
    else:
        assert out.response_ids == thinking + [THINK_END] + words(60, 2) + [EOS]
        assert out.response_mask == [1] * 5 + [0] * 4
    assert len(out.response_logprobs) == len(out.response_ids) == len(out.response_mask)


def test_solution_capped_at_budget(trainer_config):
    thinking = words(10, 3) + [THINK_END]
    server = ScriptedServerManager([thinking, words(40, 50)])
    out = run(trainer_config, server, thinking_budget=12, solution_budget=6)
    assert server.calls[1]["sampling_params"]["max_tokens"] == 6
    assert out.response_ids == thinking + words(40, 6)
    assert out.extra_fields["budget_solution_truncated"] is True
    assert out.extra_fields["budget_solution_tokens"] == 6


def test_total_fits_response_length(trainer_config):
    # t + 1 + s = 30 + 1 + 30 > response_length 40: phase 2 gets what is left.
    server = ScriptedServerManager([words(0, 60), words(100, 60)])
    out = run(trainer_config, server, thinking_budget=30, solution_budget=30)
    assert server.calls[0]["sampling_params"]["max_tokens"] == 30
    assert server.calls[1]["sampling_params"]["max_tokens"] == 40 - 31
    assert len(out.response_ids) == 40 == len(out.response_mask) == len(out.response_logprobs)
    assert out.response_ids[30] == THINK_END


def test_no_logprobs_requested(trainer_config):
    server = ScriptedServerManager([words(10, 30), words(60, 3) + [EOS]])
    out = run(trainer_config, server, logprobs=False, thinking_budget=8, solution_budget=10)
    assert out.response_logprobs is None
    assert len(out.response_ids) == len(out.response_mask) == 13


def test_special_think_token_sends_solution_text(trainer_config):
    tokenizer = make_tokenizer(think_special=True)
    think_end = tokenizer.convert_tokens_to_ids("</think>")
    solution = ids("```python w5 w6 ```", tokenizer) + [tokenizer.eos_token_id]
    server = ScriptedServerManager([ids("w1 w2", tokenizer) + [think_end], solution],
                                   eos_id=tokenizer.eos_token_id)
    out = run(trainer_config, server, tokenizer=tokenizer, thinking_budget=8, solution_budget=10)
    assert out.extra_fields["solution_text"] == "```python w5 w6 ```"


def test_verl_postprocess_accepts_output(trainer_config):
    """verl's own AgentLoopWorker._agent_loop_postprocess pads our output into its tensors."""
    server = ScriptedServerManager([words(10, 30), words(60, 3) + [EOS]])
    out = run(trainer_config, server, thinking_budget=8, solution_budget=10, mask_forced_token=True)
    worker = AgentLoopWorker.__new__(AgentLoopWorker)
    worker.config = trainer_config
    worker.rollout_config = trainer_config.actor_rollout_ref.rollout
    worker.tokenizer, worker.processor = TOK, None
    worker.mm_processor_kwargs = {}
    worker.reward_loop_worker_handles = None
    worker.distillation_enabled = False
    padded = asyncio.run(worker._agent_loop_postprocess(out, validate=False, raw_prompt=[]))
    assert padded.response_ids.shape == (1, 40) and padded.prompt_ids.shape == (1, 64)
    assert padded.response_mask[0, :13].tolist() == [1] * 8 + [0] + [1] * 4
    assert padded.response_mask[0, 13:].sum() == 0
    assert padded.response_logprobs.shape == (1, 40)
    assert torch.equal(padded.response_ids[0, :13], torch.tensor(out.response_ids))


def test_budget_module_directly():
    """The shared planner alone: a server that ignores the stop token is cut at </think>."""
    special = SpecialTokens.from_tokenizer(TOK)
    assert special.think_end_id == THINK_END and EOS in special.eos_ids
    config = BudgetConfig(thinking_budget=10, solution_budget=5)
    plan = plan_solution(Generation(words(1, 3) + [THINK_END] + words(9, 4)), config, special)
    assert plan.thinking_ids == words(1, 3) + [THINK_END] and plan.closed and not plan.forced
    result = finish(plan, Generation(words(20, 9)), config, special)
    assert result.response_ids == words(1, 3) + [THINK_END] + words(20, 5)
    assert result.response_logprobs is None and result.solution_truncated
    with pytest.raises(ValueError):
        BudgetConfig(eos_in_thinking="maybe")


class AbortingServerManager(ScriptedServerManager):
    """Aborts the first `aborts` requests after `cut` tokens (or none), as vLLM does when a weight
    sync or a partial-rollout pause cuts a request; then answers from the script's remainder."""

    def __init__(self, script, aborts: int, cut: int = 0, **kwargs):
        super().__init__(script, **kwargs)
        self.aborts, self.cut = aborts, cut

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        if self.aborts > 0:
            self.aborts -= 1
            self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids),
                               "sampling_params": dict(sampling_params)})
            planned = self.script[0]
            out = planned[:self.cut]
            self.script[0] = planned[self.cut:]
            logprobs = [self.logprob(len(prompt_ids) + i, t) for i, t in enumerate(out)] \
                if sampling_params.get("logprobs") else None
            return TokenOutput(token_ids=out, log_probs=logprobs, stop_reason="aborted",
                               extra_fields={"global_steps": 3})
        return await super().generate(request_id, prompt_ids=prompt_ids,
                                      sampling_params=sampling_params, **kwargs)


def test_aborted_generation_is_resumed_not_taken_for_finished(trainer_config, monkeypatch):
    import verl_plugin.rollout as rollout
    monkeypatch.setattr(rollout, "ABORT_BACKOFF_S", 0.0)
    thinking = words(0, 6) + [THINK_END]
    solution = ids("```python w7 ``` <eos>")
    server = AbortingServerManager([thinking, solution], aborts=2, cut=2)
    output = run(trainer_config, server, thinking_budget=20, solution_budget=20)
    # the thinking phase was cut twice (2 + 2 tokens) and resumed: the model closed </think> itself
    assert output.extra_fields["budget_think_forced"] is False
    assert output.response_ids == thinking + solution
    assert len(output.response_logprobs) == len(output.response_ids)
    resumed = server.calls[1]
    assert resumed["prompt_ids"] == PROMPT + thinking[:2]
    assert resumed["sampling_params"]["max_tokens"] == 20 - 2


def test_aborted_with_no_tokens_forever_raises(trainer_config, monkeypatch):
    import verl_plugin.rollout as rollout
    monkeypatch.setattr(rollout, "ABORT_BACKOFF_S", 0.0)
    server = AbortingServerManager([words(0, 6)], aborts=100, cut=0)
    with pytest.raises(rollout.RolloutAbortedError, match="aborted the generation"):
        run(trainer_config, server, thinking_budget=20, solution_budget=20)


def test_request_ids_derive_from_the_sample(trainer_config):
    from verl_plugin.rollout import sample_request_id
    assert sample_request_id({"uid": "u1", "session_id": 3}, 0) == "u1-s3"
    assert sample_request_id({"uid": "u1"}, 7) == "u1-p7"
    assert sample_request_id({}, 0) != sample_request_id({}, 0)  # no uid: unique anyway
    server = ScriptedServerManager([words(0, 3) + [THINK_END], ids("<eos>")])
    params = {"temperature": 0.6, "top_p": 1.0, "top_k": -1, "logprobs": True}

    async def main():
        loop = make_loop(trainer_config, server)
        return await loop.run(params, raw_prompt=[{"role": "user", "content": "w1"}], uid="g7",
                              session_id=2)
    asyncio.run(main())
    assert [c["request_id"] for c in server.calls] == ["g7-s2", "g7-s2"]  # both phases, same id


def test_think_end_specialness_is_checked_by_decoding():
    from verl_plugin.rollout import think_end_stripped
    plain = make_tokenizer()
    assert not think_end_stripped(plain, plain.convert_tokens_to_ids("</think>"))
    special = make_tokenizer(think_special=True)
    assert think_end_stripped(special, special.convert_tokens_to_ids("</think>"))
    # added with special=True but outside the special-tokens map: not in all_special_ids, yet
    # decode(skip_special_tokens=True) drops it
    hidden = make_tokenizer()
    from tokenizers import AddedToken
    hidden.add_tokens([AddedToken("</think2>", special=True)])
    token = hidden.convert_tokens_to_ids("</think2>")
    assert token not in hidden.all_special_ids
    assert think_end_stripped(hidden, token, "</think2>")


@pytest.mark.parametrize("override", ["algorithm.rollout_correction.bypass_mode=true",
                                      "algorithm.rollout_correction.rollout_is=token",
                                      "algorithm.rollout_correction.rollout_rs=token_k1"])
def test_forced_zero_logprob_with_rollout_correction_is_refused(override):
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(config_name="ppo_trainer", overrides=[
            "data.max_prompt_length=64", "data.max_response_length=40",
            "actor_rollout_ref.rollout.name=vllm", override])
    server = ScriptedServerManager([])
    with pytest.raises(Exception, match="forced_logprob: zero") as error:  # hydra wraps it
        make_loop(config, server)
    assert "mask_forced_token: true or forced_logprob" in str(error.value)
    make_loop(config, server, mask_forced_token=True)  # fine: the forced token is not trained on
    make_loop(config, server, forced_logprob="compute")

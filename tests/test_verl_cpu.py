"""verl_plugin.cpu without Ray: the tiny model, the transformers engine against vLLM's contract,
the rollout server's control calls, the CPU platform as verl loads it, and the fail-fast status."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")

from verl_plugin.cpu.engine import HFEngine, SamplingOptions  # noqa: E402
from verl_plugin.cpu.smoke_problems import PROBLEMS, completions  # noqa: E402
from verl_plugin.cpu.tiny_model import build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pairs = [([{"role": "user", "content": p["problem"]}], completions(p)) for p in PROBLEMS]
    path = build_tiny_model(tmp_path_factory.mktemp("tiny"), pairs, steps=60)
    from transformers import AutoTokenizer
    return path, AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def engine(tiny):
    return HFEngine(str(tiny[0]), max_model_len=256)


def prompt(tokenizer, index: int = 0) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROBLEMS[index]["problem"]}],
                                        add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if not isinstance(ids, list) else ids)


def options(**kwargs) -> SamplingOptions:
    return SamplingOptions.from_params(kwargs, default_max_tokens=32)


def test_fixture_is_cached_and_has_the_tokens(tiny, tmp_path):
    path, tokenizer = tiny
    think_end = tokenizer.encode("</think>", add_special_tokens=False)
    assert len(think_end) == 1
    assert "</think>" in tokenizer.decode(think_end, skip_special_tokens=True)  # not special
    assert tokenizer.eos_token == "<|im_end|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                         tokenize=False)
    assert text.endswith("<|im_start|>assistant\n<think>\n")
    before = (path / "model.safetensors").stat().st_mtime_ns
    pairs = [([{"role": "user", "content": p["problem"]}], completions(p)) for p in PROBLEMS]
    build_tiny_model(path, pairs, steps=60)
    assert (path / "model.safetensors").stat().st_mtime_ns == before  # reused, not rebuilt


def test_max_tokens_stop_ids_and_eos(engine, tiny):
    tokenizer = tiny[1]
    think_end = tokenizer.convert_tokens_to_ids("</think>")
    out = engine.generate(prompt(tokenizer), options(max_tokens=3, temperature=1.0, seed=1))
    assert len(out.token_ids) == 3 and out.finish_reason == "length"
    out = engine.generate(prompt(tokenizer), options(max_tokens=200, stop_token_ids=[think_end],
                                                     temperature=0))
    assert out.token_ids[-1] == think_end and think_end not in out.token_ids[:-1]
    assert out.finish_reason == "stop"
    rest = engine.generate(prompt(tokenizer) + out.token_ids, options(max_tokens=200, temperature=0))
    assert rest.token_ids[-1] == tokenizer.eos_token_id and rest.finish_reason == "stop"
    ignored = engine.generate(prompt(tokenizer) + out.token_ids,
                              options(max_tokens=len(rest.token_ids) + 5, temperature=0, ignore_eos=True))
    assert len(ignored.token_ids) == len(rest.token_ids) + 5


def test_context_length_bounds_the_request(engine, tiny):
    ids = prompt(tiny[1])
    long = (ids * (256 // len(ids) + 1))[:250]
    out = engine.generate(long, options(max_tokens=100, temperature=1.0, ignore_eos=True))
    assert len(out.token_ids) == 6
    with pytest.raises(ValueError, match="no room"):
        engine.generate(long * 2, options(max_tokens=4))


def test_logprobs_are_the_sampling_distribution(engine, tiny):
    """Processed log-probs (temperature applied), equal to what verl's actor recomputes."""
    ids = prompt(tiny[1], 2)
    out = engine.generate(ids, options(max_tokens=12, temperature=0.7, logprobs=True, seed=3))
    with torch.no_grad():
        logits = engine.model(torch.tensor([ids + out.token_ids])).logits[0].float()
    expected = torch.log_softmax(logits / 0.7, dim=-1)
    for i, token in enumerate(out.token_ids):
        assert out.log_probs[i] == pytest.approx(float(expected[len(ids) - 1 + i, token]), abs=1e-4)
    assert engine.generate(ids, options(max_tokens=2)).log_probs is None


def test_top_k_one_is_greedy_and_seed_repeats(engine, tiny):
    ids = prompt(tiny[1], 1)
    greedy = engine.generate(ids, options(max_tokens=10, temperature=0))
    top1 = engine.generate(ids, options(max_tokens=10, temperature=1.5, top_k=1, logprobs=True))
    assert top1.token_ids == greedy.token_ids and all(v == pytest.approx(0.0) for v in top1.log_probs)
    first = engine.generate(ids, options(max_tokens=10, temperature=2.0, seed=7))
    again = engine.generate(ids, options(max_tokens=10, temperature=2.0, seed=7))
    assert first.token_ids == again.token_ids


def test_prompt_logprobs_in_verls_layout(engine, tiny):
    ids = prompt(tiny[1])
    out = engine.generate(ids, options(max_tokens=1, temperature=1.0, prompt_logprobs=0))
    logprobs, prompt_ids = out.extra_fields["prompt_logprobs"], out.extra_fields["prompt_ids"]
    assert len(logprobs) == len(prompt_ids) == len(ids)
    assert [row[0] for row in prompt_ids[:-1]] == ids[1:] and logprobs[-1] == [0.0]
    with torch.no_grad():
        full = torch.log_softmax(engine.model(torch.tensor([ids])).logits[0].float(), dim=-1)
    assert logprobs[-2][0] == pytest.approx(float(full[len(ids) - 2, ids[-1]]), abs=1e-4)


def test_unknown_sampling_parameter_is_refused():
    with pytest.raises(ValueError, match="unsupported sampling parameters"):
        SamplingOptions.from_params({"beam_width": 4}, 8)


def test_weights_load_by_name_and_shape(tiny):
    engine = HFEngine(str(tiny[0]), max_model_len=128)
    state = {k: v.clone() for k, v in engine.model.state_dict().items()}
    name = "model.layers.0.mlp.up_proj.weight"
    loaded = engine.load_weights([(name, torch.zeros_like(state[name]))])
    assert loaded == 1 and engine.weight_version == 1
    assert torch.count_nonzero(engine.model.state_dict()[name]) == 0
    with pytest.raises(KeyError):
        engine.load_weights([("no.such.weight", torch.zeros(1))])
    with pytest.raises(ValueError, match="shape"):
        engine.load_weights([(name, torch.zeros(3, 3))])


def test_server_abort_gate_and_token_output(tiny):
    from verl_plugin.cpu.rollout import CPURolloutServer

    config = SimpleNamespace(prompt_length=64, response_length=32, max_model_len=None,
                             full_determinism=False, seed=0)
    server = CPURolloutServer(config, SimpleNamespace(path=str(tiny[0]), local_path=None))
    ids = prompt(tiny[1])

    async def main():
        output = await server.generate(ids, {"temperature": 1.0, "logprobs": True, "max_tokens": 5}, "r1")
        assert output.stop_reason == "completed" and len(output.log_probs) == len(output.token_ids) == 5
        assert isinstance(output.extra_fields["global_steps"], int)
        await server.abort_all_requests(reject_request=True)
        rejected = await server.generate(ids, {"max_tokens": 5}, "r2")
        assert rejected.stop_reason == "aborted" and rejected.token_ids == []
        await server.resume_generation()
        parked_ok = await server.generate(ids, {"max_tokens": 2}, "r3")
        assert parked_ok.stop_reason == "completed"
        await server.set_global_steps(4)
        assert (await server.generate(ids, {"max_tokens": 1}, "r4")).extra_fields["global_steps"] == 4
        await server.abort_all_requests()  # park, then resume wakes the parked request
        waiting = asyncio.ensure_future(server.generate(ids, {"max_tokens": 2}, "r5"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await server.resume_generation()
        assert (await waiting).stop_reason == "completed"
    asyncio.run(main())


def test_platform_and_backend_as_verl_loads_them():
    code = (
        "import verl, torch\n"
        "from verl.utils.device import get_device_name, get_device_id, get_nccl_backend, get_torch_device\n"
        "from verl.workers.engine import EngineRegistry\n"
        "from verl.workers.rollout.replica import RolloutReplicaRegistry\n"
        "from verl.workers.rollout.base import get_rollout_class\n"
        "import verl.utils.distributed as d\n"
        "assert get_device_name() == 'cpu' and get_device_id() == 'cpu' and get_nccl_backend() == 'gloo'\n"
        "assert get_torch_device() is torch.cpu and get_torch_device().max_memory_allocated() == 0\n"
        "print(EngineRegistry.get_engine_cls('language_model', 'fsdp2').__name__)\n"
        "print(RolloutReplicaRegistry.get('cpu').__name__, get_rollout_class('cpu', 'async').__name__)\n"
        "print(d.initialize_global_process_group_ray._cpu_gloo)\n")
    env = {**os.environ, "VERL_USE_EXTERNAL_MODULES": "verl_plugin.cpu.backend", "VERL_PLATFORM": "cpu",
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["FSDPEngineWithLMHead", "CPURolloutReplica", "CPURolloutAdapter", "True"]


def test_error_status_names_the_first_error():
    from verl_plugin.fail_fast import ERROR_STATUS_PREFIX, error_status
    from verl_plugin.reward import SandboxRewardError

    status = error_status([SandboxRewardError("sandbox unreachable after 7 attempts\n(x)"), ValueError()])
    assert status == f"{ERROR_STATUS_PREFIX}SandboxRewardError: sandbox unreachable after 7 attempts (x) " \
                     "(and 1 more sessions)"
    wrapped = RuntimeError("ray task failed")
    wrapped.cause = SandboxRewardError("down")
    assert error_status([wrapped]) == f"{ERROR_STATUS_PREFIX}SandboxRewardError: down"

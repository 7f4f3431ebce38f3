"""Our config entries composed with verl's own Hydra trainer config, and read the way verl reads them."""
from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path

import pytest

pytest.importorskip("verl")

import hydra  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import verl  # noqa: E402
from verl.experimental.agent_loop.agent_loop import AgentLoopBase  # noqa: E402
from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl  # noqa: E402
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager  # noqa: E402
from verl.trainer.ppo.reward import get_custom_reward_fn  # noqa: E402
from verl.trainer.ppo.utils import need_critic, need_reference_policy  # noqa: E402
from verl.utils.config import omega_conf_to_dataclass, validate_config  # noqa: E402
from verl.utils.import_utils import resolve_config_path  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402
from verl_plugin.reward import close_pools  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PLUGIN_CONFIG = REPO / "verl_plugin" / "config"
VERL_CONFIG = Path(verl.__file__).parent / "trainer" / "config"

# The minimal entries verl_plugin/README.md tells users to add to an existing GRPO config.
MINIMAL_ENTRIES = [
    "actor_rollout_ref.rollout.name=vllm",
    "actor_rollout_ref.rollout.agent.agent_loop_config_path=verl_plugin/config/agent_loops.yaml",
    "actor_rollout_ref.rollout.agent.default_agent_loop=budgeted_rollout",
    "+actor_rollout_ref.rollout.agent.agent_loop_manager_class=verl_plugin.fail_fast.FailFastAgentLoopManager",
    "data.max_response_length=2049",
    "reward.custom_reward_function.path=pkg://verl_plugin.reward",
    "reward.custom_reward_function.name=compute_score",
    "+reward.custom_reward_function.reward_kwargs.addresses=127.0.0.1:50051",
]


def compose_verl(overrides):
    with initialize_config_dir(config_dir=str(VERL_CONFIG), version_base=None):
        return compose(config_name="ppo_trainer", overrides=list(overrides))


def compose_plugin(name, overrides=()):
    with initialize_config_dir(config_dir=str(PLUGIN_CONFIG), version_base=None):
        return compose(config_name=name, overrides=list(overrides))


def check_agent_loop(config, monkeypatch):
    """As AgentLoopWorker.__init__: resolve the path (relative to the working directory), load the
    entries, and find the default agent loop's class through its _target_."""
    monkeypatch.chdir(REPO)
    agent = config.actor_rollout_ref.rollout.agent
    path = resolve_config_path(agent.agent_loop_config_path)
    entries = {entry.name: entry for entry in OmegaConf.load(path)}
    entry = entries[agent.default_agent_loop]
    cls = hydra.utils.get_class(entry._target_)
    assert issubclass(cls, AgentLoopBase)
    budget = entry.thinking_budget + 1 + entry.solution_budget
    assert budget <= config.actor_rollout_ref.rollout.response_length
    omega_conf_to_dataclass(agent)  # verl's AgentLoopConfig accepts the section
    return entry


def test_minimal_entries_on_verl_defaults(monkeypatch, server):
    # reward_kwargs from the config win over call-time keywords in verl's wrapper: point them at
    # the test server
    entries = [e for e in MINIMAL_ENTRIES if ".addresses=" not in e]
    config = compose_verl(entries + [f"+reward.custom_reward_function.reward_kwargs.addresses='{server.address}'"])
    check_agent_loop(config, monkeypatch)
    from verl.utils.import_utils import load_class_from_fqn
    manager = load_class_from_fqn(config.actor_rollout_ref.rollout.agent.agent_loop_manager_class)
    assert callable(manager.create)  # what both trainers call
    config = migrate_legacy_reward_impl(config)  # what verl's reward loop does first
    fn = get_custom_reward_fn(config)  # verl's own loader
    from verl_plugin.reward import compute_score
    assert fn.args[0] is compute_score and inspect.iscoroutinefunction(fn)
    manager = NaiveRewardManager(config, tokenizer=None, compute_score=fn)
    assert manager.is_async_reward_score  # awaited directly, not run in a thread

    row = next(json.loads(line) for line in (SHARED_DATA / "verified" / "problems.jsonl").read_text().splitlines()
               if json.loads(line)["id"] == "atcoder/abc301_a")
    from sandbox.problem import Problem
    from verl_plugin.groundtruth import to_ground_truth
    truth = to_ground_truth(Problem(id=row["id"], tests=row["tests"], time_limit_s=6), source="livecodebench")
    code = row["solutions"]["correct"][0]["code"]

    async def main():
        try:
            return await fn(data_source="livecodebench", solution_str=f"</think>```python\n{code}\n```",
                            ground_truth=truth, extra_info={})
        finally:
            await close_pools()
    result = asyncio.run(main())
    assert result["score"] == 1.0 and result["verdict"] == "AC"


def test_reward_kwargs_reach_the_function(monkeypatch):
    config = migrate_legacy_reward_impl(compose_verl(MINIMAL_ENTRIES + [
        "+reward.custom_reward_function.reward_kwargs.retries=0",
        "+reward.custom_reward_function.reward_kwargs.backoff_s=0.01"]))
    seen = {}

    async def fake(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        seen.update(kwargs)
        return 0.0
    import verl_plugin.reward as reward
    monkeypatch.setattr(reward, "compute_score", fake)
    fn = get_custom_reward_fn(config)
    asyncio.run(fn(data_source="x", solution_str="", ground_truth="{}", extra_info={}))
    assert seen == {"addresses": "127.0.0.1:50051", "retries": 0, "backoff_s": 0.01}


def test_e1_code_14b_config(monkeypatch):
    config = compose_plugin("e1_code_14b_grpo")
    assert config.data.train_batch_size == 128
    assert config.data.max_prompt_length == 2048
    rollout = config.actor_rollout_ref.rollout
    assert rollout.n == 8 and rollout.temperature == 0.6 and rollout.tensor_model_parallel_size == 2
    assert rollout.name == "vllm" and rollout.prompt_length == 2048 and rollout.response_length == 2049
    actor = config.actor_rollout_ref.actor
    assert actor.ppo_mini_batch_size == 64 and actor.optim.lr == 1e-6
    assert actor.use_kl_loss is False and actor.entropy_coeff == 0
    assert actor.clip_ratio_low == 0.2 and actor.clip_ratio_high == 0.28
    assert config.algorithm.adv_estimator == "grpo" and config.algorithm.use_kl_in_reward is False
    assert config.actor_rollout_ref.model.path == "agentica-org/DeepCoder-14B-Preview"
    assert config.trainer.nnodes == 1 and config.trainer.n_gpus_per_node == 8
    assert config.trainer.total_training_steps == 300
    entry = check_agent_loop(config, monkeypatch)
    assert entry.thinking_budget == 1024 and entry.solution_budget == 1024
    # verl's own validation (batch sizes vs GPUs, actor / rollout sections), as main_ppo runs it
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert not need_reference_policy(config) and not need_critic(config)
    omega_conf_to_dataclass(rollout)
    config = migrate_legacy_reward_impl(config)
    monkeypatch.setenv("SANDBOX_ADDRESSES", "10.0.0.1:50051,10.0.0.2:50051")
    kwargs = config.reward.custom_reward_function.reward_kwargs
    assert kwargs.addresses == "10.0.0.1:50051,10.0.0.2:50051"
    assert inspect.iscoroutinefunction(get_custom_reward_fn(config))


def test_e1_code_14b_matches_the_reference_script():
    # SalesforceAIResearch/Elastic-Reasoning scripts/deepcoder/train/deepcoder_14b_coding_2k.sh
    config = compose_plugin("e1_code_14b_grpo")
    actor = config.actor_rollout_ref.actor
    assert actor.ulysses_sequence_parallel_size == 2 and actor.ppo_max_token_len_per_gpu == 20000
    assert actor.use_dynamic_bsz is True and actor.grad_clip == 1.0 and actor.loss_agg_mode == "token-mean"
    assert config.actor_rollout_ref.ref.fsdp_config.param_offload is True
    val = config.actor_rollout_ref.rollout.val_kwargs
    assert val.n == 2 and val.top_p == 1.0 and val.temperature == 0.6 and val.do_sample is True
    assert config.actor_rollout_ref.rollout.top_p == 1.0
    assert config.trainer.test_freq == 10 and config.trainer.save_freq == 5
    assert config.trainer.val_before_train is False
    kwargs = config.reward.custom_reward_function.reward_kwargs
    assert kwargs.require_think_end is False and kwargs.partial_credit is False
    agent = config.actor_rollout_ref.rollout.agent
    assert agent.agent_loop_manager_class == "verl_plugin.fail_fast.FailFastAgentLoopManager"


def test_e1_code_14b_main_ppo_starts_up_to_the_gpus(tmp_path):
    """verl's real entry point with the shipped config gets through its imports, Hydra, verl's
    validate_config, Ray (on loopback), TransferQueue and the model config, and stops where it
    needs eight GPUs, with verl's own message. The model and data are local stand-ins (no hub)."""
    import subprocess
    import sys

    from verl_plugin import smoke
    from verl_plugin.cpu.tiny_model import build_tiny_model
    from verl_plugin.cpu.smoke_problems import PROBLEMS, completions

    model = build_tiny_model(tmp_path / "model", [([{"role": "user", "content": p["problem"]}],
                                                   completions(p)[:2]) for p in PROBLEMS], steps=5)
    train = smoke.make_data(tmp_path)
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={PLUGIN_CONFIG}",
         "--config-name=e1_code_14b_grpo", f"actor_rollout_ref.model.path={model}",
         f"data.train_files={train}", f"data.val_files={train}", "trainer.logger=[console]",
         "ray_kwargs.ray_init.num_cpus=16", "+ray_kwargs.ray_init._node_ip_address=127.0.0.1",
         "+ray_kwargs.ray_init.include_dashboard=false",
         f"actor_rollout_ref.rollout.agent.agent_loop_config_path={PLUGIN_CONFIG / 'agent_loops.yaml'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Total available GPUs 0 is less than total desired GPUs 8" in output, output[-3000:]


def test_launch_script_passes_an_absolute_agent_loop_path(tmp_path):
    import subprocess

    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    fake_python.chmod(0o755)
    for name in ("deepcoder_train.parquet", "lcb_test.parquet"):
        (tmp_path / name).write_bytes(b"")
    script = REPO / "verl_plugin" / "scripts" / "train_e1_code_14b.sh"
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake_python),
                                 "DATA_DIR": str(tmp_path), "SANDBOX_ADDRESSES": "127.0.0.1:1"})
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()
    paths = [a.split("=", 1)[1] for a in args if a.startswith("actor_rollout_ref.rollout.agent.agent_loop_config_path=")]
    assert paths == [str(REPO / "verl_plugin" / "config" / "agent_loops.yaml")]


def test_smoke_config(monkeypatch):
    monkeypatch.delenv("SANDBOX_ADDRESSES", raising=False)
    config = compose_plugin("e1_smoke_1gpu")
    assert config.trainer.n_gpus_per_node == 1 and config.actor_rollout_ref.rollout.tensor_model_parallel_size == 1
    entry = check_agent_loop(config, monkeypatch)
    assert entry.name == "budgeted_rollout_smoke"
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    fn = get_custom_reward_fn(migrate_legacy_reward_impl(config))
    # verl's loader wraps our coroutine with the config's reward_kwargs
    from verl_plugin.reward import compute_score
    assert fn.args[0] is compute_score and inspect.iscoroutinefunction(fn)
    assert fn.args[1]["require_think_end"] is False and fn.args[1]["max_concurrency"] == 64
    assert fn.args[1]["addresses"] == "127.0.0.1:50051"


def test_launch_script_parses():
    import subprocess
    script = REPO / "verl_plugin" / "scripts" / "train_e1_code_14b.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0

"""The E1-Math-1.5B, L1-Exact and L1-Max configs composed with verl's own Hydra config, validated
by verl's validate_config, their agent loops resolved and their rewards loaded as verl loads them."""
from __future__ import annotations

import inspect

import pytest

pytest.importorskip("verl")

import hydra  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.experimental.agent_loop.agent_loop import AgentLoopBase  # noqa: E402
from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl  # noqa: E402
from verl.trainer.ppo.reward import get_custom_reward_fn  # noqa: E402
from verl.trainer.ppo.utils import need_critic, need_reference_policy  # noqa: E402
from verl.utils.config import omega_conf_to_dataclass, validate_config  # noqa: E402
from verl.utils.import_utils import resolve_config_path  # noqa: E402

from test_verl_config import REPO, compose_plugin  # noqa: E402


def agent_entry(config, monkeypatch):
    """As AgentLoopWorker: the default agent loop's entry and its class, through _target_."""
    monkeypatch.chdir(REPO)
    agent = config.actor_rollout_ref.rollout.agent
    entries = {e.name: e for e in OmegaConf.load(resolve_config_path(agent.agent_loop_config_path))}
    entry = entries[agent.default_agent_loop]
    assert issubclass(hydra.utils.get_class(entry._target_), AgentLoopBase)
    omega_conf_to_dataclass(agent)
    return entry


def validated(config):
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    omega_conf_to_dataclass(config.actor_rollout_ref.rollout)
    return migrate_legacy_reward_impl(config)


def test_e1_math_config_matches_the_reference_script(monkeypatch):
    # SalesforceAIResearch/Elastic-Reasoning scripts/e1-math/e1_math_1.5b_1k_1k.sh
    config = compose_plugin("e1_math_1_5b_grpo")
    assert config.actor_rollout_ref.model.path == "agentica-org/DeepScaleR-1.5B-Preview"
    assert config.algorithm.adv_estimator == "grpo" and config.algorithm.use_kl_in_reward is False
    assert config.data.train_batch_size == 128 and config.data.max_prompt_length == 1024
    actor = config.actor_rollout_ref.actor
    assert actor.ppo_mini_batch_size == 64 and actor.optim.lr == 1e-6
    assert actor.use_kl_loss is True and actor.kl_loss_coef == 0.001 and actor.kl_loss_type == "low_var_kl"
    assert actor.ppo_max_token_len_per_gpu == 32768 and actor.use_dynamic_bsz is True
    rollout = config.actor_rollout_ref.rollout
    assert rollout.n == 8 and rollout.temperature == 0.6 and rollout.val_kwargs.n == 8
    assert rollout.response_length == 2049
    assert config.actor_rollout_ref.ref.fsdp_config.param_offload is True
    trainer = config.trainer
    assert trainer.total_training_steps == 200 and trainer.n_gpus_per_node == 8 and trainer.nnodes == 1
    assert trainer.test_freq == 10 and trainer.save_freq == 10 and trainer.val_before_train is True
    entry = agent_entry(config, monkeypatch)
    assert entry.name == "budgeted_rollout_math"
    assert entry.thinking_budget == 1024 and entry.solution_budget == 1024
    assert entry.thinking_budget + 1 + entry.solution_budget <= rollout.response_length
    config = validated(config)
    assert need_reference_policy(config)  # the KL loss needs the reference model
    fn = get_custom_reward_fn(config)
    from verl_plugin.math_reward import compute_score
    assert fn.args[0] is compute_score and inspect.iscoroutinefunction(fn)
    assert fn.args[1]["require_think_end"] is True and fn.args[1]["verify_timeout_s"] == 10


@pytest.mark.parametrize("name", ["l1_exact_1_5b_grpo", "l1_max_1_5b_grpo"])
def test_l1_configs(name, monkeypatch):
    config = compose_plugin(name)
    rollout = config.actor_rollout_ref.rollout
    actor = config.actor_rollout_ref.actor
    assert rollout.n == 16 and rollout.temperature == 0.6 and config.data.train_batch_size == 128
    assert actor.use_kl_loss is True and actor.kl_loss_coef == 0.001 and actor.ppo_mini_batch_size == 64
    if name == "l1_exact_1_5b_grpo":  # cmu-l3/l1 scripts/train/run_l1_exact.sh
        assert rollout.response_length == 4096 and actor.optim.lr == 1e-6 and rollout.tensor_model_parallel_size == 2
        assert config.trainer.total_epochs == 3 and config.trainer.save_freq == 20
        assert config.actor_rollout_ref.model.path == "agentica-org/DeepScaleR-1.5B-Preview"
    else:  # scripts/train/run_l1_max.sh
        assert rollout.response_length == 4500 and actor.optim.lr == 4e-6 and rollout.tensor_model_parallel_size == 1
        assert config.trainer.total_epochs == 1 and config.trainer.save_freq == 60
        assert config.trainer.val_before_train is True
    entry = agent_entry(config, monkeypatch)
    assert entry.name == "l1_rollout"
    fn = get_custom_reward_fn(validated(config))
    from verl_plugin.l1_reward import compute_score
    assert fn.args[0] is compute_score and inspect.iscoroutinefunction(fn)
    kwargs = fn.args[1]
    assert kwargs["correctness"] == "math" and kwargs["alpha"] == 0.0003
    assert kwargs["max_alpha"] == 0.0003 and kwargs["max_delta"] == 0.5

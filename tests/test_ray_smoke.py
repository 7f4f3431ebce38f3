"""`python -m verl_plugin.smoke --sandbox ray`: a GRPO step whose rewards come from sandbox
workers that `sandbox ray up` placed on the trainer's own Ray cluster (a head node for the
trainer, a CPU-only node for the workers, all on 127.0.0.1). There is no other sandbox in the
run: a sandbox verdict in the reward log can only come from those workers.
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")

from ray_helpers import server_processes  # noqa: E402
from test_verl_e2e import ListenWatcher, assert_graded_for_real, is_loopback, start_smoke  # noqa: E402


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-model")


def test_smoke_step_with_rewards_from_ray_placed_workers(tmp_path, model_cache):
    run = start_smoke(tmp_path, model_cache, "--sandbox", "ray", "--steps", "1")  # v1 trainer
    watcher = ListenWatcher(run.process.pid)
    watcher.start()
    run.wait()
    watcher.stop.set()
    watcher.join()
    result = run.result
    print("ray:", json.dumps(result), f"{run.seconds:.0f} s")
    assert result["steps"] == 1 and result["trainer"] == "v1" and result["params_changed"] is True
    assert result["sandbox"] == "ray://smoke"
    assert result["ray_fleet"] == {"workers": 2, "nodes": 1, "capacity": 2}
    rewards = run.rewards()
    assert_graded_for_real(rewards)
    assert {r["verdict"] for r in rewards} & {"AC", "WA", "RE", "CE"}, rewards  # really graded
    assert "placed 2 workers" in run.stderr
    assert (tmp_path / "sandbox-ray.log").read_text().count("smoke-worker-") >= 2
    outside = {(ip, port, pid) for ip, port, pid in watcher.seen if not is_loopback(ip)}
    assert not outside, f"ports listening beyond loopback: {sorted(outside)}"
    assert not server_processes("smoke"), "a worker's server outlived the run"

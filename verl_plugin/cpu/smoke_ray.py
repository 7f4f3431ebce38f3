"""`python -m verl_plugin.smoke --sandbox ray`: rewards from sandbox workers that Ray placed on
the trainer's own cluster, as on a real one.

A local Ray cluster on 127.0.0.1 with two nodes: a head for the trainer (its logical GPU and
CPUs) and a CPU-only node carrying the custom resource `sandbox`. `sandbox ray up` (the real
command) puts the workers on the CPU-only node; the trainer joins the same cluster
(`ray_kwargs.ray_init.address`) and its reward grades through `ray://smoke`: there is no
other sandbox, so every verdict comes from the Ray-placed workers. Everything is stopped at
the end (`sandbox ray down`, then the cluster's own processes).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

FLEET = "smoke"
RESOURCE = "sandbox"
# verl's v1 trainer puts TransferQueue's storage actors (1 CPU each, pinned) on every node in
# turn; they belong on the trainer's node, not on one whose CPUs the sandbox workers hold.
TRAINER_RESOURCE = "trainer"
HEAD_CPUS, HEAD_GPUS = 16, 1
SANDBOX_NODE_CPUS = 2
WORKERS = 2


@dataclass
class RaySandbox:
    address: str        # the cluster's GCS address (the trainer joins it)
    reward_address: str  # what the reward is given: ray://NAME

    def trainer_overrides(self) -> list[str]:
        """ray_init settings for joining this cluster (instead of starting one), and
        TransferQueue's storage kept on the trainer's node."""
        return ["ray_kwargs.ray_init.num_cpus=null", f"+ray_kwargs.ray_init.address={self.address}",
                f"++transfer_queue.backend.SimpleStorage.required_node_resource={TRAINER_RESOURCE}"]

    def status(self, repo: Path, env: dict) -> dict:
        """`sandbox ray status --json` of the fleet (its workers and their nodes)."""
        result = subprocess.run([sys.executable, "-m", "sandbox.cli", "ray", "status", "--json",
                                 "--name", FLEET, "--address", self.address],
                                cwd=repo, env=env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            return {"error": result.stderr.strip()[-500:]}
        return json.loads(result.stdout)


def _sandbox_ray(repo: Path, env: dict, log_file, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "sandbox.cli", "ray", *args], cwd=repo,
                            env=env, stdout=log_file, stderr=subprocess.STDOUT, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"`sandbox ray {args[0]}` failed (exit {result.returncode}); "
                           f"see {log_file.name}")


@contextlib.contextmanager
def ray_sandbox(workdir: Path, repo: Path, env: dict,
                log: Callable[[str], None]) -> Iterator[RaySandbox]:
    """The cluster with the fleet up; `env`: the smoke's environment, which gets what keeps
    every process of the cluster (and the trainer joining it) on loopback."""
    from sandbox.ray_fleet.connect import LOOPBACK_RAY_ENV

    env.update(LOOPBACK_RAY_ENV)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("RAY_", "GLOO_"))
                       or k in LOOPBACK_RAY_ENV})
    # A short private temp dir: Ray's socket paths must fit in 107 bytes, and a cluster
    # recorded in the shared /tmp/ray would be joined by any other `ray.init()` on the machine.
    temp = tempfile.mkdtemp(prefix="sbray-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = env["RAY_TMPDIR"] = temp
    from ray.cluster_utils import Cluster

    log_path = workdir / "sandbox-ray.log"
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={
            "node_ip_address": "127.0.0.1", "num_cpus": HEAD_CPUS, "num_gpus": HEAD_GPUS,
            "resources": {TRAINER_RESOURCE: 1}, "include_dashboard": False,
            "object_store_memory": 512 << 20})
        cluster.add_node(node_ip_address="127.0.0.1", num_cpus=SANDBOX_NODE_CPUS,
                         resources={RESOURCE: SANDBOX_NODE_CPUS}, object_store_memory=128 << 20)
        log(f"ray: cluster at {cluster.address} (head + a CPU-only `{RESOURCE}` node)")
        with open(log_path, "w") as log_file:
            _sandbox_ray(repo, env, log_file, "up", "--address", cluster.address, "--name", FLEET,
                         "--workers", str(WORKERS), "--resource", RESOURCE)
        log(f"ray: `sandbox ray up` placed {WORKERS} workers (log: {log_path})")
        yield RaySandbox(cluster.address, f"ray://{FLEET}")
        with open(log_path, "a") as log_file:
            _sandbox_ray(repo, env, log_file, "down", "--address", cluster.address, "--name", FLEET)
    finally:
        try:
            if cluster is not None:
                cluster.shutdown()
        finally:
            shutil.rmtree(temp, ignore_errors=True)

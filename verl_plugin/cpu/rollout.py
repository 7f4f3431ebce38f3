"""verl rollout backend "cpu": a Ray actor per replica serving `transformers` generation on CPU.

Registered in verl's own registries (`RolloutReplicaRegistry`, `_ROLLOUT_REGISTRY`) under the name
`cpu`, selected with `actor_rollout_ref.rollout.name=cpu` (mode `async`, hybrid engine only: the
actor and the rollout share the trainer's processes, as in verl's default GRPO setup).

Three pieces, as verl's vLLM backend has:
- `CPURolloutServer`: the server actor. `generate(prompt_ids, sampling_params, request_id, ...)`
  returns verl's `TokenOutput` (stop_reason "completed" / "aborted", log-probs, prompt log-probs
  in `extra_fields`); it answers verl's control calls (wake_up, sleep, abort_all_requests,
  resume_generation, abort_request, clear/release/resume_kv_cache, set_global_steps, profiling).
- `CPURolloutReplica`: starts one server per replica next to its first training worker.
- `CPURolloutAdapter`: lives in each training worker; `update_weights` receives the actor's full
  (gathered) HF-named tensors after each update and sends them to the server over Ray.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import ray
import torch

from verl.utils import normalize_token_ids
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutMode, RolloutReplica, TokenOutput

from verl_plugin.cpu.engine import HFEngine, SamplingOptions

log = logging.getLogger(__name__)

SERVER_PREFIX = "cpu_rollout_server"
# When set, the server writes the weights it received last to this safetensors file (the smoke run
# compares them with the initial ones: the actor's update reached the rollout).
SAVE_WEIGHTS_ENV = "VERL_CPU_ROLLOUT_SAVE_WEIGHTS"  # = verl_plugin.smoke.SAVE_WEIGHTS_ENV


def server_name(replica_rank: int, node_rank: int = 0, suffix: str = "") -> str:
    return f"{SERVER_PREFIX}_{replica_rank}_{node_rank}{suffix}"


class CPURolloutServer:
    """One model, token ids in and out. Generation runs in a worker thread (one at a time)."""

    def __init__(self, config, model_config, replica_rank: int = 0) -> None:
        self.config = config
        self.replica_rank = int(replica_rank)
        path = getattr(model_config, "local_path", None) or model_config.path
        max_model_len = getattr(config, "max_model_len", None) or \
            int(config.prompt_length) + int(config.response_length)
        self.default_max_tokens = int(config.response_length)
        self.engine = HFEngine(path, max_model_len=int(max_model_len),
                               trust_remote_code=bool(getattr(model_config, "trust_remote_code", False)))
        self.global_steps = 0  # verl's v1 trainer needs an int from the first rollout on
        self.full_determinism = bool(getattr(config, "full_determinism", False))
        self.seed = int(getattr(config, "seed", 0) or 0)
        self._gate_open = asyncio.Event()
        self._gate_open.set()
        self._reject = False
        self._in_flight: set[str] = set()

    def ready(self) -> bool:
        return True

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data=None, video_data=None, audio_data=None, mm_processor_kwargs=None,
                       priority: int = 0, **kwargs) -> TokenOutput:
        if image_data is not None or video_data is not None or audio_data is not None:
            raise ValueError("the cpu rollout backend is text-only")
        extra = {"global_steps": self.global_steps}
        if not self._gate_open.is_set():
            if self._reject:
                return TokenOutput(token_ids=[], log_probs=None, stop_reason="aborted", extra_fields=extra)
            await self._gate_open.wait()
        params = dict(sampling_params)
        if self.full_determinism:
            params.setdefault("seed", self.replica_rank + self.seed)
        options = SamplingOptions.from_params(params, self.default_max_tokens)
        prompt = [int(t) for t in normalize_token_ids(prompt_ids)]
        self._in_flight.add(request_id)
        try:
            output = await asyncio.to_thread(self.engine.generate, prompt, options, request_id)
        finally:
            self._in_flight.discard(request_id)
        extra.update(output.extra_fields)
        stop_reason = "aborted" if output.finish_reason == "abort" else "completed"
        return TokenOutput(token_ids=output.token_ids, log_probs=output.log_probs,
                           stop_reason=stop_reason, extra_fields=extra)

    async def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]],
                           global_steps: int | None = None) -> int:
        loaded = await asyncio.to_thread(self.engine.load_weights, named_tensors)
        target = os.environ.get(SAVE_WEIGHTS_ENV)
        if target and self.replica_rank == 0:
            await asyncio.to_thread(self.engine.save_weights, target)
        if global_steps is not None:
            self.global_steps = global_steps
        return loaded

    def weight_version(self) -> int:
        return self.engine.weight_version

    # verl's control calls: nothing to free or restore on CPU (weights and caches live in RAM).
    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None  # the KV cache lives only as long as its request

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def start_profile(self, **kwargs) -> None:
        return None

    async def stop_profile(self) -> None:
        return None

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def wait_for_requests_to_drain(self) -> None:
        while self._in_flight:
            await asyncio.sleep(0.01)

    async def abort_all_requests(self, reset_prefix_cache: bool = True,
                                 reject_request: bool = False) -> dict[str, Any]:
        self._gate_open.clear()
        self._reject = bool(reject_request)
        ids = sorted(self._in_flight)
        self.engine.abort()
        await self.wait_for_requests_to_drain()
        return {"aborted_count": len(ids), "request_ids": ids}

    async def resume_generation(self) -> None:
        self.engine.resume()
        self._reject = False
        self._gate_open.set()

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict[str, Any]:
        if request_id not in self._in_flight:
            return {"aborted": False, "request_id": request_id, "error": "request not found"}
        self.engine.abort(request_id)
        return {"aborted": True, "request_id": request_id}


class CPURolloutReplica(RolloutReplica):
    """One server actor per replica (rollout tensor/pipeline parallel must be 1)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.world_size != 1:
            raise ValueError("the cpu rollout backend runs one process per replica: set "
                             "actor_rollout_ref.rollout.tensor_model_parallel_size=1 (and data / "
                             "pipeline parallel 1)")

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        if self.rollout_mode != RolloutMode.HYBRID:
            raise NotImplementedError(f"the cpu rollout backend supports the hybrid engine only "
                                      f"(actor_rollout_ref.hybrid_engine=true), not {self.rollout_mode}")
        worker = self.workers[0]
        node_id = await worker.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        name = server_name(self.replica_rank, 0, self.name_suffix)
        server = ray.remote(CPURolloutServer).options(
            name=name, num_cpus=0,
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                node_id=node_id, soft=False),
            max_concurrency=self.max_concurrency,
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.ready.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"cpu-rollout://{name}"


class CPURolloutAdapter(BaseRollout):
    """The rollout inside a training worker: forwards weight updates to its replica's server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **kwargs) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        world = (self.config.tensor_model_parallel_size * self.config.data_parallel_size
                 * self.config.pipeline_model_parallel_size)
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.leader = rank % world == 0
        self._server = None

    def _server_handle(self):
        if self._server is None:
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    @torch.no_grad()
    async def update_weights(self, weights, global_steps: int | None = None,
                             wire_format: str = "named_tensors", **kwargs) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the cpu rollout backend takes full tensors, not {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError("the cpu rollout backend does not take LoRA adapters; "
                                      "set actor_rollout_ref.model.lora.merge=true")
        # Every rank walks the generator: gathering each full tensor is a collective.
        named = [(name, tensor.detach().to("cpu").clone()) for name, tensor in weights]
        if self.leader:
            await self._server_handle().load_weights.remote(named, global_steps)

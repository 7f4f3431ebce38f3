"""A CPU platform for verl 0.9.1, so that its real trainer runs on a machine without a GPU.

For CI and laptops, not for training real models. verl has no CPU platform: its platform manager
falls back to nvidia. verl's extension points used here:
- `PlatformRegistry.register("cpu")` (selected with `VERL_PLATFORM=cpu`; this module is loaded
  in every process through `VERL_USE_EXTERNAL_MODULES=verl_plugin.cpu`);
- `EngineRegistry`: verl's FSDP engine registered for device "cpu" as well;
- Ray: the platform's resource is "GPU", so the trainer's placement groups ask for logical GPUs
  (`ray.init(num_gpus=N)`), one training process per logical GPU.

Three things in verl cannot be reached through an extension point and are patched here:
- `verl.utils.distributed.initialize_global_process_group_ray` builds the backend string
  `"cpu:gloo,<device>:<backend>"`, which is `"cpu:gloo,cpu:gloo"` on CPU, and torch rejects a
  duplicate device type: the default backend becomes plain `"gloo"`, and the rendezvous a file
  store (`DIST_INIT_METHOD=file://...`: torch's TCPStore would listen on every interface);
- the FSDP engine builds `CPUOffloadPolicy(pin_memory=True)` for the reference model, and pinned
  memory needs an accelerator: pinning is turned off;
- `torch.cpu` lacks the memory and RNG functions verl calls through the platform's device module
  (`empty_cache`, `max_memory_allocated`, `get_rng_state`, ...): they are added as no-ops (zeros
  for memory statistics). verl compares its device module with `torch.cpu` to take its CPU
  branches, so the module itself stays `torch.cpu`.
"""
from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

PLATFORM_NAME = "cpu"


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """verl's device abstraction on CPU: gloo for collectives, logical Ray GPUs for placement."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self):
        return torch.cpu

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: a CPU run is always asked for (VERL_PLATFORM=cpu).
        return False

    def current_device(self):
        # Used as `.to(x)` / `torch.device(x)`: an index would mean an accelerator.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device) -> None:
        pass

    def synchronize(self, device=None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device=0):
        return (None, None)

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"  # what Ray sets for logical GPUs; nothing reads it on CPU

    @contextmanager
    def nvtx_range(self, msg, *args, **kwargs):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self):
        return None


def _zero(*args, **kwargs) -> int:
    return 0


def _nothing(*args, **kwargs) -> None:
    return None


_TORCH_CPU_SHIMS = {
    "empty_cache": _nothing, "ipc_collect": _nothing, "reset_peak_memory_stats": _nothing,
    "reset_accumulated_memory_stats": _nothing, "set_per_process_memory_fraction": _nothing,
    "memory_allocated": _zero, "memory_reserved": _zero, "max_memory_allocated": _zero,
    "max_memory_reserved": _zero, "mem_get_info": lambda *a, **k: (0, 0),
    "get_rng_state": lambda *a, **k: torch.get_rng_state(),
    "set_rng_state": lambda state, *a, **k: torch.set_rng_state(state),
    "manual_seed": lambda seed: torch.manual_seed(seed),
    "manual_seed_all": lambda seed: torch.manual_seed(seed),
    "get_device_name": lambda *a, **k: "CPU",
}


def _shim_torch_cpu() -> None:
    for name, function in _TORCH_CPU_SHIMS.items():
        if not hasattr(torch.cpu, name):
            setattr(torch.cpu, name, function)


def _store_path() -> str:
    import tempfile

    try:
        import ray

        job = ray.get_runtime_context().get_job_id()
    except Exception:  # noqa: BLE001 - outside Ray: the port alone tells groups apart
        job = "local"
    port = os.environ.get("MASTER_PORT", "0")
    return os.path.join(tempfile.gettempdir(), f"verl-cpu-store-{job}-{port}")


def _patch_process_group() -> None:
    import verl.utils.distributed as distributed

    original = distributed.initialize_global_process_group_ray
    if getattr(original, "_cpu_gloo", False):
        return

    @functools.wraps(original)
    def initialize_gloo(timeout_second=None, backend=None):
        if not os.environ.get("DIST_INIT_METHOD"):
            # torch's TCPStore rendezvous listens on every interface; a file store on this
            # machine (one per Ray job and master port, shared by the group's ranks) needs none.
            os.environ["DIST_INIT_METHOD"] = f"file://{_store_path()}"
        return original(timeout_second, backend or "gloo")

    initialize_gloo._cpu_gloo = True
    distributed.initialize_global_process_group_ray = initialize_gloo
    workers = sys.modules.get("verl.workers.engine_workers")
    if workers is not None:  # bound there by a from-import
        workers.initialize_global_process_group_ray = initialize_gloo


def _patch_engines() -> None:
    from torch.distributed.fsdp import CPUOffloadPolicy

    import verl.workers.engine.fsdp.transformer_impl as transformer_impl
    from verl.workers.engine import EngineRegistry
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

    for model_type, engine in (("language_model", FSDPEngineWithLMHead),
                               ("value_model", FSDPEngineWithValueHead)):
        backends = [b for b in ("fsdp", "fsdp2")
                    if "cpu" not in EngineRegistry._engines.get(model_type, {}).get(b, {})]
        if backends:
            EngineRegistry.register(model_type=model_type, backend=backends, device="cpu")(engine)

    def unpinned_offload_policy(pin_memory: bool = True, **kwargs):
        return CPUOffloadPolicy(pin_memory=False, **kwargs)

    transformer_impl.CPUOffloadPolicy = unpinned_offload_policy


def install() -> None:
    """Idempotent: the platform is registered at import; this applies the patches."""
    _shim_torch_cpu()
    _patch_process_group()
    _patch_engines()

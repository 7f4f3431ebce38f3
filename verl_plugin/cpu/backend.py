"""Loaded in every verl process with `VERL_USE_EXTERNAL_MODULES=verl_plugin.cpu.backend` (verl
imports it at the end of `import verl`): registers the CPU platform (`VERL_PLATFORM=cpu`), the
FSDP engine on CPU and the "cpu" rollout backend.

The rollout classes are named, not imported, here: `verl_plugin.cpu.rollout` imports verl, so a
process that unpickles one of its classes first would otherwise import it in a circle.
"""
from verl.workers.rollout import base as _rollout_base
from verl.workers.rollout.replica import RolloutReplicaRegistry

from verl_plugin.cpu import platform as _platform

BACKEND_NAME = "cpu"


def _replica_class():
    from verl_plugin.cpu.rollout import CPURolloutReplica

    return CPURolloutReplica


_platform.install()
RolloutReplicaRegistry.register(BACKEND_NAME, _replica_class)
_rollout_base._ROLLOUT_REGISTRY[(BACKEND_NAME, "async")] = "verl_plugin.cpu.rollout.CPURolloutAdapter"

"""A failed rollout or reward stops verl's training run, under the v1 trainer as under the legacy one.

verl 0.9.1's v1 trainer (the default, `trainer.use_v1: true`) runs each prompt's sessions with
`asyncio.gather(..., return_exceptions=True)` in `AgentLoopWorkerTQ._run_prompt`, logs the error in
the worker, tags the group "failure" and trains on what is left (validation counts the missing
sessions as accuracy 0). For a reward from a sandbox that is wrong: a `SandboxRewardError` (the
sandbox is down, or keeps failing) would silently shrink GRPO groups and lower the accuracy.

`FailFastAgentLoopManager` (config: `actor_rollout_ref.rollout.agent.agent_loop_manager_class`)
keeps verl's behaviour for every session that succeeds and turns a session error into the end of
the run: the moment a session fails, its group's TransferQueue tag gets the status
`error: <exception text>` and the session never settles (so verl never rewrites it "failure"). verl's replay buffer accepts only pending / running / finished / failure and raises
`ValueError("Unknown status: error: SandboxRewardError: ...")` at its next poll (every 2 s), in
training and in validation alike, before any step can train on the group; the run exits non-zero
with the message. The legacy trainer already stops on the first error (its gather does not catch
exceptions), so for it this class is verl's own `AgentLoopManager`.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

ERROR_STATUS_PREFIX = "error: "


def error_status(errors: list[BaseException]) -> str:
    """The tag status naming the first error (one line, bounded)."""
    first = errors[0]
    text = " ".join(str(first).split()) or type(first).__name__
    name = type(first).__name__
    cause = getattr(first, "cause", None)  # ray.exceptions.RayTaskError wraps the original
    if cause is not None:
        name, text = type(cause).__name__, " ".join(str(cause).split()) or text
    more = f" (and {len(errors) - 1} more sessions)" if len(errors) > 1 else ""
    return f"{ERROR_STATUS_PREFIX}{name}: {text[:1500]}{more}"


def _tq_classes():
    import ray
    import transfer_queue as tq
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ, AgentLoopWorkerTQ

    class FailFastAgentLoopWorkerTQ(AgentLoopWorkerTQ.__ray_actor_class__):
        async def _run_agent_loop(self, sampling_params, trajectory, **kwargs):
            try:
                return await super()._run_agent_loop(sampling_params, trajectory, **kwargs)
            except Exception as exc:  # every session error ends the run
                uid = kwargs.get("uid")
                status = error_status([exc])
                log.error("uid=%s session %s: %s: stopping the run", uid, kwargs.get("session_id"), status)
                await tq.async_kv_put(key=uid, partition_id="val" if trajectory["validate"] else "train",
                                      tag={"status": status})
                # Never settle: verl's _run_prompt would then overwrite the status with "failure"
                # (and the group could be trained on in between). The trainer's next poll raises
                # and ends the run, which ends this worker.
                await asyncio.Event().wait()

    class FailFastAgentLoopManagerTQ(AgentLoopManagerTQ):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.agent_loop_workers_class = ray.remote(FailFastAgentLoopWorkerTQ)

    return FailFastAgentLoopManagerTQ


class FailFastAgentLoopManager:
    """Picks the manager for the trainer in use: the fail-fast TQ manager under v1, verl's own
    `AgentLoopManager` under the legacy trainer (which already stops on errors)."""

    @classmethod
    def create(cls, *args, **kwargs):
        config = kwargs.get("config", args[0] if args else None)
        if config is not None and bool(config.trainer.get("use_v1", True)):
            return _tq_classes().create(*args, **kwargs)
        from verl.experimental.agent_loop import AgentLoopManager

        return AgentLoopManager.create(*args, **kwargs)


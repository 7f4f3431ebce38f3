"""LengthReportingRollout: verl's single-turn rollout that reports the response's length.

L1 (LCPO) rolls out ordinarily — the target length is only in the prompt — but its reward needs
the number of response tokens, which verl's reward loop does not hand to a reward function. This
loop is verl's `SingleTurnAgentLoop` plus `extra_fields["response_tokens"]` (what verl counts
as the valid response: every generated token, EOS included), which reaches the reward as
`extra_info["response_tokens"]`. Registered as "l1_rollout" (import) and in
`verl_plugin/config/agent_loops.yaml`.
"""
from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopOutput, register
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

AGENT_NAME = "l1_rollout"


@register(AGENT_NAME)
class LengthReportingRollout(SingleTurnAgentLoop):
    def __init__(self, *args, **kwargs):
        kwargs.pop("name", None)  # the registry entry's own name travels with its kwargs
        super().__init__(*args, **kwargs)

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs) -> AgentLoopOutput:
        output = await super().run(sampling_params, priority, **kwargs)
        output.extra_fields["response_tokens"] = len(output.response_ids)
        return output

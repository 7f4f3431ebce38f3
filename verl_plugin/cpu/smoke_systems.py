"""What each system changes in the CPU smoke run (`python -m verl_plugin.smoke --system ...`).

- e1-code: the budgeted rollout, the sandbox reward, the code smoke problems (the default);
- e1-math: the budgeted rollout, the math reward (`verl_plugin.math_reward`, no sandbox), math
  smoke problems made into rows by `python -m verl_plugin.math_data`;
- l1-exact / l1-max: verl's single-turn rollout reporting lengths (`l1_rollout`), the L1 reward
  with code correctness from the sandbox (`verl_plugin.l1_reward`, correctness=code), the code
  smoke problems made into rows by `python -m verl_plugin.data --length-control exact|max` with
  targets small enough for the tiny model's responses.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from verl_plugin.length_prompt import L1_AGENT

REPO = Path(__file__).resolve().parent.parent.parent
SYSTEMS = ("e1-code", "e1-math", "l1-exact", "l1-max")
L1_TARGET_RANGE = "16:64"


@dataclass(frozen=True)
class SmokeSystem:
    name: str
    needs_sandbox: bool
    reward_path: str
    data_tool: str  # the module that builds the rows

    @property
    def is_l1(self) -> bool:
        return self.name.startswith("l1-")


def system(name: str) -> SmokeSystem:
    if name not in SYSTEMS:
        raise ValueError(f"system must be one of {SYSTEMS}, got {name!r}")
    if name == "e1-math":
        return SmokeSystem(name, False, "pkg://verl_plugin.math_reward", "verl_plugin.math_data")
    if name.startswith("l1-"):
        return SmokeSystem(name, True, "pkg://verl_plugin.l1_reward", "verl_plugin.data")
    return SmokeSystem(name, True, "pkg://verl_plugin.reward", "verl_plugin.data")


def l1_agent_yaml() -> str:
    """The agent-loop entry the L1 rows name (appended to the smoke's agent-loop file)."""
    return f"- name: {L1_AGENT}\n  _target_: verl_plugin.l1_rollout.LengthReportingRollout\n"


def make_rows(spec: SmokeSystem, workdir: Path, agent_name: str) -> Path:
    """The smoke problems as the public rows, made into verl parquet by the real data tool."""
    from verl_plugin.cpu import smoke_math, smoke_problems

    train = workdir / "smoke.parquet"
    if spec.name == "e1-math":
        rows = workdir / "deepscaler_smoke.json"
        rows.write_text(json.dumps(smoke_math.deepscaler_rows()))
        command = [f"deepscaler={rows}", "--output", str(train), "--agent-name", agent_name]
    else:
        rows = workdir / "taco_smoke.json"
        rows.write_text(json.dumps(smoke_problems.taco_rows()))
        command = [f"taco={rows}", "--output", str(train), "--time-limit", "2", "--memory-limit", "256",
                   "--agent-name", L1_AGENT if spec.is_l1 else agent_name]
        if spec.is_l1:
            command += ["--length-control", spec.name[3:], "--target-range", L1_TARGET_RANGE]
    result = subprocess.run([sys.executable, "-m", spec.data_tool, *command], cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{spec.data_tool} failed: {result.stderr.strip()}")
    return train


def completions_by_id(spec: SmokeSystem) -> dict[str, list[str]]:
    from verl_plugin.cpu import smoke_math, smoke_problems

    module = smoke_math if spec.name == "e1-math" else smoke_problems
    return {p["id"]: module.completions(p) for p in module.PROBLEMS}


def reward_overrides(spec: SmokeSystem) -> list[str]:
    """Hydra overrides that swap the smoke config's sandbox reward for the system's."""
    if spec.name == "e1-code":
        return []
    overrides = [f"reward.custom_reward_function.path={spec.reward_path}"]
    if spec.name == "e1-math":
        # as the E1-Math reference: no </think> -> 0
        overrides += ["reward.custom_reward_function.reward_kwargs.require_think_end=true",
                      "++reward.custom_reward_function.reward_kwargs.verify_timeout_s=20"]
    else:
        overrides += ["++reward.custom_reward_function.reward_kwargs.correctness=code"]
    return overrides

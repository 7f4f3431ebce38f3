"""The smoke run's `--reward sandbox-fusion` mode: verl's built-in reward (its own SandboxFusion
client, `reward.sandbox_fusion.url`) pointed at our HTTP API, with no plugin reward at all.

This is the one-line switch a team with an existing verl config makes: the rows keep verl's
own format for code rewards (`data_source` one of codecontests / apps / codeforces / taco, the
ground truth `{"inputs": [...], "outputs": [...]}`), and only the URL changes.
"""
from __future__ import annotations

import json
from pathlib import Path

# verl's default_compute_score sends these data sources to the SandboxFusion client.
VERL_CODE_SOURCES = ("codecontests", "apps", "codeforces", "taco")


def to_verl_ground_truth(ground_truth: str) -> str:
    """Our ground-truth string → the `{"inputs", "outputs"[, "fn_name"]}` JSON verl reads."""
    data = json.loads(ground_truth)
    converted = {"inputs": [t["input"] for t in data["tests"]],
                 "outputs": [t["output"] for t in data["tests"]]}
    if data.get("kind") == "functional":
        converted["fn_name"] = data["func_name"]
    return json.dumps(converted)


def rewrite_rows(train: Path, out: Path) -> Path:
    """The training parquet in verl's own format for code rewards."""
    import pandas as pd

    frame = pd.read_parquet(train)
    sources = set(frame["data_source"])
    if not sources <= set(VERL_CODE_SOURCES):
        raise ValueError(f"verl's SandboxFusion reward does not grade data sources {sorted(sources)}")

    def convert(reward_model: dict) -> dict:
        return {**reward_model, "ground_truth": to_verl_ground_truth(reward_model["ground_truth"])}

    frame["reward_model"] = frame["reward_model"].map(convert)
    frame.to_parquet(out)
    return out


def reward_overrides(url: str, max_concurrent: int = 8) -> list[str]:
    """Hydra overrides: no custom reward function, verl's SandboxFusion reward on `url`."""
    return ["reward.custom_reward_function.path=null",
            f"reward.sandbox_fusion.url={url}",
            f"reward.sandbox_fusion.max_concurrent={max_concurrent}",
            "reward.sandbox_fusion.memory_limit_mb=256"]

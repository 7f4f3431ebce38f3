"""The one-line switch, proven: one GRPO step of verl's real trainer with verl's built-in
SandboxFusion reward (`reward.sandbox_fusion.url`, no plugin reward) pointed at our HTTP API."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")

from sandbox.embedded import EmbeddedSandbox  # noqa: E402
from sandbox.v1 import sandbox_pb2 as pb  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def verl_score(response: str, ground_truth: dict, sandbox: EmbeddedSandbox) -> float:
    """What verl's client should score a response: its code block run on each input, stdout
    equal to the expected output up to trailing newlines, as a fraction of the tests."""
    if "```python" in response:
        code = response.split("```python")[-1].split("```")[0]
    elif "```" in response:
        code = response.split("```")[1]
    else:
        return 0.0
    code = code if code.strip() else "pass\n"  # an empty program runs, and prints nothing
    passed = 0
    for given, expected in zip(ground_truth["inputs"], ground_truth["outputs"]):
        reply = sandbox.execute(pb.ExecuteRequest(language="python", source=code,
                                                  stdin=given.encode(),
                                                  limits=pb.Limits(time_limit_s=10,
                                                                   memory_limit_mb=256)))
        passed += reply.verdict == pb.AC and \
            reply.stdout.decode(errors="replace").rstrip("\n") == expected.rstrip("\n")
    return passed / len(ground_truth["inputs"])


def test_one_grpo_step_with_verls_own_sandbox_fusion_reward(tmp_path):
    command = [sys.executable, "-m", "verl_plugin.smoke", "--reward", "sandbox-fusion", "--steps", "1",
               "--workdir", str(tmp_path), "--model-cache", str(tmp_path / "model"), "--timeout", "400"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=460)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["steps"] == 1 and result["reward"] == "sandbox-fusion"
    assert result["params_changed"] is True
    dumps = [json.loads(line) for path in sorted((tmp_path / "rollouts").glob("*.jsonl"))
             for line in path.read_text().splitlines() if line.strip()]
    assert len(dumps) == result["samples"] > 0
    # Every test of every sample went to our /run_code (and no plugin reward log was written).
    assert result["sandbox_run_code_requests"] >= len(dumps)
    assert not (tmp_path / "rewards.jsonl").exists()
    scores = [float(d["score"]) for d in dumps]
    assert any(s == 1.0 for s in scores) and any(s < 1.0 for s in scores), scores
    # verl's scores are the ones the responses deserve, recomputed independently here.
    sandbox = EmbeddedSandbox()
    try:
        for dump in dumps:
            expected = verl_score(dump["output"], json.loads(dump["gts"]), sandbox)
            assert float(dump["score"]) == pytest.approx(expected), dump["output"][-300:]
    finally:
        sandbox.close()

"""verl's real trainer on CPU: GRPO steps through `python -m verl_plugin.smoke` (verl.trainer.main_ppo
with the CPU platform, the `cpu` rollout backend, the budgeted rollout and the sandbox reward), and
what a run must do when the sandbox goes away or goes mute.

Every run binds Ray to 127.0.0.1; the first test also checks that no port any process of the run
opens listens beyond loopback. The tiny model is built once per session and reused.
"""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import mute_listener

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")
psutil = pytest.importorskip("psutil")

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 420
SANDBOX_VERDICTS = {"AC", "WA", "CE", "RE", "TLE", "MLE", "OLE", "PE", "NO_CODE", "NO_SOLUTION"}


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-model")


class SmokeRun:
    def __init__(self, process: subprocess.Popen, workdir: Path) -> None:
        self.process, self.workdir = process, workdir
        self.stdout = self.stderr = ""
        self.seconds = 0.0

    def wait(self, timeout: float = RUN_TIMEOUT) -> "SmokeRun":
        started = time.monotonic()
        try:
            self.stdout, self.stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.stdout, self.stderr = self.process.communicate()
            pytest.fail(f"the smoke run did not end within {timeout} s: {self.stderr[-2000:]}")
        self.seconds = time.monotonic() - started
        return self

    @property
    def result(self) -> dict:
        assert self.process.returncode == 0, self.stderr[-3000:]
        return json.loads(self.stdout.strip().splitlines()[-1])

    def rewards(self) -> list[dict]:
        path = self.workdir / "rewards.jsonl"
        return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []

    def dumps(self, name: str) -> list[dict]:
        rows = []
        for path in sorted((self.workdir / name).glob("*.jsonl")):
            rows += [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        return rows


def start_smoke(workdir: Path, model_cache: Path, *args: str) -> SmokeRun:
    command = [sys.executable, "-m", "verl_plugin.smoke", "--workdir", str(workdir),
               "--model-cache", str(model_cache), "--timeout", str(RUN_TIMEOUT - 20), *args]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    return SmokeRun(process, workdir)


class ListenWatcher(threading.Thread):
    """Records every listening socket of a process tree while it runs."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.seen, self.stop = root_pid, set(), threading.Event()

    def tree(self) -> set[int]:
        try:
            root = psutil.Process(self.root_pid)
            return {root.pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = self.tree()
            for conn in psutil.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
                    self.seen.add((conn.laddr.ip, conn.laddr.port, conn.pid))
            self.stop.wait(0.5)


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def assert_graded_for_real(rewards: list[dict]) -> None:
    assert rewards, "nothing was graded"
    for row in rewards:
        assert row["verdict"] in SANDBOX_VERDICTS, row
        assert row["score"] == (1.0 if row["verdict"] == "AC" else 0.0), row


def test_two_grpo_steps_v1_and_no_port_beyond_loopback(tmp_path, model_cache):
    run = start_smoke(tmp_path, model_cache, "--trainer", "v1", "--steps", "2")
    watcher = ListenWatcher(run.process.pid)
    watcher.start()
    run.wait()
    watcher.stop.set()
    watcher.join()
    result = run.result
    print("v1:", json.dumps(result), f"{run.seconds:.0f} s")
    assert result["steps"] == 2 and result["trainer"] == "v1"
    assert result["params_changed"] is True
    assert result["verdicts"].get("AC", 0) > 0
    assert sum(n for v, n in result["verdicts"].items() if v != "AC") > 0
    assert 0 < result["think_forced_frac"] < 1  # long thinking runs past t = 32, short does not
    assert_graded_for_real(run.rewards())
    # v1's validation dump carries the reward's fields (its rollout dump has none)
    validation = run.dumps("validation")
    assert validation and all(r["verdict"] in SANDBOX_VERDICTS for r in validation)
    assert all("budget_think_forced" in r and "budget_thinking_tokens" in r for r in validation)
    assert len(run.dumps("rollouts")) == 2 * 16
    assert watcher.seen, "the watcher saw no listening socket at all"
    outside = {(ip, port, pid) for ip, port, pid in watcher.seen if not is_loopback(ip)}
    assert not outside, f"ports listening beyond loopback: {sorted(outside)}"


def test_two_grpo_steps_legacy(tmp_path, model_cache):
    run = start_smoke(tmp_path, model_cache, "--trainer", "legacy", "--steps", "2").wait()
    result = run.result
    print("legacy:", json.dumps(result), f"{run.seconds:.0f} s")
    assert result["steps"] == 2 and result["trainer"] == "legacy" and result["params_changed"] is True
    rollouts = run.dumps("rollouts")
    assert len(rollouts) == 2 * 16
    verdicts = {r["verdict"] for r in rollouts}
    assert "AC" in verdicts and verdicts - {"AC"}, verdicts
    assert all(r["verdict"] in SANDBOX_VERDICTS for r in rollouts)
    for key in ("budget_thinking_tokens", "budget_solution_tokens", "budget_think_forced"):
        assert all(key in r for r in rollouts), key
    assert_graded_for_real(run.rewards())


@pytest.mark.parametrize("option", ["--forced-logprob=compute", "--mask-forced-token"])
def test_thinking_budget_one_forces_every_sample(tmp_path, model_cache, option):
    run = start_smoke(tmp_path, model_cache, "--trainer", "legacy", "--steps", "1",
                      "--thinking-budget", "1", option).wait()
    result = run.result
    print(option, json.dumps(result))
    assert result["think_forced_frac"] == 1.0
    assert result["params_changed"] is True
    # the forced </think> no longer counts as a rollout/actor mismatch of probability ~1
    # (with the default forced_logprob=zero the max is ~1.0: see the two-step tests' output)
    assert result["rollout_probs_diff_max"] < 0.5, result
    rollouts = run.dumps("rollouts")
    assert all(r["budget_think_forced"] for r in rollouts)


@pytest.mark.parametrize("trainer", ["v1", "legacy"])
def test_sandbox_stopped_mid_run_stops_the_run(tmp_path, model_cache, trainer):
    socket_path = tmp_path / "own-sandbox.sock"
    sandbox = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "serve", "--address", f"unix:{socket_path}"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        for _ in range(300):
            if socket_path.exists():
                break
            time.sleep(0.1)
        run = start_smoke(tmp_path / "run", model_cache, "--trainer", trainer, "--steps", "3",
                          "--sandbox", f"unix:{socket_path}",
                          "++reward.custom_reward_function.reward_kwargs.retries=1")
        rewards = tmp_path / "run" / "rewards.jsonl"
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline and run.process.poll() is None:
            if rewards.exists() and len(rewards.read_text().splitlines()) >= 8:
                break
            time.sleep(0.2)
        sandbox.send_signal(signal.SIGKILL)  # mid-run: grading has started
        sandbox.wait()
        run.wait()
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait()
    assert run.process.returncode != 0, run.stdout[-1000:]
    assert "SandboxRewardError" in run.stderr and "sandbox unreachable" in run.stderr, run.stderr[-2000:]
    graded = run.rewards()
    assert len(graded) >= 8
    assert_graded_for_real(graded)  # nothing was scored 0 in the failure's place
    steps_trained = {r["step"] for r in run.dumps("rollouts")}
    assert len(steps_trained) < 3


def test_mute_sandbox_fails_within_the_deadline(tmp_path, model_cache):
    with mute_listener() as (address, accepted):
        run = start_smoke(tmp_path, model_cache, "--trainer", "legacy", "--steps", "1",
                          "--sandbox", address,
                          "++reward.custom_reward_function.reward_kwargs.rpc_timeout_s=2",
                          "++reward.custom_reward_function.reward_kwargs.retries=1").wait()
    assert run.process.returncode != 0
    assert accepted, f"the reward never connected: {run.stderr[-2000:]}"
    assert "did not answer within the 2 s deadline (rpc_timeout_s)" in run.stderr, run.stderr[-2000:]
    assert "not answering" in run.stderr

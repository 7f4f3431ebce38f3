"""`python -m verl_plugin.smoke`: the whole training loop on a laptop, with verl's real trainer.

What it does, start to end:
1. starts a local sandbox (`sandbox serve` on a unix socket), unless `--sandbox ADDRESS` is given;
   `--sandbox ray`: a local Ray cluster with sandbox workers placed by `sandbox ray up` on a
   CPU-only node, the trainer joining that cluster and grading through `ray://smoke`
   (`verl_plugin.cpu.smoke_ray`);
2. writes the smoke problems as TACO rows and turns them into verl parquet with
   `python -m verl_plugin.data` (the same tool users run on real data);
3. builds (or reuses, from the cache) the tiny model: a byte-level BPE tokenizer and a 2-layer
   Qwen2 model warm-started so that it writes fenced code (`verl_plugin.cpu.tiny_model`);
4. runs `python -m verl.trainer.main_ppo` with the shipped `e1_smoke_1gpu.yaml` plus the CPU
   overrides (`cpu_overrides`): verl's CPU platform and the `cpu` rollout backend from
   `verl_plugin.cpu`, Ray bound to 127.0.0.1, GRPO with the budgeted rollout and the sandbox reward;
5. reads the rollout dumps and the actor's saved weights and prints, as its last line, one JSON
   object: steps, trainer, reward_mean, verdicts, think_forced_frac, rollout_probs_diff_max,
   params_changed, seconds.

Exits non-zero with the trainer's own error (the last lines that explain it) when anything fails.
Not for training real models: everything runs on the CPU, in float32.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from verl_plugin.cpu.smoke_systems import SYSTEMS, completions_by_id, l1_agent_yaml, make_rows, reward_overrides
from verl_plugin.cpu import smoke_sandbox_fusion as sandbox_fusion
from verl_plugin.cpu.smoke_systems import system as smoke_system
from sandbox.ray_fleet.connect import LOOPBACK_RAY_ENV

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "verl_plugin" / "config"
SMOKE_CONFIG = "e1_smoke_1gpu"
SAVE_WEIGHTS_ENV = "VERL_CPU_ROLLOUT_SAVE_WEIGHTS"  # read by verl_plugin.cpu.rollout
AGENT_NAME = "budgeted_rollout_cpu"
DEFAULT_THINKING, DEFAULT_SOLUTION = 32, 48
CPU_ENV = {"VERL_USE_EXTERNAL_MODULES": "verl_plugin.cpu.backend", "VERL_PLATFORM": "cpu",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
           # Ray turns _node_ip_address=127.0.0.1 into the machine's outward address (and its
           # gRPC servers listen on all interfaces) unless single-machine mode is asked for.
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           # Ray's usage statistics ask the cloud metadata address and report to ray.io
           "RAY_USAGE_STATS_ENABLED": "0",
           # gloo's connections on the loopback interface
           "GLOO_SOCKET_IFNAME": "lo",
           # and nothing of Ray's beyond loopback (its dashboard's metadata probe and report)
           **LOOPBACK_RAY_ENV}


class SmokeError(RuntimeError):
    """A step of the smoke run failed; the message says which and why."""


def log(message: str) -> None:
    print(f"smoke: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ configuration


def agent_loops_yaml(path: Path, thinking: int, solution: int, *, mask_forced_token: bool,
                     forced_logprob: str) -> Path:
    path.write_text(
        f"- name: {AGENT_NAME}\n"
        f"  _target_: verl_plugin.rollout.BudgetedRollout\n"
        f"  thinking_budget: {thinking}\n  solution_budget: {solution}\n"
        f"  mask_forced_token: {str(mask_forced_token).lower()}\n"
        f"  eos_in_thinking: stop\n  forced_logprob: {forced_logprob}\n"
        f"  think_end_token: \"</think>\"\n")
    return path


def cpu_overrides(*, model: Path, train: Path, agent_loops: Path, sandbox: str, out: Path,
                  steps: int, trainer: str, response_length: int, batch: int = 4, n: int = 4,
                  temperature: float = 1.0) -> list[str]:
    """Hydra overrides that run the smoke config on CPU (verl_plugin.cpu) with the tiny model."""
    env = {**CPU_ENV, SAVE_WEIGHTS_ENV: str(out / "final_weights.safetensors"), "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    overrides = [
        f"trainer.use_v1={'true' if trainer == 'v1' else 'false'}",
        # Ray on loopback only, logical GPUs (one training process per logical GPU)
        "ray_kwargs.ray_init.num_cpus=16", "+ray_kwargs.ray_init.num_gpus=1",
        "+ray_kwargs.ray_init._node_ip_address=127.0.0.1", "+ray_kwargs.ray_init.include_dashboard=false",
        *[f"+ray_kwargs.ray_init.runtime_env.env_vars.{k}='{v}'" for k, v in env.items()],
        "trainer.device=cpu", "trainer.nnodes=1", "trainer.n_gpus_per_node=1",
        "trainer.logger=[console]", f"trainer.total_training_steps={steps}", "trainer.total_epochs=1000",
        "trainer.save_freq=-1", f"trainer.test_freq={steps}", "trainer.val_before_train=false",
        f"trainer.rollout_data_dir={out / 'rollouts'}", f"trainer.validation_data_dir={out / 'validation'}", f"trainer.default_local_dir={out / 'checkpoints'}",
        # data
        f"data.train_files={train}", f"data.val_files={train}", f"data.train_batch_size={batch}",
        "data.max_prompt_length=256", f"data.max_response_length={response_length}",
        "data.dataloader_num_workers=0",
        # model and actor: float32, sdpa attention, FSDP2 on gloo
        f"actor_rollout_ref.model.path={model}", "actor_rollout_ref.model.use_remove_padding=false",
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.actor.strategy=fsdp2", "actor_rollout_ref.ref.strategy=fsdp2",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={batch}",
        "actor_rollout_ref.actor.use_dynamic_bsz=false",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.actor.use_torch_compile=false",
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype=fp32",
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.reduce_dtype=fp32",
        "+actor_rollout_ref.actor.fsdp_config.mixed_precision.buffer_dtype=fp32",
        "actor_rollout_ref.ref.log_prob_use_dynamic_bsz=false",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
        # rollout: the cpu backend, one server, the budgeted agent loop from our yaml
        "actor_rollout_ref.rollout.name=cpu", "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        f"actor_rollout_ref.rollout.n={n}", f"actor_rollout_ref.rollout.temperature={temperature}",
        "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=false",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        f"actor_rollout_ref.rollout.agent.agent_loop_config_path={agent_loops}",
        f"actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_NAME}",
        # reward: the local sandbox
        "reward.num_workers=1",
        f"reward.custom_reward_function.reward_kwargs.addresses='{sandbox}'",
        f"++reward.custom_reward_function.reward_kwargs.results_log={out / 'rewards.jsonl'}",
        "++reward.custom_reward_function.reward_kwargs.rpc_timeout_s=20",
    ]
    return overrides


# ------------------------------------------------------------------ the pieces


@contextlib.contextmanager
def local_sandbox(workdir: Path, http_port: int | None = None):
    """`sandbox serve` on a unix socket in workdir; yields its address. http_port: also its
    HTTP API (SandboxFusion's /run_code) on 127.0.0.1:http_port."""
    socket = workdir / "sandbox.sock"
    command = [sys.executable, "-m", "sandbox.cli", "serve", "--address", f"unix:{socket}"]
    if http_port is not None:
        # verl's client sends up to max_concurrent requests per sample at once: room to queue them
        command += ["--http-address", f"127.0.0.1:{http_port}", "--max-queue", "256"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(workdir / "sandbox.log", "w"),
                               cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SmokeError(f"the sandbox did not start: {(workdir / 'sandbox.log').read_text()[-500:]}")
            time.sleep(0.1)
        yield f"unix:{socket}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def make_data(workdir: Path) -> Path:
    from verl_plugin.cpu.smoke_problems import taco_rows

    rows = workdir / "taco_smoke.json"
    rows.write_text(json.dumps(taco_rows()))
    train = workdir / "smoke.parquet"
    result = subprocess.run([sys.executable, "-m", "verl_plugin.data", f"taco={rows}", "--output", str(train),
                             "--agent-name", AGENT_NAME, "--time-limit", "2", "--memory-limit", "256"],
                            cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SmokeError(f"verl_plugin.data failed: {result.stderr.strip()}")
    return train


def make_model(train: Path, cache: Path, completions_for: dict[str, list[str]] | None = None) -> Path:
    """The tiny model warm-started on each row's prompt and its problem's completions
    (`completions_for`: problem id -> completions; default the code smoke problems')."""
    import pandas as pd

    from verl_plugin.cpu.smoke_problems import PROBLEMS, completions
    from verl_plugin.cpu.tiny_model import build_tiny_model

    if completions_for is None:
        completions_for = {p["id"]: completions(p) for p in PROBLEMS}
    pairs = []
    for _, row in pd.read_parquet(train).iterrows():
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["prompt"]]
        pairs.append((messages, completions_for[row["extra_info"]["problem_id"]]))
    return build_tiny_model(cache, pairs)


def initial_weights(model: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model / "model.safetensors"))


_STEP = re.compile(r"(?:^|\s)step:(\d+) - ")


def wait_reporting_steps(process: subprocess.Popen, log_path: Path, steps: int, timeout: float) -> int:
    """Waits for the trainer, printing one plain line per finished step (from verl's console log)."""
    deadline = time.monotonic() + timeout
    reported, pending = 0, ""
    with open(log_path, errors="replace") as reader:  # reads only what is new each second
        while True:
            try:
                return process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            finally:
                pending += reader.read()
                complete, _, pending = pending.rpartition("\n")
                done = max((int(m.group(1)) for m in _STEP.finditer(complete)), default=0)
                if done > reported:
                    reported = done
                    log(f"step {done}/{steps} done")
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise SmokeError(f"the trainer did not finish within {timeout:g} s (log: {log_path})")


# ------------------------------------------------------------------ reading the run


def read_rollouts(directory: Path) -> list[dict]:
    rows = []
    for path in sorted(directory.glob("*.jsonl"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0):
        for line in path.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


_METRIC = re.compile(r"(training/rollout_probs_diff_max|critic/score/mean):(\s*)([-+0-9.eEnaif]+)")


def metric_values(log_text: str, name: str) -> list[float]:
    values = []
    for match in _METRIC.finditer(log_text):
        if match.group(1) == name:
            with contextlib.suppress(ValueError):
                values.append(float(match.group(3)))
    return values


def explain_failure(log_text: str) -> str:
    """The lines of a failed trainer log that say what went wrong."""
    lines = [line for line in log_text.splitlines() if line.strip() and "Warning" not in line
             and "warnings.warn" not in line and "HYDRA_FULL_ERROR" not in line]
    for marker in ("SandboxRewardError", "RolloutAbortedError", "Could not", "Error:", "Error", "Exception"):
        hits = [line.strip() for line in lines if marker in line]
        if hits:
            return hits[-1][:2000]
    return "\n".join(lines[-5:])[:2000]


# ------------------------------------------------------------------ main


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m verl_plugin.smoke",
        description="Run real GRPO steps of the E1 training loop on CPU: verl's trainer, the budgeted "
                    "rollout, the sandbox reward and a tiny locally built model. Prints one JSON line.")
    parser.add_argument("--steps", type=int, default=2, help="training steps (default 2)")
    parser.add_argument("--system", choices=SYSTEMS, default="e1-code",
                        help="what to train: e1-code (default: budgeted rollout + sandbox reward), "
                             "e1-math (budgeted rollout + math reward), l1-exact / l1-max (single-turn "
                             "rollout + L1 reward on sandbox correctness); see verl_plugin/cpu/smoke_systems.py")
    parser.add_argument("--trainer", choices=("v1", "legacy"), default="v1",
                        help="verl's v1 trainer (its default) or the legacy one (trainer.use_v1=false)")
    parser.add_argument("--thinking-budget", type=int, default=DEFAULT_THINKING,
                        help=f"t, thinking tokens before </think> is forced (default {DEFAULT_THINKING})")
    parser.add_argument("--solution-budget", type=int, default=DEFAULT_SOLUTION,
                        help=f"s, solution tokens after </think> (default {DEFAULT_SOLUTION})")
    parser.add_argument("--mask-forced-token", action="store_true",
                        help="the forced </think> gets response_mask 0")
    parser.add_argument("--forced-logprob", choices=("zero", "compute"), default="zero",
                        help="rollout log-prob of the forced </think> (default zero)")
    parser.add_argument("--sandbox", metavar="ADDRESS",
                        help="grade on this sandbox (host:port or unix:PATH) instead of starting one; "
                             "`ray`: start a local Ray cluster, place sandbox workers on it with "
                             "`sandbox ray up` and run the trainer on the same cluster, its reward "
                             "grading through ray://smoke")
    parser.add_argument("--reward", choices=("plugin", "sandbox-fusion"), default="plugin",
                        help="plugin: the verl_plugin reward over gRPC (default); sandbox-fusion: no "
                             "plugin reward, verl's own SandboxFusion client (reward.sandbox_fusion.url) "
                             "on the local sandbox's HTTP API (e1-code only; --sandbox: its /run_code URL)")
    parser.add_argument("--workdir", type=Path,
                        help="keep data, dumps and logs here (default: a temporary directory, removed)")
    parser.add_argument("--model-cache", type=Path, default=None,
                        help="where the tiny model is built and reused (default ~/.cache/code-sandbox/tiny-model)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before the run is stopped (900)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for verl.trainer.main_ppo")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.thinking_budget < 1 or args.solution_budget < 1:
        parser.error("--steps and the budgets must be >= 1")
    if args.reward == "sandbox-fusion" and args.system != "e1-code":
        parser.error("--reward sandbox-fusion grades code: use it with --system e1-code")
    if args.sandbox == "ray" and (args.reward != "plugin" or not smoke_system(args.system).needs_sandbox):
        parser.error("--sandbox ray is for the plugin reward of a system that grades code "
                     "(e1-code, l1-exact, l1-max)")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict:
    from verl_plugin.cpu.tiny_model import default_cache_dir

    started = time.monotonic()
    for stale in ("rewards.jsonl", "final_weights.safetensors"):
        (workdir / stale).unlink(missing_ok=True)
    shutil.rmtree(workdir / "rollouts", ignore_errors=True)
    shutil.rmtree(workdir / "validation", ignore_errors=True)
    spec = smoke_system(args.system)
    if spec.name == "e1-code":
        train = make_data(workdir)
        if args.reward == "sandbox-fusion":
            train = sandbox_fusion.rewrite_rows(train, workdir / "smoke_verl_format.parquet")
    else:
        try:
            train = make_rows(spec, workdir, AGENT_NAME)
        except RuntimeError as exc:
            raise SmokeError(str(exc)) from None
    log(f"data: {train}")
    cache = args.model_cache or default_cache_dir()
    if spec.name != "e1-code":  # one fixture per cache directory: each system keeps its own
        cache = cache / spec.name
    model = make_model(train, cache, None if spec.name == "e1-code" else completions_by_id(spec))
    log(f"model: {model}")
    before = initial_weights(model)
    agent_loops = agent_loops_yaml(workdir / "agent_loops.yaml", args.thinking_budget, args.solution_budget,
                                   mask_forced_token=args.mask_forced_token, forced_logprob=args.forced_logprob)
    if spec.is_l1:
        agent_loops.write_text(agent_loops.read_text() + l1_agent_yaml())
    env = {**os.environ, **CPU_ENV,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           SAVE_WEIGHTS_ENV: str(workdir / "final_weights.safetensors")}
    with contextlib.ExitStack() as stack:
        http_port = None
        on_ray = None
        if args.reward == "sandbox-fusion" and not args.sandbox:
            http_port = free_port()
        if args.sandbox == "ray":
            from verl_plugin.cpu.smoke_ray import ray_sandbox
            try:
                on_ray = stack.enter_context(ray_sandbox(workdir, REPO, env, log))
            except RuntimeError as exc:
                raise SmokeError(str(exc)) from None
            sandbox = on_ray.reward_address
        elif spec.needs_sandbox:
            sandbox = args.sandbox or stack.enter_context(local_sandbox(workdir, http_port))
        else:
            sandbox = "unused"  # the math reward grades without a sandbox
        log(f"sandbox: {sandbox}")
        response_length = args.thinking_budget + 1 + args.solution_budget
        overrides = cpu_overrides(model=model, train=train, agent_loops=agent_loops, sandbox=sandbox,
                                  out=workdir, steps=args.steps, trainer=args.trainer,
                                  response_length=response_length)
        if on_ray is not None:
            overrides = [o for o in overrides if not o.startswith(("ray_kwargs.ray_init.num_cpus=",
                                                                   "+ray_kwargs.ray_init.num_gpus="))]
            overrides += on_ray.trainer_overrides()
        overrides += reward_overrides(spec)
        if args.reward == "sandbox-fusion":
            url = args.sandbox if args.sandbox else f"http://127.0.0.1:{http_port}/run_code"
            overrides += sandbox_fusion.reward_overrides(url)
        overrides += list(args.overrides)
        command = [sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={CONFIG_DIR}",
                   f"--config-name={SMOKE_CONFIG}", *overrides]
        log_path = workdir / "trainer.log"
        log(f"trainer: verl.trainer.main_ppo ({args.trainer}), log in {log_path}")
        with open(log_path, "w") as log_file:
            process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            code = wait_reporting_steps(process, log_path, args.steps, args.timeout)
        text = log_path.read_text(errors="replace")
        if code != 0:
            raise SmokeError(f"the trainer failed (exit {code}): {explain_failure(text)}")
        http_requests = sandbox_http_requests(http_port)
        fleet = on_ray.status(REPO, env) if on_ray is not None else None
    dumps = read_rollouts(workdir / "rollouts")
    if not dumps:
        raise SmokeError(f"the trainer wrote no rollout dump (log: {log_path})")
    rewards = read_jsonl(workdir / "rewards.jsonl")
    if args.reward == "sandbox-fusion":
        # verl's own reward writes no log of ours: the verdicts are its scores in the dumps
        rewards = [{"verdict": "pass" if float(d.get("score") or 0) >= 1 else
                    "partial" if float(d.get("score") or 0) > 0 else "fail"} for d in dumps]
    if not rewards:
        raise SmokeError(f"the reward graded nothing (log: {log_path})")
    summary = summarize(dumps, rewards, text, args, before, workdir, time.monotonic() - started)
    if args.reward == "sandbox-fusion":
        summary["sandbox_run_code_requests"] = http_requests
    if fleet is not None:
        summary["sandbox"] = sandbox
        summary["ray_fleet"] = {"workers": len(fleet.get("workers", [])),
                                "nodes": fleet.get("nodes", 0), "capacity": fleet.get("capacity", 0),
                                **({"error": fleet["error"]} if "error" in fleet else {})}
    return summary


def sandbox_http_requests(http_port: int | None) -> int | None:
    """How many /run_code requests the local sandbox answered (its /health counts them)."""
    if http_port is None:
        return None
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=10) as response:
        return int(json.load(response).get("requests", {}).get("run_code", 0))


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(dumps: list[dict], rewards: list[dict], log_text: str, args, before: dict, workdir: Path,
              seconds: float) -> dict:
    """The run in numbers: verdicts and budgets from the reward's own log (what the sandbox said,
    sample by sample, under either trainer), steps and scores from verl's rollout dumps."""
    verdicts = Counter(str(r.get("verdict") or "?") for r in rewards)
    forced = [float(r["budget_think_forced"]) for r in rewards if r.get("budget_think_forced") is not None]
    scores = [float(r["score"]) for r in dumps if r.get("score") is not None]
    diffs = metric_values(log_text, "training/rollout_probs_diff_max")
    steps = len({r.get("step") for r in dumps})
    return {
        "steps": steps,
        "system": args.system,
        "reward": args.reward,
        "trainer": args.trainer,
        "reward_mean": round(sum(scores) / len(scores), 4) if scores else None,
        "verdicts": dict(sorted(verdicts.items())),
        "think_forced_frac": round(sum(forced) / len(forced), 4) if forced else None,
        "rollout_probs_diff_max": max(diffs) if diffs else None,
        "params_changed": params_changed(before, workdir),
        "samples": len(rewards),
        "thinking_budget": args.thinking_budget,
        "solution_budget": args.solution_budget,
        "seconds": round(seconds, 1),
        **length_summary(rewards),
    }


def length_summary(rewards: list[dict]) -> dict:
    """L1 runs: the targets and the lengths the rollout reported (empty for E1 runs)."""
    pairs = [(float(r["target_tokens"]), float(r["response_tokens"])) for r in rewards
             if r.get("target_tokens") is not None and r.get("response_tokens") is not None]
    if not pairs:
        return {}
    return {"target_tokens_mean": round(sum(t for t, _ in pairs) / len(pairs), 1),
            "response_tokens_mean": round(sum(n for _, n in pairs) / len(pairs), 1),
            "length_error_mean": round(sum(abs(t - n) for t, n in pairs) / len(pairs), 1)}


def params_changed(before: dict, workdir: Path):
    path = workdir / "final_weights.safetensors"
    if not path.exists():
        return None
    from safetensors.torch import load_file

    after = load_file(str(path))
    return any(not before[name].equal(after[name].to(before[name].dtype)) for name in before if name in after)


def main(argv=None) -> int:
    args = parse_args(argv)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="verl-smoke-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args, workdir)
    except SmokeError as exc:
        print(f"verl_plugin.smoke: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("verl_plugin.smoke: interrupted", file=sys.stderr)
        return 130
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

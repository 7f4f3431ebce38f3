"""The sandbox reward (verl_plugin.reward.compute_score) against a live local sandbox server."""
from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SE_MARKER, SHARED_DATA, PoisonJudge, ServerThread
from sandbox.problem import Problem
from sandbox.service import SandboxCore
from verl_plugin import reward
from verl_plugin.groundtruth import to_ground_truth
from verl_plugin.reward import SandboxRewardError, close_pools, compute_score

VERIFIED = SHARED_DATA / "verified" / "problems.jsonl"


def verified(problem_id: str) -> dict:
    for line in VERIFIED.read_text().splitlines():
        row = json.loads(line)
        if row["id"] == problem_id:
            return row
    raise KeyError(problem_id)


def ground_truth_of(row: dict, time_limit: float | None = None) -> str:
    problem = Problem(id=row["id"], kind=row["kind"], func_name=row.get("func_name") or "",
                      tests=row["tests"], time_limit_s=time_limit or row["time_limit_s"],
                      memory_limit_mb=row.get("memory_limit_mb") or 1024, compare="lcb")
    return to_ground_truth(problem, source="livecodebench")


def response(code: str, language: str = "python", thinking: str = "Let me think.") -> str:
    return f"<think>\n{thinking}\n</think>\nHere is the code.\n```{language}\n{code}\n```\n"


def score(server, solution_str, ground_truth, extra_info=None, **kwargs):
    kwargs.setdefault("addresses", server.address)

    async def main():
        try:
            return await compute_score("livecodebench", solution_str, ground_truth, extra_info, **kwargs)
        finally:
            await close_pools()
    return asyncio.run(main())


STDIN = verified("codeforces/1873_A")
FUNCTIONAL = verified("leetcode/2727")


def test_accepted(server):
    result = score(server, response(STDIN["solutions"]["correct"][0]["code"]), ground_truth_of(STDIN))
    assert result["score"] == 1.0 and result["acc"] == 1.0
    assert result["verdict"] == "AC" and result["passed"] == result["total"] == len(STDIN["tests"])
    assert result["attempts"] == 1 and result["reason"] == ""


def test_wrong_answer(server):
    result = score(server, response(STDIN["solutions"]["incorrect"][0]["code"]), ground_truth_of(STDIN))
    assert result["score"] == 0.0 and result["verdict"] == "WA"
    assert result["passed"] < result["total"] and "WA" in result["reason"]


def test_partial_credit(server):
    result = score(server, response(STDIN["solutions"]["incorrect"][0]["code"]), ground_truth_of(STDIN),
                   partial_credit=True)
    assert result["verdict"] == "WA"
    assert result["score"] == pytest.approx(result["passed"] / result["total"])


def test_compile_error(server):
    result = score(server, response("int main( { return 0; }", language="cpp"), ground_truth_of(STDIN))
    assert result["score"] == 0.0 and result["verdict"] == "CE"
    assert result["reason"].startswith("compilation error")


def test_no_code_block(server):
    result = score(server, "<think>hmm</think>\nThe answer is to print YES.", ground_truth_of(STDIN))
    assert result == {**result, "score": 0.0, "verdict": "NO_CODE", "attempts": 0}
    assert "no fenced code block" in result["reason"]


def test_code_inside_thinking_is_not_graded(server):
    code = STDIN["solutions"]["correct"][0]["code"]
    solution = f"<think>\n```python\n{code}\n```\n</think>\nNo code here."
    assert score(server, solution, ground_truth_of(STDIN))["verdict"] == "NO_CODE"


def test_require_think_end(server):
    text = "```python\nprint(1)\n```"
    assert score(server, text, ground_truth_of(STDIN), require_think_end=True)["verdict"] == "NO_SOLUTION"
    assert score(server, text, ground_truth_of(STDIN))["verdict"] == "WA"  # whole response graded


def test_functional_problem(server):
    good = score(server, response(FUNCTIONAL["solutions"]["correct"][0]["code"]), ground_truth_of(FUNCTIONAL))
    assert good["verdict"] == "AC" and good["score"] == 1.0
    bad = score(server, response(FUNCTIONAL["solutions"]["incorrect"][0]["code"]), ground_truth_of(FUNCTIONAL))
    assert bad["verdict"] == "WA" and bad["score"] == 0.0


def verl_ground_truth(row: dict) -> str:
    """The row as verl's own code rewards (prime_code, sandbox_fusion) take it: APPS form,
    functional arguments as a list and the return value wrapped in one."""
    if row["kind"] == "functional":
        inputs = [[json.loads(line) for line in t["input"].split("\n")] for t in row["tests"]]
        outputs = [[json.loads(t["output"])] for t in row["tests"]]
        return json.dumps({"inputs": inputs, "outputs": outputs, "fn_name": row["func_name"]})
    return json.dumps({"inputs": [t["input"] for t in row["tests"]],
                       "outputs": [t["output"] for t in row["tests"]]})


def test_verls_own_ground_truth_form_is_graded(server):
    """Rows made for verl's prime_code / sandbox_fusion rewards need no conversion."""
    for row in (STDIN, FUNCTIONAL):
        truth = verl_ground_truth(row)
        good = score(server, response(row["solutions"]["correct"][0]["code"]), truth)
        assert good["verdict"] == "AC" and good["total"] == len(row["tests"]), (row["id"], good)
        bad = score(server, response(row["solutions"]["incorrect"][0]["code"]), truth)
        assert bad["verdict"] == "WA" and bad["score"] == 0.0, (row["id"], bad)
    eq_hack = ("class Any:\n    def __eq__(self, other):\n        return True\n"
               f"class Solution:\n    def {FUNCTIONAL['func_name']}(self, *args):\n"
               "        return Any()\n")
    assert score(server, response(eq_hack), verl_ground_truth(FUNCTIONAL))["verdict"] == "WA"
    with pytest.raises(SandboxRewardError, match="2 inputs but 1 outputs"):
        score(server, response("print(1)"), json.dumps({"inputs": ["1", "2"], "outputs": ["1"]}))


def test_budget_fields_and_solution_text(server):
    extra = {"budget_thinking_tokens": 1024, "budget_solution_tokens": 87, "budget_think_forced": True,
             "budget_think_closed": False, "budget_eos_in_thinking": False,
             "budget_solution_truncated": False,
             # verl decoded with skip_special_tokens and lost </think>: the rollout sent the text
             "solution_text": "```python\n" + STDIN["solutions"]["correct"][0]["code"] + "\n```"}
    result = score(server, "thinking thinking ```python\nprint(0)\n```", ground_truth_of(STDIN), extra)
    assert result["verdict"] == "AC"
    assert result["budget_thinking_tokens"] == 1024.0 and result["budget_think_forced"] == 1.0


def test_group_uploads_tests_once(server, monkeypatch):
    """8 samples of a GRPO group, graded concurrently: one PutTestSet, then digests only."""
    ground_truth = ground_truth_of(FUNCTIONAL)
    digest = reward.prepare(ground_truth).digest
    store = server.server.core.store
    puts = []
    original = store.put

    def counting_put(test_set, *args, **kwargs):
        puts.append(original(test_set, *args, **kwargs))
        return puts[-1]
    monkeypatch.setattr(store, "put", counting_put)
    correct = FUNCTIONAL["solutions"]["correct"][0]["code"]
    wrong = FUNCTIONAL["solutions"]["incorrect"][0]["code"]
    samples = [response(correct if i % 2 == 0 else wrong) for i in range(8)]

    async def main():
        try:
            results = await asyncio.gather(*[
                compute_score("livecodebench", s, ground_truth, {"index": 7}, addresses=server.address)
                for s in samples])
            pool = reward.get_pool(reward.Settings.from_kwargs({"addresses": server.address}))
            return results, pool.uploads
        finally:
            await close_pools()
    results, uploads = asyncio.run(main())
    assert [r["score"] for r in results] == [1.0, 0.0] * 4
    assert uploads == 1
    assert puts == [digest]  # server side: stored once, every grade referred to the digest


def test_sandbox_down(tmp_path):
    missing = f"unix:{tmp_path}/no-such.sock"

    async def main():
        try:
            return await compute_score("livecodebench", response("print(1)"), ground_truth_of(STDIN),
                                       addresses=missing, retries=2, backoff_s=0.01)
        finally:
            await close_pools()
    with pytest.raises(SandboxRewardError) as error:
        asyncio.run(main())
    message = str(error.value)
    assert "unreachable after 3 attempts" in message and missing in message
    assert "sandbox serve" in message


def test_sandbox_error_raises_with_on_sandbox_error_raise(server, tmp_path):
    """A checker that crashes gives SE: re-graded, then (policy "raise") the step stops, naming
    the source's digest; it is never scored as wrong."""
    problem = Problem(id="se", tests=STDIN["tests"], time_limit_s=2,
                      checker={"language": "python", "source": "import sys\nsys.exit(3)\n"})
    with pytest.raises(SandboxRewardError, match=r"sandbox error on every attempt \(2\) for source sha256"):
        score(server, response(STDIN["solutions"]["correct"][0]["code"]),
              to_ground_truth(problem, source="codeforces"), se_retries=1, backoff_s=0.01,
              on_sandbox_error="raise", sandbox_error_dir=str(tmp_path))


POISON = f"print(1)\n{SE_MARKER}\n"


@pytest.fixture(scope="module")
def poison_servers(socket_dir):
    """Two real servers whose judge answers SE for a marked source (conftest.PoisonJudge)."""
    threads = [ServerThread(f"unix:{socket_dir}/poison-{i}.sock", core=SandboxCore(PoisonJudge()),
                            capacity=2) for i in range(2)]
    yield threads
    for thread in threads:
        thread.stop()


def poisoned_runs(threads) -> list[int]:
    return [thread.server.core.judge.poisoned for thread in threads]


def test_a_sample_that_always_gets_se_is_scored_and_the_step_goes_on(poison_servers, tmp_path):
    """Default policy: SE on every attempt (here on both servers) scores 0 with sandbox_error,
    the source is saved under its sha256 and logged; the other samples of the step are graded."""
    se_dir, log = tmp_path / "se", tmp_path / "rewards.jsonl"
    ground_truth = ground_truth_of(STDIN)
    samples = [POISON, STDIN["solutions"]["correct"][0]["code"],
               STDIN["solutions"]["incorrect"][0]["code"]]
    before = poisoned_runs(poison_servers)

    async def main():
        try:
            return await asyncio.gather(*[
                compute_score("livecodebench", response(code), ground_truth, {"index": i},
                              addresses=",".join(t.address for t in poison_servers), backoff_s=0.01,
                              sandbox_error_dir=str(se_dir), results_log=str(log))
                for i, code in enumerate(samples)])
        finally:
            await close_pools()
    se, good, bad = asyncio.run(main())
    assert (good["verdict"], good["score"], bad["verdict"], bad["score"]) == ("AC", 1.0, "WA", 0.0)
    assert se == {**se, "score": 0.0, "acc": 0.0, "verdict": "SE", "sandbox_error": True, "attempts": 3}
    assert set(se) == set(good) == set(bad) and good["sandbox_error"] is False
    assert se["sandbox_error_share"] == pytest.approx(1 / 256)
    runs = [after - b for after, b in zip(poisoned_runs(poison_servers), before)]
    assert sum(runs) == 3 and min(runs) >= 1, runs  # 1 + se_retries, on both servers
    digest = se["source_sha256"]
    saved = (se_dir / f"{digest}.py").read_text()
    assert hashlib.sha256(saved.encode()).hexdigest() == digest and SE_MARKER in saved
    about = json.loads((se_dir / f"{digest}.json").read_text())
    assert about["index"] == 0 and about["test_set_digest"] == reward.prepare(ground_truth).digest
    assert digest in se["reason"] and "marked source" in se["reason"]
    rows = {row["index"]: row for row in map(json.loads, log.read_text().splitlines())}
    assert rows[0]["sandbox_error"] is True and rows[0]["source_sha256"] == digest
    assert rows[1]["sandbox_error"] is False and rows[1]["verdict"] == "AC"


def test_too_many_se_samples_in_the_window_stop_the_run(poison_servers, tmp_path):
    """Window 4, share 25 %: one SE sample in 4 is scored; a second within the window stops the
    run. The window slides: an SE sample 5 samples back no longer counts."""
    kwargs = {"addresses": poison_servers[0].address, "backoff_s": 0.01, "se_retries": 0,
              "sandbox_error_dir": str(tmp_path), "sandbox_error_window": 4,
              "sandbox_error_max_share": 0.25}
    ground_truth = ground_truth_of(STDIN)
    good = STDIN["solutions"]["correct"][0]["code"]

    async def main():
        try:
            shares = []
            for code in [POISON, good, good, good, good, POISON]:
                result = await compute_score("livecodebench", response(code), ground_truth, {}, **kwargs)
                shares.append((result["verdict"], result["sandbox_error_share"]))
            with pytest.raises(SandboxRewardError) as error:
                await compute_score("livecodebench", response(POISON), ground_truth, {}, **kwargs)
            return shares, str(error.value)
        finally:
            await close_pools()
    shares, message = asyncio.run(main())
    assert shares == [("SE", 0.25), ("AC", 0.25), ("AC", 0.25), ("AC", 0.25), ("AC", 0.0), ("SE", 0.25)]
    assert message.startswith("sandbox errors on 2 of the last 4 graded samples (50.0% > "
                              "sandbox_error_max_share 25.0%)") and str(tmp_path) in message
    assert "\n" not in message


def test_a_sandbox_that_goes_down_still_stops_the_step(socket_dir, tmp_path):
    """The SE policy does not swallow infrastructure failures: after an SE sample was scored, the
    server goes away and the next sample stops the step (unreachable), nothing is scored."""
    thread = ServerThread(f"unix:{socket_dir}/poison-down.sock", core=SandboxCore(PoisonJudge()),
                          capacity=1)
    kwargs = {"addresses": thread.address, "retries": 2, "backoff_s": 0.01,
              "sandbox_error_dir": str(tmp_path)}
    ground_truth = ground_truth_of(STDIN)

    async def main():
        try:
            first = await compute_score("livecodebench", response(POISON), ground_truth, {}, **kwargs)
            await asyncio.get_running_loop().run_in_executor(None, thread.stop)
            with pytest.raises(SandboxRewardError) as error:
                await compute_score("livecodebench", response("print(1)"), ground_truth, {}, **kwargs)
            return first, str(error.value)
        finally:
            await close_pools()
    try:
        first, message = asyncio.run(main())
    finally:
        if thread.server._server is not None:
            thread.stop()
    assert first["verdict"] == "SE" and first["score"] == 0.0 and first["sandbox_error"] is True
    assert "unreachable after 3 attempts" in message and thread.address in message


def test_on_sandbox_error_is_checked():
    with pytest.raises(SandboxRewardError, match="on_sandbox_error must be 'zero' or 'raise'"):
        reward.Settings.from_kwargs({"addresses": "127.0.0.1:1", "on_sandbox_error": "skip"})


def test_deadline(server):
    loop_forever = "while True:\n    pass\n"
    ground_truth = ground_truth_of(STDIN, time_limit=3)
    with pytest.raises(SandboxRewardError, match="did not finish within the 0.5 s deadline"):
        score(server, response(loop_forever), ground_truth, deadline_s=0.5)
    result = score(server, response(loop_forever), ground_truth, deadline_s=0.5, on_deadline="zero")
    assert result["verdict"] == "DEADLINE" and result["score"] == 0.0
    assert "deadline" in result["reason"]
    # With the default deadline (from the limits) the same code is judged: TLE.
    judged = score(server, response(loop_forever), ground_truth_of(STDIN, time_limit=1))
    assert judged["verdict"] == "TLE" and judged["score"] == 0.0


def test_bad_ground_truth(server):
    with pytest.raises(SandboxRewardError, match="bad ground_truth"):
        score(server, response("print(1)"), "not json")


def test_mute_sandbox_fails_with_the_deadline_named():
    """A server that accepts connections and never answers: every RPC has a deadline (Info /
    PutTestSet rpc_timeout_s), retried, then SandboxRewardError naming it (nothing hangs)."""
    import time

    from conftest import mute_listener

    async def main(address):
        try:
            return await compute_score("livecodebench", response("print(1)"), ground_truth_of(STDIN),
                                       addresses=address, retries=1, backoff_s=0.01, rpc_timeout_s=0.5)
        finally:
            await close_pools()
    started = time.monotonic()
    with mute_listener() as (address, accepted):
        with pytest.raises(SandboxRewardError) as error:
            asyncio.run(main(address))
    assert accepted
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert "not answering after 2 attempts" in message
    assert "Info did not answer within the 0.5 s deadline (rpc_timeout_s)" in message


def test_results_log_has_one_line_per_graded_sample(server, tmp_path):
    log = tmp_path / "rewards.jsonl"
    correct = response(STDIN["solutions"]["correct"][0]["code"])
    extra = {"index": 5, "problem_id": "p", "budget_think_forced": True}
    score(server, correct, ground_truth_of(STDIN), extra, results_log=str(log))
    score(server, "no code here", ground_truth_of(STDIN), {"index": 6}, results_log=str(log))
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["index"], r["verdict"], r["score"]) for r in rows] == [(5, "AC", 1.0), (6, "NO_CODE", 0.0)]
    assert rows[0]["budget_think_forced"] == 1.0 and rows[0]["problem_id"] == "p"


def test_the_last_fenced_block_is_graded_not_a_draft(server):
    right = STDIN["solutions"]["correct"][0]["code"]
    draft_then_final = ("<think>\nhmm\n</think>\nA first try:\n```python\nprint('draft')\n```\n"
                        f"Fixed:\n```python\n{right}\n```\n")
    assert score(server, draft_then_final, ground_truth_of(STDIN))["verdict"] == "AC"
    final_then_wrong = (f"<think>\nhmm\n</think>\n```python\n{right}\n```\nOr:\n"
                        "```python\nprint('draft')\n```\n")
    assert score(server, final_then_wrong, ground_truth_of(STDIN))["verdict"] == "WA"


KEEPS_ITS_POOL_UNTIL_EXIT = """
import asyncio, atexit, json, sys, threading

def pollers():
    return sorted(t.name for t in threading.enumerate() if "poll" in t.name)

# Registered before the reward is imported: runs after its exit handler.
atexit.register(lambda: print(json.dumps({"at_exit": pollers()}), flush=True))
from verl_plugin.reward import compute_score

async def main():
    result = await compute_score("livecodebench", sys.argv[1], sys.argv[2], None,
                                 addresses=sys.argv[3])
    print(json.dumps({"score": result["score"], "running": pollers()}), flush=True)

asyncio.run(main())  # no close_pools(): as in verl's reward workers
"""


def test_a_reward_process_drops_its_grpc_channels_before_the_interpreter_finalizes(server):
    """A verl reward worker keeps its pool's grpc.aio channels until it exits; released only
    during finalization, they shut grpc.aio down then (a known crash, exit 139). The reward's
    exit handler drops them first: by the last exit handler, grpc.aio's poller is gone."""
    answer = response(STDIN["solutions"]["correct"][0]["code"])
    run = subprocess.run([sys.executable, "-c", KEEPS_ITS_POOL_UNTIL_EXIT, answer,
                          ground_truth_of(STDIN), server.address],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                         text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["score"] == 1.0
    assert lines[0]["running"], "no grpc.aio poller while grading: this test checks nothing"
    assert lines[-1] == {"at_exit": []}

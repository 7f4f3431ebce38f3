"""Data preparation (python -m verl_plugin.data) on the shared data files → parquet, read back."""
from __future__ import annotations

import asyncio
import base64
import json
import pickle
import zlib

import pytest

pd = pytest.importorskip("pandas")

from conftest import SHARED_DATA  # noqa: E402
from verl_plugin import data  # noqa: E402
from verl_plugin.groundtruth import parse_ground_truth  # noqa: E402
from verl_plugin.reward import close_pools, compute_score  # noqa: E402

LCB_RLLM = SHARED_DATA / "lcb" / "livecodebench_public_2408_2501.json"
LCB_SF = SHARED_DATA / "lcb" / "code_eval_live_code_bench_v1.jsonl"
CF_RLLM = SHARED_DATA / "codeforces" / "deepcoder_codeforces_test.json"
CF_META = SHARED_DATA / "codeforces" / "metadata_cf.json"
CODECONTESTS = SHARED_DATA / "codecontests" / "code_eval_code_contests.jsonl"
VERIFIED = SHARED_DATA / "verified" / "problems.jsonl"


def convert(tmp_path, *inputs, extra=()):
    out = tmp_path / "out.parquet"
    assert data.main([*inputs, "--output", str(out), *extra]) == 0
    return pd.read_parquet(out)


def ground_truth(row) -> dict:
    return json.loads(row["reward_model"]["ground_truth"])


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        data.main(["--help"])
    assert exit_info.value.code == 0
    assert "15 longest-input tests" in capsys.readouterr().out


def test_livecodebench_rllm(tmp_path):
    frame = convert(tmp_path, f"livecodebench={LCB_RLLM}")
    assert len(frame) == 279
    assert set(frame.columns) >= {"data_source", "prompt", "ability", "reward_model", "extra_info", "agent_name"}
    assert set(frame["data_source"]) == {"livecodebench"} and set(frame["agent_name"]) == {"budgeted_rollout"}
    source = json.loads(LCB_RLLM.read_text())
    functional = next(i for i, r in enumerate(source) if r.get("starter_code"))
    row = frame.iloc[functional]
    prompt = row["prompt"][0]["content"]
    assert row["prompt"][0]["role"] == "user" and len(row["prompt"]) == 1
    assert prompt.startswith("You are an expert Python programmer.")
    assert "### Format: You will use the following starter code" in prompt
    assert source[functional]["starter_code"] in prompt
    truth = ground_truth(row)
    assert truth["kind"] == "functional" and truth["func_name"]
    assert truth["time_limit_s"] == 6.0 and truth["compare"] == "lcb" and truth["selection"] == "all"
    assert len(truth["tests"]) == len(source[functional]["tests"])
    assert row["reward_model"]["style"] == "rule"
    info = row["extra_info"]
    assert info["index"] == functional and info["split"] == "train" and info["kind"] == "functional"
    stdin_row = frame.iloc[next(i for i, r in enumerate(source) if not r.get("starter_code"))]
    assert "# YOUR CODE HERE" in stdin_row["prompt"][0]["content"]
    assert ground_truth(stdin_row)["kind"] == "stdin"


def test_livecodebench_chat_style(tmp_path):
    frame = convert(tmp_path, f"lcb={LCB_RLLM}", extra=["--prompt-style", "chat", "--limit", "3"])
    assert len(frame) == 3
    assert [m["role"] for m in frame.iloc[0]["prompt"]] == ["system", "user"]
    assert frame.iloc[0]["prompt"][1]["content"].startswith("### Question:")


def test_livecodebench_official_and_sandboxfusion_jsonl(tmp_path):
    """Official rows (private tests base64 → zlib → pickle → JSON) and SandboxFusion rows."""
    verified = [json.loads(line) for line in VERIFIED.read_text().splitlines()]
    problem = next(r for r in verified if r["id"] == "leetcode/2727")
    tests = [{"input": t["input"], "output": t["output"], "testtype": "functional"} for t in problem["tests"]]
    private = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests[2:])))).decode()
    official = {"question_title": "count seniors", "question_content": problem["statement"],
                "platform": "leetcode", "question_id": "2727", "contest_id": "biweekly-104",
                "contest_date": "2023-05-13T00:00:00", "starter_code": problem["starter_code"],
                "difficulty": "easy", "public_test_cases": json.dumps(tests[:2]),
                "private_test_cases": private, "metadata": json.dumps({"func_name": "countSeniors"})}
    path = tmp_path / "test_livecodebench.jsonl"
    path.write_text(json.dumps(official) + "\n")
    frame = convert(tmp_path, str(path), f"livecodebench={LCB_SF}", extra=["--split", "test"])
    assert len(frame) == 4
    first = ground_truth(frame.iloc[0])
    assert first["id"] == "2727" and first["func_name"] == "countSeniors"
    assert len(first["tests"]) == len(tests) and first["tests"][2]["input"] == tests[2]["input"]
    assert frame.iloc[0]["extra_info"]["contest_date"] == "2023-05-13"
    assert frame.iloc[0]["extra_info"]["split"] == "test"
    sf = frame.iloc[1:]
    assert {ground_truth(r)["id"] for _, r in sf.iterrows()} == {"codeforces/1873_A", "leetcode/2727",
                                                                 "atcoder/abc301_a"}
    # SandboxFusion rows carry the finished LiveCodeBench prompt: used as it is.
    assert all(r["prompt"][0]["content"].count("### Format:") == 1 for _, r in sf.iterrows())


def test_codeforces_rllm_with_ids(tmp_path):
    frame = convert(tmp_path, f"codeforces={CF_RLLM}", extra=["--cf-metadata", str(CF_META)])
    ids = json.loads(CF_META.read_text())
    assert len(frame) == 408 and frame.iloc[0]["extra_info"]["problem_id"] == ids[0]
    row = frame.iloc[0]
    truth = ground_truth(row)
    assert truth["time_limit_s"] == 12.0 and truth["compare"] == "tokens" and truth["source"] == "codeforces"
    assert row["prompt"][0]["content"].endswith("in a single ```python code block at the end of your answer.")


def test_fifteen_longest_inputs(tmp_path):
    frame = convert(tmp_path, f"codeforces={CODECONTESTS}")
    raw = [json.loads(line) for line in CODECONTESTS.read_text().splitlines()]
    assert len(frame) == len(raw)
    for (_, row), source in zip(frame.iterrows(), raw):
        truth = ground_truth(row)
        inputs = [t["input"]["stdin"] for t in json.loads(source["test"])]
        assert truth["total_tests"] == len(inputs) > 15
        assert len(truth["tests"]) == 15 and truth["selection"] == "longest-15"
        kept = [t["input"] for t in truth["tests"]]
        assert sorted(map(len, kept), reverse=True) == sorted(map(len, inputs), reverse=True)[:15]
        # original order kept
        positions = [inputs.index(k) for k in kept]
        assert positions == sorted(positions)
        assert row["extra_info"]["num_tests"] == 15


def test_all_tests_option(tmp_path):
    frame = convert(tmp_path, f"codeforces={CODECONTESTS}", extra=["--max-tests", "0", "--limit", "1"])
    assert len(ground_truth(frame.iloc[0])["tests"]) == 101


def test_taco_and_primeintellect_rows(tmp_path):
    taco = [{"problem": "Add two numbers.", "tests": json.dumps({"inputs": ["1 2\n", ["3 4"]],
                                                                 "outputs": ["3\n", ["7"]]})},
            {"problem": "Write add(a, b).", "starter_code": "def add(a, b):\n    ",
             "tests": {"fn_name": "add", "inputs": [[1, 2], [[1], [2]]], "outputs": [[3], [[1, 2]]]}}]
    prime = [{"problem": "Double it. Present the code in ```python\nYour code\n``` at the end.",
              "tests": [{"type": "stdin_stdout", "input": "2\n", "output": "4\n"}] * 20},
             {"problem": "is_even", "tests": [{"type": "function_call", "fn_name": "is_even",
                                                "input": [4], "output": [True]}]}]
    (tmp_path / "taco.json").write_text(json.dumps(taco))
    (tmp_path / "pi.jsonl").write_text("\n".join(json.dumps(r) for r in prime))
    frame = convert(tmp_path, str(tmp_path / "taco.json"), f"primeintellect={tmp_path / 'pi.jsonl'}",
                    extra=["--instruction", "always"])
    assert list(frame["data_source"]) == ["taco", "taco", "primeintellect", "primeintellect"]
    stdin, functional, pi_stdin, pi_functional = (ground_truth(r) for _, r in frame.iterrows())
    assert stdin["tests"] == [{"input": "1 2\n", "output": "3\n"}, {"input": "3 4", "output": "7"}]
    assert stdin["compare"] == "tokens" and stdin["time_limit_s"] == 12.0
    assert functional["kind"] == "functional" and functional["func_name"] == "add"
    assert functional["tests"] == [{"input": "1\n2", "output": "3"}, {"input": "[1]\n[2]", "output": "[1, 2]"}]
    assert functional["compare"] == "lcb:data"  # training rows: results compared as data
    assert "implementing `add`" in frame.iloc[1]["prompt"][0]["content"]
    assert "def add(a, b):" in frame.iloc[1]["prompt"][0]["content"]
    assert len(pi_stdin["tests"]) == 15 and pi_stdin["total_tests"] == 20
    assert frame.iloc[2]["prompt"][0]["content"].count("```python") == 1  # statement already asks
    assert pi_functional["tests"] == [{"input": "4", "output": "true"}]
    for truth in (stdin, functional, pi_stdin, pi_functional):
        parse_ground_truth(json.dumps(truth))  # valid sandbox problems


def test_taco_and_primeintellect_prompts_are_bare_statements_by_default(tmp_path):
    # as the E1 / DeepCoder reference's deepcoder_dataset.py: the statement, nothing added
    taco = [{"problem": "Add two numbers.", "tests": {"inputs": ["1 2\n"], "outputs": ["3\n"]}}]
    (tmp_path / "taco.json").write_text(json.dumps(taco))
    frame = convert(tmp_path, str(tmp_path / "taco.json"))
    assert frame.iloc[0]["prompt"][0]["content"] == "Add two numbers."
    never = convert(tmp_path, str(tmp_path / "taco.json"), extra=["--instruction", "never"])
    assert never.iloc[0]["prompt"][0]["content"] == "Add two numbers."


def test_bad_input_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "taco.json"
    bad.write_text(json.dumps([{"problem": "x", "tests": {"inputs": ["1"], "outputs": []}}]))
    assert data.main([str(bad), "--output", str(tmp_path / "o.parquet")]) == 2
    assert "1 inputs but 0 outputs" in capsys.readouterr().err


def test_converted_problem_grades_in_sandbox(tmp_path, server):
    """A CodeContests row through data prep, then the reward, on a verified correct solution."""
    frame = convert(tmp_path, f"codeforces={CODECONTESTS}")
    row = frame[frame["extra_info"].map(lambda e: e["problem_id"].startswith("1000_A"))].iloc[0]
    verified = next(json.loads(line) for line in VERIFIED.read_text().splitlines()
                    if json.loads(line)["id"] == "codeforces/1000A")
    code = verified["solutions"]["correct"][0]["code"]

    async def main():
        try:
            return await compute_score(row["data_source"], f"<think>ok</think>```python\n{code}\n```",
                                       row["reward_model"]["ground_truth"], dict(row["extra_info"]),
                                       addresses=server.address)
        finally:
            await close_pools()
    result = asyncio.run(main())
    assert result["verdict"] == "AC" and result["total"] == 15

"""The E1-Math reward (verl_plugin.math_reward): hand-written answers judged by math-verify in a
child process, and a verifier that would hang (a power tower sympy never finishes)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

pytest.importorskip("math_verify")

from verl_plugin import math_reward  # noqa: E402
from verl_plugin.math_answer import after_think, ground_truths, last_boxed  # noqa: E402
from verl_plugin.math_reward import MathRewardError, compute_score  # noqa: E402
from verl_plugin.math_verifier import VerifierPool  # noqa: E402

HANGS = "9^{9^{9^{9}}}"  # math-verify's sympy comparison with an integer never ends


def score(response: str, truth, **kwargs) -> dict:
    return asyncio.run(compute_score("math", response, truth, {"index": 0}, **kwargs))


def answer(text: str) -> str:
    return f"<think>some thinking</think>The answer is $\\boxed{{{text}}}$."


@pytest.mark.parametrize("truth, given", [
    ("\\frac{1}{2}", "0.5"),
    ("0.5", "\\frac{1}{2}"),
    ("\\frac{1}{2}", "\\dfrac12"),
    ("10", "10\\text{ cm}"),          # units
    ("90", "90^\\circ"),
    ("(1, 2]", "\\left(1,2\\right]"),  # intervals
    ("(-\\infty, 3)", "(-\\infty,3)"),
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("1000", "1,000"),
    ("x^2+2x+1", "(x+1)^2"),
])
def test_equivalent_forms_are_correct(truth, given):
    result = score(answer(given), truth)
    assert result["verdict"] == "CORRECT" and result["score"] == 1.0 and result["acc"] == 1.0, result
    assert result["verifier_timeout"] is False


@pytest.mark.parametrize("truth, given", [("\\frac{1}{2}", "0.25"), ("(1, 2]", "[1, 2)"), ("10", "11"),
                                          ("x^2+1", "x^2-1")])
def test_different_answers_are_wrong(truth, given):
    result = score(answer(given), truth)
    assert result["verdict"] == "WRONG" and result["score"] == 0.0, result


def test_nested_boxes_and_the_last_box_counts():
    assert last_boxed("\\boxed{\\frac{\\sqrt{\\boxed{3}}}{2}}") == "\\frac{\\sqrt{\\boxed{3}}}{2}"
    assert last_boxed("first \\boxed{1} then \\boxed{\\{2, 3\\}}") == "\\{2, 3\\}"
    assert last_boxed("\\boxed 5.") == "5"
    assert last_boxed("\\boxed{unclosed") is None
    response = "<think>maybe \\boxed{7}</think>So $\\boxed{\\boxed{\\frac{3}{4}}}$."
    assert score(response, "0.75")["verdict"] == "CORRECT"
    # only the text after </think> is graded: a box in the thinking does not count
    assert score("<think>\\boxed{7}</think>no box here", "7")["verdict"] == "NO_ANSWER"
    # after the last </think>, its last box
    assert score(answer("3") + " or rather \\boxed{4}", "4")["verdict"] == "CORRECT"


def test_no_think_end_scores_zero_unless_told_otherwise():
    result = score("The answer is \\boxed{2}", "2")
    assert result["verdict"] == "NO_SOLUTION" and result["score"] == 0.0
    relaxed = score("The answer is \\boxed{2}", "2", require_think_end=False)
    assert relaxed["verdict"] == "CORRECT" and relaxed["score"] == 1.0


def test_no_boxed_answer_scores_zero():
    result = score("<think>hmm</think>The answer is 2.", "2")
    assert result["verdict"] == "NO_ANSWER" and result["score"] == 0.0 and result["answer"] == ""
    assert score("<think>hmm</think>\\boxed{}", "2")["verdict"] == "NO_ANSWER"


def test_ground_truth_forms():
    assert ground_truths("\\frac12") == ["\\frac12"]
    assert ground_truths(42) == ["42"]
    assert ground_truths(["3", "\\text{three}"]) == ["3", "\\text{three}"]
    assert ground_truths("so the answer is $\\boxed{5}$") == ["5"]  # a whole MATH solution
    assert after_think("a</think>b</think>c") == "c" and after_think("abc") is None
    assert score(answer("\\text{three}"), ["3", "\\text{three}"])["verdict"] == "CORRECT"
    with pytest.raises(MathRewardError, match="empty ground truth"):
        score(answer("1"), "  ")


def test_a_verifier_that_would_hang_is_a_timeout_not_a_wrong_answer(tmp_path):
    log = tmp_path / "math.jsonl"
    started = time.monotonic()
    result = score(answer(HANGS), "1", verify_timeout_s=2, results_log=str(log))
    elapsed = time.monotonic() - started
    assert result["verdict"] == "TIMEOUT" and result["verifier_timeout"] is True, result
    assert result["score"] == 0.0 and "did not finish within 2 s" in result["reason"]
    assert 2 <= result["verify_s"] < 4 and elapsed < 15
    assert json.loads(log.read_text())["verdict"] == "TIMEOUT"
    # the judge was killed and replaced: the next sample is judged normally
    assert score(answer("0.5"), "\\frac{1}{2}", verify_timeout_s=2)["verdict"] == "CORRECT"


def test_timeout_policy_raise_stops_the_step():
    with pytest.raises(MathRewardError, match="did not finish within 1 s"):
        score(answer(HANGS), "1", verify_timeout_s=1, on_timeout="raise")


def test_too_many_timeouts_stop_the_run():
    kwargs = {"verify_timeout_s": 1, "timeout_window": 4, "timeout_max_share": 0.25}
    assert score(answer(HANGS), "1", **kwargs)["verdict"] == "TIMEOUT"  # 1 of 4: at the share
    with pytest.raises(MathRewardError, match="timed out on 2 of the last 4"):
        score(answer(HANGS), "1", **kwargs)


def test_bad_settings_are_refused():
    with pytest.raises(MathRewardError, match="on_timeout"):
        score(answer("1"), "1", on_timeout="ignore")


def test_pool_kills_the_hung_judge_and_serves_threads():
    pool = VerifierPool(1)
    try:
        hung = pool.check(["1"], HANGS, 1.0)
        assert hung.timed_out and not hung.equal and pool.killed == 1

        async def many():
            return await asyncio.gather(*(asyncio.to_thread(pool.check, [str(i)], str(i), 10.0) for i in range(6)))
        assert all(c.equal and not c.timed_out for c in asyncio.run(many()))
    finally:
        pool.close()


def test_result_keys_are_the_same_for_every_verdict():
    keys = {frozenset(score(text, "2")) for text in (answer("2"), answer("3"), "no think", "<think></think>x")}
    assert len(keys) == 1
    with_budget = asyncio.run(compute_score("math", answer("2"), "2",
                                            {"budget_think_forced": True, "budget_thinking_tokens": 5}))
    assert with_budget["budget_think_forced"] == 1.0 and with_budget["budget_thinking_tokens"] == 5.0


def test_windows_are_per_settings():
    a = math_reward.timeout_window(math_reward.MathSettings(timeout_window=3))
    b = math_reward.timeout_window(math_reward.MathSettings(timeout_window=5))
    assert a is not b and a.marks.maxlen == 3

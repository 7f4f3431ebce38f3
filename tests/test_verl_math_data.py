"""verl_plugin.math_data on small hand-made rows in the public formats of DeepScaleR, AIME 2024,
AIME 2025 and MATH500 (nothing is downloaded)."""
from __future__ import annotations

import json

import pytest

pd = pytest.importorskip("pandas")

from verl_plugin import math_data  # noqa: E402

ROWS = {
    # agentica-org/DeepScaleR-Preview-Dataset
    "deepscaler": [{"problem": "Compute $1+1$.", "answer": "2", "solution": "It is $\\boxed{2}$."},
                   {"problem": "Half of 1?", "solution": "So $\\boxed{\\frac{1}{2}}$."}],  # answer from the box
    # HuggingFaceH4/aime_2024 and Maxwell-Jia/AIME_2024
    "aime2024": [{"id": 60, "problem": "Find $x$.", "solution": "...", "answer": "204", "url": "u", "year": 2024},
                 {"ID": "2024-II-4", "Problem": "Find $y$.", "Solution": "...", "Answer": 33}],
    # opencompass/AIME2025 and MathArena/aime_2025
    "aime2025": [{"question": "Find $z$.", "answer": "70"}, {"problem_idx": 2, "problem": "Find $w$.", "answer": "588"}],
    # HuggingFaceH4/MATH-500
    "math500": [{"problem": "Simplify $\\sqrt{8}$.", "solution": "$\\boxed{2\\sqrt{2}}$", "answer": "2\\sqrt{2}",
                 "subject": "Algebra", "level": 2, "unique_id": "test/algebra/1.json"}],
}


@pytest.mark.parametrize("source", sorted(ROWS))
def test_public_rows_become_verl_rows(tmp_path, source):
    path = tmp_path / f"{source}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS[source]))
    out = tmp_path / "out.parquet"
    assert math_data.main([str(path), "-o", str(out), "--split", "test"]) == 0  # source from the file name
    frame = pd.read_parquet(out)
    assert list(frame["data_source"]) == [source] * len(ROWS[source])
    assert set(frame["ability"]) == {"math"} and set(frame["agent_name"]) == {"budgeted_rollout_math"}
    for row, prompt, truth, extra in zip(ROWS[source], frame["prompt"], frame["reward_model"], frame["extra_info"]):
        statement = row.get("problem") or row.get("Problem") or row.get("question")
        assert list(prompt) == [{"role": "user", "content": f"{statement} {math_data.INSTRUCTION}"}]
        expected = str(row.get("answer") or row.get("Answer") or "\\frac{1}{2}")
        assert truth["ground_truth"] == expected and truth["style"] == "rule"
        assert extra["split"] == "test"
    ids = [e["problem_id"] for e in frame["extra_info"]]
    if source == "aime2024":
        assert ids == ["60", "2024-II-4"]
    if source == "math500":
        assert ids == ["test/algebra/1.json"] and frame["extra_info"][0]["level"] == "2"
    if source == "aime2025":
        assert ids == ["aime2025-0", "2"]


def test_instruction_is_the_references():
    assert math_data.INSTRUCTION == "Let's think step by step and output the final answer within \\boxed{}."


def test_bad_rows_and_names(tmp_path, capsys):
    path = tmp_path / "aime.jsonl"
    path.write_text(json.dumps({"question": "no answer here"}) + "\n")
    assert math_data.main([str(path), "-o", str(tmp_path / "o.parquet")]) == 2
    assert "which AIME" in capsys.readouterr().err
    assert math_data.main([f"aime2025={path}", "-o", str(tmp_path / "o.parquet")]) == 2
    assert "no answer" in capsys.readouterr().err
    twice = tmp_path / "math500.jsonl"
    twice.write_text("".join(json.dumps({"problem": "p", "answer": "1", "unique_id": "a"}) + "\n" for _ in range(2)))
    assert math_data.main([str(twice), "-o", str(tmp_path / "o.parquet")]) == 2
    assert "appears twice" in capsys.readouterr().err

"""The E1-Math smoke run's problems and the completions the tiny model is warm-started on.

Four DeepScaleR-style rows (`{problem, answer, solution}`) for `python -m verl_plugin.math_data`.
Completions mix a right boxed answer (in a form math-verify must recognise: `\\frac{1}{2}` for
0.5, `7\\text{ cm}` for 7), a wrong one and none at all, after short or long thinking (long
thinking runs past small budgets, so `</think>` gets forced), so the math reward has every
verdict to tell apart and GRPO has something to shift.
"""
from __future__ import annotations

PROBLEMS: list[dict] = [
    {"id": "half", "problem": "What is 1 divided by 2?", "answer": "0.5",
     "right": "\\frac{1}{2}", "wrong": "2"},
    {"id": "sum", "problem": "What is 3 + 4?", "answer": "7", "right": "7", "wrong": "12"},
    {"id": "side", "problem": "A square has perimeter 28 cm. How long is its side?", "answer": "7",
     "right": "7\\text{ cm}", "wrong": "14"},
    {"id": "interval", "problem": "Solve 1 < x <= 2 and write the answer as an interval.",
     "answer": "(1, 2]", "right": "\\left(1,2\\right]", "wrong": "[1,2)"},
]

SHORT_THINKING = "Compute it directly."
LONG_THINKING = ("Let me think step by step. First restate the question in my own words. Then write "
                 "down what is given and what is asked. Then work out the value carefully, one small "
                 "step at a time, and check every step once more. Then compare it with a rough "
                 "estimate, and only then write the final answer.")


def deepscaler_rows() -> list[dict]:
    return [{"id": p["id"], "problem": p["problem"], "answer": p["answer"],
             "solution": f"So the answer is $\\boxed{{{p['answer']}}}$."} for p in PROBLEMS]


def completions(problem: dict) -> list[str]:
    out = []
    for thinking in (SHORT_THINKING, LONG_THINKING):
        for answer in (problem["right"], problem["right"], problem["wrong"], None):
            final = f"The answer is $\\boxed{{{answer}}}$." if answer else "I am not sure."
            out.append(f"{thinking}\n</think>\n\n{final}")
    return out

"""The smoke run's problems and the completions the tiny model is warm-started on.

Four small stdin problems (TACO-style rows for `python -m verl_plugin.data`). Each has completions
of every kind the sandbox must tell apart: a correct program (AC), a wrong one (WA), one that does
not compile (CE), with short and long thinking (long thinking runs past small thinking budgets, so
`</think>` gets forced). The warm start fits the tiny model to this mixture, so sampling from it
gives real fenced code of each kind, with probabilities that GRPO can then shift.
"""
from __future__ import annotations

PROBLEMS: list[dict] = [
    {"id": "sum-two", "problem": "Read two integers a and b on one line. Print a + b.",
     "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "10 -4\n", "output": "6\n"},
               {"input": "7 8\n", "output": "15\n"}],
     "right": "a, b = map(int, input().split())\nprint(a + b)",
     "wrong": "a, b = map(int, input().split())\nprint(a - b)"},
    {"id": "double", "problem": "Read an integer n. Print 2 * n.",
     "tests": [{"input": "4\n", "output": "8\n"}, {"input": "0\n", "output": "0\n"},
               {"input": "-3\n", "output": "-6\n"}],
     "right": "n = int(input())\nprint(2 * n)",
     "wrong": "n = int(input())\nprint(n + 2)"},
    {"id": "reverse", "problem": "Read a word. Print it reversed.",
     "tests": [{"input": "abc\n", "output": "cba\n"}, {"input": "x\n", "output": "x\n"},
               {"input": "hello\n", "output": "olleh\n"}],
     "right": "s = input().strip()\nprint(s[::-1])",
     "wrong": "s = input().strip()\nprint(s)"},
    {"id": "max-two", "problem": "Read two integers a and b on one line. Print the larger one.",
     "tests": [{"input": "3 9\n", "output": "9\n"}, {"input": "5 2\n", "output": "5\n"},
               {"input": "-1 -7\n", "output": "-1\n"}],
     "right": "a, b = map(int, input().split())\nprint(max(a, b))",
     "wrong": "a, b = map(int, input().split())\nprint(min(a, b))"},
]

SHORT_THINKING = "Read the input and compute the answer."
LONG_THINKING = ("Let me think step by step. First read the input line. Then parse the values. "
                 "Then compute the answer carefully and check it on the sample. Then print it.")


def taco_rows() -> list[dict]:
    """The problems as TACO rows (`{id, problem, tests: {inputs, outputs}}`)."""
    return [{"id": p["id"], "problem": p["problem"],
             "tests": {"inputs": [t["input"] for t in p["tests"]],
                       "outputs": [t["output"] for t in p["tests"]]}} for p in PROBLEMS]


def broken(code: str) -> str:
    """A syntax error the sandbox reports as CE."""
    return code.replace("print(", "print((", 1)


def completions(problem: dict) -> list[str]:
    """What the tiny model learns to answer (after the chat template's opening `<think>`)."""
    out = []
    for thinking in (SHORT_THINKING, LONG_THINKING):
        for code in (problem["right"], problem["right"], problem["wrong"], broken(problem["right"])):
            out.append(f"{thinking}\n</think>\n\n```python\n{code}\n```")
    return out

"""The generation prompts LiveCodeBench uses (lcb_runner's generic template).

Data preparation for training and evaluation build prompts here, so both use exactly
the benchmark's wording, with and without starter code.
"""
from __future__ import annotations

SYSTEM_MESSAGE = ("You are an expert Python programmer. You will be given a question (problem "
                  "specification) and will generate a correct Python program that matches the "
                  "specification and passes all tests.")
FORMAT_WITH_STARTER_CODE = ("You will use the following starter code to write the solution to "
                            "the problem and enclose your code within delimiters.")
FORMAT_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
    "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when "
    "the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.")


def lcb_user_prompt(question: str, starter_code: str = "") -> str:
    """The user turn of LiveCodeBench's generic code-generation prompt."""
    parts = [f"### Question:\n{question}\n\n"]
    if starter_code:
        parts.append(f"### Format: {FORMAT_WITH_STARTER_CODE}\n")
        parts.append(f"```python\n{starter_code}\n```\n\n")
    else:
        parts.append(f"### Format: {FORMAT_WITHOUT_STARTER_CODE}\n")
        parts.append("```python\n# YOUR CODE HERE\n```\n\n")
    parts.append("### Answer: (use the provided format with backticks)\n\n")
    return "".join(parts)


def lcb_chat_messages(question: str, starter_code: str = "") -> list[dict]:
    """System + user messages, for chat templates."""
    return [{"role": "system", "content": SYSTEM_MESSAGE},
            {"role": "user", "content": lcb_user_prompt(question, starter_code)}]

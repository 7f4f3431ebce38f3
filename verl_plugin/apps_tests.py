"""Tests in the `{inputs, outputs, fn_name?}` form (APPS, TACO, and the ground truth of verl's
own code rewards, prime_code and sandbox_fusion) as the sandbox's tests.

Stdin tests: an input or output given as a list of lines is joined with newlines. Functional
tests become LiveCodeBench's form: one JSON argument per input line, the return value as JSON
(APPS / TACO wrap it in a one-element list, which is unwrapped).
"""
from __future__ import annotations

import json

from sandbox.problem import ProblemError


def as_text(value) -> str:
    """A stdin test's input or output as text."""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def functional_args(args) -> str:
    """A functional test's arguments as LiveCodeBench's input: one JSON value per line."""
    if isinstance(args, str):
        return args  # already LiveCodeBench form
    if not isinstance(args, list):
        args = [args]
    return "\n".join(json.dumps(a) for a in args)


def functional_output(output) -> str:
    """A functional test's return value as JSON text."""
    if isinstance(output, str):
        try:
            json.loads(output)
            return output
        except json.JSONDecodeError:
            return json.dumps(output)
    if isinstance(output, list) and len(output) == 1:
        output = output[0]  # APPS / TACO convention: the return value wrapped in a list
    return json.dumps(output)


def from_inputs_outputs(tests: dict, where: str,
                        func_name: str = "") -> tuple[str, str, list[dict]]:
    """(kind, func_name, tests): functional when `fn_name` (or `func_name`) names one."""
    func_name = tests.get("fn_name") or func_name
    inputs, outputs = tests.get("inputs") or [], tests.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ProblemError(f"{where}: `inputs` and `outputs` must be lists")
    if len(inputs) != len(outputs):
        raise ProblemError(f"{where}: {len(inputs)} inputs but {len(outputs)} outputs")
    if func_name:
        return "functional", func_name, [{"input": functional_args(i),
                                          "output": functional_output(o)}
                                         for i, o in zip(inputs, outputs)]
    return "stdin", "", [{"input": as_text(i), "output": as_text(o)}
                         for i, o in zip(inputs, outputs)]

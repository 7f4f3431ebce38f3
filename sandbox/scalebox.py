"""ScaleBox's `/common_evaluate_batch` (one completion, a whole test list) on sandbox.v1 Grade.

The request and response shapes follow ScaleBox (pengbo121/ScaleBox, `SubmitRequest` →
`EvalResult`): `completion` (a markdown answer; its last fenced block is the program),
`config.language`, `config.run_timeout`, `config.provided_data.test_cases` of type
`stdin_stdout` or `function_call`, `config.extra.run_all_cases`. The whole list is one
submission here: one jail, compiled once, tests back to back, stopped at the first failure
unless `run_all_cases`. Verdicts are ours: stdin tests are compared with `extra.compare`
(default `lcb`, LiveCodeBench's rules) and function calls with LiveCodeBench's equality;
ScaleBox's own case-folding comparison is not reproduced. `type: assert` is not supported.
"""
from __future__ import annotations

import json
import math
from typing import Any

from sandbox.benchmarks.extract import extract_code
from sandbox.problem import ProblemError, parse_compare
from sandbox.sandbox_fusion import (COMPILED, LANGUAGES, CommandRunResult, CommandRunStatus,
                                    RequestError, RunCodeResponse, RunStatus, pod_name,
                                    wall_limit_s)
from sandbox.v1 import sandbox_pb2 as pb

MAX_TESTS = 20_000  # an answer is about 0.5 KiB per test


def _number(value: Any, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise RequestError(f"config.{name} must be a positive number, got {value!r}")
    return float(value)


def _object(value: Any, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{name} must be a JSON object")
    return value


def _args_text(value: Any, json_input: bool, index: int) -> str:
    """One test's arguments as LiveCodeBench's text: one JSON value per line."""
    if json_input:
        if not isinstance(value, str):
            raise RequestError(f"test_cases.input[{index}] must be a string when json_input is true")
        return value
    if not isinstance(value, list):
        raise RequestError(f"test_cases.input[{index}] must be the list of the call's arguments")
    return "\n".join(json.dumps(arg) for arg in value)


def _expected_text(value: Any, json_input: bool, index: int) -> str:
    """ScaleBox wraps each expected return value in a one-element list."""
    if json_input and isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return json.dumps(value)


def to_grade(payload: Any, request_id: str = "") -> tuple[pb.GradeRequest, dict]:
    """The Grade request for a common_evaluate_batch body, and what the answer echoes back."""
    if not isinstance(payload, dict):
        raise RequestError("the body must be a JSON object")
    completion = payload.get("completion")
    if not isinstance(completion, str):
        raise RequestError("completion: a string is required")
    config = _object(payload.get("config"), "config")
    language = config.get("language")
    if language not in LANGUAGES:
        raise RequestError(f"config.language {language!r} is not available here; use one of "
                           f"{', '.join(sorted(LANGUAGES))}")
    ours = LANGUAGES[language]
    cases = _object(_object(config.get("provided_data"), "config.provided_data").get("test_cases"),
                    "config.provided_data.test_cases")
    extra = _object(config.get("extra"), "config.extra")
    kind = cases.get("type") or ("function_call" if cases.get("fn_name") else "stdin_stdout")
    if kind not in ("stdin_stdout", "function_call"):
        raise RequestError(f"test_cases.type {kind!r} is not supported here (stdin_stdout or "
                           "function_call)")
    inputs, outputs = cases.get("input"), cases.get("output")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise RequestError("test_cases.input and test_cases.output must be lists of the same length")
    if not inputs or len(inputs) > MAX_TESTS:
        raise RequestError(f"test_cases must hold 1 to {MAX_TESTS} tests, got {len(inputs)}")
    run_timeout = _number(config.get("run_timeout"), "run_timeout", 10.0)
    memory = config.get("memory_limit_MB", config.get("mem_limit"))
    extracted = extract_code(completion, ours)
    code = extracted[0] if extracted else completion
    request = pb.GradeRequest(request_id=request_id, language=ours, source=code,
                              stop_on_first_failure=not extra.get("run_all_cases", False))
    request.limits.time_limit_s = run_timeout
    request.limits.wall_limit_s = wall_limit_s(run_timeout)
    if isinstance(memory, int) and not isinstance(memory, bool) and memory > 0:
        request.limits.memory_limit_mb = memory
    tests = request.test_set.tests
    if kind == "function_call":
        fn_name = cases.get("fn_name")
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise RequestError("test_cases.fn_name must name the function to call")
        request.kind, request.func_name = pb.FUNCTIONAL, fn_name
        json_input = bool(cases.get("json_input", False))
        for index, (args, expected) in enumerate(zip(inputs, outputs)):
            tests.add(input=_args_text(args, json_input, index).encode(),
                      output=_expected_text(expected, json_input, index).encode())
    else:
        for index, (given, expected) in enumerate(zip(inputs, outputs)):
            if not isinstance(given, str) or not isinstance(expected, str):
                raise RequestError(f"test_cases.input[{index}] and output[{index}] must be strings")
            tests.add(input=given.encode(), output=expected.encode())
        try:
            request.comparison.CopyFrom(parse_compare(str(extra.get("compare") or "lcb")))
        except ProblemError as exc:
            raise RequestError(f"config.extra.compare: {exc}") from None
    echo = {"id": payload.get("id", 0), "code": code, "language": ours, "kind": kind,
            "inputs": inputs, "outputs": outputs, "fn_name": cases.get("fn_name")}
    return request, echo


def _exec_info(result: pb.TestResult, reply: pb.GradeResponse, excerpt: pb.FailureExcerpt | None,
               compiled: bool, first: bool) -> dict:
    """A SandboxFusion run_code answer for one test (stdout only for the first failure; the
    compiler's output only in the first test's: it is the same for all of them)."""
    stdout = excerpt.stdout.decode("utf-8", errors="replace") if excerpt else ""
    stderr = excerpt.stderr.decode("utf-8", errors="replace") if excerpt else ""
    compile_result = (CommandRunResult(status=CommandRunStatus.Finished, return_code=0,
                                       execution_time=reply.timings.compile_s, stdout="",
                                       stderr=reply.compile_log if first else "")
                      if compiled else None)
    if result.verdict == pb.TLE:
        run = CommandRunResult(status=CommandRunStatus.TimeLimitExceeded,
                               execution_time=result.usage.wall_time_s, stdout=stdout,
                               stderr=(stderr + result.message).strip())
        status = RunStatus.Failed
    else:
        code = result.exit.exit_code if not result.exit.signal else -result.exit.signal
        clean = result.verdict in (pb.AC, pb.WA, pb.PE)
        if not clean and code == 0:
            code = 1
        run = CommandRunResult(status=CommandRunStatus.Finished,
                               execution_time=result.usage.wall_time_s, return_code=code,
                               stdout=stdout, stderr=stderr if clean else
                               (stderr + ("\n" if stderr else "") + result.message).strip())
        status = RunStatus.Success if clean else RunStatus.Failed
    return RunCodeResponse(status=status, message="" if status == RunStatus.Success else result.message,
                           compile_result=compile_result, run_result=run,
                           executor_pod_name=pod_name()).model_dump(mode="json")


def _test_info(echo: dict, index: int) -> dict:
    if echo["kind"] == "function_call":
        return {"type": "function_call", "fn_name": echo["fn_name"], "input": echo["inputs"][index],
                "output": echo["outputs"][index]}
    return {"input": {"stdin": echo["inputs"][index]}, "output": {"stdout": echo["outputs"][index]}}


def from_grade(reply: pb.GradeResponse, echo: dict) -> dict:
    """ScaleBox's EvalResult for a Grade answer, with our verdicts added (`verdict` fields)."""
    verdict = pb.Verdict.Name(reply.verdict)
    compiled = echo["language"] in COMPILED
    answer: dict = {"id": echo["id"], "accepted": reply.verdict == pb.AC,
                    "extracted_code": echo["code"], "full_code": None, "test_code": None,
                    "tests": [], "extracted_type": None, "extra": None,
                    "verdict": verdict, "message": reply.message}
    if reply.verdict in (pb.CE, pb.SE) or not reply.tests:
        status = RunStatus.SandboxError if reply.verdict == pb.SE else RunStatus.Failed
        info = RunCodeResponse(status=status, message=reply.message, executor_pod_name=pod_name())
        if reply.verdict == pb.CE:
            if compiled:
                info.compile_result = CommandRunResult(status=CommandRunStatus.Finished,
                                                       return_code=1, stdout="",
                                                       stderr=reply.compile_log)
            else:
                info.run_result = CommandRunResult(status=CommandRunStatus.Finished, return_code=1,
                                                   stdout="", stderr=reply.compile_log)
        answer["tests"] = [{"passed": False, "exec_info": info.model_dump(mode="json"),
                            "test_info": _test_info(echo, 0), "verdict": verdict}]
        return answer
    excerpt = reply.first_failure if reply.HasField("first_failure") else None
    for result in reply.tests:
        if result.verdict == pb.SKIPPED:
            continue
        own = excerpt if excerpt is not None and excerpt.test_index == result.index else None
        answer["tests"].append({"passed": result.verdict == pb.AC,
                                "exec_info": _exec_info(result, reply, own, compiled,
                                                        not answer["tests"]),
                                "test_info": _test_info(echo, result.index),
                                "verdict": pb.Verdict.Name(result.verdict)})
    return answer

"""SandboxFusion's `/run_code` contract, mapped onto sandbox.v1 Execute.

The request and response models follow SandboxFusion's public API (field names, defaults,
types, statuses) so that its clients (verl's `reward.sandbox_fusion`, ROLL, tinker-cookbook)
work unchanged. What each field becomes here:

- `run_timeout` (s) is the CPU-time limit, so verdicts do not flip under load; the
  wall-clock limit is `min(2 × run_timeout + 1, run_timeout + 5)` s, so a program that sleeps
  or blocks is stopped as TimeLimitExceeded before the client's own HTTP timeout.
- `memory_limit_MB` is the memory limit (≤ 0: the server's default); a run stopped for memory
  is `Finished` with a non-zero code and says so in `stderr` and `message`.
- `compile_timeout` is accepted; compilations run under the server's own compile budget
  (README: "One budget per test"), larger than any usual value, so a slow compile under load
  is never a failure.
- `files` / `fetch_files`: relative paths in the program's working directory.
"""
from __future__ import annotations

import base64
import binascii
import os
from enum import Enum
from typing import Dict, List, Optional

from pydantic import BaseModel, Field, ValidationError, field_validator

from sandbox.v1 import sandbox_pb2 as pb
from workers.work_files import MAX_FILES, FileRequestError, work_path

# SandboxFusion's names → ours, for the languages this sandbox has. Our own names work too.
LANGUAGES = {"python": "python", "cpp": "cpp", "nodejs": "javascript", "go": "go",
             "java": "java", "rust": "rust", "c": "c", "pypy": "pypy", "pypy3": "pypy",
             "javascript": "javascript"}
COMPILED = {"cpp", "c", "java", "go", "rust"}
WALL_EXTRA_CAP_S = 5.0


class RequestError(ValueError):
    """A request that does not follow the contract; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class RunStatus(str, Enum):
    Success = "Success"
    Failed = "Failed"
    SandboxError = "SandboxError"


class CommandRunStatus(str, Enum):
    Finished = "Finished"
    Error = "Error"
    TimeLimitExceeded = "TimeLimitExceeded"


class CommandRunResult(BaseModel):
    status: CommandRunStatus
    execution_time: Optional[float] = None
    return_code: Optional[int] = None
    stdout: Optional[str] = None
    stderr: Optional[str] = None


class RunCodeRequest(BaseModel):
    compile_timeout: float = 10
    run_timeout: float = 10
    memory_limit_MB: int = -1
    code: str
    stdin: Optional[str] = None
    language: str
    files: Dict[str, Optional[str]] = Field(default_factory=dict)
    fetch_files: List[str] = Field(default_factory=list)

    @field_validator("language")
    @classmethod
    def known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"language {value!r} is not available here; use one of "
                             f"{', '.join(sorted(LANGUAGES))}")
        return value

    @field_validator("run_timeout", "compile_timeout")
    @classmethod
    def positive_timeout(cls, value: float) -> float:
        if not value > 0 or value != value or value == float("inf"):
            raise ValueError(f"must be a positive number of seconds, got {value}")
        return value


class RunCodeResponse(BaseModel):
    status: RunStatus
    message: str
    compile_result: Optional[CommandRunResult] = None
    run_result: Optional[CommandRunResult] = None
    executor_pod_name: Optional[str] = None
    files: Dict[str, str] = Field(default_factory=dict)


def one_line(error: ValidationError) -> str:
    """The first validation problem as `field: reason` (the client sees one line)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = error.error_count() - 1
    return f"{where}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def parse_run_code(payload: object) -> RunCodeRequest:
    if not isinstance(payload, dict):
        raise RequestError("the body must be a JSON object")
    try:
        return RunCodeRequest.model_validate(payload)
    except ValidationError as exc:
        raise RequestError(one_line(exc)) from None


def decode_file(path: str, content: str) -> bytes:
    try:  # whitespace and line breaks allowed (base64.encodebytes), as SandboxFusion reads it
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"files[{path!r}] is not valid base64") from None


def wall_limit_s(run_timeout: float) -> float:
    return min(2 * run_timeout + 1, run_timeout + WALL_EXTRA_CAP_S)


def to_execute(request: RunCodeRequest, request_id: str = "") -> pb.ExecuteRequest:
    """The sandbox.v1 request for a /run_code body (its limits as the module docstring says)."""
    ours = LANGUAGES[request.language]
    code = request.code
    if not code.strip():
        # An empty program runs under SandboxFusion (Python: exit 0, no output; compiled
        # languages: no entry point, a compile error). A comment is the same program, and our
        # sandbox refuses an empty source.
        code += "#\n" if ours in ("python", "pypy") else "//\n"
    message = pb.ExecuteRequest(request_id=request_id, language=ours, source=code,
                                stdin=(request.stdin or "").encode())
    message.limits.time_limit_s = request.run_timeout
    message.limits.wall_limit_s = wall_limit_s(request.run_timeout)
    if request.memory_limit_MB > 0:
        message.limits.memory_limit_mb = request.memory_limit_MB
    if len(request.files) > MAX_FILES or len(request.fetch_files) > MAX_FILES:
        raise RequestError(f"at most {MAX_FILES} files and {MAX_FILES} fetch_files per request")
    try:
        for path, content in request.files.items():
            work_path(path)
            if content is None:  # SandboxFusion skips these too
                continue
            message.files.add(name=path, content=decode_file(path, content))
        for path in request.fetch_files:
            work_path(path)
    except FileRequestError as exc:
        raise RequestError(str(exc)) from None
    message.fetch_files.extend(request.fetch_files)
    return message


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _with_note(stderr: str, note: str) -> str:
    return (stderr + ("" if not stderr or stderr.endswith("\n") else "\n") + note + "\n") if note else stderr


def pod_name() -> Optional[str]:
    return os.environ.get("MY_POD_NAME") or os.environ.get("SANDBOX_POD_NAME") or None


def from_execute(request: RunCodeRequest, reply: pb.ExecuteResponse) -> RunCodeResponse:
    """The /run_code answer for an Execute reply."""
    response = RunCodeResponse(status=RunStatus.Success, message="", executor_pod_name=pod_name())
    if reply.verdict == pb.SE:
        response.status, response.message = RunStatus.SandboxError, reply.message
        return response
    ours = LANGUAGES[request.language]
    if reply.verdict == pb.CE and ours not in COMPILED:
        # An interpreter's syntax error: SandboxFusion runs the file and it exits 1.
        response.status = RunStatus.Failed
        response.run_result = CommandRunResult(
            status=CommandRunStatus.Finished, execution_time=reply.timings.run_s or None,
            return_code=1, stdout="", stderr=reply.compile_log)
        return response
    if ours in COMPILED:
        compile_tle = reply.verdict == pb.CE and "time limit" in reply.message
        response.compile_result = CommandRunResult(
            status=CommandRunStatus.TimeLimitExceeded if compile_tle else CommandRunStatus.Finished,
            execution_time=reply.compile_usage.wall_time_s,
            return_code=None if compile_tle else (1 if reply.verdict == pb.CE else 0),
            stdout="", stderr=reply.compile_log)
        if reply.verdict == pb.CE:
            response.status = RunStatus.Failed
            response.message = reply.message if reply.message != "compilation failed" else ""
            return response
    stdout, stderr = _text(reply.stdout), _text(reply.stderr)
    if reply.verdict == pb.TLE:
        run = CommandRunResult(status=CommandRunStatus.TimeLimitExceeded,
                               execution_time=reply.usage.wall_time_s, stdout=stdout,
                               stderr=_with_note(stderr, reply.message))
    else:
        code = reply.exit.exit_code if not reply.exit.signal else -reply.exit.signal
        if reply.verdict != pb.AC and code == 0:
            code = 1  # stopped for memory or output after a clean exit code: still a failure
        note = reply.message if reply.verdict in (pb.MLE, pb.OLE) else ""
        run = CommandRunResult(status=CommandRunStatus.Finished,
                               execution_time=reply.usage.wall_time_s, return_code=code,
                               stdout=stdout, stderr=_with_note(stderr, note))
    response.run_result = run
    if reply.verdict != pb.AC:
        response.status = RunStatus.Failed
        if reply.verdict in (pb.MLE, pb.OLE, pb.TLE):
            response.message = reply.message
    asked = {}
    for name in request.fetch_files:
        try:
            asked.setdefault(work_path(name), name)
        except FileRequestError:
            continue
    for file in reply.files:  # keyed as the client spelled the path, as SandboxFusion does
        response.files[asked.get(file.name, file.name)] = base64.b64encode(file.content).decode()
    return response

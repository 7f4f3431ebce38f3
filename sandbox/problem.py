"""The problem file (JSON) and its translation into a GradeRequest.

    {id, kind: "stdin"|"functional", func_name?, starter_code?, tests: [{input, output}],
     time_limit_s?, memory_limit_mb?,
     compare?: "lcb"|"lcb:data"|"lcb-process"|"exact"|"tokens"|"open-r1"|"float:1e-6",
     checker?: {language, source | path, files?: {name: path | {text}},
                convention?: "testlib"|"open-r1"},
     interactor?: {language, source | path, files?}}

Defaults: compare "lcb", 6 s per test, 1024 MB.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.v1 import sandbox_pb2 as pb
from workers.testlib import includes_testlib, read_testlib

DEFAULT_TIME_LIMIT_S = 6.0
DEFAULT_MEMORY_LIMIT_MB = 1024


class ProblemError(ValueError):
    """A malformed problem file or field."""


@dataclass
class Problem:
    id: str
    kind: str = "stdin"
    tests: list[dict] = field(default_factory=list)
    func_name: str = ""
    starter_code: str = ""
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB
    compare: str = "lcb"
    checker: dict | None = None
    max_processes: int = 0  # 0: the server's default (1: no processes besides the test's own)
    # Benchmark metadata (loaders in sandbox/benchmarks fill what their format has).
    title: str = ""
    statement: str = ""
    platform: str = ""
    difficulty: str = ""
    contest_date: str = ""  # ISO date, for release-version / date-window selection
    input_mode: str = "stdin"  # or "file": the program reads input.txt, writes output.txt
    interactor: dict | None = None  # {language, source}: interactive problem
    meta: dict = field(default_factory=dict)

    def test_set(self) -> pb.TestSet:
        return pb.TestSet(tests=[pb.TestCase(input=_bytes(t["input"]), output=_bytes(t["output"]))
                                 for t in self.tests])

    def comparison(self) -> pb.Comparison:
        return parse_compare(self.compare, self.checker)

    def grade_request(self, source: str, language: str, *, request_id: str = "",
                      digest: str | None = None, stop_on_first_failure: bool = True) -> pb.GradeRequest:
        request = pb.GradeRequest(
            request_id=request_id, language=language, source=source,
            kind=pb.FUNCTIONAL if self.kind == "functional" else pb.STDIN,
            func_name=self.func_name, comparison=self.comparison(),
            limits=pb.Limits(time_limit_s=self.time_limit_s, memory_limit_mb=self.memory_limit_mb,
                             max_processes=self.max_processes),
            stop_on_first_failure=stop_on_first_failure)
        if digest:
            request.test_set_digest = digest
        else:
            request.test_set.CopyFrom(self.test_set())
        if self.input_mode == "file":
            request.file_io.input_name = "input.txt"
            request.file_io.output_name = "output.txt"
        if self.interactor:
            request.interactor.CopyFrom(helper_message(self.interactor))
        return request


def _bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


CONVENTIONS = {"testlib": pb.Checker.TESTLIB, "open-r1": pb.Checker.OPEN_R1}


def helper_message(spec: dict) -> pb.Checker:
    """{language, source, files?: {name: text|bytes}, convention?} → a Checker message."""
    files = [pb.File(name=name, content=_bytes(content))
             for name, content in (spec.get("files") or {}).items()]
    return pb.Checker(language=spec["language"], source=spec["source"], files=files,
                      convention=CONVENTIONS[spec.get("convention") or "testlib"])


TESTLIB_HELP = ("testlib.h for C++ checkers / interactors that include it and carry none "
                "(default: $SANDBOX_TESTLIB; get it from github.com/MikeMirzayanov/testlib)")


def with_testlib(problems: list["Problem"], path: str | None = None) -> None:
    """Gives testlib.h (`path`, else $SANDBOX_TESTLIB, else nothing) to every helper that
    includes it; raises ValueError when the file cannot be read."""
    testlib = read_testlib(path)
    if testlib is not None:
        for problem in problems:
            attach_testlib(problem, testlib)


def attach_testlib(problem: "Problem", testlib: bytes | str) -> None:
    """Adds testlib.h to the problem's checker / interactor that include it and carry none."""
    for spec in (problem.checker, problem.interactor):
        if spec and includes_testlib(spec["source"]) and "testlib.h" not in (spec.get("files") or {}):
            spec["files"] = dict(spec.get("files") or {}, **{"testlib.h": testlib})


def parse_compare(spec: str, checker: dict | None = None) -> pb.Comparison:
    spec = (spec or "lcb").strip().lower()
    if checker:
        return pb.Comparison(mode=pb.Comparison.CHECKER, checker=helper_message(checker))
    if spec == "lcb":
        return pb.Comparison(mode=pb.Comparison.LCB)
    if spec == "lcb:data":  # lcb, functional results compared as data only
        return pb.Comparison(mode=pb.Comparison.LCB, results_as_data=True)
    if spec == "lcb-process":
        return pb.Comparison(mode=pb.Comparison.LCB_PROCESS)
    if spec == "exact":
        return pb.Comparison(mode=pb.Comparison.EXACT)
    if spec == "tokens":
        return pb.Comparison(mode=pb.Comparison.TOKENS)
    if spec == "open-r1":
        return pb.Comparison(mode=pb.Comparison.OPEN_R1)
    if spec.startswith("float"):
        _, _, eps = spec.partition(":")
        try:
            epsilon = float(eps) if eps else 1e-6
        except ValueError:
            raise ProblemError(f"bad float tolerance in compare={spec!r}") from None
        if not math.isfinite(epsilon) or epsilon < 0:
            raise ProblemError(f"bad float tolerance in compare={spec!r}")
        return pb.Comparison(mode=pb.Comparison.FLOAT, abs_epsilon=epsilon, rel_epsilon=epsilon)
    raise ProblemError(f"unknown compare mode {spec!r} (use lcb, lcb:data, lcb-process, exact, "
                       "tokens, open-r1 or float:EPS)")


def problem_from_dict(data: dict, base_dir: Path | None = None) -> Problem:
    if not isinstance(data, dict):
        raise ProblemError("a problem must be a JSON object")
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        raise ProblemError("`tests` must be a non-empty list of {input, output}")
    for index, test in enumerate(tests):
        if not isinstance(test, dict) or not isinstance(test.get("input"), str) \
                or not isinstance(test.get("output"), str):
            raise ProblemError(f"test {index} must be an object with string `input` and `output`")
    kind = data.get("kind", "stdin")
    if kind not in ("stdin", "functional"):
        raise ProblemError(f"`kind` must be \"stdin\" or \"functional\", got {kind!r}")
    if kind == "functional" and not data.get("func_name"):
        raise ProblemError("functional problems need `func_name`")
    checker = _helper_spec(data.get("checker"), "checker", base_dir)
    interactor = _helper_spec(data.get("interactor"), "interactor", base_dir)
    input_mode = data.get("input_mode", "stdin")
    if input_mode not in ("stdin", "file"):
        raise ProblemError(f"`input_mode` must be \"stdin\" or \"file\", got {input_mode!r}")
    try:
        time_limit = float(data.get("time_limit_s") or DEFAULT_TIME_LIMIT_S)
        memory = int(data.get("memory_limit_mb") or DEFAULT_MEMORY_LIMIT_MB)
    except (TypeError, ValueError):
        raise ProblemError("`time_limit_s` and `memory_limit_mb` must be numbers") from None
    if not math.isfinite(time_limit) or time_limit <= 0 or memory <= 0:
        raise ProblemError("`time_limit_s` and `memory_limit_mb` must be positive")
    processes = data.get("max_processes") or 0
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 0:
        raise ProblemError("`max_processes` must be a non-negative integer")
    problem = Problem(id=str(data.get("id", "")), kind=kind, tests=tests,
                      func_name=data.get("func_name") or "",
                      starter_code=data.get("starter_code") or "",
                      time_limit_s=time_limit, memory_limit_mb=memory, max_processes=processes,
                      compare=data.get("compare") or "lcb", checker=checker,
                      interactor=interactor, input_mode=input_mode,
                      title=data.get("title") or "", statement=data.get("statement") or "",
                      platform=data.get("platform") or "", difficulty=data.get("difficulty") or "",
                      contest_date=data.get("contest_date") or "")
    problem.comparison()  # validates `compare`
    return problem


def _helper_spec(spec, role: str, base_dir: Path | None) -> dict | None:
    """A checker / interactor: {language, source | path, files?: {name: path-or-text}}."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or "language" not in spec:
        raise ProblemError(f"`{role}` must be {{language, source}} or {{language, path}}")

    def read(relative) -> str:
        if isinstance(relative, dict) and isinstance(relative.get("text"), str):
            return relative["text"]  # inline content (ground truth rows carry files so)
        path = Path(relative)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            return path.read_text()
        except OSError as exc:
            raise ProblemError(f"cannot read the {role}: {exc}") from None

    if "source" in spec:
        source = spec["source"]
    elif "path" in spec:
        source = read(spec["path"])
    else:
        raise ProblemError(f"`{role}` needs `source` or `path`")
    files = {name: read(value) for name, value in (spec.get("files") or {}).items()}
    convention = spec.get("convention") or "testlib"
    if convention not in CONVENTIONS:
        raise ProblemError(f"`{role}.convention` must be one of {', '.join(CONVENTIONS)}, "
                           f"got {convention!r}")
    if role == "interactor" and convention != "testlib":
        raise ProblemError("an interactor follows testlib's convention only")
    return {"language": spec["language"], "source": source, "files": files,
            "convention": convention}


def load_problem(path: str | Path) -> Problem:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProblemError(f"problem file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ProblemError(f"{path} is not valid JSON: {exc}") from None
    return problem_from_dict(data, path.parent)

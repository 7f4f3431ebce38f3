"""Codeforces problems from local files and Polygon packages.

Formats:
- DeepCoder / rllm rows `{problem, tests: [{input, output}]}` (limits parsed from the
  statement's "Time Limit: N ms" / "Memory Limit: N MB"; ids from metadata_cf.json);
- CodeContests rows as SandboxFusion ships them `{id, content, labels, test}`;
- `open-r1/codeforces` rows (`official_tests`, `time_limit`, `memory_limit`, `input_mode`,
  `interaction_format`, `generated_checker`, ...);
- Polygon problem packages (a directory with problem.xml, tests, checker, interactor, solutions).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from sandbox.benchmarks.io import read_rows
from sandbox.benchmarks.livecodebench import _literal_tests
from sandbox.problem import Problem, ProblemError
from workers.testlib import read_testlib

DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_MEMORY_LIMIT_MB = 256
_TIME_RE = re.compile(r"time limit[^\d]{0,20}([\d.]+)\s*(ms|milliseconds?|s|seconds?)", re.I)
_MEMORY_RE = re.compile(r"memory limit[^\d]{0,20}([\d.]+)\s*(mb|megabytes?|kb|gb)", re.I)


def limits_from_statement(text: str) -> tuple[float, int]:
    """(seconds, MiB) from "Time Limit: 1000 ms" / "Memory Limit: 256 MB" in a statement."""
    seconds, megabytes = DEFAULT_TIME_LIMIT_S, DEFAULT_MEMORY_LIMIT_MB
    if match := _TIME_RE.search(text or ""):
        value = float(match.group(1))
        seconds = value / 1000 if match.group(2).lower().startswith("m") else value
    if match := _MEMORY_RE.search(text or ""):
        value, unit = float(match.group(1)), match.group(2).lower()
        megabytes = int(value / 1024 if unit == "kb" else value * 1024 if unit == "gb" else value)
    return seconds, megabytes


def load_rllm(path: str | Path, metadata_path: str | Path | None = None) -> list[Problem]:
    rows = read_rows(path)
    ids: list[str] = []
    if metadata_path:
        ids = json.loads(Path(metadata_path).read_text())
    problems = []
    for index, row in enumerate(rows):
        statement = row.get("problem") or ""
        seconds, megabytes = limits_from_statement(statement)
        tests = _literal_tests(row.get("tests") or "[]")
        problems.append(Problem(
            id=ids[index] if index < len(ids) else str(row.get("id") or f"codeforces-{index}"),
            tests=[{"input": t["input"], "output": t["output"]} for t in tests],
            time_limit_s=seconds, memory_limit_mb=megabytes, compare="tokens",
            statement=statement, platform="codeforces",
            meta={"benchmark": "codeforces", "format": "rllm"}))
    return problems


def load_codecontests(path: str | Path) -> list[Problem]:
    problems = []
    for row in read_rows(path):
        labels = json.loads(row.get("labels") or "{}")
        tests = json.loads(row["test"]) if isinstance(row["test"], str) else row["test"]
        seconds, megabytes = limits_from_statement(row.get("content") or "")
        problems.append(Problem(
            id=str(labels.get("name") or row.get("id")),
            tests=[{"input": t["input"]["stdin"], "output": t["output"]["stdout"]} for t in tests],
            time_limit_s=seconds, memory_limit_mb=megabytes, compare="tokens",
            statement=row.get("content") or "", platform=(labels.get("source") or "").lower(),
            difficulty=str(labels.get("difficulty") or "").lower(),
            meta={"benchmark": "codeforces", "format": "codecontests"}))
    return problems


def problem_from_open_r1_row(row: dict) -> Problem:
    tests = row.get("official_tests") or row.get("examples") or []
    if not tests:
        raise ProblemError(f"open-r1 row {row.get('id')}: no official_tests")
    mode = (row.get("input_mode") or "stdio").lower()
    checker = None
    if row.get("generated_checker"):
        # Called as open-r1 calls it: `checker input answer output`, AC iff it prints 1 or 100.
        checker = {"language": "python", "source": row["generated_checker"],
                   "convention": "open-r1"}
    statement = "\n\n".join(filter(None, (row.get("description"), row.get("input_format"),
                                          row.get("output_format"), row.get("interaction_format"),
                                          row.get("note"))))
    return Problem(
        id=str(row.get("id") or f"{row.get('contest_id')}{row.get('index')}"),
        tests=[{"input": t["input"], "output": t["output"]} for t in tests],
        time_limit_s=float(row.get("time_limit") or DEFAULT_TIME_LIMIT_S),
        memory_limit_mb=int(row.get("memory_limit") or DEFAULT_MEMORY_LIMIT_MB),
        compare="open-r1", checker=checker, title=row.get("title") or "", statement=statement,
        platform="codeforces", difficulty=str(row.get("rating") or ""),
        input_mode="file" if mode == "file" else "stdin",
        meta={"benchmark": "codeforces", "format": "open-r1",
              "interactive": bool(row.get("interaction_format")),
              "contest_id": row.get("contest_id"), "index": row.get("index"),
              "rating": row.get("rating"), "tags": row.get("tags") or []})


def load_open_r1(path: str | Path) -> list[Problem]:
    return [problem_from_open_r1_row(row) for row in read_rows(path)]


# ---------------------------------------------------------------- Polygon packages

_LANGUAGE_BY_POLYGON_TYPE = (("cpp", "cpp"), ("python", "python"), ("pypy", "pypy"))


def _polygon_language(source_type: str) -> str | None:
    for prefix, language in _LANGUAGE_BY_POLYGON_TYPE:
        if source_type.startswith(prefix):
            return language
    return None


def _read_text(base: Path, relative: str) -> str:
    try:
        return (base / relative).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ProblemError(f"Polygon package: cannot read {relative}: {exc}") from None


def load_polygon_package(directory: str | Path, testlib: str | Path | None = None) -> Problem:
    """A Polygon package: tests of the main testset, limits, checker, interactor, solutions.

    C++ checkers / interactors compile against the `testlib` path given, else the package's
    own files/testlib.h, else $SANDBOX_TESTLIB; the project does not ship testlib.h.
    """
    base = Path(directory)
    try:
        root = ElementTree.parse(base / "problem.xml").getroot()
    except (OSError, ElementTree.ParseError) as exc:
        raise ProblemError(f"{base}: cannot read problem.xml: {exc}") from None
    judging = root.find("judging")
    if judging is None:
        raise ProblemError(f"{base}/problem.xml has no <judging>")
    testset = judging.find("testset[@name='tests']")
    if testset is None:
        testset = judging.find("testset")
    if testset is None:
        raise ProblemError(f"{base}/problem.xml has no testset")
    time_ms = float(testset.findtext("time-limit") or DEFAULT_TIME_LIMIT_S * 1000)
    memory_bytes = int(testset.findtext("memory-limit") or DEFAULT_MEMORY_LIMIT_MB << 20)
    input_pattern = testset.findtext("input-path-pattern") or "tests/%02d"
    answer_pattern = testset.findtext("answer-path-pattern") or "tests/%02d.a"
    count = len(testset.findall("tests/test")) or int(testset.findtext("test-count") or 0)
    tests = []
    for number in range(1, count + 1):
        input_path, answer_path = base / (input_pattern % number), base / (answer_pattern % number)
        if not input_path.exists():
            raise ProblemError(f"Polygon package: test {number} ({input_path.name}) is missing; "
                               "generated tests must be built first (use a full package)")
        tests.append({"input": input_path.read_text(errors="replace"),
                      "output": answer_path.read_text(errors="replace") if answer_path.exists() else ""})
    extra = {}
    own = base / "files" / "testlib.h"
    try:
        found = read_testlib(testlib or (own if own.exists() else None))
    except ValueError as exc:
        raise ProblemError(f"Polygon package: {exc}") from None
    if found is not None:
        extra["testlib.h"] = found.decode("utf-8", errors="replace")

    def helper(element) -> dict | None:
        if element is None:
            return None
        source = element.find("source")
        if source is None:
            return None
        language = _polygon_language(source.get("type", "cpp"))
        if language is None:
            raise ProblemError(f"Polygon package: unsupported source type {source.get('type')}")
        # Without a testlib.h here, the server's own ($SANDBOX_TESTLIB) is used, or the
        # request is refused naming that setting.
        return {"language": language, "source": _read_text(base, source.get("path")),
                "files": extra if language == "cpp" else {}}

    assets = root.find("assets")
    checker = helper(assets.find("checker")) if assets is not None else None
    interactor = helper(assets.find("interactor")) if assets is not None else None
    solutions = {}
    if assets is not None:
        for solution in assets.findall("solutions/solution"):
            source = solution.find("source")
            if source is not None:
                solutions.setdefault(solution.get("tag", "unknown"), []).append({
                    "language": _polygon_language(source.get("type", "")) or source.get("type"),
                    "code": _read_text(base, source.get("path"))})
    names = root.find("names/name")
    return Problem(
        id=root.get("short-name") or base.name, tests=tests, time_limit_s=time_ms / 1000,
        memory_limit_mb=max(1, memory_bytes >> 20), compare="tokens",
        checker=None if interactor else checker, interactor=interactor,
        title=names.get("value", "") if names is not None else "", platform="codeforces",
        input_mode="file" if (judging.get("input-file") or "") else "stdin",
        meta={"benchmark": "codeforces", "format": "polygon", "solutions": solutions})


# ---------------------------------------------------------------- any of the above

def detect_and_load(path: str | Path, metadata_path: str | Path | None = None) -> list[Problem]:
    """Codeforces problems from a file of rllm / CodeContests / open-r1 rows, told apart by
    their fields, or from a Polygon package directory (or a directory of packages).

    `metadata_path` (metadata_cf.json) names rllm rows, which carry no ids of their own.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "problem.xml").exists():
            return [load_polygon_package(path)]
        packages = sorted(p for p in path.iterdir() if (p / "problem.xml").exists())
        if not packages:
            raise ProblemError(f"{path}: neither a Polygon package (problem.xml) nor a "
                               "directory of packages")
        return [load_polygon_package(package) for package in packages]
    rows = read_rows(path)
    if not rows:
        raise ProblemError(f"{path}: no problems")
    first = rows[0]
    if "official_tests" in first or ("contest_id" in first and "index" in first):
        return [problem_from_open_r1_row(row) for row in rows]
    if "labels" in first and "test" in first:
        return load_codecontests(path)
    if "problem" in first and "tests" in first:
        return load_rllm(path, metadata_path)
    raise ProblemError(f"{path}: not rllm, CodeContests or open-r1 Codeforces rows "
                       f"(fields: {', '.join(sorted(first)[:8])})")

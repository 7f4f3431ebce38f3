"""Grading one submission: one jail, compile once, every test in a fresh process, compare.

`Judge` is the execution engine behind both the gRPC server and the embedded
(in-process) sandbox: the same code decides every verdict either way.
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field, replace

from sandbox.v1 import sandbox_pb2 as pb
from workers import cgroups, compare, lcb_outcome, open_r1, work_files
from workers.jail import AGENT_MOUNT, FALLBACK_TMPFS_BYTES, Jail, JailError, RawRun
from workers.cgroup_warmth import MigrationWarmth
from workers.jail_pool import JailPool, PoolStats
from workers.languages import Language, available_languages
from workers.limits import COMPILE_LIMITS, RunLimits, resolve_limits
from workers.pch import ensure_pch
from workers.special_judges import (HELPER_LIMITS, BinaryCache, HelperProgram, check_output,
                                    exit_code_verdict)
from workers.testlib import TESTLIB_ENV, WHERE_TO_GET, includes_testlib, read_testlib
from workers.verdicts import classify_run, compile_limit_exceeded

EXCERPT_BYTES = 4096
COMPILE_LOG_BYTES = 16384
MAX_SOURCE_BYTES = 1 << 20
JAIL_ATTEMPTS = 2  # a jail that fails to start or dies is retried once in a fresh one
INTERACTOR_FILES = ("input.txt", "output.txt")
DEADLINE_MESSAGE = "the request's total grading time cap was reached"


class InvalidRequest(ValueError):
    """Bad input from the caller (maps to INVALID_ARGUMENT)."""


class Cancelled(RuntimeError):
    """The caller went away or its deadline passed; the run was killed."""


@dataclass(eq=False)
class CancelToken:
    """Lets another thread cancel a grading: kills the jails it is using at once."""

    _event: threading.Event = field(default_factory=threading.Event)
    _jails: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            jails = list(self._jails)
        for jail in jails:
            jail.kill()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def attach(self, jail: Jail) -> None:
        with self._lock:
            self._jails.append(jail)
            if self._event.is_set():
                jail.kill()

    def detach(self, jail: Jail) -> None:
        with self._lock:
            if jail in self._jails:
                self._jails.remove(jail)


def _excerpt(data: bytes) -> tuple[bytes, bool]:
    return (data[:EXCERPT_BYTES], True) if len(data) > EXCERPT_BYTES else (data, False)


def _usage(raw: RawRun) -> pb.Usage:
    return pb.Usage(cpu_time_s=raw.cpu_s, wall_time_s=raw.wall_s, peak_memory_kb=raw.maxrss_kb)


def _points(message: str) -> float:
    """Partial points from a testlib checker comment ("partial points: points 0.5 ...")."""
    if not message.startswith("partial points:"):
        return 0.0
    words = message.split()
    for word, following in zip(words, words[1:]):
        if word == "points":
            try:
                return float(following)
            except ValueError:
                return 0.0
    return 0.0


_warned: set[cgroups.CgroupSupport] = set()


def _warn_if_weaker(found: cgroups.CgroupSupport) -> None:
    """One line, once, when a per-jail mechanism is missing and the fallback applies."""
    if found.complete or found in _warned:
        return
    _warned.add(found)
    memory = ("" if found.memory else
              "; memory: one process's address space, memfd/SysV shm denied, files capped by "
              f"the jail's tmpfs ({FALLBACK_TMPFS_BYTES >> 20} MiB each for /work and /tmp)")
    cgroups.log.warning("per-jail cgroups incomplete (%s): tests run single-process only "
                        "(max_processes > 1 is refused)%s", found.describe(), memory)


_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def _plain_file_name(name: str, language: Language) -> bool:
    """Not hidden (the cold path's own files are), and not the source or the binary."""
    return bool(_FILE_NAME.fullmatch(name)) and name not in (language.source_file, "main")


def _interactor_hit_a_closed_pipe(raw: RawRun) -> bool:
    """SIGPIPE (C++), or Python's BrokenPipeError / failed flush at exit (status 120)."""
    return (raw.signal == signal.SIGPIPE or raw.exit_code == 120
            or raw.exit_code == 1 and b"BrokenPipeError" in raw.stderr)


def _report_compilation(response, log: str, compiled: RawRun | None) -> None:
    """Compile log, time and usage into a GradeResponse or ExecuteResponse."""
    response.compile_log = log
    if compiled is not None:
        response.timings.compile_s = compiled.wall_s
        response.compile_usage.CopyFrom(_usage(compiled))


def _compile_message(compiled: RawRun | None) -> str:
    reason = compile_limit_exceeded(compiled, COMPILE_LIMITS) if compiled is not None else None
    return f"compilation failed: {reason}" if reason else "compilation failed"


def _compare_mode(comparison: pb.Comparison) -> int:
    return comparison.mode or pb.Comparison.LCB


class Judge:
    """Runs submissions. Thread-safe: each call uses its own jail(s)."""

    def __init__(self, *, python_fast_path: bool = True, tmpfs_bytes: int = 512 << 20,
                 max_source_bytes: int = MAX_SOURCE_BYTES,
                 cgroup_support: cgroups.CgroupSupport | None = None) -> None:
        """cgroup_support: the per-jail mechanisms to use (default: what this host has)."""
        self.cgroup_support = cgroup_support if cgroup_support is not None else cgroups.support()
        _warn_if_weaker(self.cgroup_support)
        self.testlib = read_testlib()
        self.languages = available_languages()
        self.python_fast_path = python_fast_path
        self.tmpfs_bytes = tmpfs_bytes
        self.max_source_bytes = max_source_bytes
        self._pch_dir = None
        self._pch_lock = threading.Lock()
        self._pch_done = False
        self.helper_binaries = BinaryCache()
        self.pool: JailPool | None = None
        self.warmth: MigrationWarmth | None = None
        self._capacity = 1
        self._active = 0
        self._active_lock = threading.Lock()

    # ------------------------------------------------------------ ready jails
    def start_pool(self, per_language: int, capacity: int, languages: tuple[str, ...] = ("python",),
                   idle_s: float | None = None) -> None:
        """Keeps up to per_language fresh jails ready for each language in demand (the
        given ones from now on), refilled while fewer than `capacity` gradings run."""
        if per_language <= 0 or self.pool is not None:
            return
        self._capacity = max(1, capacity)
        kwargs = {} if idle_s is None else {"idle_s": idle_s}
        self.pool = JailPool(self._ready_jail, per_language=per_language,
                             free_slots=self._free_slots, **kwargs)
        for name in languages:
            if name in self.languages:
                self.pool.want(self.languages[name])
        self.pool.start()
        warmth = MigrationWarmth(self.cgroup_support)
        if warmth.start():
            self.warmth = warmth

    def close(self) -> None:
        """Closes the ready jails (running gradings keep theirs)."""
        if self.pool is not None:
            self.pool.close()
        if self.warmth is not None:
            self.warmth.close()
            self.warmth = None

    def pool_stats(self) -> list[PoolStats]:
        return self.pool.stats() if self.pool is not None else []

    def _free_slots(self) -> int:
        with self._active_lock:
            return self._capacity - self._active

    def _ready_jail(self, language: Language) -> Jail:
        jail = Jail(language, tmpfs_bytes=self.tmpfs_bytes, pch_dir=self.pch_dir(language),
                    cgroup_support=self.cgroup_support)
        try:
            jail.start()
            jail.prepare_roles(("compile", "run") if language.compiled else ("run",))
            if language.python_fast_path and self.python_fast_path:
                jail.import_harness()
        except BaseException:
            jail.kill()
            jail.close()
            raise
        return jail

    def _busy(self, delta: int) -> None:
        with self._active_lock:
            self._active += delta
        if delta > 0 and self.warmth is not None:
            self.warmth.poke()

    # ------------------------------------------------------------ setup
    def language(self, name: str) -> Language:
        found = self.languages.get(name.strip().lower())
        if found is None:
            known = ", ".join(sorted({lang.name for lang in self.languages.values()}))
            raise InvalidRequest(f"unknown language {name!r}; this server runs: {known}")
        return found

    def pch_dir(self, language: Language):
        if not language.needs_pch:
            return None
        with self._pch_lock:
            if not self._pch_done:
                self._pch_dir = ensure_pch(language.compile_argv[0], language.version)
                self._pch_done = True
            return self._pch_dir

    def warm_up(self) -> None:
        """Builds the C++ precompiled header and reads versions ahead of the first request."""
        for language in set(self.languages.values()):
            _ = language.version
            self.pch_dir(language)

    def _new_jail(self, language: Language, cancel: CancelToken | None) -> Jail:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("cancelled before the jail started")
        jail = self.pool.take(language) if self.pool is not None else None
        if jail is not None:
            if cancel is not None:
                cancel.attach(jail)
                if cancel.cancelled:
                    self._release(jail, cancel)
                    raise Cancelled("cancelled before the jail started")
            return jail
        jail = Jail(language, tmpfs_bytes=self.tmpfs_bytes, pch_dir=self.pch_dir(language),
                    cgroup_support=self.cgroup_support)
        if cancel is not None:
            cancel.attach(jail)
        try:
            jail.start()
        except JailError:
            if cancel is not None:
                cancel.detach(jail)
            jail.close()
            if cancel is not None and cancel.cancelled:
                raise Cancelled("cancelled while the jail started") from None
            raise
        return jail

    def _release(self, jail: Jail, cancel: CancelToken | None) -> None:
        if cancel is not None:
            cancel.detach(jail)
        jail.close_soon()

    # ------------------------------------------------------------ validation
    def validate_source(self, source: str, language_name: str) -> Language:
        language = self.language(language_name)
        if not source.strip():
            raise InvalidRequest("the source is empty")
        size = len(source.encode("utf-8", errors="surrogatepass"))
        if size > self.max_source_bytes:
            raise InvalidRequest(f"the source is {size} bytes; the limit is {self.max_source_bytes}")
        if "\x00" in source:
            raise InvalidRequest("the source contains a NUL byte")
        return language

    def resolve(self, requested: pb.Limits) -> RunLimits:
        """The request's limits; more than one process needs per-jail cgroups."""
        try:
            limits = resolve_limits(requested)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        found = self.cgroup_support
        if limits.max_processes > 1 and not found.complete:
            raise InvalidRequest(
                f"max_processes={limits.max_processes} needs per-jail cgroups for memory, "
                f"pids and CPU time, and this server has {found.describe()} (README: "
                "'How it isolates'); only single-process programs can be graded here")
        return limits

    def validate_grade(self, request: pb.GradeRequest, tests: pb.TestSet) -> tuple[Language, RunLimits]:
        language = self.validate_source(request.source, request.language)
        limits = self.resolve(request.limits)
        if not tests.tests:
            raise InvalidRequest("the test set is empty")
        if request.kind == pb.FUNCTIONAL:
            if not language.python_fast_path:
                raise InvalidRequest("functional problems are Python-only (python, pypy)")
            if not request.func_name.isidentifier():
                raise InvalidRequest("functional problems need func_name, a Python identifier")
            for index, test in enumerate(tests.tests):
                try:
                    [compare.parse_json(line) for line in test.input.decode("utf-8").split("\n")]
                    compare.parse_json(test.output.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    raise InvalidRequest(
                        f"test {index}: functional tests need one JSON value per input line "
                        f"and a JSON output ({exc})") from None
        elif request.kind not in (pb.STDIN, pb.PROBLEM_KIND_UNSPECIFIED):
            raise InvalidRequest(f"unknown problem kind {request.kind}")
        comparison = request.comparison
        mode = _compare_mode(comparison)
        if mode not in pb.Comparison.Mode.values():
            raise InvalidRequest(f"unknown comparison mode {mode}")
        if mode == pb.Comparison.FLOAT:
            for name in ("abs_epsilon", "rel_epsilon"):
                value = getattr(comparison, name)
                if value < 0 or value != value:
                    raise InvalidRequest(f"comparison.{name} must be a non-negative number")
        if mode == pb.Comparison.CHECKER:
            self.validate_helper(comparison.checker, "checker")
        if request.HasField("interactor"):
            if request.kind == pb.FUNCTIONAL:
                raise InvalidRequest("a functional problem cannot be interactive")
            if request.interactor.convention != pb.Checker.TESTLIB:
                raise InvalidRequest("interactors follow testlib's convention only")
            self.validate_helper(request.interactor, "interactor")
        names = [request.file_io.input_name, request.file_io.output_name]
        for name in names:
            if name and not _plain_file_name(name, language):
                raise InvalidRequest(
                    f"file_io names must be plain file names (letters, digits, '.', '_', '-'; "
                    f"at most 64; not hidden, not the program's own files), got {name!r}")
        if names[0] and names[0] == names[1]:
            raise InvalidRequest("file_io input_name and output_name must differ")
        return language, limits

    def validate_helper(self, spec: pb.Checker, role: str) -> None:
        language = self.validate_source(spec.source, spec.language)
        if spec.convention not in pb.Checker.Convention.values():
            raise InvalidRequest(f"unknown {role} convention {spec.convention}")
        if (language.compiled and includes_testlib(spec.source)
                and not any(f.name == "testlib.h" for f in spec.files) and self.testlib is None):
            raise InvalidRequest(
                f"the {role} includes testlib.h and carries none: send it in the {role}'s "
                f"files, or start the server with {TESTLIB_ENV}=/path/to/testlib.h "
                f"({WHERE_TO_GET})")

    def _with_testlib(self, spec: pb.Checker) -> pb.Checker:
        """The server's testlib.h for a helper that includes it and brought none."""
        if (self.testlib is None or not includes_testlib(spec.source)
                or any(f.name == "testlib.h" for f in spec.files)):
            return spec
        completed = pb.Checker()
        completed.CopyFrom(spec)
        completed.files.add(name="testlib.h", content=self.testlib)
        return completed

    def helper(self, spec: pb.Checker, cancel: CancelToken | None) -> HelperProgram:
        """A checker or interactor ready to run in a jail of its own."""
        spec = self._with_testlib(spec)
        language = self.language(spec.language)
        jail = self._new_jail(language, cancel)
        try:
            program = HelperProgram(jail, language, spec, self.helper_binaries)
            program.prepare()
        except BaseException:
            self._release(jail, cancel)
            raise
        return program

    # ------------------------------------------------------------ grading
    def grade(self, request: pb.GradeRequest, tests: pb.TestSet,
              cancel: CancelToken | None = None, deadline: float | None = None) -> pb.GradeResponse:
        """Grades one submission. Raises InvalidRequest or Cancelled; a sandbox failure is SE.

        deadline (time.monotonic()): the request's total grading time cap; tests that would
        start after it are SKIPPED and the verdict is TLE unless a test failed already.
        """
        language, limits = self.validate_grade(request, tests)
        started = time.monotonic()
        self._busy(+1)
        try:
            return self._grade(request, tests, language, limits, cancel, deadline, started)
        finally:
            self._busy(-1)

    def _grade(self, request: pb.GradeRequest, tests: pb.TestSet, language: Language,
               limits: RunLimits, cancel: CancelToken | None, deadline: float | None,
               started: float) -> pb.GradeResponse:
        last_error: Exception | None = None
        for _attempt in range(JAIL_ATTEMPTS):
            try:
                response = _Grading(self, request, tests, language, limits, cancel,
                                    deadline).run()
                response.timings.total_s = time.monotonic() - started
                return response
            except JailError as exc:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(str(exc)) from None
                last_error = exc
        return pb.GradeResponse(
            request_id=request.request_id, verdict=pb.SE, total=len(tests.tests),
            message=f"sandbox error: {last_error}",
            timings=pb.Timings(total_s=time.monotonic() - started))

    def execute(self, request: pb.ExecuteRequest,
                cancel: CancelToken | None = None) -> pb.ExecuteResponse:
        language = self.validate_source(request.source, request.language)
        limits = self.resolve(request.limits)
        try:
            uploads = work_files.check_uploads(request.files)
            fetches = work_files.check_fetches(request.fetch_files)
        except work_files.FileRequestError as exc:
            raise InvalidRequest(str(exc)) from None
        reserved = {language.source_file, ".spec.json", ".args.json"}
        clash = sorted(reserved & {path for path, _ in uploads})
        if clash:
            raise InvalidRequest(f"file {clash[0]!r} is where the program's own source goes: "
                                 "give it another name")
        started = time.monotonic()
        self._busy(+1)
        try:
            return _Execution(self, request, language, limits, cancel,
                              uploads, fetches).run(started)
        except JailError as exc:
            if cancel is not None and cancel.cancelled:
                raise Cancelled(str(exc)) from None
            return pb.ExecuteResponse(request_id=request.request_id, verdict=pb.SE,
                                      message=f"sandbox error: {exc}")
        finally:
            self._busy(-1)


class _Program:
    """A submission loaded into a jail: compiled once, then run once per input."""

    def __init__(self, judge: Judge, jail: Jail, language: Language, source: str,
                 kind: int = pb.STDIN, func_name: str = "", prelude: str | None = None,
                 harness: str | None = None, time_limit_s: float = 0.0,
                 results_in_process: bool = True) -> None:
        """prelude "lcb": LiveCodeBench's import header before a Python source run as a
        script; harness "lcb": lcb_runner's execution model (workers/lcb_harness.py), whose
        per-test alarm is time_limit_s. results_in_process: under it, a functional result
        that is not plain data is compared in the program's process, as there."""
        self.judge = judge
        self.jail = jail
        self.language = language
        self.python_spec = None
        if language.python_fast_path:
            self.python_spec = {"file": language.source_file, "source_text": source,
                                "mode": "functional" if kind == pb.FUNCTIONAL else "stdin",
                                "func_name": func_name, "prelude": prelude,
                                "harness": harness, "time_limit_s": time_limit_s,
                                "results_in_process": results_in_process}
        self.source = source

    def prepare(self) -> tuple[bool, str, RawRun | None]:
        """Writes (and compiles) the program. Returns (ok, compile log or reason, the
        compilation's run: None when nothing was compiled)."""
        jail, language = self.jail, self.language
        jail.write_file(language.source_file, self.source.encode("utf-8", errors="surrogatepass"))
        if self.python_spec is not None:
            # Compiled by the jail's own interpreter: a syntax error is a CE, as in
            # lcb_runner (a compile failure) and on Codeforces.
            syntax_error = jail.load_python(self.python_spec)
            if syntax_error:
                return False, syntax_error, None
            if not self.judge.python_fast_path:
                jail.write_file(".spec.json", json.dumps(self.python_spec).encode())
            return True, "", None
        if not language.compiled:
            return True, "", None
        raw = jail.run(COMPILE_LIMITS, argv=list(language.compile_argv), role="compile",
                       clean=False)
        log = (raw.stderr + raw.stdout).decode("utf-8", errors="replace")[:COMPILE_LOG_BYTES]
        reason = compile_limit_exceeded(raw, COMPILE_LIMITS)
        if reason is not None:
            return False, (log.rstrip() + "\n" + reason).lstrip(), raw
        if raw.exit_code != 0 or raw.signal != 0:
            return False, log or f"compiler exited with status {raw.exit_code}/{raw.signal}", raw
        return True, log, raw

    def run(self, limits: RunLimits, stdin: bytes, args: str | None = None, **io) -> RawRun:
        """args: functional problems' arguments as one JSON array text (parsed in the jail,
        whose interpreter reads integers of any length)."""
        """One run; `io` passes stdio_fds / input_file / output_file through to the jail."""
        spec = self.python_spec
        if spec is None:
            return self.jail.run(limits, argv=list(self.language.run_argv), stdin=stdin, **io)
        if self.judge.python_fast_path:
            return self.jail.run(limits, python=spec, stdin=stdin, args=args,
                                 result_channel=bool(spec["harness"]), **io)
        args_file = "-"
        if args is not None:
            self.jail.write_file(".args.json", args.encode())
            args_file = "/work/.args.json"
        argv = [self.language.agent_interpreter, AGENT_MOUNT, "--cold-child",
                "/work/.spec.json", args_file]
        return self.jail.run(limits, argv=argv, stdin=stdin,
                             result_channel=spec["mode"] == "functional" or bool(spec["harness"]),
                             **io)


    @property
    def runs_in_batches(self) -> bool:
        """Whether all tests can go to the agent in one exchange (not for cold Python,
        whose functional arguments are a file per test)."""
        return self.python_spec is None or self.judge.python_fast_path

    def run_all(self, limits: RunLimits, inputs: list[bytes], arguments: list[str] | None,
                deadline_s: float | None, expected: list[bytes] | None = None, **io):
        """Every test in one exchange (Jail.run_tests); `io`: input_file / output_file.
        expected: what lcb_runner's worker may compare in the program's process."""
        spec = self.python_spec
        if spec is None:
            return self.jail.run_tests(limits, inputs, argv=list(self.language.run_argv),
                                       deadline_s=deadline_s, **io)
        return self.jail.run_tests(limits, inputs, python=spec, arguments=arguments,
                                   result_channel=bool(spec["harness"]),
                                   deadline_s=deadline_s, one_process=bool(spec["harness"]),
                                   expected=expected if spec["results_in_process"] else None,
                                   **io)


class _Grading:
    def __init__(self, judge: Judge, request: pb.GradeRequest, tests: pb.TestSet,
                 language: Language, limits: RunLimits, cancel: CancelToken | None,
                 deadline: float | None = None) -> None:
        self.judge = judge
        self.deadline = deadline
        self.request = request
        self.tests = tests
        self.language = language
        self.limits = limits
        self.cancel = cancel
        self.mode = _compare_mode(request.comparison)
        self.stop_first = (request.stop_on_first_failure
                           if request.HasField("stop_on_first_failure") else True)
        # open-r1's rows: the program reads its input without carriage returns at line ends.
        self.open_r1 = self.mode == pb.Comparison.OPEN_R1 or (
            self.mode == pb.Comparison.CHECKER
            and request.comparison.checker.convention == pb.Checker.OPEN_R1)
        # lcb: Python sources run under lcb_runner's execution model, except where it has
        # none (interactive and file-I/O problems run as processes with its comparison).
        self.lcb_harness = (self.mode == pb.Comparison.LCB and language.python_fast_path
                            and not request.HasField("interactor")
                            and not request.file_io.input_name
                            and not request.file_io.output_name)
        # ... where a functional result that is not plain data is compared in the program's
        # process, unless the request wants every result compared as data.
        self.results_in_process = (self.lcb_harness and request.kind == pb.FUNCTIONAL
                                   and not request.comparison.results_as_data)

    def run(self) -> pb.GradeResponse:
        request = self.request
        response = pb.GradeResponse(request_id=request.request_id, total=len(self.tests.tests))
        t0 = time.monotonic()
        jail = self.judge._new_jail(self.language, self.cancel)
        helper = None
        try:
            response.timings.jail_start_s = time.monotonic() - t0
            lcb = self.mode in (pb.Comparison.LCB, pb.Comparison.LCB_PROCESS)
            prelude = "lcb" if lcb and not self.lcb_harness else None
            program = _Program(self.judge, jail, self.language, request.source, request.kind,
                               request.func_name, prelude,
                               harness="lcb" if self.lcb_harness else None,
                               time_limit_s=self.limits.time_limit_s,
                               results_in_process=self.results_in_process)
            ok, log, compiled = program.prepare()
            _report_compilation(response, log, compiled)
            if not ok:
                response.verdict = pb.CE
                response.message = _compile_message(compiled)
                return response
            if request.HasField("interactor"):
                helper = self.judge.helper(request.interactor, self.cancel)
            elif self.mode == pb.Comparison.CHECKER:
                helper = self.judge.helper(request.comparison.checker, self.cancel)
            t1 = time.monotonic()
            self._run_tests(program, helper, response)
            response.timings.run_s = time.monotonic() - t1
        finally:
            if helper is not None:
                self.judge._release(helper.jail, self.cancel)
            self.judge._release(jail, self.cancel)
        return response

    def _run_tests(self, program: _Program, helper: HelperProgram | None,
                   response: pb.GradeResponse) -> None:
        if program.runs_in_batches and not self.request.HasField("interactor"):
            self._run_batch(program, helper, response)
            return
        failed = False
        for index, test in enumerate(self.tests.tests):
            if self.cancel is not None and self.cancel.cancelled:
                raise JailError("the jail was killed (request cancelled)")
            if failed and self.stop_first:
                response.tests.add(index=index, verdict=pb.SKIPPED)
                continue
            limits = self._limits_before_deadline()
            if limits is None:
                self._stop_at_deadline(response, index, failed)
                return
            args = None
            if self.request.kind == pb.FUNCTIONAL:
                args = "[" + ",".join(test.input.decode("utf-8").split("\n")) + "]"
            if self.request.HasField("interactor"):
                raw, verdict, message = self._interact(program, helper, test)
            else:
                stdin = open_r1.strip_carriage_returns(test.input) if self.open_r1 else test.input
                raw = program.run(limits, stdin, args,
                                  input_file=self.request.file_io.input_name,
                                  output_file=self.request.file_io.output_name)
                verdict, message = self._judge_test(raw, test, helper)
                if limits is not self.limits and raw.killed_for == "wall":
                    verdict, message = pb.TLE, f"stopped: {DEADLINE_MESSAGE}"
            result = response.tests.add(index=index, verdict=verdict, usage=_usage(raw),
                                        message=message, points=_points(message))
            result.exit.exit_code = raw.exit_code
            result.exit.signal = raw.signal
            if verdict == pb.AC:
                response.passed += 1
                continue
            if not failed:
                failed = True
                response.verdict = verdict
                response.message = f"test {index}: {message}"
                self._excerpt(response.first_failure, index, test, raw)
        if not failed:
            response.verdict = pb.AC

    def _arguments(self, test: pb.TestCase) -> str | None:
        if self.request.kind != pb.FUNCTIONAL:
            return None
        return "[" + ",".join(test.input.decode("utf-8").split("\n")) + "]"

    def _run_batch(self, program: _Program, helper: HelperProgram | None,
                   response: pb.GradeResponse) -> None:
        """All tests in one exchange; each result is judged as it arrives, and the first
        failure stops the agent (with stop_on_first_failure), as the per-test loop does."""
        tests = self.tests.tests
        if self.deadline is not None and self.deadline - time.monotonic() <= 0:
            self._stop_at_deadline(response, 0, False)
            return
        inputs = [open_r1.strip_carriage_returns(t.input) if self.open_r1 else t.input
                  for t in tests]
        arguments = ([self._arguments(t) for t in tests]
                     if self.request.kind == pb.FUNCTIONAL else None)
        deadline_s = None if self.deadline is None else self.deadline - time.monotonic()
        # lcb_runner compares a returned object in the program's process (its own __eq__).
        expected = ([t.output for t in tests] if self.results_in_process else None)
        batch = program.run_all(self.limits, inputs, arguments, deadline_s, expected,
                                input_file=self.request.file_io.input_name,
                                output_file=self.request.file_io.output_name)
        failed = False
        answered = 0
        try:
            for item in batch:
                if self.cancel is not None and self.cancel.cancelled:
                    raise JailError("the jail was killed (request cancelled)")
                index = item.index
                if item.run is None:
                    self._stop_at_deadline(response, index, failed)
                    answered = len(tests)
                    break
                raw, test = item.run, tests[index]
                verdict, message = self._judge_test(raw, test, helper, item.expected_sent)
                if item.wall_cut and raw.killed_for == "wall":
                    verdict, message = pb.TLE, f"stopped: {DEADLINE_MESSAGE}"
                self._record(response, index, test, raw, verdict, message, failed)
                answered = index + 1
                if verdict != pb.AC:
                    failed = True
                    if self.stop_first:
                        batch.stop()
                        break
        except BaseException:
            raise  # the jail is closed by the caller: no need to read the batch to its end
        else:
            batch.finish()
        if not failed and answered < len(tests):
            raise JailError(f"the jail's agent ended the tests after {answered} of {len(tests)}")
        for index in range(answered, len(tests)):
            response.tests.add(index=index, verdict=pb.SKIPPED)
        if not failed:
            response.verdict = pb.AC

    def _record(self, response: pb.GradeResponse, index: int, test: pb.TestCase, raw: RawRun,
                verdict: int, message: str, failed_before: bool) -> None:
        """Adds a test's result; the first failure is the submission's verdict."""
        result = response.tests.add(index=index, verdict=verdict, usage=_usage(raw),
                                    message=message, points=_points(message))
        result.exit.exit_code = raw.exit_code
        result.exit.signal = raw.signal
        if verdict == pb.AC:
            response.passed += 1
        elif not failed_before:
            response.verdict = verdict
            response.message = f"test {index}: {message}"
            self._excerpt(response.first_failure, index, test, raw)

    def _limits_before_deadline(self) -> RunLimits | None:
        """The test's limits, its wall clock cut to the time left; None once none is left."""
        if self.deadline is None:
            return self.limits
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        if left < self.limits.wall_s:
            return replace(self.limits, wall_limit_s=left)
        return self.limits

    def _stop_at_deadline(self, response: pb.GradeResponse, first: int, failed: bool) -> None:
        for index in range(first, len(self.tests.tests)):
            response.tests.add(index=index, verdict=pb.SKIPPED,
                               message=f"not run: {DEADLINE_MESSAGE}")
        if not failed:
            response.verdict = pb.TLE
            response.message = f"test {first}: not run: {DEADLINE_MESSAGE}"

    def _interact(self, program: _Program, interactor: HelperProgram,
                  test: pb.TestCase) -> tuple[RawRun, int, str]:
        """Runs the program and the interactor at once, each in its jail, joined by pipes."""
        interactor.jail.write_file(INTERACTOR_FILES[0], test.input)
        to_interactor_r, to_interactor_w = os.pipe()
        to_program_r, to_program_w = os.pipe()
        limits = replace(HELPER_LIMITS, wall_limit_s=self.limits.wall_s + 5.0)
        outcome: dict = {}

        def run_interactor() -> None:
            try:
                outcome["raw"] = interactor.run(limits, *INTERACTOR_FILES,
                                                stdio_fds=(to_interactor_r, to_program_w))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the grading thread
                outcome["error"] = exc

        thread = threading.Thread(target=run_interactor, name="interactor", daemon=True)
        thread.start()
        try:
            raw = program.run(self.limits, b"", None, stdio_fds=(to_program_r, to_interactor_w))
        finally:
            thread.join()
        if "error" in outcome:
            raise outcome["error"]
        failure = classify_run(raw, self.limits)
        if failure is not None and failure[0] != pb.RE:
            return raw, failure[0], failure[1]
        if _interactor_hit_a_closed_pipe(outcome["raw"]):
            # Its writes reach only the program: the program closed its input or exited
            # while the interaction was going on.
            return raw, pb.WA, ("the program stopped reading its input while the interactor "
                                "was still writing to it")
        verdict, message = exit_code_verdict(outcome["raw"], "interactor")
        if verdict == pb.AC and failure is not None:
            return raw, failure[0], failure[1]
        return raw, verdict, message

    def _judge_test(self, raw: RawRun, test: pb.TestCase, checker: HelperProgram | None,
                    compared_in_jail: bool = False) -> tuple[int, str]:
        """compared_in_jail: the test's expected output was sent to lcb_runner's worker,
        whose own comparison then counts."""
        if self.lcb_harness:
            failure = lcb_outcome.harness_failure(raw, self.limits)
        else:
            failure = classify_run(raw, self.limits)
        if failure is not None:
            return failure
        if self.request.kind == pb.FUNCTIONAL:
            result = lcb_outcome.functional_payload(raw.result) if self.lcb_harness else raw.result
            outcome = compare.compare_functional(result, test.output, compared_in_jail)
        elif self.mode in (pb.Comparison.LCB, pb.Comparison.LCB_PROCESS):
            outcome = compare.compare_lcb_stdin(raw.stdout, test.output)
        elif self.mode == pb.Comparison.EXACT:
            outcome = compare.compare_exact(raw.stdout, test.output)
        elif self.mode == pb.Comparison.TOKENS:
            outcome = compare.compare_tokens(raw.stdout, test.output)
        elif self.mode == pb.Comparison.OPEN_R1:
            outcome = open_r1.compare_plain(raw.stdout, test.output)
        elif self.mode == pb.Comparison.FLOAT:
            comparison = self.request.comparison
            outcome = compare.compare_float(raw.stdout, test.output, comparison.abs_epsilon,
                                            comparison.rel_epsilon)
        else:
            return check_output(checker, test, raw.stdout)
        if outcome.raised:
            return pb.RE, (f"{outcome.message}: comparing a signaling NaN raises "
                           "decimal.InvalidOperation (a runtime error in lcb_runner)")
        return (pb.AC if outcome.accepted else pb.WA), outcome.message

    @staticmethod
    def _excerpt(target: pb.FailureExcerpt, index: int, test: pb.TestCase, raw: RawRun) -> None:
        target.test_index = index
        truncated = False
        for name, data in (("input", test.input), ("stdout", raw.stdout),
                           ("stderr", raw.stderr), ("expected", test.output)):
            cut, was_cut = _excerpt(data)
            setattr(target, name, cut)
            truncated = truncated or was_cut
        target.truncated = truncated


class _Execution:
    def __init__(self, judge: Judge, request: pb.ExecuteRequest, language: Language,
                 limits: RunLimits, cancel: CancelToken | None,
                 uploads: list[tuple[str, bytes]] = (), fetches: list[str] = ()) -> None:
        self.judge, self.request, self.language = judge, request, language
        self.limits, self.cancel = limits, cancel
        self.uploads, self.fetches = uploads, fetches

    def run(self, started: float) -> pb.ExecuteResponse:
        request = self.request
        response = pb.ExecuteResponse(request_id=request.request_id)
        jail = self.judge._new_jail(self.language, self.cancel)
        try:
            response.timings.jail_start_s = time.monotonic() - started
            for path, content in self.uploads:
                jail.write_file(path, content, parents=True)
            program = _Program(self.judge, jail, self.language, request.source)
            ok, log, compiled = program.prepare()
            _report_compilation(response, log, compiled)
            if not ok:
                response.verdict = pb.CE
                response.message = _compile_message(compiled)
                return response
            t1 = time.monotonic()
            raw = program.run(self.limits, request.stdin, clean=not self.fetches)
            response.timings.run_s = time.monotonic() - t1
            fetch_note = self._fetch(jail, response)
        finally:
            self.judge._release(jail, self.cancel)
        failure = classify_run(raw, self.limits)
        response.verdict, response.message = failure if failure else (pb.AC, "")
        if fetch_note:
            response.message = f"{response.message}; {fetch_note}" if response.message else fetch_note
        response.stdout, response.stderr = raw.stdout, raw.stderr
        response.exit.exit_code, response.exit.signal = raw.exit_code, raw.signal
        response.usage.CopyFrom(_usage(raw))
        response.timings.total_s = time.monotonic() - started
        return response

    def _fetch(self, jail: Jail, response: pb.ExecuteResponse) -> str:
        """Reads back fetch_files into the response; past MAX_FETCH_BYTES in all, the rest
        is left out and the returned note says so."""
        budget = work_files.MAX_FETCH_BYTES
        for path in self.fetches:
            content = jail.fetch_file(path, budget)
            if content is None:
                continue
            if len(content) > budget:
                return (f"fetched files are cut at {work_files.MAX_FETCH_BYTES} bytes in all: "
                        f"{path} and the ones after it are left out")
            budget -= len(content)
            response.files.add(name=path, content=content)
        return ""

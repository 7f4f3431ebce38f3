"""Grading a samples file: concurrent, resumable, interruptible, with a progress bar.

Each problem's tests are stored once (PutTestSet on a server, the embedded store otherwise)
and every sample refers to them by digest. At most `concurrency` gradings run at once, in
threads. Results are appended to results.jsonl as they finish; samples already there are
skipped. The first Ctrl-C (or SIGTERM) cancels the gradings in flight and stops, keeping every
finished result; a second one aborts at once.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import grpc

from sandbox.evaluation.results import ResultsFile
from sandbox.evaluation.samples import Sample
from sandbox.problem import Problem
from sandbox.v1 import sandbox_pb2 as pb

NO_CODE = "NO_CODE"
INVALID = "INVALID"        # the sandbox refused the submission itself (e.g. unknown language)
TEST_MARKS = {pb.AC: ".", pb.WA: "W", pb.TLE: "T", pb.MLE: "M", pb.RE: "R", pb.CE: "C",
              pb.OLE: "O", pb.PE: "P", pb.SE: "E", pb.SKIPPED: "-"}
TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
             grpc.StatusCode.DEADLINE_EXCEEDED}
MESSAGE_CHARS = 300


class GradingFailed(Exception):
    """A sample could not be graded (server unreachable, ...): it is not written, a rerun retries it."""


class Cancelled(Exception):
    """The grading was cancelled by an interruption."""


def verdict_name(value: int) -> str:
    return pb.Verdict.Name(value) if value else "-"


def _status(exc: Exception) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if isinstance(code, grpc.StatusCode):       # sandbox.service.RequestRejected
        return code
    if callable(code):                          # grpc.RpcError
        try:
            return code()
        except Exception:  # noqa: BLE001 - not a call error
            return None
    return None


def _details(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        return details() or str(exc)
    return getattr(exc, "message", None) or str(exc)


class Grader:
    """Grades samples on a SandboxClient or an EmbeddedSandbox; thread-safe."""

    def __init__(self, backend, *, se_retries: int = 1, transient_retries: int = 3,
                 backoff_s: float = 1.0) -> None:
        self.backend = backend
        self.core = getattr(backend, "core", None)          # the embedded sandbox's engine
        self.se_retries = se_retries
        self.transient_retries = transient_retries
        self.backoff_s = backoff_s
        self._digests: dict[str, str] = {}
        self._upload_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._tokens: set = set()
        self._aborted = threading.Event()
        self.uploads = 0

    # ------------------------------------------------------------ test sets
    def _upload(self, problem: Problem) -> str:
        test_set = problem.test_set()
        self.uploads += 1
        if self.core is not None:
            return self.core.store.put(test_set)
        return self.backend.put_test_set(test_set)

    def digest(self, problem: Problem, *, again: bool = False) -> str:
        """The digest of the problem's tests, uploaded once (again after a NOT_FOUND)."""
        with self._lock:
            lock = self._upload_locks.setdefault(problem.id, threading.Lock())
        with lock:
            if again or problem.id not in self._digests:
                self._digests[problem.id] = self._call(self._upload, problem)
            return self._digests[problem.id]

    # ------------------------------------------------------------ calls
    def _call(self, func, *args):
        """Retries transient failures (queue full, server away) with backoff."""
        for attempt in range(self.transient_retries + 1):
            if self._aborted.is_set():
                raise Cancelled()
            try:
                return func(*args)
            except Exception as exc:  # noqa: BLE001 - classified below
                status = _status(exc)
                if self._aborted.is_set():
                    raise Cancelled() from None
                if status in TRANSIENT and attempt < self.transient_retries:
                    time.sleep(self.backoff_s * 2 ** attempt)
                    continue
                if status is None and not isinstance(exc, grpc.RpcError):
                    raise
                raise GradingFailed(f"{status.name if status else 'ERROR'}: {_details(exc)}") from None
        raise AssertionError("unreachable")

    def _grade_once(self, request: pb.GradeRequest) -> pb.GradeResponse:
        if self.core is None:
            return self.backend.grade(request)
        from workers.judge import CancelToken, Cancelled as JudgeCancelled
        token = CancelToken()
        with self._lock:
            self._tokens.add(token)
        try:
            if self._aborted.is_set():
                raise Cancelled()
            return self.core.grade(request, token)
        except JudgeCancelled:
            raise Cancelled() from None
        finally:
            with self._lock:
                self._tokens.discard(token)

    def abort(self) -> None:
        """Cancels every grading in flight (jails killed, or the channel closed)."""
        self._aborted.set()
        if self.core is not None:
            with self._lock:
                tokens = list(self._tokens)
            for token in tokens:
                token.cancel()
        else:
            self.backend.close()

    # ------------------------------------------------------------ one sample
    def grade(self, problem: Problem, sample: Sample) -> dict:
        """The results.jsonl row of one sample."""
        row = {"problem_id": sample.problem_id, "sample_index": sample.sample_index,
               "language": sample.language, "budget": sample.budget}
        if sample.code is None:
            return row | {"verdict": NO_CODE, "tests": "", "passed": 0,
                          "total": len(problem.tests), "timings": {}}
        request_id = f"{sample.problem_id}#{sample.sample_index}"
        response = None
        for _attempt in range(self.se_retries + 1):
            digest = self.digest(problem)
            request = problem.grade_request(sample.code, sample.language,
                                            request_id=request_id, digest=digest)
            try:
                response = self._call(self._grade_once, request)
            except GradingFailed as exc:
                text = str(exc)
                if text.startswith("NOT_FOUND"):      # the server lost the tests: once more
                    self.digest(problem, again=True)
                    response = self._call(self._grade_once, request)
                elif text.startswith("INVALID_ARGUMENT"):
                    return row | {"verdict": INVALID, "tests": "", "passed": 0,
                                  "total": len(problem.tests), "timings": {},
                                  "message": text[:MESSAGE_CHARS]}
                else:
                    raise
            if response.verdict != pb.SE:
                break
        timings = response.timings
        row |= {"verdict": verdict_name(response.verdict),
                "tests": "".join(TEST_MARKS.get(t.verdict, "?") for t in response.tests),
                "passed": response.passed, "total": response.total,
                "timings": {"total_s": round(timings.total_s, 4),
                            "queue_s": round(timings.queue_s, 4),
                            "compile_s": round(timings.compile_s, 4),
                            "run_s": round(timings.run_s, 4)}}
        if response.verdict != pb.AC and response.message:
            row["message"] = response.message[:MESSAGE_CHARS]
        return row


# ---------------------------------------------------------------- progress

class _PlainProgress:
    """A minimal stand-in for tqdm: count, rate and ETA on one stderr line."""

    def __init__(self, total: int, initial: int, desc: str) -> None:
        self.total, self.n, self.start_n, self.desc = total, initial, initial, desc
        self.started = time.monotonic()
        self.postfix = ""
        self._last = 0.0

    def update(self, count: int = 1) -> None:
        self.n += count
        now = time.monotonic()
        if now - self._last >= 0.5 or self.n >= self.total:
            self._last = now
            rate = (self.n - self.start_n) / max(now - self.started, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            eta_text = f"{eta:.0f}s" if eta != float("inf") else "?"
            print(f"\r{self.desc}: {self.n}/{self.total} [{rate:.2f} sample/s, ETA {eta_text}]"
                  f"{' ' + self.postfix if self.postfix else ''}", end="", file=sys.stderr,
                  flush=True)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        print(file=sys.stderr)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(total, initial, "grading")
    return tqdm(total=total, initial=initial, desc="grading", unit="sample", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)


# ---------------------------------------------------------------- the run

@dataclass
class RunStats:
    total: int = 0
    already_done: int = 0
    graded: int = 0
    failed: list = field(default_factory=list)      # [(problem_id, sample_index, reason)]
    interrupted: bool = False
    stopped: str = ""                               # why the run stopped early, if it did


class _StopFlag:
    """SIGINT / SIGTERM handler: the first sets the flag, a second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def run_samples(problems: dict[str, Problem], samples: list[Sample], grader: Grader,
                results: ResultsFile, *, concurrency: int = 4, progress: bool = True,
                max_consecutive_failures: int | None = None) -> RunStats:
    """Grades the samples not yet in `results`, appending each row as it is ready."""
    todo = [s for s in samples if s.key not in results.existing]
    stats = RunStats(total=len(samples), already_done=len(samples) - len(todo))
    limit = max_consecutive_failures or max(8, 2 * concurrency)
    bar = _progress(len(samples), stats.already_done, progress)
    passed = sum(1 for s in samples if results.existing.get(s.key, {}).get("verdict") == "AC")
    consecutive_failures = 0

    def record(row: dict) -> None:
        nonlocal passed
        results.append(row)
        stats.graded += 1
        passed += row["verdict"] == "AC"
        if bar is not None:
            bar.update(1)
            done = stats.already_done + stats.graded
            bar.set_postfix_str(f"AC {100 * passed / done:.1f}%", refresh=False)

    pending: dict[Future, Sample] = {}
    queue = iter(todo)
    exhausted = False
    with _StopFlag() as stop, ThreadPoolExecutor(max_workers=max(1, concurrency),
                                                 thread_name_prefix="grade") as pool:
        try:
            while True:
                while not exhausted and len(pending) < concurrency and not stop.event.is_set() \
                        and not stats.stopped:
                    sample = next(queue, None)
                    if sample is None:
                        exhausted = True
                        break
                    if sample.code is None:   # nothing to run
                        record(grader.grade(problems[sample.problem_id], sample))
                        continue
                    pending[pool.submit(grader.grade, problems[sample.problem_id], sample)] = sample
                if not pending:
                    break
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    sample = pending.pop(future)
                    try:
                        row = future.result()
                    except Cancelled:
                        continue
                    except GradingFailed as exc:
                        stats.failed.append((sample.problem_id, sample.sample_index, str(exc)))
                        consecutive_failures += 1
                        if consecutive_failures >= limit and not stats.stopped:
                            stats.stopped = (f"{consecutive_failures} gradings failed in a row "
                                             f"(last: {exc})")
                        continue
                    consecutive_failures = 0
                    record(row)
                if stop.event.is_set() and not stats.interrupted:
                    stats.interrupted = True
                    grader.abort()
        except KeyboardInterrupt:
            stats.interrupted = True
            grader.abort()
            for future in pending:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
    return stats

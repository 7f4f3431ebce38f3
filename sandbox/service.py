"""The sandbox.v1 service: admission (bounded queue), cancellation, and the RPC handlers."""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from sandbox.digest import is_digest
from sandbox.info import build_info
from sandbox.settings import positive_from_env
from sandbox.streaming import stream_answers
from sandbox.testsets import TestSetStore, client_identity
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from workers.judge import DEADLINE_MESSAGE, CancelToken, Cancelled, InvalidRequest, Judge

log = logging.getLogger("sandbox.service")

DEFAULT_MAX_GRADE_S = 600.0
MAX_GRADE_ENV = "SANDBOX_MAX_GRADE_S"


def available_cpus() -> int:
    """CPUs this process may use: affinity, capped by a cgroup v2 CPU quota (containers)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


class RequestRejected(Exception):
    """A request answered with a gRPC status instead of a result."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _cap_reached(reached: threading.Event, token: CancelToken) -> None:
    reached.set()
    token.cancel()


BACKSTOP_S = 60.0  # beyond the cap: a step the judge cannot cut short (an interaction)


class GradeTimeCap:
    """Bounds one grading's wall time (tests × up to 180 s each otherwise). The judge stops
    at `deadline`: tests that would start after it are SKIPPED (the ones done keep their
    results) and each test's wall clock is cut to the time left. Should a step still run
    BACKSTOP_S later, the grading's jails are killed and the answer is TLE saying so."""

    def __init__(self, seconds: float, token: CancelToken) -> None:
        self.seconds = seconds
        self.token = token
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self._reached = threading.Event()
        # A plain function, not a bound method: the timer must not refer back to this object
        # (a reference cycle would keep the grading's jails' token until a full GC pass).
        self._timer = threading.Timer(seconds + BACKSTOP_S, _cap_reached, (self._reached, token))
        self._timer.daemon = True
        self._timer.start()

    @property
    def reached(self) -> bool:
        return self._reached.is_set()

    def stop(self) -> None:
        self._timer.cancel()

    def answer(self, request: pb.GradeRequest, tests: pb.TestSet) -> pb.GradeResponse:
        elapsed = time.monotonic() - self.started
        return pb.GradeResponse(
            request_id=request.request_id, verdict=pb.TLE, total=len(tests.tests),
            message=(f"the grading was stopped after {elapsed:.1f} s: this server caps a "
                     f"request's total grading time at {self.seconds:g} s ({MAX_GRADE_ENV}); "
                     "the tests not finished by then were not run"),
            timings=pb.Timings(total_s=elapsed))


class SandboxCore:
    """Everything but transport: the judge, the test-set store, test resolution.

    The embedded sandbox calls it directly; the gRPC service wraps it.
    """

    def __init__(self, judge: Judge | None = None, store: TestSetStore | None = None,
                 max_grade_s: float | None = None) -> None:
        self.judge = judge or Judge()
        self.store = store if store is not None else TestSetStore()
        self.max_grade_s = (positive_from_env(MAX_GRADE_ENV, DEFAULT_MAX_GRADE_S, float)
                            if max_grade_s is None else max_grade_s)

    def tests_for(self, request: pb.GradeRequest, client: str = "") -> tuple[pb.TestSet, str]:
        which = request.WhichOneof("tests")
        if which == "test_set":
            return request.test_set, self.store.put(request.test_set, client)
        if which == "test_set_digest":
            digest = request.test_set_digest
            if not is_digest(digest):
                raise RequestRejected(grpc.StatusCode.INVALID_ARGUMENT,
                                      f"test_set_digest must be 64 lowercase hex characters, got {digest[:80]!r}")
            found = self.store.get(digest)
            if found is None:
                raise RequestRejected(grpc.StatusCode.NOT_FOUND,
                                      f"no test set with digest {digest}: upload it with PutTestSet")
            return found, digest
        raise RequestRejected(grpc.StatusCode.INVALID_ARGUMENT,
                              "the request has no tests: set test_set or test_set_digest")

    def grade(self, request: pb.GradeRequest, cancel: CancelToken | None = None,
              client: str = "") -> pb.GradeResponse:
        """Grades within max_grade_s; `client` is who pays for an inline test set's storage."""
        tests, digest = self.tests_for(request, client)
        cap = GradeTimeCap(self.max_grade_s, cancel or CancelToken())
        try:
            response = self.judge.grade(request, tests, cap.token, deadline=cap.deadline)
        except InvalidRequest as exc:
            raise RequestRejected(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        except Cancelled:
            if not cap.reached:
                raise
        finally:
            cap.stop()
        if cap.reached:  # also when it fired during the last test: its result is not its own
            response = cap.answer(request, tests)
        elif response.message.endswith(DEADLINE_MESSAGE):
            response.message += f" ({self.max_grade_s:g} s, {MAX_GRADE_ENV})"
        response.test_set_digest = digest
        return response

    def execute(self, request: pb.ExecuteRequest, cancel: CancelToken | None = None) -> pb.ExecuteResponse:
        try:
            return self.judge.execute(request, cancel)
        except InvalidRequest as exc:
            raise RequestRejected(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


class SandboxService(pb_grpc.SandboxServicer):
    """Runs at most `capacity` jobs at once; up to `max_queue` more wait; beyond: RESOURCE_EXHAUSTED."""

    def __init__(self, core: SandboxCore, capacity: int | None = None, max_queue: int | None = None) -> None:
        self.core = core
        self.capacity = capacity or available_cpus()
        self.max_queue = self.capacity * 16 if max_queue is None else max_queue
        self._pool = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="grade")
        self._admitted = 0
        self._tokens: set[CancelToken] = set()

    # ------------------------------------------------------------ scheduling
    async def _run(self, func, request, context) -> object:
        if self._admitted >= self.capacity + self.max_queue:
            retry_ms = 250 * max(1, self._admitted // self.capacity)
            raise RequestRejected(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the sandbox is full ({self._admitted} requests in flight or queued); "
                f"retry in about {retry_ms} ms")
        self._admitted += 1
        token = CancelToken()
        self._tokens.add(token)
        queued_at = time.monotonic()

        def job():
            queue_s = time.monotonic() - queued_at
            result = func(request, token)
            if hasattr(result, "timings"):
                result.timings.queue_s = queue_s
            return result

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, job)
        except asyncio.CancelledError:
            token.cancel()  # client cancelled or deadline passed: kill the jail now
            raise
        except Cancelled as exc:
            raise RequestRejected(grpc.StatusCode.CANCELLED, str(exc)) from None
        finally:
            self._admitted -= 1
            self._tokens.discard(token)

    def cancel_all(self) -> None:
        for token in list(self._tokens):
            token.cancel()

    def shutdown(self) -> None:
        self.cancel_all()
        self.core.judge.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _reject(context, exc: RequestRejected) -> None:
        """Sets the call's status instead of context.abort(): abort raises, and grpc keeps
        that exception in a reference cycle with the handler's frames, so the request (all of
        it, however big) would live until the garbage collector's next full pass."""
        if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            context.set_trailing_metadata((("retry-after-ms", "500"),))
        context.set_code(exc.code)
        context.set_details(exc.message)

    async def _unary(self, func, request, context):
        try:
            return await self._run(func, request, context)
        except RequestRejected as exc:
            self._reject(context, exc)
        except Exception as exc:  # noqa: BLE001 - never crash the server on one request
            log.exception("internal error")
            self._reject(context, RequestRejected(grpc.StatusCode.INTERNAL, f"internal error: {exc}"))
        return None

    # ------------------------------------------------------------ other transports (HTTP)
    async def run_execute(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """Execute under the same admission as the RPC; raises RequestRejected."""
        return await self._run(self.core.execute, request, None)

    async def run_grade(self, request: pb.GradeRequest, client: str) -> pb.GradeResponse:
        """Grade under the same admission as the RPC; raises RequestRejected."""
        return await self._run(functools.partial(self.core.grade, client=client), request, None)

    # ------------------------------------------------------------ RPCs
    async def Grade(self, request, context):
        grade = functools.partial(self.core.grade, client=client_identity(context.peer()))
        return await self._unary(grade, request, context)

    async def Execute(self, request, context):
        return await self._unary(self.core.execute, request, context)

    async def GradeStream(self, request_iterator, context):
        grade_one = functools.partial(self.core.grade, client=client_identity(context.peer()))

        async def grade(request: pb.GradeRequest) -> pb.GradeResponse:
            return await self._run(grade_one, request, context)

        async for answer in stream_answers(request_iterator, grade, RequestRejected):
            yield answer

    async def PutTestSet(self, request, context):
        if not request.test_set.tests:
            self._reject(context, RequestRejected(grpc.StatusCode.INVALID_ARGUMENT,
                                                  "the test set is empty"))
            return None
        client = client_identity(context.peer())
        return pb.PutTestSetResponse(digest=self.core.store.put(request.test_set, client))

    async def HasTestSet(self, request, context):
        return pb.HasTestSetResponse(present=request.digest in self.core.store)

    async def Info(self, request, context):
        info = build_info(self.core.judge, self.capacity, self.max_queue)
        info.in_flight = self._admitted
        return info

"""The sandbox.v1 service: admission (bounded queue), cancellation, and the RPC handlers."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from sandbox.digest import is_digest
from sandbox.info import build_info
from sandbox.streaming import stream_answers
from sandbox.testsets import TestSetStore
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc
from workers.judge import CancelToken, Cancelled, InvalidRequest, Judge

log = logging.getLogger("sandbox.service")


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


class SandboxCore:
    """Everything but transport: the judge, the test-set store, test resolution.

    The embedded sandbox calls it directly; the gRPC service wraps it.
    """

    def __init__(self, judge: Judge | None = None, store: TestSetStore | None = None) -> None:
        self.judge = judge or Judge()
        self.store = store or TestSetStore()

    def tests_for(self, request: pb.GradeRequest) -> tuple[pb.TestSet, str]:
        which = request.WhichOneof("tests")
        if which == "test_set":
            return request.test_set, self.store.put(request.test_set)
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

    def grade(self, request: pb.GradeRequest, cancel: CancelToken | None = None) -> pb.GradeResponse:
        tests, digest = self.tests_for(request)
        try:
            response = self.judge.grade(request, tests, cancel)
        except InvalidRequest as exc:
            raise RequestRejected(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
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
        self._pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    async def _abort(context, exc: RequestRejected):
        if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            context.set_trailing_metadata((("retry-after-ms", "500"),))
        await context.abort(exc.code, exc.message)

    async def _unary(self, func, request, context):
        try:
            return await self._run(func, request, context)
        except RequestRejected as exc:
            await self._abort(context, exc)
        except Exception as exc:  # noqa: BLE001 - never crash the server on one request
            log.exception("internal error")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc}")

    # ------------------------------------------------------------ RPCs
    async def Grade(self, request, context):
        return await self._unary(self.core.grade, request, context)

    async def Execute(self, request, context):
        return await self._unary(self.core.execute, request, context)

    async def GradeStream(self, request_iterator, context):
        async def grade(request: pb.GradeRequest) -> pb.GradeResponse:
            return await self._run(self.core.grade, request, context)

        async for answer in stream_answers(request_iterator, grade, RequestRejected):
            yield answer

    async def PutTestSet(self, request, context):
        if not request.test_set.tests:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the test set is empty")
        return pb.PutTestSetResponse(digest=self.core.store.put(request.test_set))

    async def HasTestSet(self, request, context):
        return pb.HasTestSetResponse(present=request.digest in self.core.store)

    async def Info(self, request, context):
        info = build_info(self.core.judge, self.capacity, self.max_queue)
        info.in_flight = self._admitted
        return info

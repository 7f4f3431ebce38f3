"""The gateway: the public sandbox.v1 endpoint in front of a fleet of workers.

Each request goes to the least-loaded healthy worker. Grading is pure, so when a
worker dies or stops answering mid-request, or answers SE, the request is run
again on another worker: no request is lost, and none is answered SE while a
healthy worker exists. Test sets are cached here by digest and pushed to the
chosen worker before it needs them.
"""
from __future__ import annotations

import asyncio
import logging
import time

import grpc

from sandbox.digest import is_digest
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.streaming import stream_answers
from sandbox.gateway.registry import NoWorker, Worker, WorkerRegistry
from sandbox.testsets import TestSetStore
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

log = logging.getLogger("sandbox.gateway")

MAX_ATTEMPTS = 8
NO_WORKER_WAIT_S = 10.0  # how long a request waits for a worker to appear
DEFAULT_DEADLINE_S = 3600.0
# Worker answers that mean "this worker failed", so another one should take the request.
_WORKER_FAILURES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}


class Rejected(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class GatewayService(pb_grpc.SandboxServicer):
    def __init__(self, registry: WorkerRegistry, metrics: GatewayMetrics,
                 max_pending: int = 4096) -> None:
        self.registry = registry
        self.metrics = metrics
        self.store = TestSetStore()
        self.max_pending = max_pending
        self._pending = 0

    # ------------------------------------------------------------ routing
    def _tests_of(self, request: pb.GradeRequest) -> tuple[str | None, pb.TestSet | None]:
        which = request.WhichOneof("tests")
        if which == "test_set_digest":
            digest = request.test_set_digest
            if not is_digest(digest):
                raise Rejected(grpc.StatusCode.INVALID_ARGUMENT,
                               "test_set_digest must be 64 lowercase hex characters")
            found = self.store.get(digest)
            if found is None:
                raise Rejected(grpc.StatusCode.NOT_FOUND,
                               f"no test set with digest {digest}: upload it with PutTestSet")
            return digest, found
        return None, None

    async def _forward(self, method: str, request, deadline: float, language: str = "",
                       digest: str | None = None, test_set: pb.TestSet | None = None):
        tried: set[Worker] = set()
        failures = 0
        last_error = "no worker answered"
        while True:
            try:
                worker = await self.registry.acquire(deadline, NO_WORKER_WAIT_S, tried)
            except NoWorker as exc:
                raise Rejected(grpc.StatusCode.UNAVAILABLE,
                               f"no sandbox worker is available ({exc}); start workers or retry "
                               f"later (last: {last_error})") from None
            except TimeoutError:
                raise Rejected(grpc.StatusCode.DEADLINE_EXCEEDED,
                               "deadline exceeded while waiting for a free worker") from None
            if failures or tried:
                self.metrics.retries.inc()
            self.metrics.in_flight.inc()
            try:
                if digest and digest not in worker.test_sets:
                    await worker.stub.PutTestSet(pb.PutTestSetRequest(test_set=test_set),
                                                 timeout=max(0.1, deadline - time.monotonic()))
                    worker.test_sets.add(digest)
                reply = await getattr(worker.stub, method)(
                    request, timeout=max(0.1, deadline - time.monotonic()))
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.NOT_FOUND and digest:
                    worker.test_sets.discard(digest)  # the worker lost it: push it again
                    last_error = "a worker lost a test set"
                    continue
                if time.monotonic() >= deadline:
                    raise Rejected(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded") from None
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    last_error = f"worker {worker.name} is full"
                    await asyncio.sleep(0.05)  # not a failure: wait for a slot elsewhere
                    continue
                if code in _WORKER_FAILURES:
                    failures += 1
                    last_error = f"worker {worker.name}: {code.name} {exc.details()}"
                    log.warning("retrying elsewhere: %s", last_error)
                    worker.mark_failed()
                    tried.add(worker)
                    if failures >= MAX_ATTEMPTS:
                        raise Rejected(grpc.StatusCode.UNAVAILABLE,
                                       f"gave up after {failures} worker failures: {last_error}") from None
                    continue
                raise Rejected(code, exc.details() or code.name) from None
            finally:
                self.registry.release(worker)
                self.metrics.in_flight.dec()
            worker.served += 1
            self.metrics.worker_requests.labels(worker=worker.name).inc()
            if getattr(reply, "verdict", None) == pb.SE and failures + 1 < MAX_ATTEMPTS:
                failures += 1
                last_error = f"worker {worker.name} answered SE: {reply.message}"
                log.warning("retrying elsewhere: %s", last_error)
                tried.add(worker)
                continue
            return reply

    async def _admit(self, method: str, request, context, language: str):
        if self._pending >= self.max_pending:
            raise Rejected(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"the gateway is full ({self._pending} requests pending); retry in about 500 ms")
        remaining = context.time_remaining() if context is not None else None
        deadline = time.monotonic() + (remaining if remaining is not None else DEFAULT_DEADLINE_S)
        self._pending += 1
        self.metrics.queue_depth.set(self._pending)
        started = time.monotonic()
        try:
            digest, test_set = self._tests_of(request) if method == "Grade" else (None, None)
            reply = await self._forward(method, request, deadline, language, digest, test_set)
            self.metrics.observe(language or "unknown", time.monotonic() - started, reply)
            return reply
        finally:
            self._pending -= 1
            self.metrics.queue_depth.set(self._pending)

    async def _unary(self, method: str, request, context):
        try:
            return await self._admit(method, request, context, request.language)
        except Rejected as exc:
            if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                context.set_trailing_metadata((("retry-after-ms", "500"),))
            await context.abort(exc.code, exc.message)

    # ------------------------------------------------------------ RPCs
    async def Grade(self, request, context):
        if request.WhichOneof("tests") == "test_set":
            self.store.put(request.test_set)
        return await self._unary("Grade", request, context)

    async def Execute(self, request, context):
        return await self._unary("Execute", request, context)

    async def GradeStream(self, request_iterator, context):
        async def grade(request: pb.GradeRequest) -> pb.GradeResponse:
            return await self._admit("Grade", request, context, request.language)

        async for answer in stream_answers(request_iterator, grade, Rejected):
            yield answer

    async def PutTestSet(self, request, context):
        if not request.test_set.tests:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the test set is empty")
        return pb.PutTestSetResponse(digest=self.store.put(request.test_set))

    async def HasTestSet(self, request, context):
        return pb.HasTestSetResponse(present=request.digest in self.store)

    async def Info(self, request, context):
        try:
            info = await self._admit("Info", request, context, "")
        except Rejected as exc:
            await context.abort(exc.code, exc.message)
        healthy = self.registry.healthy()
        info.capacity = sum(w.capacity for w in healthy)
        info.max_queue = self.max_pending
        info.in_flight = self._pending
        return info

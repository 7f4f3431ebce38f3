"""The gateway: the public sandbox.v1 endpoint in front of a fleet of workers.

Each request goes to the least-loaded healthy worker. Grading is pure, so when a
worker dies or stops answering mid-request, or answers SE, the request is run
again on another worker: no request is lost to one failing worker. A request
that failed on POISON_AFTER workers (SE, or the worker failed while running it)
is the cause, not the workers: it is answered SE and run nowhere else, so one
submission cannot take the fleet down. Test sets are cached here by digest and
pushed to the chosen worker before it needs them.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import grpc

from sandbox.digest import is_digest
from sandbox.gateway.metrics import GatewayMetrics
from sandbox.streaming import stream_answers
from sandbox.gateway.registry import NoWorker, Worker, WorkerRegistry
from sandbox.testsets import TestSetStore, client_identity
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

log = logging.getLogger("sandbox.gateway")

MAX_ATTEMPTS = 8
# A request that failed on this many workers is answered SE instead of being run again.
POISON_AFTER = 2
# Requests that carry code (the only ones a worker can fail on because of what they ask).
_SE_ANSWERS = {"Grade": pb.GradeResponse, "Execute": pb.ExecuteResponse}
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


@dataclass
class _Trail:
    """What one request met on the workers it was sent to."""

    method: str
    failures: int = 0  # worker failures and SE answers, at most MAX_ATTEMPTS
    faults: list[str] = field(default_factory=list)  # the request's own runs that failed
    last_error: str = "no worker answered"

    def fault(self, what: str) -> bool:
        """Records a failed run of the request itself; True once that makes it the cause."""
        self.last_error = what
        if self.method in _SE_ANSWERS:
            self.faults.append(what)
        return len(self.faults) >= POISON_AFTER


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
        trail = _Trail(method)
        while True:
            worker = await self._acquire(deadline, tried, trail)
            if trail.failures or tried:
                self.metrics.retries.inc()
            self.metrics.in_flight.inc()
            phase = "PutTestSet"
            try:
                if digest and digest not in worker.test_sets:
                    await worker.stub.PutTestSet(pb.PutTestSetRequest(test_set=test_set),
                                                 timeout=max(0.1, deadline - time.monotonic()))
                    worker.test_sets.add(digest)
                phase = method
                reply = await getattr(worker.stub, method)(
                    request, timeout=max(0.1, deadline - time.monotonic()))
            except grpc.aio.AioRpcError as exc:
                if await self._failed(worker, exc, deadline, digest, phase == method, trail, tried):
                    return self._se_answer(request, test_set, trail)
                continue
            finally:
                self.registry.release(worker)
                self.metrics.in_flight.dec()
            worker.served += 1
            self.metrics.worker_requests.labels(worker=worker.name).inc()
            if getattr(reply, "verdict", None) == pb.SE and self._retry_se(worker, reply, trail, tried):
                continue
            return reply

    async def _acquire(self, deadline: float, tried: set[Worker], trail: _Trail) -> Worker:
        try:
            return await self.registry.acquire(deadline, NO_WORKER_WAIT_S, tried)
        except NoWorker as exc:
            raise Rejected(grpc.StatusCode.UNAVAILABLE,
                           f"no sandbox worker is available ({exc}); start workers or retry "
                           f"later (last: {trail.last_error})") from None
        except TimeoutError:
            raise Rejected(grpc.StatusCode.DEADLINE_EXCEEDED,
                           "deadline exceeded while waiting for a free worker") from None

    async def _failed(self, worker: Worker, exc: grpc.aio.AioRpcError, deadline: float,
                      digest: str | None, own_run: bool, trail: _Trail, tried: set[Worker]) -> bool:
        """A worker's error: False to try again, True to answer SE (the request is the cause,
        and this worker is not marked failed for it); raises Rejected to answer the error."""
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND and digest:
            worker.test_sets.discard(digest)  # the worker lost it: push it again
            trail.last_error = "a worker lost a test set"
            return False
        if time.monotonic() >= deadline:
            raise Rejected(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded") from None
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            trail.last_error = f"worker {worker.name} is full"
            await asyncio.sleep(0.05)  # not a failure: wait for a slot elsewhere
            return False
        if code not in _WORKER_FAILURES:
            raise Rejected(code, exc.details() or code.name) from None
        trail.failures += 1
        tried.add(worker)
        what = f"worker {worker.name}: {code.name} {exc.details()}"
        # Only the request's own run counts against it: a failed PutTestSet ran none of its code.
        if own_run and trail.fault(what):
            return True
        trail.last_error = what
        log.warning("retrying elsewhere: %s", what)
        worker.mark_failed()
        self.metrics.worker_failures.labels(worker=worker.name).inc()
        if trail.failures >= MAX_ATTEMPTS:
            raise Rejected(grpc.StatusCode.UNAVAILABLE,
                           f"gave up after {trail.failures} worker failures: {what}") from None
        return False

    def _retry_se(self, worker: Worker, reply, trail: _Trail, tried: set[Worker]) -> bool:
        """An SE answer: True to run the request again elsewhere, False to answer it."""
        tried.add(worker)
        what = f"worker {worker.name} answered SE: {reply.message}"
        if trail.fault(what):
            self._count_poisoned(trail)
            return False
        if trail.failures + 1 >= MAX_ATTEMPTS:
            return False
        trail.failures += 1
        log.warning("retrying elsewhere: %s", what)
        return True

    def _se_answer(self, request, test_set: pb.TestSet | None, trail: _Trail):
        """SE for a request whose runs killed or failed POISON_AFTER workers."""
        self._count_poisoned(trail)
        message = (f"sandbox error: the request failed on {len(trail.faults)} workers and is not "
                   f"run again: {'; '.join(trail.faults)}")[:4000]
        answer = _SE_ANSWERS[trail.method](request_id=request.request_id, verdict=pb.SE,
                                           message=message)
        if trail.method == "Grade":
            answer.total = len((test_set if test_set is not None else request.test_set).tests)
        return answer

    def _count_poisoned(self, trail: _Trail) -> None:
        self.metrics.poisoned_requests.inc()
        log.warning("not running a request again: it failed on %d workers (%s)",
                    len(trail.faults), "; ".join(trail.faults))

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
            # Not context.abort(): grpc keeps the exception it raises in a reference cycle with
            # the handler's frames, so the request would live until a full GC pass.
            context.set_code(exc.code)
            context.set_details(exc.message)
            return None

    # ------------------------------------------------------------ other transports (HTTP)
    async def run_execute(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse:
        """Execute with the same routing, retries and metrics as the RPC; raises Rejected."""
        return await self._admit("Execute", request, None, request.language)

    async def run_grade(self, request: pb.GradeRequest, client: str) -> pb.GradeResponse:
        if request.WhichOneof("tests") == "test_set":
            self.store.put(request.test_set, client)
        return await self._admit("Grade", request, None, request.language)

    # ------------------------------------------------------------ RPCs
    async def Grade(self, request, context):
        if request.WhichOneof("tests") == "test_set":
            self.store.put(request.test_set, client_identity(context.peer()))
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
            context.set_code(grpc.StatusCode.INVALID_ARGUMENT)  # not abort(): see _unary
            context.set_details("the test set is empty")
            return None
        client = client_identity(context.peer())
        return pb.PutTestSetResponse(digest=self.store.put(request.test_set, client))

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

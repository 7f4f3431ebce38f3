"""Clients for `ray://NAME`: the sandbox.v1 calls, spread over a fleet's live workers.

`SandboxClient("ray://NAME")` and `AsyncSandboxClient("ray://NAME")` are these classes. The
list of workers comes from the fleet's registry (refreshed at most every REFRESH_S, and at
once after a failed call); each request goes to the least-loaded worker (`balance`). Grading
is pure, so a call that a dead or stopping worker fails (UNAVAILABLE, CANCELLED, INTERNAL,
UNKNOWN) is sent to another worker, up to MAX_ATTEMPTS times within the call's timeout; one
that a full worker refuses (RESOURCE_EXHAUSTED) goes to another, or waits as the workers ask
when all are full (`Attempts`). Test sets are kept here by digest (as the gateway keeps
them) and pushed to a worker before its first request that refers to them.
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait

import grpc

from sandbox.client import INLINE_TEST_BYTES, AsyncSandboxClient, SandboxClient, channel_target
from sandbox.digest import test_set_digest
from sandbox.ray_fleet import RayFleetError, fleet_name
from sandbox.ray_fleet.balance import Balancer, Endpoint
from sandbox.ray_fleet.directory import FleetView, client_credentials
from sandbox.ray_fleet.registry import FleetSettings, WorkerEntry
from sandbox.security import ClientSecurity, open_channel
from sandbox.testsets import TestSetStore
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

MAX_ATTEMPTS = 8         # worker failures one call may meet (busy workers are waited for)
NO_WORKER_WAIT_S = 10.0  # how long a call waits for a reachable worker to appear
BUSY_WAIT_MAX_S = 1.0    # longest pause when every worker is full (their retry-after, capped)
WORKER_FAILURES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                   grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
CLIENT_STORE_BYTES = 1 << 30


class NoWorkerError(grpc.RpcError):
    """No worker of the fleet could take the call: UNAVAILABLE, like an unreachable server."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self.message


class FleetConnection:
    """What both clients share: the fleet's view, its workers' endpoints, the credentials
    they require and the test sets this client sent."""

    def __init__(self, address: str, *, aio: bool, credentials: dict) -> None:
        self.view = FleetView(fleet_name(address))
        self.aio = aio
        self.credentials = credentials
        self.security: ClientSecurity | None = None  # known once the fleet's settings are
        self.metadata: tuple = ()
        self.balancer = Balancer(self.view.reachable, self.open_endpoint)
        self.store = TestSetStore(CLIENT_STORE_BYTES)
        self.refreshing = threading.Lock()

    def open_endpoint(self, entry: WorkerEntry) -> Endpoint:
        _target, options = channel_target(entry.address)
        channel = open_channel(entry.address, options, self.security, aio=self.aio)
        return Endpoint(entry, channel, pb_grpc.SandboxStub(channel))

    def apply(self, settings: FleetSettings, workers: list[WorkerEntry]) -> list[Endpoint]:
        """A registry snapshot taken: endpoints to close."""
        if self.security is None:
            self.security = ClientSecurity.from_settings(
                **client_credentials(settings, **self.credentials))
            self.metadata = self.security.metadata()
        return self.balancer.update(workers)

    def unreadable(self, exc: Exception) -> None:
        """The registry did not answer: fine once its settings are known (it may be
        restarting; the workers known stay in use), an error before."""
        if self.security is None:
            message = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise RayFleetError(f"cannot read the workers of {self.view.url}: {message}") from None
        self.balancer.asked()

    def no_worker(self, last: Exception | None) -> NoWorkerError:
        reachable = len(self.balancer.endpoints)
        why = (f"{self.balancer.known} live, none reachable from {self.view.node_ip} (workers on "
               "127.0.0.1 serve their own machine only: `sandbox ray up --bind node`)"
               if self.balancer.known and not reachable else
               f"{self.balancer.known} live" if not reachable else f"{reachable} failing")
        detail = f"; last error: {last.code().name}: {last.details()}" \
            if isinstance(last, grpc.RpcError) else ""
        return NoWorkerError(f"no sandbox worker of {self.view.url} could take the call "
                             f"({why}){detail}")

    def by_digest(self, request: pb.GradeRequest) -> tuple[pb.GradeRequest, str | None]:
        """The request as sent (big inline tests by digest) and the digest workers need."""
        which = request.WhichOneof("tests")
        if which == "test_set" and request.test_set.ByteSize() > INLINE_TEST_BYTES:
            digest = self.store.put(request.test_set)
            sent = pb.GradeRequest()
            sent.CopyFrom(request)
            sent.test_set_digest = digest
            return sent, digest
        if which == "test_set_digest" and request.test_set_digest in self.store:
            return request, request.test_set_digest
        return request, None

    def info(self, reply: pb.InfoResponse) -> pb.InfoResponse:
        """One worker's Info with the fleet's capacity, queue and load (as last reported)."""
        info = pb.InfoResponse()
        info.CopyFrom(reply)
        endpoints = list(self.balancer.endpoints.values())
        info.capacity = sum(max(1, e.entry.capacity) for e in endpoints) or info.capacity
        info.max_queue = info.max_queue * max(1, len(endpoints))
        info.in_flight = sum(max(0, e.entry.in_flight) for e in endpoints)
        return info


async def _each(requests):
    """An async iterator over a sync or async iterable."""
    if hasattr(requests, "__aiter__"):
        async for request in requests:
            yield request
    else:
        for request in requests:
            yield request


class Attempts:
    """One call's retries. A worker that fails the call (it died, is stopping, lost the tests)
    counts towards MAX_ATTEMPTS and the call goes elsewhere; a full worker (RESOURCE_EXHAUSTED)
    is busy, not broken: the call tries the others, then waits as the workers ask, within its
    deadline."""

    def __init__(self, balancer: Balancer, deadline: float, digest: str | None) -> None:
        self.balancer, self.deadline, self.digest = balancer, deadline, digest
        self.failed = 0
        self.tried: set[Endpoint] = set()
        self.busy: set[Endpoint] = set()
        self.last: grpc.RpcError | None = None

    def more(self) -> bool:
        return self.failed < MAX_ATTEMPTS and time.monotonic() < self.deadline

    def exclude(self) -> set[Endpoint]:
        return self.tried | self.busy

    def after(self, endpoint: Endpoint, exc: grpc.RpcError) -> float | None:
        """Seconds to wait before the next try; None: the error is the call's answer."""
        self.last = exc
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND and self.digest:
            endpoint.uploaded.discard(self.digest)  # it lost the tests: push them again
            self.failed += 1
            return 0.0
        if code in WORKER_FAILURES:
            self.balancer.mark_down(endpoint)
            self.tried.add(endpoint)
            self.failed += 1
            return 0.0
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            self.busy.add(endpoint)
            if not self.balancer.any_up_outside(self.exclude()):
                self.busy.clear()
                return min(_retry_after(exc), _remaining(self.deadline))
            return 0.0
        return None


def _retry_after(exc: grpc.RpcError) -> float:
    """The server's retry-after hint, capped at BUSY_WAIT_MAX_S and jittered."""
    wait = 0.2
    for key, value in (exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else ():
        if key == "retry-after-ms" and str(value).isdigit():
            wait = int(value) / 1000
    return min(BUSY_WAIT_MAX_S, wait) * (0.5 + random.random() / 2)


def _remaining(deadline: float) -> float:
    return max(0.05, deadline - time.monotonic())


class RaySandboxClient(SandboxClient):
    """Blocking client of a fleet on Ray (`SandboxClient("ray://NAME")`). Thread-safe.

    The security arguments are SandboxClient's; unset, the fleet's token file and CA (the
    paths `sandbox ray up` was given, read on this node) are used."""

    def __init__(self, addresses: str = "ray://sandbox", *, timeout: float | None = 600.0,
                 token: str | None = None, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None,
                 tls: bool | None = None, token_file: str | None = None) -> None:
        self.target = addresses.strip()
        self.timeout = timeout
        self.fleet = FleetConnection(self.target, aio=False, credentials=dict(
            token=token, token_file=token_file, tls_ca=tls_ca, tls_cert=tls_cert,
            tls_key=tls_key, tls=tls))
        self.refresh()
        self.security = self.fleet.security

    # ------------------------------------------------------------ workers
    def refresh(self) -> None:
        """Reads the registry now (calls do it on their own when the list is old)."""
        if not self.fleet.refreshing.acquire(blocking=False):
            return  # another thread is at it
        try:
            try:
                settings, workers = self.fleet.view.fetch()
            except Exception as exc:  # noqa: BLE001 - registry restarting: keep the workers known
                self.fleet.unreadable(exc)
                return
            for endpoint in self.fleet.apply(settings, workers):
                endpoint.channel.close()
        finally:
            self.fleet.refreshing.release()

    def workers(self) -> list[dict]:
        """The workers this client uses now: address, node, capacity, in flight, served."""
        return self.fleet.balancer.snapshot()

    def _acquire(self, deadline: float, tried: set[Endpoint], last: Exception | None) -> Endpoint:
        waited_until = min(deadline, time.monotonic() + NO_WORKER_WAIT_S)
        while True:
            if self.fleet.balancer.stale():
                self.refresh()
            endpoint = self.fleet.balancer.acquire(tried)
            if endpoint is not None:
                return endpoint
            if time.monotonic() >= waited_until:
                raise self.fleet.no_worker(last)
            time.sleep(0.2)
            self.fleet.balancer.expire()

    def _call(self, method: str, request, timeout: float | None, digest: str | None = None):
        """(reply, endpoint): `method` on the least-loaded worker, elsewhere on failure."""
        deadline = time.monotonic() + (timeout or self.timeout or 600.0)
        attempts = Attempts(self.fleet.balancer, deadline, digest)
        while attempts.more():
            endpoint = self._acquire(deadline, attempts.exclude(), attempts.last)
            served = False
            try:
                if digest and digest not in endpoint.uploaded:
                    endpoint.stub.PutTestSet(pb.PutTestSetRequest(test_set=self.fleet.store.get(digest)),
                                             timeout=_remaining(deadline), metadata=self.fleet.metadata)
                    endpoint.uploaded.add(digest)
                reply = getattr(endpoint.stub, method)(request, timeout=_remaining(deadline),
                                                       metadata=self.fleet.metadata)
                served = True
                return reply, endpoint
            except grpc.RpcError as exc:
                wait_s = attempts.after(endpoint, exc)
                if wait_s is None:
                    raise
            finally:
                self.fleet.balancer.release(endpoint, served)
            if wait_s:
                time.sleep(wait_s)
        raise attempts.last if attempts.last is not None else self.fleet.no_worker(None)

    # ------------------------------------------------------------ the sandbox.v1 calls
    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            endpoints = list(self.fleet.balancer.endpoints.values())
            for endpoint in endpoints:
                try:
                    grpc.channel_ready_future(endpoint.channel).result(
                        timeout=min(1.0, _remaining(deadline)))
                    return
                except grpc.FutureTimeoutError:
                    continue
            if time.monotonic() >= deadline:
                raise grpc.FutureTimeoutError()
            time.sleep(0.2)

    def info(self) -> pb.InfoResponse:
        reply, _ = self._call("Info", pb.InfoRequest(), self.timeout)
        return self.fleet.info(reply)

    def put_test_set(self, test_set: pb.TestSet) -> str:
        """Stores the tests here and on one worker (which checks them); returns the digest."""
        self.fleet.store.put(test_set)
        reply, endpoint = self._call("PutTestSet", pb.PutTestSetRequest(test_set=test_set),
                                     self.timeout)
        endpoint.uploaded.add(reply.digest)
        return reply.digest

    def has_test_set(self, digest: str) -> bool:
        """Whether this client can grade by `digest` (it pushes the tests where needed)."""
        return digest in self.fleet.store

    def ensure_test_set(self, test_set: pb.TestSet) -> str:
        digest = test_set_digest(test_set)
        return digest if digest in self.fleet.store else self.put_test_set(test_set)

    def grade(self, request: pb.GradeRequest, timeout: float | None = None) -> pb.GradeResponse:
        sent, digest = self.fleet.by_digest(request)
        return self._call("Grade", sent, timeout, digest)[0]

    def grade_stream(self, requests: Iterable[pb.GradeRequest],
                     timeout: float | None = None) -> Iterator[pb.GradeResponse]:
        """Answers as they finish (match by request_id), graded concurrently over the fleet."""
        width = max(2, 2 * self.fleet.balancer.capacity())
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="ray-stream") as pool:
            pending: set = set()
            for request in requests:
                pending.add(pool.submit(self.grade, request, timeout))
                if len(pending) >= width:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            for future in as_completed(pending):
                yield future.result()

    def execute(self, request: pb.ExecuteRequest, timeout: float | None = None) -> pb.ExecuteResponse:
        return self._call("Execute", request, timeout)[0]

    def close(self) -> None:
        for endpoint in self.fleet.balancer.drain_all():
            endpoint.channel.close()


class AsyncRaySandboxClient(AsyncSandboxClient):
    """asyncio client of a fleet on Ray (`AsyncSandboxClient("ray://NAME")`); create it inside
    a running event loop. Arguments as RaySandboxClient's."""

    def __init__(self, addresses: str = "ray://sandbox", *, timeout: float | None = 600.0,
                 token: str | None = None, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None,
                 tls: bool | None = None, token_file: str | None = None) -> None:
        self.target = addresses.strip()
        self.timeout = timeout
        self.fleet = FleetConnection(self.target, aio=True, credentials=dict(
            token=token, token_file=token_file, tls_ca=tls_ca, tls_cert=tls_cert,
            tls_key=tls_key, tls=tls))
        self._refresh_lock = asyncio.Lock()

    @property
    def security(self) -> ClientSecurity | None:
        return self.fleet.security

    async def refresh(self) -> None:
        if self._refresh_lock.locked():
            async with self._refresh_lock:  # another task is at it: wait for its result
                return
        async with self._refresh_lock:
            try:
                settings, workers = await self.fleet.view.fetch_async()
            except Exception as exc:  # noqa: BLE001 - registry restarting: keep the workers known
                self.fleet.unreadable(exc)
                return
            for endpoint in self.fleet.apply(settings, workers):
                await endpoint.channel.close()

    def workers(self) -> list[dict]:
        return self.fleet.balancer.snapshot()

    async def _acquire(self, deadline: float, tried: set[Endpoint],
                       last: Exception | None) -> Endpoint:
        waited_until = min(deadline, time.monotonic() + NO_WORKER_WAIT_S)
        while True:
            if self.fleet.balancer.stale() or self.fleet.security is None:
                await self.refresh()
            endpoint = self.fleet.balancer.acquire(tried)
            if endpoint is not None:
                return endpoint
            if time.monotonic() >= waited_until:
                raise self.fleet.no_worker(last)
            await asyncio.sleep(0.2)
            self.fleet.balancer.expire()

    async def _call(self, method: str, request, timeout: float | None, digest: str | None = None):
        deadline = time.monotonic() + (timeout or self.timeout or 600.0)
        attempts = Attempts(self.fleet.balancer, deadline, digest)
        while attempts.more():
            endpoint = await self._acquire(deadline, attempts.exclude(), attempts.last)
            served = False
            try:
                if digest and digest not in endpoint.uploaded:
                    await endpoint.stub.PutTestSet(
                        pb.PutTestSetRequest(test_set=self.fleet.store.get(digest)),
                        timeout=_remaining(deadline), metadata=self.fleet.metadata)
                    endpoint.uploaded.add(digest)
                reply = await getattr(endpoint.stub, method)(request, timeout=_remaining(deadline),
                                                             metadata=self.fleet.metadata)
                served = True
                return reply, endpoint
            except grpc.aio.AioRpcError as exc:
                wait_s = attempts.after(endpoint, exc)
                if wait_s is None:
                    raise
            finally:
                self.fleet.balancer.release(endpoint, served)
            if wait_s:
                await asyncio.sleep(wait_s)
        raise attempts.last if attempts.last is not None else self.fleet.no_worker(None)

    async def info(self) -> pb.InfoResponse:
        reply, _ = await self._call("Info", pb.InfoRequest(), self.timeout)
        return self.fleet.info(reply)

    async def put_test_set(self, test_set: pb.TestSet) -> str:
        self.fleet.store.put(test_set)
        reply, endpoint = await self._call("PutTestSet", pb.PutTestSetRequest(test_set=test_set),
                                           self.timeout)
        endpoint.uploaded.add(reply.digest)
        return reply.digest

    async def has_test_set(self, digest: str) -> bool:
        return digest in self.fleet.store

    async def ensure_test_set(self, test_set: pb.TestSet) -> str:
        digest = test_set_digest(test_set)
        return digest if digest in self.fleet.store else await self.put_test_set(test_set)

    async def grade(self, request: pb.GradeRequest, timeout: float | None = None) -> pb.GradeResponse:
        sent, digest = self.fleet.by_digest(request)
        return (await self._call("Grade", sent, timeout, digest))[0]

    async def grade_stream(self, requests, timeout: float | None = None):
        """Answers as they finish (match by request_id), for an (async) iterable of requests."""
        width = max(2, 2 * self.fleet.balancer.capacity())
        pending: set[asyncio.Future] = set()
        try:
            async for request in _each(requests):
                pending.add(asyncio.ensure_future(self.grade(request, timeout)))
                if len(pending) >= width:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()

    async def execute(self, request: pb.ExecuteRequest, timeout: float | None = None) -> pb.ExecuteResponse:
        return (await self._call("Execute", request, timeout))[0]

    async def close(self) -> None:
        for endpoint in self.fleet.balancer.drain_all():
            await endpoint.channel.close()

"""Worker discovery: unix sockets in a shared directory, health-checked, with their load."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandbox.client import keepalive_options
from sandbox.server import MAX_MESSAGE_BYTES
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

log = logging.getLogger("sandbox.gateway")

SCAN_INTERVAL_S = 0.5
HEALTH_TIMEOUT_S = 2.0
# A worker failing this many health checks in a row leaves the rotation until it answers again.
UNHEALTHY_AFTER = 2
# Requests sent to a worker at once, per unit of its capacity; the rest wait in the gateway.
SLOTS_PER_CAPACITY = 2


class NoWorker(Exception):
    """No worker can take a request: none registered, or none healthy for too long."""


@dataclass(eq=False)
class Worker:
    """One worker process reached over its unix socket."""

    socket_path: str
    channel: grpc.aio.Channel
    stub: pb_grpc.SandboxStub
    health: health_pb2_grpc.HealthStub
    capacity: int = 1
    in_flight: int = 0
    healthy: bool = False
    failures: int = 0
    test_sets: set[str] = field(default_factory=set)  # digests this worker holds
    served: int = 0

    @property
    def name(self) -> str:
        return Path(self.socket_path).stem

    @property
    def load(self) -> float:
        return self.in_flight / max(1, self.capacity)

    @property
    def has_slot(self) -> bool:
        """Room for one more request: the worker runs `capacity` and queues as many again."""
        return self.in_flight < SLOTS_PER_CAPACITY * self.capacity

    def mark_failed(self) -> None:
        self.failures += 1
        self.healthy = False
        self.test_sets.clear()  # a restarted worker has an empty store


class WorkerRegistry:
    """Keeps the set of live workers in `directory` up to date."""

    def __init__(self, directory: str | Path, pattern: str = "*.sock") -> None:
        self.directory = Path(directory)
        self.pattern = pattern
        self.workers: dict[str, Worker] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for worker in list(self.workers.values()):
            await worker.channel.close()
        self.workers.clear()

    def healthy(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.healthy]

    def pick(self, exclude: set[Worker] | None = None) -> Worker | None:
        """The least-loaded healthy worker with a free slot (ties: the one that served least)."""
        candidates = [w for w in self.healthy()
                      if w.has_slot and (not exclude or w not in exclude)]
        if not candidates:
            return None
        return min(candidates, key=lambda w: (w.load, w.served))

    def release(self, worker: Worker) -> None:
        worker.in_flight -= 1
        self._changed.set()

    async def acquire(self, deadline: float, unhealthy_wait: float,
                      exclude: set[Worker] | None = None) -> Worker:
        """Waits for a worker with a free slot and takes the slot (in_flight += 1).

        Busy workers: wait (this is the gateway's queue) until the deadline. No healthy
        worker: wait up to `unhealthy_wait` for one to come back. None registered: fail now.
        """
        unhealthy_since = None
        while True:
            if exclude and not [w for w in self.healthy() if w not in exclude]:
                exclude = None  # every healthy worker failed once: allow them again
            worker = self.pick(exclude)
            if worker is not None:
                worker.in_flight += 1
                return worker
            now = time.monotonic()
            if not self.workers:
                raise NoWorker(f"none registered in {self.directory}")
            if not self.healthy():
                unhealthy_since = unhealthy_since or now
                if now - unhealthy_since >= unhealthy_wait:
                    raise NoWorker(f"{len(self.workers)} known, none healthy")
            else:
                unhealthy_since = None
            if now >= deadline:
                raise TimeoutError
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(0.25, max(0.01, deadline - now)))
            except asyncio.TimeoutError:
                pass

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:  # noqa: BLE001 - discovery must keep going
                log.exception("worker scan failed")
            await asyncio.sleep(SCAN_INTERVAL_S)

    async def scan(self) -> None:
        present = {str(p) for p in self.directory.glob(self.pattern)} if self.directory.is_dir() else set()
        for path in present - set(self.workers):
            # keepalive: a frozen worker fails its calls (retried on another) at once
            channel = grpc.aio.insecure_channel("unix:" + path, options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES), *keepalive_options()])
            self.workers[path] = Worker(path, channel, pb_grpc.SandboxStub(channel),
                                        health_pb2_grpc.HealthStub(channel))
        for path in set(self.workers) - present:
            worker = self.workers.pop(path)
            log.warning("worker %s is gone", worker.name)
            await worker.channel.close()
        await asyncio.gather(*(self._check(w) for w in list(self.workers.values())))
        self._changed.set()

    async def _check(self, worker: Worker) -> None:
        try:
            reply = await worker.health.Check(
                health_pb2.HealthCheckRequest(service="sandbox.v1.Sandbox"), timeout=HEALTH_TIMEOUT_S)
            ok = reply.status == health_pb2.HealthCheckResponse.SERVING
            if ok and not worker.healthy:
                info = await worker.stub.Info(pb.InfoRequest(), timeout=HEALTH_TIMEOUT_S)
                worker.capacity = max(1, info.capacity)
                log.warning("worker %s is live (capacity %d)", worker.name, worker.capacity)
        except grpc.aio.AioRpcError:
            ok = False
        if ok:
            worker.healthy, worker.failures = True, 0
        else:
            worker.failures += 1
            if worker.failures >= UNHEALTHY_AFTER or not worker.healthy:
                if worker.healthy:
                    log.warning("worker %s failed its health checks", worker.name)
                worker.healthy = False
                worker.test_sets.clear()

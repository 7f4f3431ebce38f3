"""`sandbox serve`: the gRPC server with local workers (no Docker needed)."""
from __future__ import annotations

import asyncio
import logging
import os
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sandbox.service import SandboxCore, SandboxService
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Sandbox"].full_name
MAX_MESSAGE_BYTES = 512 << 20

log = logging.getLogger("sandbox.server")


def normalize_address(address: str) -> str:
    """Accepts host:port, unix:PATH, unix:///PATH or a bare socket path."""
    if address.startswith("/"):
        return "unix:" + address
    return address


class Server:
    """A running server; `await stop()` drains in-flight work, then returns."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, capacity: int | None = None,
                 max_queue: int | None = None, core: SandboxCore | None = None) -> None:
        self.address = normalize_address(address)
        self.core = core or SandboxCore()
        self.service = SandboxService(self.core, capacity, max_queue)
        self.health = new_health_servicer()
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.core.judge.warm_up)
        self._server, self.port = await start_grpc_server(self.address, self.service, self.health)

    async def stop(self, grace: float = 30.0) -> None:
        """Stops taking requests (health NOT_SERVING), lets in-flight ones finish within grace."""
        if self._server is None:
            return
        await set_not_serving(self.health)
        await self._server.stop(grace)
        self.service.shutdown()
        self._server = None
        if self.address.startswith("unix:"):
            path = self.address.removeprefix("unix://").removeprefix("unix:")
            if os.path.exists(path):
                os.unlink(path)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def new_health_servicer():
    return health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()


async def start_grpc_server(address: str, servicer, health_servicer) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server with sandbox.v1, health (SERVING) and reflection."""
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ])
    pb_grpc.add_SandboxServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    if address.startswith("unix:"):
        stale = address.removeprefix("unix://").removeprefix("unix:")
        if os.path.exists(stale):
            os.unlink(stale)  # left by a killed predecessor
    port = server.add_insecure_port(address)
    if not address.startswith("unix:") and port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


async def set_not_serving(health_servicer) -> None:
    for name in ("", SERVICE_NAME):
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.NOT_SERVING)


async def _set_health(servicer, name: str, status) -> None:
    result = servicer.set(name, status)
    if asyncio.iscoroutine(result):
        await result


async def run_until_signal(server, grace: float) -> None:
    """Runs a started server until SIGTERM / SIGINT, then drains it (stop(grace))."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stopping.wait())
    await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    print("draining in-flight requests…", flush=True)
    await server.stop(grace)
    for task in (waiter, stopper):
        task.cancel()
    print("stopped", flush=True)


async def serve(address: str, capacity: int | None, max_queue: int | None, grace: float) -> None:
    server = Server(address, capacity=capacity, max_queue=max_queue)
    await server.start()
    where = server.address if server.address.startswith("unix:") else \
        server.address.rsplit(":", 1)[0] + f":{server.port}"
    log.warning("sandbox listening on %s (capacity %d, queue %d)", where,
                server.service.capacity, server.service.max_queue)
    print(f"sandbox listening on {where}", flush=True)
    await run_until_signal(server, grace)

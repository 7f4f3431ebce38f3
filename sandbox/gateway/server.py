"""`sandbox gateway`: the fleet's public endpoint."""
from __future__ import annotations

import asyncio
import logging

import grpc

from sandbox.gateway.metrics import GatewayMetrics
from sandbox.gateway.registry import WorkerRegistry
from sandbox.gateway.service import GatewayService
from sandbox.grpc_release import release_grpc_objects
from sandbox.security import ServerSecurity
from sandbox.server import (new_health_servicer, normalize_address, run_until_signal,
                            set_not_serving, start_grpc_server, start_http_api, warn_if_exposed)

log = logging.getLogger("sandbox.gateway")
DEFAULT_GATEWAY_ADDRESS = "127.0.0.1:50051"
DEFAULT_METRICS_ADDRESS = "127.0.0.1:9090"


class Gateway:
    def __init__(self, address: str, workers_dir: str, *, metrics_address: str | None = None,
                 max_pending: int = 4096, http_address: str | None = None,
                 security: ServerSecurity | None = None) -> None:
        self.address = normalize_address(address)
        self.http_address = http_address
        self.security = security or ServerSecurity()
        self.http = None  # sandbox.http_api.HttpApi, imported only when asked for
        self.http_port: int | None = None
        self.workers_dir = workers_dir
        self.metrics_address = metrics_address
        self.metrics = GatewayMetrics()
        self.max_pending = max_pending
        self.registry: WorkerRegistry | None = None
        self.service: GatewayService | None = None
        self.health = new_health_servicer()
        self._server: grpc.aio.Server | None = None
        self._gauge_task: asyncio.Task | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None

    async def start(self) -> None:
        warn_if_exposed("gateway", [self.address, self.http_address], self.security)
        self.registry = WorkerRegistry(self.workers_dir)
        self.registry.start()
        self.service = GatewayService(self.registry, self.metrics, self.max_pending)
        self._server, self.port = await start_grpc_server(self.address, self.service, self.health,
                                                          self.security)
        if self.http_address:
            try:
                self.http, self.http_port = await start_http_api(self.http_address, self.service,
                                                                 self.security)
            except (OSError, ValueError):
                await self._server.stop(0)
                self._server = None
                await self.registry.stop()
                raise
        if self.metrics_address:
            self.metrics_port = self.metrics.serve(self.metrics_address)
        self._gauge_task = asyncio.create_task(self._update_gauges())

    async def _update_gauges(self) -> None:
        while True:
            self.metrics.live_workers.set(len(self.registry.healthy()))
            await asyncio.sleep(1.0)

    async def stop(self, grace: float = 30.0) -> None:
        if self._server is None:
            return
        await set_not_serving(self.health)
        if self.http is not None:
            self.http.serving = False
        await self._server.stop(grace)
        if self.http is not None:
            await self.http.stop()
        self._gauge_task.cancel()
        await self.registry.stop()
        self.metrics.close()
        self._server = None
        release_grpc_objects()

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def serve_gateway(address: str, workers_dir: str, metrics_address: str | None,
                        max_pending: int, grace: float, http_address: str | None = None,
                        security: ServerSecurity | None = None) -> None:
    gateway = Gateway(address, workers_dir, metrics_address=metrics_address, max_pending=max_pending,
                      http_address=http_address, security=security)
    await gateway.start()
    http = f", HTTP API on {http_address}" if http_address else ""
    print(f"gateway listening on {gateway.address} (workers in {workers_dir}"
          f"{', metrics on ' + metrics_address if metrics_address else ''}{http}; "
          f"{gateway.security.describe()})", flush=True)
    await run_until_signal(gateway, grace)

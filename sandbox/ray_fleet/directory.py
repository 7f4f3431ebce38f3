"""A client's view of a fleet: its registry, the workers this process can reach, and the
credentials they require.

Reachable: a worker listening on the node's address from anywhere in the cluster; one on
127.0.0.1 only from its own machine (same node address).

Credentials, first found wins: the client's own arguments, then the environment
(SANDBOX_TOKEN / SANDBOX_TOKEN_FILE, SANDBOX_TLS_CA), then the fleet's settings (the token
file and CA paths given to `sandbox ray up`, read on this node).
"""
from __future__ import annotations

import asyncio
import os

from sandbox.ray_fleet import RayFleetError, SCHEME
from sandbox.ray_fleet.connect import ensure_ray, registry_handle
from sandbox.ray_fleet.registry import FleetSettings, WorkerEntry
from sandbox.security import TOKEN_ENV, TOKEN_FILE_ENV

FETCH_TIMEOUT_S = 10.0


class FleetView:
    """The registry of fleet `name` as seen from this process."""

    def __init__(self, name: str, address: str | None = None) -> None:
        ray = ensure_ray(address)
        self.name = name
        self.registry = registry_handle(name)
        self.node_ip = ray.util.get_node_ip_address()

    @property
    def url(self) -> str:
        return SCHEME + self.name

    def reachable(self, worker: WorkerEntry) -> bool:
        return worker.bind == "node" or worker.node_ip == self.node_ip

    def _parse(self, data: dict) -> tuple[FleetSettings, list[WorkerEntry]]:
        return (FleetSettings.from_dict(data["settings"]),
                [WorkerEntry.from_dict(w) for w in data["workers"]])

    def fetch(self, timeout: float = FETCH_TIMEOUT_S) -> tuple[FleetSettings, list[WorkerEntry]]:
        """The fleet's settings and live workers (all of them; see `reachable`)."""
        import ray
        return self._parse(ray.get(self.registry.snapshot.remote(), timeout=timeout))

    async def fetch_async(self, timeout: float = FETCH_TIMEOUT_S
                          ) -> tuple[FleetSettings, list[WorkerEntry]]:
        reference = self.registry.snapshot.remote()
        data = await asyncio.wait_for(asyncio.wrap_future(reference.future()), timeout)
        return self._parse(data)


def client_credentials(settings: FleetSettings, *, token: str | None = None,
                       token_file: str | None = None, tls_ca: str | None = None,
                       tls_cert: str | None = None, tls_key: str | None = None,
                       tls: bool | None = None) -> dict:
    """Keyword arguments for SandboxClient / AsyncSandboxClient to one of the fleet's workers."""
    own_token = token or token_file or os.environ.get(TOKEN_ENV) or os.environ.get(TOKEN_FILE_ENV)
    if not own_token and settings.token_file:
        if not os.access(settings.token_file, os.R_OK):
            raise RayFleetError(f"the fleet's workers require a token: its token file "
                                f"{settings.token_file} is not readable here; pass token= or "
                                f"token_file=, or set {TOKEN_ENV}")
        token_file = settings.token_file
    return {"token": token, "token_file": token_file,
            "tls_ca": tls_ca or os.environ.get("SANDBOX_TLS_CA") or settings.tls_ca or None,
            "tls_cert": tls_cert, "tls_key": tls_key,
            "tls": settings.tls if tls is None else tls}

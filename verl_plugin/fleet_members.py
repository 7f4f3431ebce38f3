"""The workers of a `ray://NAME` fleet as the reward's pool sees them (verl_plugin.reward).

The pool grades on each worker as on any server (its own client, least-loaded first, uploads
per server, SE retried elsewhere); this keeps the list current: the reachable live workers
from the fleet's registry, read at most every REFRESH_S (at once after a worker failed).
"""
from __future__ import annotations

import asyncio

from sandbox.ray_fleet import fleet_name
from sandbox.ray_fleet.balance import RefreshClock
from sandbox.ray_fleet.registry import WorkerEntry


class FleetMembers(RefreshClock):
    """One fleet named by a reward address; `credentials`: the reward's token / TLS settings."""

    def __init__(self, url: str, credentials: dict) -> None:
        super().__init__()
        self.url = url
        self.name = fleet_name(url)
        self.credentials = credentials
        self.client_kwargs: dict | None = None  # for each worker's client, once known
        self.lock = asyncio.Lock()
        self._view = None

    async def members(self) -> dict[str, WorkerEntry]:
        """Reachable live workers by address (RayFleetError: no such fleet, or no Ray)."""
        from sandbox.ray_fleet.directory import FleetView, client_credentials
        if self._view is None:
            self._view = FleetView(self.name)
        settings, workers = await self._view.fetch_async()
        if self.client_kwargs is None:
            self.client_kwargs = client_credentials(settings, **self.credentials)
        self.asked()
        return {w.address: w for w in workers if self._view.reachable(w)}

"""Which worker takes the next request: the bookkeeping shared by the sync and async clients.

Least-loaded first: the requests this client has in flight on a worker over its capacity,
then the worker's own count at its last heartbeat (what every other client sends it), then
the one this client used least. A worker that failed a call is left out for DOWN_S; one that
left the registry is dropped (its channel closed once its calls are done); a new one is
used from the next refresh on.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.ray_fleet.registry import WorkerEntry

REFRESH_S = 1.0   # how old the list of workers may get before a call refreshes it
DOWN_S = 5.0      # a worker that failed a call is not picked again for this long


@dataclass(eq=False)
class Endpoint:
    """One worker as a client uses it."""

    entry: WorkerEntry
    channel: object
    stub: object
    in_flight: int = 0
    served: int = 0
    down_until: float = 0.0
    uploaded: set[str] = field(default_factory=set)  # test-set digests pushed to it

    @property
    def address(self) -> str:
        return self.entry.address

    def load(self) -> tuple[float, float, int, float]:
        capacity = max(1, self.entry.capacity)
        return (self.in_flight / capacity, max(0, self.entry.in_flight) / capacity, self.served,
                random.random())

    def to_dict(self) -> dict:
        return {"address": self.address, "worker_id": self.entry.worker_id,
                "node_id": self.entry.node_id, "capacity": self.entry.capacity,
                "in_flight": self.in_flight, "served": self.served}


class RefreshClock:
    """When a fleet's registry was last read: again after REFRESH_S, at once after expire()."""

    def __init__(self) -> None:
        self.refreshed = 0.0    # monotonic time of the last refresh (0: never)

    def stale(self) -> bool:
        return time.monotonic() - self.refreshed >= REFRESH_S

    def expire(self) -> None:
        """A worker failed: read the registry again at the next chance."""
        self.refreshed = 0.0

    def asked(self) -> None:
        """The registry was asked, whatever it answered: not again before REFRESH_S."""
        self.refreshed = time.monotonic()


class Balancer(RefreshClock):
    """The endpoints of one client; thread-safe."""

    def __init__(self, reachable: Callable[[WorkerEntry], bool],
                 open_endpoint: Callable[[WorkerEntry], Endpoint]) -> None:
        super().__init__()
        self._reachable = reachable
        self._open = open_endpoint
        self.endpoints: dict[str, Endpoint] = {}
        self.retired: list[Endpoint] = []
        self.known = 0          # live workers in the registry at the last refresh
        self.lock = threading.Lock()

    def update(self, workers: list[WorkerEntry]) -> list[Endpoint]:
        """Takes the registry's live workers; returns endpoints that are done with (close them)."""
        with self.lock:
            self.refreshed = time.monotonic()
            self.known = len(workers)
            live = {w.address: w for w in workers if self._reachable(w)}
            for address, entry in live.items():
                endpoint = self.endpoints.get(address)
                if endpoint is None:
                    self.endpoints[address] = self._open(entry)
                else:
                    endpoint.entry = entry
            for address in set(self.endpoints) - set(live):
                self.retired.append(self.endpoints.pop(address))
            idle = [e for e in self.retired if e.in_flight == 0]
            self.retired = [e for e in self.retired if e.in_flight > 0]
            return idle

    def acquire(self, exclude: set[Endpoint]) -> Endpoint | None:
        """The least-loaded endpoint that is up and not in `exclude` (all of them excluded:
        any that is up), with its in-flight count taken; None: no endpoint is up."""
        now = time.monotonic()
        with self.lock:
            up = [e for e in self.endpoints.values() if e.down_until <= now]
            candidates = [e for e in up if e not in exclude] or up
            if not candidates:
                return None
            endpoint = min(candidates, key=Endpoint.load)
            endpoint.in_flight += 1
            return endpoint

    def any_up_outside(self, excluded: set[Endpoint]) -> bool:
        """Whether some endpoint that is up is not in `excluded`."""
        now = time.monotonic()
        with self.lock:
            return any(e.down_until <= now and e not in excluded for e in self.endpoints.values())

    def release(self, endpoint: Endpoint, served: bool) -> None:
        with self.lock:
            endpoint.in_flight -= 1
            endpoint.served += served

    def mark_down(self, endpoint: Endpoint) -> None:
        """A call to it failed as a dead or stopping worker fails: leave it out for a while
        and look at the registry again at the next call."""
        with self.lock:
            endpoint.down_until = time.monotonic() + DOWN_S
            endpoint.uploaded.clear()  # a restarted server has an empty store
        self.expire()

    def capacity(self) -> int:
        with self.lock:
            return sum(max(1, e.entry.capacity) for e in self.endpoints.values())

    def snapshot(self) -> list[dict]:
        with self.lock:
            return [e.to_dict() for e in self.endpoints.values()]

    def drain_all(self) -> list[Endpoint]:
        """Every endpoint, removed (the client is closing)."""
        with self.lock:
            everything = list(self.endpoints.values()) + self.retired
            self.endpoints, self.retired = {}, []
            return everything

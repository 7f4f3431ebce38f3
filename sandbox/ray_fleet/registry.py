"""The fleet's registry: a named, detached Ray actor that knows the live workers.

Workers announce themselves every HEARTBEAT_S (address, node, capacity, load); an entry not
renewed within STALE_AFTER_S is dropped, so a worker whose actor died, or whose node left,
leaves the registry on its own. A restarted worker comes back under a new address. The
registry itself restarts on failure and is rebuilt by the next round of heartbeats: its only
durable state is the fleet's settings, which Ray passes to the restarted actor again.

The settings say how workers listen (`bind`: loopback, or the node's address with a token)
and where the token and TLS files are on every node. Paths, never the secret itself: the
token does not travel through Ray's control plane.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

HEARTBEAT_S = 1.0
STALE_AFTER_S = 5.0
BINDS = ("loopback", "node")


@dataclass(frozen=True)
class FleetSettings:
    """How a fleet's workers run; fixed by the first `sandbox ray up`."""

    cpus_per_worker: float = 1.0
    resource: str = ""          # a custom Ray resource the worker's node must have ("": any)
    bind: str = "loopback"      # "loopback": 127.0.0.1; "node": the node's address (token required)
    token_file: str = ""        # path on every node (workers require the token; clients read it)
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""            # the CA clients trust for the workers' certificates
    grace_s: float = 10.0       # a stopping worker's time to finish what it grades

    @property
    def capacity(self) -> int:
        """Submissions a worker grades at once: its CPU share (at least one)."""
        return max(1, int(self.cpus_per_worker))

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    def check(self) -> None:
        if self.bind not in BINDS:
            raise ValueError(f"bind must be one of {', '.join(BINDS)}, got {self.bind!r}")
        if self.bind == "node" and not self.token_file:
            raise ValueError("workers that listen on the node's address need a token "
                             "(--token-file; TLS with --tls-cert/--tls-key as well if you can)")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        if self.cpus_per_worker <= 0:
            raise ValueError("--cpus-per-worker must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FleetSettings":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class WorkerEntry:
    """One live worker as the registry knows it."""

    worker_id: str              # its actor's name
    address: str                # host:port of its `sandbox serve`
    node_id: str
    node_ip: str
    capacity: int
    bind: str
    in_flight: int = 0          # its server's own count at the last heartbeat (-1: unknown)
    pid: int = 0
    started: float = 0.0        # wall-clock time its server started
    age_s: float = 0.0          # seconds since its last heartbeat, as the registry answers
    seen: float = field(default=0.0, repr=False)  # registry's monotonic clock

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("seen")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "WorkerEntry":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class FleetRegistry:
    """The registry actor's class (made a Ray actor by `control.registry_actor`)."""

    def __init__(self, settings: dict) -> None:
        self._settings = FleetSettings.from_dict(settings)
        self._workers: dict[str, WorkerEntry] = {}  # by address

    def settings(self) -> dict:
        return self._settings.to_dict()

    def heartbeat(self, entry: dict) -> None:
        """A worker is alive (an upsert: the first heartbeat registers it). A worker restarted
        under a new address replaces its old entry."""
        worker = WorkerEntry.from_dict(entry)
        worker.seen = time.monotonic()
        for address, known in list(self._workers.items()):
            if known.worker_id == worker.worker_id and address != worker.address:
                del self._workers[address]
        self._workers[worker.address] = worker

    def leave(self, address: str) -> None:
        """A worker stopping on purpose leaves at once instead of going stale."""
        self._workers.pop(address, None)

    def snapshot(self) -> dict:
        """{"settings": ..., "workers": [live entries]}: one call for a client's refresh."""
        now = time.monotonic()
        for address, worker in list(self._workers.items()):
            if now - worker.seen > STALE_AFTER_S:
                del self._workers[address]
        workers = []
        for worker in self._workers.values():
            worker.age_s = round(now - worker.seen, 3)
            workers.append(worker.to_dict())
        return {"settings": self._settings.to_dict(), "workers": workers}

"""Bringing a fleet up, down, and reporting on it (what `sandbox ray up|down|status` do).

Placement is Ray's: each worker actor asks for `cpus_per_worker` CPUs (plus one unit of the
fleet's custom resource, when it has one) with the SPREAD scheduling strategy, so workers go
to the nodes that have free CPUs, spread over them. A worker that dies is restarted by Ray
(max_restarts) wherever it fits then; one whose node left is restarted elsewhere, or waits
as a pending demand (which `ray status` shows and an autoscaler acts on) until a node joins.
Asking for more workers (`up --workers N` again) places them on whatever joined since.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from sandbox.ray_fleet import NAMESPACE, RayFleetError, worker_prefix
from sandbox.ray_fleet.connect import ensure_ray
from sandbox.ray_fleet.registry import FleetRegistry, FleetSettings, WorkerEntry
from sandbox.ray_fleet.worker import SandboxWorker

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


@dataclass
class FleetStatus:
    """A fleet as its registry and Ray see it."""

    name: str
    settings: FleetSettings
    live: list[WorkerEntry] = field(default_factory=list)
    not_live: list[str] = field(default_factory=list)  # workers starting, restarting or pending

    @property
    def capacity(self) -> int:
        return sum(w.capacity for w in self.live)

    def to_dict(self) -> dict:
        return {"name": self.name, "settings": self.settings.to_dict(),
                "workers": [w.to_dict() for w in self.live], "not_live": self.not_live,
                "capacity": self.capacity, "nodes": len({w.node_id for w in self.live})}


def registry_actor(ray, name: str, settings: FleetSettings):
    """The fleet's registry, created (named, detached, restarted on failure) if absent."""
    actor = ray.remote(FleetRegistry).options(
        name=name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        max_restarts=-1, max_task_retries=-1)
    return actor.remote(settings.to_dict())


def worker_names(ray, name: str) -> list[str]:
    """The fleet's worker actors that exist (alive, starting, restarting or pending)."""
    prefix = worker_prefix(name)
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == NAMESPACE and a["name"].startswith(prefix))


def start_workers(ray, name: str, settings: FleetSettings, count: int,
                  max_restarts: int = -1) -> list:
    """`count` new worker actors (handles); Ray places them as resources allow."""
    resources = {settings.resource: 1} if settings.resource else {}
    actor = ray.remote(SandboxWorker)
    handles = []
    for _ in range(count):
        worker_id = worker_prefix(name) + uuid.uuid4().hex[:8]
        handles.append(actor.options(
            name=worker_id, namespace=NAMESPACE, lifetime="detached",
            num_cpus=settings.cpus_per_worker, resources=resources, scheduling_strategy="SPREAD",
            max_restarts=max_restarts, max_task_retries=0,
        ).remote(name, worker_id, settings.to_dict()))
    return handles


def placeable(ray, settings: FleetSettings) -> int:
    """How many more workers the cluster's free resources hold now (for --fill)."""
    free = ray.available_resources()
    count = int(free.get("CPU", 0) // settings.cpus_per_worker)
    if settings.resource:
        count = min(count, int(free.get(settings.resource, 0)))
    return count


def _settings_for(ray, name: str, requested: dict) -> tuple[FleetSettings, bool]:
    """The fleet's settings: its own when it exists (a request that contradicts them is an
    error), else the requested ones. Returns them and whether the fleet existed."""
    try:
        existing = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        settings = FleetSettings(**requested)
        try:
            settings.check()
        except ValueError as exc:
            raise RayFleetError(str(exc)) from None
        return settings, False
    current = FleetSettings.from_dict(ray.get(existing.settings.remote(), timeout=30))
    conflicts = [f"{k}={getattr(current, k)!r}" for k, v in requested.items()
                 if getattr(current, k) != v]
    if conflicts:
        raise RayFleetError(f"fleet {name!r} already runs with {', '.join(conflicts)}: give the "
                            f"same settings, or `sandbox ray down --name {name}` first")
    return current, True


def up(name: str, *, workers: int | None = None, cpus: float | None = None, fill: bool = False,
       address: str | None = None, wait_s: float = 120.0, max_restarts: int = -1,
       progress: Progress = _quiet, **requested) -> FleetStatus:
    """Creates the fleet if needed and brings it to `workers` workers (or `cpus` CPUs' worth;
    `fill`: as many more as the free resources hold now). Waits up to wait_s for them to be
    live; `requested`: FleetSettings fields given by the caller."""
    ray = ensure_ray(address)
    unknown = set(requested) - {f.name for f in fields(FleetSettings)}
    if unknown:
        raise RayFleetError(f"unknown fleet settings: {', '.join(sorted(unknown))}")
    settings, existed = _settings_for(ray, name, requested)
    registry_actor(ray, name, settings)
    current = worker_names(ray, name)
    if fill:
        target = len(current) + placeable(ray, settings)
    elif workers is not None:
        target = workers
    elif cpus is not None:
        target = int(cpus // settings.cpus_per_worker)
    else:
        raise RayFleetError("say how many workers: --workers N, --cpus C or --fill")
    if target < 0:
        raise RayFleetError("the number of workers cannot be negative")
    progress(f"fleet {name}: {'has' if existed else 'created with'} {len(current)} worker(s), "
             f"target {target}")
    if target < len(current):
        extra = _stop_order(ray, name, current)[:len(current) - target]
        stop_workers(ray, extra, settings.grace_s, progress)
    new = start_workers(ray, name, settings, max(0, target - len(current)), max_restarts)
    if new:
        progress(f"fleet {name}: starting {len(new)} worker(s) "
                 f"({settings.cpus_per_worker:g} CPU each, capacity {settings.capacity})")
    return wait_live(ray, name, target, new, wait_s, progress)


def _stop_order(ray, name: str, names: list[str]) -> list[str]:
    """Workers to stop first when shrinking: those not live, then the newest."""
    live = {w.worker_id: w for w in snapshot(ray, name)[1]}
    return sorted(names, key=lambda n: (n in live, -(live[n].started if n in live else 0)))


def wait_live(ray, name: str, target: int, new: list, wait_s: float,
              progress: Progress = _quiet) -> FleetStatus:
    """Waits until `target` workers are live; a new worker whose creation failed is an error."""
    from ray.exceptions import RayActorError

    deadline = time.monotonic() + wait_s
    pending = {h.ready.remote(): h for h in new}
    last = None
    while True:
        if pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in done:
                handle = pending.pop(ref)
                try:
                    ray.get(ref)
                except RayActorError as exc:
                    ray.kill(handle, no_restart=True)
                    raise RayFleetError(f"a worker could not start: {_cause(exc)}") from None
        state = status(name)
        if len(state.live) != last:
            last = len(state.live)
            progress(f"fleet {name}: {last}/{target} workers live on "
                     f"{len({w.node_id for w in state.live})} node(s), capacity {state.capacity}")
        if len(state.live) >= target or time.monotonic() >= deadline:
            return state
        time.sleep(0.5)


def _cause(exc: Exception) -> str:
    """The one line that says why an actor died (its constructor's exception)."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    for line in reversed(lines):
        if "Error:" in line and "RayActorError" not in line and "ActorDiedError" not in line:
            return line[:500]
    return (lines[-1] if lines else type(exc).__name__)[:500]


def stop_workers(ray, names: list[str], grace_s: float, progress: Progress = _quiet) -> int:
    """Stops workers gracefully (each server finishes what it grades), then ends their actors."""
    handles = []
    for worker in names:
        try:
            handles.append(ray.get_actor(worker, namespace=NAMESPACE))
        except ValueError:
            continue  # already gone
    if not handles:
        return 0
    progress(f"stopping {len(handles)} worker(s)")
    refs = [h.stop.remote() for h in handles]
    ray.wait(refs, num_returns=len(refs), timeout=grace_s + 20)
    for handle in handles:
        ray.kill(handle, no_restart=True)
    return len(handles)


def snapshot(ray, name: str) -> tuple[FleetSettings, list[WorkerEntry]]:
    try:
        registry = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        raise RayFleetError(f"no sandbox fleet named {name!r} on this Ray cluster") from None
    data = ray.get(registry.snapshot.remote(), timeout=30)
    return (FleetSettings.from_dict(data["settings"]),
            [WorkerEntry.from_dict(w) for w in data["workers"]])


def status(name: str, address: str | None = None) -> FleetStatus:
    ray = ensure_ray(address)
    settings, live = snapshot(ray, name)
    names = worker_names(ray, name)
    live = [w for w in live if w.worker_id in names]  # a worker stopped this instant has left
    live_ids = {w.worker_id for w in live}
    return FleetStatus(name, settings, sorted(live, key=lambda w: (w.node_id, w.worker_id)),
                       [n for n in names if n not in live_ids])


def down(name: str, address: str | None = None, progress: Progress = _quiet) -> int:
    """Stops every worker of the fleet and its registry; returns the workers stopped."""
    ray = ensure_ray(address)
    try:
        registry = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        raise RayFleetError(f"no sandbox fleet named {name!r} on this Ray cluster") from None
    settings = FleetSettings.from_dict(ray.get(registry.settings.remote(), timeout=30))
    stopped = stop_workers(ray, worker_names(ray, name), settings.grace_s, progress)
    ray.kill(registry, no_restart=True)
    return stopped

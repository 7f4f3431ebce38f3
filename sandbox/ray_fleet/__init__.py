"""Sandbox workers on a Ray cluster: placed, supervised and found through Ray.

Ray places and supervises; it does not carry the gradings. Each worker is a `sandbox serve`
process owned by a Ray actor (`worker.SandboxWorker`); a named, detached registry actor
(`registry.FleetRegistry`) holds the live workers' addresses; clients given `ray://NAME`
read it and grade over gRPC, least-loaded worker first (`client`, `balance`).

This module imports nothing from Ray, so that `sandbox.client` can recognise a `ray://`
address without paying for Ray's import.
"""
from __future__ import annotations

SCHEME = "ray://"
NAMESPACE = "sandbox"  # every fleet's actors live in this Ray namespace
DEFAULT_NAME = "sandbox"


class RayFleetError(RuntimeError):
    """Ray or the fleet cannot do what was asked; the message is one line."""


def is_ray_address(addresses: object) -> bool:
    """Whether a client's address names a fleet on Ray (`ray://NAME`)."""
    return isinstance(addresses, str) and addresses.strip().startswith(SCHEME)


def fleet_name(address: str) -> str:
    """NAME from `ray://NAME` (a fleet's registry actor name)."""
    name = address.strip().removeprefix(SCHEME).strip("/")
    if not name or "/" in name or "," in name:
        raise ValueError(f"{address!r} is not ray://NAME (the name given to `sandbox ray up`)")
    return name


def worker_prefix(name: str) -> str:
    """Worker actors of fleet NAME are named NAME-worker-<id>."""
    return f"{name}-worker-"

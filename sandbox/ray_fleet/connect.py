"""Joining the Ray cluster a fleet lives on, and finding its registry.

Which cluster: the one this process is already part of (a verl reward worker, a test
driver), else `address` (the CLI's --address), else $SANDBOX_RAY_ADDRESS, else Ray's own
rules for "auto" ($RAY_ADDRESS, then the cluster `ray start` last started here).

A cluster on 127.0.0.1 stays there: Ray turns a loopback address into the machine's outward
one unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which this sets (before Ray is imported) for a
loopback address.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys

from sandbox.ray_fleet import NAMESPACE, RayFleetError

ADDRESS_ENV = "SANDBOX_RAY_ADDRESS"
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
CONNECT_TIMEOUT_S = 5.0
CLOSED_PORT = "http://127.0.0.1:9"
# For a Ray cluster that must talk to this machine's loopback and nothing else (the tests, the
# smoke run): Ray's addresses stay 127.0.0.1, its usage statistics are off, and since its
# dashboard process probes the cloud metadata address (169.254.169.254, then DNS) whatever
# that setting, and reports "disabled" to usage-stats.ray.io, every HTTP(S) request of its
# Python processes to a host beyond loopback goes to a closed loopback port instead. gRPC
# ignores these proxies (an empty grpc_proxy): Ray's own traffic and the sandbox's are direct.
LOOPBACK_RAY_ENV = {SINGLE_MACHINE_ENV: "0", "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_USAGE_STATS_REPORT_URL": CLOSED_PORT + "/",
                    "http_proxy": CLOSED_PORT, "https_proxy": CLOSED_PORT, "grpc_proxy": "",
                    "no_proxy": "127.0.0.1,localhost,::1"}


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if sep and port.isdigit() else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_reachable(target: str) -> None:
    """Fails at once on a GCS address nobody answers on (Ray itself would retry for minutes)."""
    endpoint = _host_port(target)
    if endpoint is None:
        return  # "auto", ray://…: Ray's own rules
    try:
        socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayFleetError(f"cannot reach the Ray cluster at {target}: "
                            f"{exc.strerror or exc}") from None


def ensure_ray(address: str | None = None):
    """The `ray` module, connected to a cluster (joined as a driver when not yet)."""
    target = address or os.environ.get(ADDRESS_ENV) or "auto"
    endpoint = _host_port(target)
    if endpoint and _is_loopback(endpoint[0]) and "ray" not in sys.modules:
        os.environ.setdefault(SINGLE_MACHINE_ENV, "0")
    try:
        import ray
    except ImportError:
        raise RayFleetError("Ray is not installed: pip install 'code-sandbox[ray]'") from None
    if ray.is_initialized():
        return ray
    _check_reachable(target)
    try:
        ray.init(address=target, namespace=NAMESPACE, log_to_driver=False,
                 logging_level=logging.WARNING, include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        message = " ".join(str(exc).split())
        raise RayFleetError(f"cannot join the Ray cluster at {target}: {message}") from None
    return ray


def registry_handle(name: str, address: str | None = None):
    """The registry actor of fleet `name`; RayFleetError when there is none."""
    ray = ensure_ray(address)
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        raise RayFleetError(f"no sandbox fleet named {name!r} on this Ray cluster "
                            f"(start one with `sandbox ray up --name {name}`)") from None

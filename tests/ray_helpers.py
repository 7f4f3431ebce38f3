"""A local multi-node Ray cluster for tests, bound to 127.0.0.1, and a loopback-only check.

Every node is a real raylet (ray.cluster_utils.Cluster) on this machine with its own CPUs and
custom resources. Ray is kept on loopback (LOOPBACK_RAY_ENV: it would otherwise turn
127.0.0.1 into the machine's outward address, and probe and report beyond it), and in a
private temp dir: a cluster recorded in the shared
/tmp/ray would be joined by any other `ray.init()` running on the machine meanwhile.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

from sandbox.problem import load_problem
from sandbox.ray_fleet.connect import LOOPBACK_RAY_ENV
from sandbox.v1 import sandbox_pb2 as pb

NODE_STORE_BYTES = 100 << 20
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Quick ones, right and wrong, Python and C++: a load whose every answer can be checked.
WORKLOAD = [("lcb-sum-pairs", "ac_python.py"), ("lcb-sum-pairs", "wa_off_by_one.py"),
            ("lcb-two-sum-count", "ac_solution.py"), ("lcb-two-sum-count", "wa_solution.py"),
            ("cf-float-mean", "ac_python.py"), ("cf-float-mean", "wa_integer_division.py"),
            ("lcb-sum-pairs", "ac_cpp.cpp")]


def example_workload() -> list[pb.GradeRequest]:
    """One request per WORKLOAD solution (request_id: problem/solution)."""
    requests = []
    for problem_dir, solution in WORKLOAD:
        problem = load_problem(EXAMPLES / problem_dir / "problem.json")
        path = EXAMPLES / problem_dir / "solutions" / solution
        requests.append(problem.grade_request(path.read_text(),
                                              "cpp" if path.suffix == ".cpp" else "python",
                                              request_id=f"{problem_dir}/{solution}"))
    return requests


def outcome(response: pb.GradeResponse) -> tuple:
    """What must not differ between two gradings of one request."""
    return (response.verdict, response.passed, response.total,
            tuple(t.verdict for t in response.tests))


def node_args(cpus: float, **resources: float) -> dict:
    return {"node_ip_address": "127.0.0.1", "num_cpus": cpus, "resources": resources,
            "object_store_memory": NODE_STORE_BYTES}


@contextlib.contextmanager
def local_cluster(head_cpus: float = 1, nodes: list[dict] = ()):
    """A started cluster (head + `nodes`, each node_args(...)) with this process connected as
    a driver; everything it started is stopped afterwards, by Ray's own PIDs."""
    temp = tempfile.mkdtemp(prefix="sbray-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", *LOOPBACK_RAY_ENV)}
    os.environ.update({"RAY_TMPDIR": temp, **LOOPBACK_RAY_ENV})
    patched = None
    if "ray" in sys.modules:  # imported before this env was set: keep its resolution on loopback
        from ray._private import ray_constants
        patched, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    import ray
    from ray.cluster_utils import Cluster

    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={
            "node_ip_address": "127.0.0.1", "num_cpus": head_cpus, "include_dashboard": False,
            "object_store_memory": NODE_STORE_BYTES})
        for args in nodes:
            cluster.add_node(**args)
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", log_to_driver=False,
                 namespace="sandbox-tests")
        yield cluster
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if patched is not None:
            from ray._private import ray_constants
            ray_constants.ENABLE_RAY_CLUSTER = patched


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def outside_loopback(root_pid: int | None = None) -> list[tuple]:
    """TCP/UDP sockets of this process tree bound to or talking to a non-loopback address."""
    try:
        root = psutil.Process(root_pid or os.getpid())
        pids = {root.pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return []
    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid not in pids:
            continue
        for end in (conn.laddr, conn.raddr):
            if end and end.ip not in ("0.0.0.0", "::") and not _is_loopback(end.ip):
                found.append((conn.pid, conn.status, conn.laddr, conn.raddr))
        if conn.status == psutil.CONN_LISTEN and conn.laddr.ip in ("0.0.0.0", "::"):
            found.append((conn.pid, conn.status, conn.laddr, None))
    return found


def server_processes(fleet: str) -> list[psutil.Process]:
    """The `sandbox serve` processes that workers of `fleet` started (their logs name them)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "sandbox.ray_fleet.serve" in cmdline:
            try:
                if any(f"{fleet}-worker-" in f.path for f in process.open_files()):
                    found.append(process)
            except psutil.Error:
                continue
    return found


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """predicate()'s first truthy value within timeout; AssertionError naming `what` if none."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)

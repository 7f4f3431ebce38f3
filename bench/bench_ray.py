"""Gradings per second through `ray://` with workers on 2 local Ray nodes vs one local server.

The same workload on the same CPU budget: a fleet of 2 workers (1 CPU and capacity 1 each,
one per node, placed by `sandbox ray up`'s code) on a 3-node Ray cluster on 127.0.0.1, and a
`sandbox serve --capacity 2` process. Each side is warmed, then graded once; every answer is
checked against the local server's. Prints one table and the ratio.

Usage: .venv/bin/python bench/bench_ray.py [--requests 400] [--in-flight 16]
"""
from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from ray_helpers import example_workload, local_cluster, node_args, outcome, wait_for  # noqa: E402
from sandbox.client import SandboxClient  # noqa: E402
from sandbox.ray_fleet import control  # noqa: E402


def run_burst(client: SandboxClient, requests, in_flight: int, expected: dict | None):
    """(seconds, latencies, wrong answers) for grading `requests` with `in_flight` at once."""
    latencies: list[float] = []
    wrong = [0]
    lock = threading.Lock()

    def one(request) -> None:
        started = time.perf_counter()
        answer = client.grade(request, timeout=300)
        with lock:
            latencies.append(time.perf_counter() - started)
            if expected is not None and outcome(answer) != expected[request.request_id]:
                wrong[0] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(one, requests))
    return time.perf_counter() - started, latencies, wrong[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def local_server(socket_path: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "sandbox.cli", "serve", "--address",
                                f"unix:{socket_path}", "--capacity", "2"], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: socket_path.exists() or process.poll() is not None, 60, "the local server")
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    kinds = example_workload()
    requests = [r for _, r in zip(range(args.requests), itertools.cycle(kinds))]
    warm = requests[:2 * len(kinds)]

    with tempfile.TemporaryDirectory() as tmp:
        server = local_server(Path(tmp) / "local.sock")
        try:
            with SandboxClient(f"unix:{tmp}/local.sock", timeout=300) as local:
                expected = {r.request_id: outcome(local.grade(r)) for r in kinds}
                run_burst(local, warm, args.in_flight, None)
                local_s, local_lat, local_wrong = run_burst(local, requests, args.in_flight, expected)
        finally:
            server.terminate()
            server.wait(30)

    with local_cluster(head_cpus=1, nodes=[node_args(1, sandbox=1), node_args(1, sandbox=1)]):
        state = control.up("bench", workers=2, resource="sandbox", wait_s=120)
        nodes = len({w.node_id for w in state.live})
        try:
            with SandboxClient("ray://bench", timeout=300) as fleet:
                run_burst(fleet, warm, args.in_flight, None)
                ray_s, ray_lat, ray_wrong = run_burst(fleet, requests, args.in_flight, expected)
        finally:
            control.down("bench")

    print(f"\n{len(requests)} gradings ({len(kinds)} kinds, examples/), {args.in_flight} in flight, "
          f"one run\n")
    print("| path | gradings / s | p50 latency ms | p99 latency ms | wrong |")
    print("|---|---|---|---|---|")
    for name, seconds, latencies, wrong in (
            (f"ray:// — 2 workers x 1 CPU on {nodes} Ray nodes", ray_s, ray_lat, ray_wrong),
            ("local server (sandbox serve, capacity 2)", local_s, local_lat, local_wrong)):
        print(f"| {name} | {len(requests) / seconds:.1f} | {percentile(latencies, .5) * 1e3:.0f} | "
              f"{percentile(latencies, .99) * 1e3:.0f} | {wrong} |")
    print(f"\nratio ray:// / local: {local_s / ray_s:.2f}")
    return 0 if ray_wrong == local_wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

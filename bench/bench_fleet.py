"""Fleet benchmarks (not tests; they print tables). Needs Docker and the code-sandbox image.

  throughput   the same workload through the gateway with 2 workers and through a local
               server, side by side in one run
  load         N gradings with 64 in flight while a worker is killed every 10 s and
               restarted: requests lost, wrong verdicts, SE answers, latency percentiles

Usage: .venv/bin/python bench/bench_fleet.py [--requests 10000] [--throughput-requests 400]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import grpc  # noqa: E402

from conftest import ServerThread  # noqa: E402
from sandbox.client import SandboxClient  # noqa: E402
from sandbox.v1 import sandbox_pb2 as pb  # noqa: E402
from test_fleet import Fleet, _burst_requests as workload  # noqa: E402


def run_burst(client: SandboxClient, items, in_flight: int):
    latencies, outcomes = [], []
    lock = threading.Lock()

    def one(item):
        request, expected = item
        started = time.perf_counter()
        try:
            verdict = client.grade(request, timeout=300).verdict
        except grpc.RpcError as exc:
            verdict = f"error:{exc.code().name}"
        with lock:
            latencies.append(time.perf_counter() - started)
            outcomes.append((verdict, expected))

    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(one, items))
    return time.perf_counter() - started, latencies, outcomes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10000, help="gradings in the load run")
    parser.add_argument("--throughput-requests", type=int, default=400)
    parser.add_argument("--kill-every", type=float, default=10.0, help="seconds between kills")
    args = parser.parse_args()
    import docker
    docker_client = docker.from_env()
    fleet = Fleet(docker_client, f"sbbench{os.getpid()}")
    # Same CPU budget for both sides: two workers of one CPU each vs a local server of
    # capacity 2.
    try:
        fleet.compose("up", "-d", "--no-build", "--scale", "worker=2")
        client = fleet.wait_for_workers(2)
        with tempfile.TemporaryDirectory() as tmp:
            local = ServerThread(f"unix:{tmp}/local.sock", capacity=2)
            local_client = SandboxClient(local.address)
            items = workload(args.throughput_requests)
            run_burst(client, items[:20], 8)  # warm both
            run_burst(local_client, items[:20], 8)
            fleet_s, fleet_lat, _ = run_burst(client, items, 16)
            local_s, local_lat, _ = run_burst(local_client, items, 16)
            local_client.close()
            local.stop()
        print(f"\nthroughput: {len(items)} gradings (5 tests each), 16 in flight\n")
        print("| path | gradings / s | p50 latency ms | p99 latency ms |")
        print("|---|---|---|---|")
        for name, seconds, lat in (("gateway + 2 workers (docker)", fleet_s, fleet_lat),
                                   ("local server (capacity 2)", local_s, local_lat)):
            print(f"| {name} | {len(items) / seconds:.1f} | {percentile(lat, .5) * 1e3:.0f} | "
                  f"{percentile(lat, .99) * 1e3:.0f} |")
        print(f"\nratio gateway / local: {local_s / fleet_s:.2f}")

        stop = threading.Event()
        kills = []

        def killer():
            while not stop.wait(args.kill_every):
                workers = fleet.containers("worker")
                if workers:
                    victim = workers[len(kills) % len(workers)]
                    victim.kill()
                    kills.append(victim.name)
                    victim.start()

        items = workload(args.requests)
        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        seconds, latencies, outcomes = run_burst(client, items, 64)
        stop.set()
        chaos.join()
        lost = len(items) - len(outcomes)
        errors = sum(1 for v, _ in outcomes if isinstance(v, str))
        se = sum(1 for v, _ in outcomes if v == pb.SE)
        wrong = sum(1 for v, e in outcomes if not isinstance(v, str) and v != pb.SE and v != e)
        print(f"\nload: {len(items)} gradings, 64 in flight, a worker killed and restarted every "
              f"{args.kill_every:g} s ({len(kills)} kills), {seconds:.0f} s\n")
        print("| requests | answered | lost | errors | wrong verdicts | SE | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {len(items)} | {len(outcomes)} | {lost} | {errors} | {wrong} | {se} | "
              f"{percentile(latencies, .5) * 1e3:.0f} | {percentile(latencies, .9) * 1e3:.0f} | "
              f"{percentile(latencies, .99) * 1e3:.0f} | {max(latencies) * 1e3:.0f} |")
        if errors:
            kinds: dict[str, int] = {}
            for verdict, _ in outcomes:
                if isinstance(verdict, str):
                    kinds[verdict] = kinds.get(verdict, 0) + 1
            print("\nerrors by status:", ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
        client.close()
        return 0 if lost == errors == wrong == se == 0 else 1
    finally:
        fleet.down()


if __name__ == "__main__":
    sys.exit(main())

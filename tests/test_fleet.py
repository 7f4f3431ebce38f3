"""The Docker fleet: real images, real containers, compose's file, the Docker SDK.

Needs a Docker daemon and the `code-sandbox:latest` image (`scripts/setup.sh --with-fleet`
prepares both). In CI (CI=true) a missing daemon or image is a failure, not a skip.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from conftest import REPO, SHARED_DATA, execute_request, grade_request
from sandbox.client import SandboxClient
from sandbox.embedded import EmbeddedSandbox
from sandbox.examples import EXTENSIONS, example_solutions
from sandbox.problem import load_problem, problem_from_dict
from sandbox.service import SandboxCore
from sandbox.v1 import sandbox_pb2 as pb

IMAGE = os.environ.get("SANDBOX_IMAGE", "code-sandbox:latest")


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"fleet tests cannot run in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


class Fleet:
    """One compose project of the repository's docker-compose.yml."""

    def __init__(self, docker_client, project: str) -> None:
        self.docker = docker_client
        self.project = project
        self.port = _free_port()
        self.metrics_port = _free_port()
        self.http_port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(os.environ, SANDBOX_IMAGE=IMAGE, SANDBOX_GATEWAY_ADDRESS=self.address,
                        SANDBOX_METRICS_ADDRESS=f"127.0.0.1:{self.metrics_port}",
                        SANDBOX_HTTP_ADDRESS=f"127.0.0.1:{self.http_port}",
                        SANDBOX_WORKER_CPUS="1", SANDBOX_WORKER_MEMORY="4g",
                        COMPOSE_PROJECT_NAME=project)

    def compose(self, *args: str, timeout: float = 300) -> None:
        command = _compose_command() + ["-f", str(REPO / "docker-compose.yml"), "-p",
                                        self.project, *args]
        done = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def containers(self, service: str) -> list:
        return self.docker.containers.list(filters={"label": [
            f"com.docker.compose.project={self.project}",
            f"com.docker.compose.service={service}"]})

    def wait_for_workers(self, count: int, timeout: float = 90) -> SandboxClient:
        client = SandboxClient(self.address, timeout=60)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = client.info()
                if info.capacity >= count:  # one slot per worker (1 CPU each)
                    return client
            except grpc.RpcError:
                pass
            time.sleep(0.5)
        client.close()
        raise AssertionError(f"the gateway did not see {count} workers in {timeout} s")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def down(self) -> None:
        try:
            self.compose("down", "-v", "--timeout", "5", timeout=120)
        except (RuntimeError, subprocess.TimeoutExpired):
            for container in self.docker.containers.list(all=True, filters={
                    "label": f"com.docker.compose.project={self.project}"}):
                container.remove(force=True)


@pytest.fixture(scope="module")
def docker_client():
    try:
        import docker
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"no Docker daemon ({exc})")
    try:
        client.images.get(IMAGE)
    except Exception:  # noqa: BLE001
        _unavailable(f"image {IMAGE} is missing: run scripts/setup.sh --with-fleet")
    return client


@pytest.fixture(scope="module")
def fleet(docker_client):
    stack = Fleet(docker_client, f"sbtest{os.getpid()}")
    try:
        stack.compose("up", "-d", "--no-build", "--scale", "worker=2")
        client = stack.wait_for_workers(2)
        stack.client = client
        yield stack
        client.close()
    finally:
        stack.down()


def _grade_all(grade, items):
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(grade, items))


def test_gateway_matches_local_server_on_examples(fleet):
    local = EmbeddedSandbox()
    items = example_solutions(REPO / "examples")

    def request(item):
        problem_file, solution, _expected = item
        return load_problem(problem_file).grade_request(solution.read_text(),
                                                        EXTENSIONS[solution.suffix])

    requests = [request(item) for item in items]
    remote = _grade_all(fleet.client.grade, requests)
    here = _grade_all(local.grade, requests)
    for item, a, b in zip(items, remote, here):
        assert (a.verdict, a.passed) == (b.verdict, b.passed), item[1]
        assert pb.Verdict.Name(a.verdict) == item[2], item[1]


def test_gateway_matches_local_server_on_verified_problems(fleet):
    path = SHARED_DATA / "verified" / "problems.jsonl"
    if not path.exists():
        pytest.skip("shared data is absent")
    local = EmbeddedSandbox(SandboxCore())
    requests = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        problem = problem_from_dict({**row, "compare": "lcb"})
        for group in ("correct", "incorrect"):
            for solution in row["solutions"][group]:
                requests.append(problem.grade_request(solution["code"], solution["language"]))
    remote = _grade_all(fleet.client.grade, requests)
    here = _grade_all(local.grade, requests)
    mismatches = [(r.language, a.verdict, b.verdict) for r, a, b in zip(requests, remote, here)
                  if a.verdict != b.verdict]
    assert not mismatches


def _burst_requests(count: int):
    items = []
    for i in range(count):
        ok = i % 4 != 0
        source = "a, b = map(int, input().split())\nprint(a + b%s)\n" % ("" if ok else " + 1")
        items.append((grade_request(source, [(f"{i} 2\n", f"{i + 2}\n")] * 3),
                      pb.AC if ok else pb.WA))
    return items


def test_sandbox_fusion_api_of_the_fleet_with_verls_client(fleet):
    """`docker compose up` serves SandboxFusion's /run_code on the host's loopback: verl's own
    client scores a correct and a wrong solution as they deserve."""
    from verl.utils.reward_score.sandbox_fusion import compute_score
    url = f"http://127.0.0.1:{fleet.http_port}/run_code"
    ground_truth = json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]})
    semaphore = threading.Semaphore(4)
    right = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    wrong = "```python\na, b = map(int, input().split())\nprint(a + b if a == 1 else 0)\n```"
    assert compute_score(url, semaphore, 1024, right, ground_truth)[0] == 1.0
    score, metadata = compute_score(url, semaphore, 1024, wrong, ground_truth)
    assert score == 0.5, metadata


def test_killing_a_worker_mid_burst_loses_nothing(fleet):
    items = _burst_requests(500)
    victim = fleet.containers("worker")[0]
    results: list = [None] * len(items)

    def grade(index: int) -> None:
        request, _ = items[index]
        results[index] = fleet.client.grade(request, timeout=120)

    with ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(grade, i) for i in range(len(items))]
        while sum(r is not None for r in results) < 50:
            time.sleep(0.05)
        victim.kill()
        for future in futures:
            future.result()
    wrong = [i for i, (item, got) in enumerate(zip(items, results)) if got.verdict != item[1]]
    assert not wrong, f"{len(wrong)} wrong verdicts, e.g. {results[wrong[0]]}"
    victim.start()  # back to two workers for the next tests
    fleet.wait_for_workers(2).close()


def test_scaling_up_under_load_spreads_work(fleet):
    fleet.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker=1")
    fleet.wait_for_workers(1).close()
    items = _burst_requests(300)
    stop = threading.Event()

    def load() -> None:
        with ThreadPoolExecutor(8) as pool:
            for result, (_, expected) in zip(pool.map(lambda it: fleet.client.grade(it[0]), items),
                                             items):
                assert result.verdict == expected

    loader = threading.Thread(target=load)
    loader.start()
    fleet.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker=3")
    loader.join(600)
    stop.set()
    workers = fleet.containers("worker")
    assert len(workers) == 3
    text = fleet.metrics()
    served = {line.split('worker="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines()
              if line.startswith("sandbox_gateway_worker_requests_total{")}
    hostnames = {c.attrs["Config"]["Hostname"] for c in workers}
    assert hostnames <= {name for name, count in served.items() if count > 0}, served
    fleet.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "worker=2")


def test_worker_containers_are_confined(fleet):
    for container in fleet.containers("worker"):
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["Privileged"] is False
        assert not host.get("CapAdd")
        assert host["CapDrop"] == ["ALL"]
        assert host["ReadonlyRootfs"] is True
        assert host["PidsLimit"] and host["Memory"] and host["NanoCpus"]
        assert container.attrs["Config"]["User"] == "sandbox"
        seccomp = [opt for opt in host["SecurityOpt"] if opt.startswith("seccomp")]
        assert seccomp and "unconfined" not in seccomp[0]  # our profile, not unconfined
    gateway = fleet.containers("gateway")[0]
    assert gateway.attrs["HostConfig"]["NetworkMode"] == "host"


def test_jail_in_a_worker_reaches_nothing(fleet):
    probe = f"""
import os, socket
results = []
try:  # the gateway's port on the host's loopback
    socket.create_connection(("127.0.0.1", {fleet.port}), timeout=2); results.append("NET-OPEN")
except OSError:
    results.append("net-blocked")
# no route and no interface off the jail's loopback, read from inside (nothing is sent anywhere)
try:
    routes = open("/proc/net/route").read().splitlines()[1:]
except FileNotFoundError:  # no IPv4 routing table at all in this namespace
    routes = []
others = [name for _, name in socket.if_nameindex() if name != "lo"]
results.append("NET-ROUTE" if routes or others else "net-blocked")
for path in ("/run/sandbox", "/var/run/docker.sock", "/run/docker.sock", "/opt/venv",
             "/home/sandbox", "/opt/code-sandbox"):
    results.append(("LEAK:" + path) if os.path.exists(path) else "hidden")
print(" ".join(results))
"""
    response = fleet.client.execute(execute_request(probe))
    assert response.verdict == pb.AC, response.message + response.stderr.decode()
    words = response.stdout.decode().split()
    assert words == ["net-blocked"] * 2 + ["hidden"] * 6, words


def test_gateway_without_workers_is_unavailable_until_one_appears(docker_client):
    stack = Fleet(docker_client, f"sbtestempty{os.getpid()}")
    try:
        stack.compose("up", "-d", "--no-build", "--scale", "worker=0", "gateway")
        client = SandboxClient(stack.address, timeout=10)
        deadline = time.monotonic() + 60
        error = None
        while time.monotonic() < deadline:
            try:
                client.grade(grade_request("print(1)", [("", "1")]))
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and "worker" in exc.details():
                    error = exc
                    break
            time.sleep(0.5)
        assert error is not None, "the gateway never answered UNAVAILABLE without workers"
        assert "no sandbox worker is available" in error.details()
        stack.compose("up", "-d", "--no-build", "--scale", "worker=1")
        stack.wait_for_workers(1).close()
        assert client.grade(grade_request("print(1)", [("", "1")])).verdict == pb.AC
        client.close()
    finally:
        stack.down()


def test_fleet_status_lists_workers_with_their_load(fleet):
    from sandbox.fleet import fleet_status
    volume = fleet.docker.volumes.get(f"{fleet.project}_sockets")
    rows = fleet_status(fleet.project, volume.attrs["Mountpoint"])
    services = sorted(row["service"] for row in rows)
    assert services.count("gateway") == 1 and services.count("worker") >= 2, rows
    for row in rows:
        assert row["state"] == "running", row
        if row["service"] == "worker":
            assert row["socket"] and row["capacity"] >= 1, row
            assert row["health"] != "unreachable", row


# ---------------------------------------------------------------- one budget per submission

def _container_memory_files(container) -> tuple[Path, Path | None]:
    """The worker container's memory cgroup on the host: (peak file, reset file or None)."""
    full = container.id
    v1 = Path("/sys/fs/cgroup/memory/docker") / full
    if v1.is_dir():
        return v1 / "memory.max_usage_in_bytes", v1 / "memory.max_usage_in_bytes"
    for v2 in (Path(f"/sys/fs/cgroup/system.slice/docker-{full}.scope"),
               Path("/sys/fs/cgroup/docker") / full):
        if (v2 / "memory.peak").exists():
            return v2 / "memory.peak", None
    pytest.skip("cannot find the worker container's memory cgroup on this host")


ATTACKS_IN_THE_FLEET = {
    "memfd": ("import os\nfds = []\nfor _ in range(40):\n    fd = os.memfd_create('x')\n"
              "    os.write(fd, bytes(63 << 20))\n    fds.append(fd)\nprint('done')"),
    "fill /tmp": ("block = bytes(4 << 20)\nfor i in range(1000):\n"
                  "    open('/tmp/f%d' % i, 'wb').write(block)\nprint('done')"),
    "fill /dev/shm": ("block = bytes(4 << 20)\nfor i in range(1000):\n"
                      "    open('/dev/shm/f%d' % i, 'wb').write(block)\nprint('done')"),
    "forked memory": ("import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n"
                      "        b = bytearray(200 << 20)\n        time.sleep(2)\n"
                      "        os._exit(0)\ntime.sleep(2)\nprint('done')"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS_IN_THE_FLEET))
def test_memory_attacks_stay_within_the_limit_inside_the_fleet(fleet, name):
    """Worker containers have no cgroup of their own to delegate: the single-process
    fallback holds, measured on the host from the containers' own memory cgroups."""
    files = [_container_memory_files(c) for c in fleet.containers("worker")]
    baseline = []
    for peak, reset in files:
        if reset is not None:
            reset.write_text("0")
        baseline.append(int(peak.read_text()))
    response = fleet.client.execute(execute_request(ATTACKS_IN_THE_FLEET[name], memory_mb=256))
    assert response.verdict == pb.RE, (pb.Verdict.Name(response.verdict), response.message,
                                       response.stderr[-300:])
    grown = max(int(peak.read_text()) - base for (peak, _), base in zip(files, baseline))
    # 256 MiB limit + the fallback's tmpfs allowance (128 MiB) + the worker's own buffers.
    assert grown < (256 + 128 + 128) << 20, f"a worker grew by {grown >> 20} MiB"


def test_more_processes_are_refused_inside_the_fleet(fleet):
    with pytest.raises(grpc.RpcError) as failure:
        fleet.client.execute(execute_request("print(1)", max_processes=4))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs per-jail cgroups" in failure.value.details()

"""Sandbox workers on a real multi-node Ray cluster (ray.cluster_utils, all on 127.0.0.1).

`sandbox ray up | status | down` as users run them, workers landing on more than one node,
`ray status` showing what they reserve, gradings through `ray://` agreeing with a local
server on examples/ and the verified problems, node-address workers requiring the fleet's
token (and clients finding it through the registry), and nothing left running afterwards.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

pytest.importorskip("ray")

from conftest import REPO, SHARED_DATA  # noqa: E402
from ray_helpers import local_cluster, node_args, outside_loopback, server_processes, wait_for  # noqa: E402
from sandbox.client import AsyncSandboxClient, SandboxClient  # noqa: E402
from sandbox.examples import example_solutions  # noqa: E402
from sandbox.problem import load_problem, problem_from_dict  # noqa: E402
from sandbox.ray_fleet import RayFleetError, control  # noqa: E402
from sandbox.ray_fleet.client import AsyncRaySandboxClient, RaySandboxClient  # noqa: E402
from sandbox.v1 import sandbox_pb2 as pb  # noqa: E402
from test_tls_token import TOKEN, pki  # noqa: E402,F401 - pki: a fixture (CA, 127.0.0.1 certificate)

PROBLEMS_FILE = SHARED_DATA / "verified" / "problems.jsonl"
LANGUAGES = {"python": "python", "cpp": "cpp"}
V = pb.Verdict.Name


@pytest.fixture(scope="module")
def cluster():
    """A head (2 CPUs, nothing else) and two CPU-only nodes with the custom resource `sandbox`."""
    with local_cluster(head_cpus=2, nodes=[node_args(2, sandbox=2), node_args(2, sandbox=2)]) as c:
        yield c
    assert not outside_loopback()


@pytest.fixture(scope="module")
def fleet(cluster):
    state = control.up("tfleet", workers=2, resource="sandbox", wait_s=120)
    yield state
    control.down("tfleet")
    wait_for(lambda: not server_processes("tfleet"), 30, "the servers of tfleet to stop")


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def ray_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "ray"), *args],
                          capture_output=True, text=True, timeout=120)


def usage(text: str, resource: str) -> tuple[float, float]:
    """`ray status`'s 'used/total resource' line, summed over the cluster."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == resource and "/" in parts[0]:
            used, total = parts[0].split("/")
            return float(used), float(total)
    raise AssertionError(f"no {resource} line in ray status:\n{text}")


# ------------------------------------------------------------------ the CLI


def test_cli_up_status_down_across_nodes(cluster):
    address = cluster.address
    up = cli("ray", "up", "--address", address, "--name", "cli", "--workers", "2",
             "--resource", "sandbox", "--json")
    assert up.returncode == 0, up.stderr
    state = json.loads(up.stdout)
    assert len(state["workers"]) == 2 and state["nodes"] == 2, state  # spread over both nodes
    assert {w["address"].split(":")[0] for w in state["workers"]} == {"127.0.0.1"}
    assert "2/2 workers live on 2 node(s)" in up.stderr  # progress as plain lines

    ray_status = ray_cli("status", "--address", address)
    assert ray_status.returncode == 0, ray_status.stderr
    wait_for(lambda: usage(ray_cli("status", "--address", address).stdout, "sandbox") == (2.0, 4.0),
             60, "ray status to show the workers' reservations", interval=2)

    # more when asked for: as many as the free `sandbox` units hold, then back to two
    grown = cli("ray", "up", "--address", address, "--name", "cli", "--fill", "--json")
    assert grown.returncode == 0, grown.stderr
    assert len(json.loads(grown.stdout)["workers"]) == 4
    shrunk = cli("ray", "up", "--address", address, "--name", "cli", "--workers", "2", "--json")
    assert shrunk.returncode == 0, shrunk.stderr
    assert len(json.loads(shrunk.stdout)["workers"]) == 2

    table = cli("ray", "status", "--address", address, "--name", "cli")
    assert table.returncode == 0, table.stderr
    assert "2 worker(s) live on 2 node(s), capacity 2; listening on 127.0.0.1" in table.stdout
    for worker in state["workers"]:
        assert worker["worker_id"] in table.stdout
    assert len(server_processes("cli")) == 2

    # any --server takes ray://NAME (the cluster from $SANDBOX_RAY_ADDRESS)
    graded = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "grade", "--server", "ray://cli", "--json",
         "--problem", "examples/lcb-sum-pairs/problem.json",
         "--source", "examples/lcb-sum-pairs/solutions/wa_off_by_one.py"],
        cwd=REPO, env={**os.environ, "SANDBOX_RAY_ADDRESS": address}, capture_output=True,
        text=True, timeout=120)
    assert graded.returncode == 0, graded.stderr
    assert json.loads(graded.stdout)["verdict"] == "WA"

    # the fleet's settings hold: a contradicting `up` is refused in one line
    conflict = cli("ray", "up", "--address", address, "--name", "cli", "--workers", "2",
                   "--cpus-per-worker", "2")
    assert conflict.returncode == 2
    assert conflict.stderr.strip().splitlines() == [
        "sandbox: error: fleet 'cli' already runs with cpus_per_worker=1.0: give the same "
        "settings, or `sandbox ray down --name cli` first"]

    down = cli("ray", "down", "--address", address, "--name", "cli")
    assert down.returncode == 0, down.stderr
    assert "2 worker(s) stopped" in down.stdout
    wait_for(lambda: not server_processes("cli"), 30, "the servers to stop with their actors")
    gone = cli("ray", "status", "--address", address, "--name", "cli")
    assert gone.returncode == 2
    assert gone.stderr.strip() == "sandbox: error: no sandbox fleet named 'cli' on this Ray cluster"
    # `ray status` reports what the autoscaler last saw: the reservations go within seconds
    wait_for(lambda: usage(ray_cli("status", "--address", address).stdout, "sandbox") == (0.0, 4.0),
             60, "ray status to show the workers' resources released", interval=2)


def test_cli_errors_are_one_line(cluster):
    for args, expected in [
        (("ray", "up", "--address", cluster.address, "--name", "x", "--workers", "1",
          "--bind", "node"), "need a token"),
        (("ray", "up", "--address", cluster.address, "--name", "x"), "say how many workers"),
        (("ray", "status", "--address", "127.0.0.1:1"), "cannot reach the Ray cluster"),
        (("grade", "--server", "ray://nosuch", "--problem",
          "examples/lcb-sum-pairs/problem.json", "--source",
          "examples/lcb-sum-pairs/solutions/ac_python.py"), "no sandbox fleet named 'nosuch'"),
    ]:
        env = {**os.environ, "SANDBOX_RAY_ADDRESS": cluster.address}
        result = subprocess.run([sys.executable, "-m", "sandbox.cli", *args], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sandbox: error: "), result.stderr
        assert expected in lines[0], lines[0]


# ------------------------------------------------------------------ gradings through ray://


def _example_items() -> list[tuple[str, pb.GradeRequest, str]]:
    items = []
    for problem_file, solution, expected in example_solutions(REPO / "examples"):
        problem = load_problem(problem_file)
        language = "cpp" if solution.suffix == ".cpp" else "python"
        items.append((f"{problem_file.parent.name}/{solution.name}",
                      problem.grade_request(solution.read_text(), language, request_id=solution.name),
                      expected))
    return items


def _verified_items() -> list[tuple[str, pb.GradeRequest, str]]:
    items = []
    for line in PROBLEMS_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        problem = problem_from_dict(row)
        for group in ("correct", "incorrect"):
            for number, solution in enumerate(row["solutions"][group]):
                request = problem.grade_request(solution["code"], LANGUAGES[solution["language"]],
                                                request_id=f"{row['id']}#{group}{number}",
                                                stop_on_first_failure=group == "incorrect")
                items.append((request.request_id, request,
                              "AC" if group == "correct" else solution["observed_verdict"]))
    return items


def _outcome(response: pb.GradeResponse) -> tuple:
    return (V(response.verdict), response.passed, response.total,
            tuple(V(t.verdict) for t in response.tests))


def test_ray_gradings_agree_with_a_local_server(fleet, client):
    items = _example_items()
    if PROBLEMS_FILE.is_file():
        items += _verified_items()
    assert len(items) >= 19
    with SandboxClient("ray://tfleet", timeout=300) as ray_client:
        assert isinstance(ray_client, RaySandboxClient)
        with ThreadPoolExecutor(max_workers=4) as pool:
            on_ray = list(pool.map(lambda item: ray_client.grade(item[1]), items))
            local = list(pool.map(lambda item: client.grade(item[1]), items))
        used = ray_client.workers()
    disagreements, unexpected = [], []
    for (name, _request, expected), ray_answer, local_answer in zip(items, on_ray, local):
        if _outcome(ray_answer) != _outcome(local_answer):
            disagreements.append(f"{name}: ray {_outcome(ray_answer)[:3]} local {_outcome(local_answer)[:3]}")
        if V(ray_answer.verdict) != expected:
            unexpected.append(f"{name}: expected {expected}, got {V(ray_answer.verdict)} "
                              f"{ray_answer.message[:200]}")
    assert not disagreements, "\n".join(disagreements)
    assert not unexpected, "\n".join(unexpected)
    # both workers, on two nodes, took a share
    assert len({w["node_id"] for w in used if w["served"] > 0}) == 2, used
    assert sum(w["served"] for w in used) >= len(items)


def test_fleet_info_and_test_sets_by_digest(fleet):
    problem = load_problem(REPO / "examples" / "lcb-sum-pairs" / "problem.json")
    source = (REPO / "examples" / "lcb-sum-pairs" / "solutions" / "ac_python.py").read_text()
    with SandboxClient("ray://tfleet", timeout=120) as ray_client:
        info = ray_client.info()
        assert info.capacity == 2 and info.languages
        digest = ray_client.put_test_set(problem.test_set())
        assert ray_client.has_test_set(digest)
        # every worker gets the tests pushed before its first grade by digest
        answers = [ray_client.grade(problem.grade_request(source, "python", digest=digest))
                   for _ in range(6)]
        assert {V(a.verdict) for a in answers} == {"AC"}
        assert all(a.test_set_digest == digest for a in answers)
        assert len([w for w in ray_client.workers() if w["served"]]) == 2
        streamed = list(ray_client.grade_stream(
            problem.grade_request(source, "python", digest=digest, request_id=str(i))
            for i in range(4)))
        assert sorted(a.request_id for a in streamed) == ["0", "1", "2", "3"]


def test_node_address_workers_require_the_fleets_token(cluster, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    token_file.chmod(0o600)
    state = control.up("tokened", workers=1, bind="node", token_file=str(token_file), wait_s=120)
    try:
        [worker] = state.live
        assert worker.bind == "node" and worker.address.startswith(f"{worker.node_ip}:")
        problem = load_problem(REPO / "examples" / "lcb-sum-pairs" / "problem.json")
        request = problem.grade_request(
            (REPO / "examples" / "lcb-sum-pairs" / "solutions" / "wa_off_by_one.py").read_text(),
            "python")
        with SandboxClient(worker.address, timeout=60, token_file=None, tls=False) as plain:
            with pytest.raises(grpc.RpcError) as refused:
                plain.grade(request)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

        async def through_ray() -> tuple:
            client = AsyncSandboxClient("ray://tokened", timeout=60)
            assert isinstance(client, AsyncRaySandboxClient)
            try:
                answer = await client.grade(request)
                return answer, client.security.token
            finally:
                await client.close()

        answer, token = asyncio.run(through_ray())
        assert token == "s3cret-token"  # read from the fleet's token file
        assert V(answer.verdict) == "WA" and answer.passed == 1

        # a client with a wrong token of its own is refused: the fleet's file is only a fallback
        with SandboxClient("ray://tokened", timeout=60, token="wrong") as wrong:
            with pytest.raises(grpc.RpcError) as refused:
                wrong.grade(request)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        control.down("tokened")
    with pytest.raises(RayFleetError, match="no sandbox fleet named 'tokened'"):
        SandboxClient("ray://tokened")


def test_tls_and_token_workers_found_with_the_fleets_ca(cluster, pki):  # noqa: F811
    state = control.up("tls", workers=1, bind="node", token_file=str(pki / "token"),
                       tls_cert=str(pki / "server.pem"), tls_key=str(pki / "server.key"),
                       tls_ca=str(pki / "ca.pem"), wait_s=120)
    try:
        [worker] = state.live
        assert worker.in_flight == 0  # its own probe speaks TLS with the fleet's CA and token
        request = pb.ExecuteRequest(language="python", source="print(6 * 7)")
        with SandboxClient("ray://tls", timeout=60) as client:
            assert client.security.tls and client.security.token == TOKEN
            answer = client.execute(request)
            assert answer.stdout == b"42\n" and V(answer.verdict) == "AC"
        with SandboxClient(worker.address, timeout=10, tls=False, token=TOKEN) as plain:
            with pytest.raises(grpc.RpcError) as refused:  # plain text to a TLS port
                plain.execute(request)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        control.down("tls")

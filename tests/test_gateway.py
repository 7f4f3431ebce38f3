"""The gateway as real processes without Docker: local workers on unix sockets in a directory."""
from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import (CRASH_MARKER, REPO, SE_MARKER, PoisonJudge, ServerThread, grade_request,
                      process_rss)
from sandbox.client import SandboxClient
from sandbox.service import SandboxCore
from sandbox.v1 import sandbox_pb2 as pb

SANDBOX = str(REPO / ".venv" / "bin" / "sandbox")
SLOW = "import time\ntime.sleep(2)\nprint(int(input()) * 2)\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([SANDBOX, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)


@pytest.fixture
def stack(tmp_path):
    """A gateway (loopback TCP, metrics) and one worker, as `sandbox` subprocesses."""
    workers_dir = tmp_path / "sockets"
    workers_dir.mkdir()
    port, metrics_port = _free_port(), _free_port()
    gateway = _spawn("gateway", "--address", f"127.0.0.1:{port}", "--workers-dir", str(workers_dir),
                     "--metrics", f"127.0.0.1:{metrics_port}", "--max-pending", "3", "--grace", "20")
    worker = _spawn("serve", "--address", f"unix:{workers_dir}/w1.sock", "--capacity", "1")
    client = SandboxClient(f"127.0.0.1:{port}", timeout=60)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if client.info().capacity >= 1:
                    break
            except grpc.RpcError:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError("the gateway never saw its worker")
        yield gateway, worker, client, metrics_port
    finally:
        client.close()
        _stop(gateway)
        _stop(worker)


def _wait_for_capacity(client: SandboxClient, capacity: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.info().capacity >= capacity:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the gateway never saw {capacity} worker slots")


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def _metric(text: str, name: str) -> float:
    """Sum of a counter's samples (0 when it has none yet)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((name + "{", name + " ")))


@pytest.fixture
def poison_fleet(tmp_path):
    """A gateway process in front of two real servers (in this process) whose judge fails on a
    marked source (conftest.PoisonJudge): SE for SE_MARKER, INTERNAL for CRASH_MARKER."""
    workers_dir = tmp_path / "sockets"
    workers_dir.mkdir()
    port, metrics_port = _free_port(), _free_port()
    gateway = _spawn("gateway", "--address", f"127.0.0.1:{port}", "--workers-dir", str(workers_dir),
                     "--metrics", f"127.0.0.1:{metrics_port}", "--grace", "5")
    workers = [ServerThread(f"unix:{workers_dir}/w{i}.sock", core=SandboxCore(PoisonJudge()),
                            capacity=1) for i in (1, 2)]
    client = SandboxClient(f"127.0.0.1:{port}", timeout=60)
    try:
        _wait_for_capacity(client, 2)
        yield workers, client, metrics_port
    finally:
        client.close()
        _stop(gateway)
        for worker in workers:
            worker.stop()


def _runs(workers) -> list[int]:
    return [worker.server.core.judge.poisoned for worker in workers]


def test_a_request_that_gets_se_on_two_workers_is_answered_se(poison_fleet):
    workers, client, metrics_port = poison_fleet
    reply = client.grade(grade_request(f"print(1)\n{SE_MARKER}\n", [("1", "1")]))
    assert reply.verdict == pb.SE and "marked source" in reply.message
    assert _runs(workers) == [1, 1]  # once on each worker, not MAX_ATTEMPTS times
    text = _metrics(metrics_port)
    assert _metric(text, "sandbox_gateway_poisoned_requests_total") == 1.0
    assert _metric(text, "sandbox_gateway_worker_failures_total") == 0.0
    assert client.grade(grade_request("print(input())", [("1", "1")])).verdict == pb.AC


def test_a_request_that_fails_two_workers_is_answered_se_not_retried(poison_fleet):
    """The judge crashes on the request (the worker answers INTERNAL, as for a worker that
    died): the first worker is marked failed, the second is not, and no third run happens."""
    workers, client, metrics_port = poison_fleet
    reply = client.grade(grade_request(f"print(1)\n{CRASH_MARKER}\n", [("1", "1"), ("2", "2")]))
    assert reply.verdict == pb.SE and reply.total == 2
    assert "failed on 2 workers" in reply.message and "INTERNAL" in reply.message
    assert _runs(workers) == [1, 1]
    text = _metrics(metrics_port)
    assert _metric(text, "sandbox_gateway_worker_failures_total") == 1.0
    assert _metric(text, "sandbox_gateway_poisoned_requests_total") == 1.0
    _wait_for_capacity(client, 2)  # the failed worker passes its next health check
    assert client.grade(grade_request("print(input())", [("1", "1")])).verdict == pb.AC


def test_sigterm_drains_in_flight_requests(stack):
    gateway, _worker, client, _ = stack
    future = client._stub.Grade.future(grade_request(SLOW, [("21", "42")], time_limit=5), timeout=60)
    time.sleep(0.5)
    gateway.send_signal(signal.SIGTERM)
    assert future.result(timeout=60).verdict == pb.AC
    assert gateway.wait(30) == 0


def test_full_gateway_answers_resource_exhausted_with_a_hint(stack):
    _gateway, _worker, client, _ = stack
    request = grade_request(SLOW, [("1", "2")], time_limit=5)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client.grade, request) for _ in range(6)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result().verdict)
            except grpc.RpcError as exc:
                outcomes.append(exc)
    refused = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert refused and all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
    assert "retry" in refused[0].details()
    assert pb.AC in outcomes  # the admitted ones were graded


def test_metrics_count_verdicts_and_workers(stack):
    _gateway, _worker, client, metrics_port = stack
    assert client.grade(grade_request("print(int(input()) * 2)", [("2", "4")])).verdict == pb.AC
    assert client.grade(grade_request("print(0)", [("2", "4")])).verdict == pb.WA
    time.sleep(1.2)  # the live-workers gauge is refreshed every second
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'sandbox_gateway_verdicts_total{verdict="AC"} 1.0' in text
    assert 'sandbox_gateway_verdicts_total{verdict="WA"} 1.0' in text
    assert "sandbox_gateway_live_workers 1.0" in text
    assert 'sandbox_gateway_latency_seconds_count{language="python"} 2.0' in text
    # Info calls that found the worker also went through it: at least the two gradings.
    served = [line for line in text.splitlines()
              if line.startswith('sandbox_gateway_worker_requests_total{worker="w1"}')]
    assert served and float(served[0].rsplit(" ", 1)[1]) >= 2.0, served


def test_binding_beyond_loopback_warns(tmp_path):
    port = _free_port()
    gateway = _spawn("gateway", "--address", f"0.0.0.0:{port}", "--workers-dir", str(tmp_path),
                     "--metrics", "")
    try:
        time.sleep(3)  # the warning is logged as the gateway starts
        gateway.send_signal(signal.SIGTERM)
        _out, err = gateway.communicate(timeout=30)
        assert b"beyond loopback" in err and b"TLS" in err, err
    finally:
        _stop(gateway)


def test_test_sets_held_by_the_gateway_do_not_keep_their_requests(stack):
    """Gradings with an inline test set and a 16 MiB request_id, graded or rejected: neither the
    gateway's store nor the worker's may keep the request around the set (20 calls: 320 MiB)."""
    gateway, worker, client, _ = stack
    mib = 1 << 20

    def send(i: int) -> None:
        language = "python" if i % 2 else "no-such-language"
        request = grade_request("print(1)", [(f"{i}", "1"), ("", "1")], language=language)
        request.request_id = "x" * (16 * mib)
        try:
            assert client._stub.Grade(request, timeout=60).verdict == pb.AC
        except grpc.RpcError as exc:
            assert language != "python" and exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc

    for i in range(-2, 0):  # warm up gRPC's and the allocator's buffers
        send(i)
    before = {process.pid: process_rss(process.pid) for process in (gateway, worker)}
    for i in range(20):
        send(i)
    for name, process in (("gateway", gateway), ("worker", worker)):
        grown = process_rss(process.pid) - before[process.pid]
        assert grown < 128 * mib, f"the {name} grew by {grown / mib:.0f} MiB and kept it"


def test_http_api_on_the_gateway_routes_to_workers_with_its_token(tmp_path):
    """`sandbox gateway --http-address`: /run_code, the batch endpoint and the token, through
    the gateway's routing (its metrics count them), with a worker on a unix socket."""
    import json

    import requests

    from http_helpers import start
    workers_dir = tmp_path / "sockets"
    workers_dir.mkdir()
    (tmp_path / "token").write_text("gateway-token")
    metrics_port = _free_port()
    gateway = start("gateway", "--workers-dir", str(workers_dir), "--metrics",
                    f"127.0.0.1:{metrics_port}", "--token-file", str(tmp_path / "token"),
                    env={"SANDBOX_TOKEN": ""})
    worker = _spawn("serve", "--address", f"unix:{workers_dir}/w1.sock", "--capacity", "1")
    auth = {"Authorization": "Bearer gateway-token"}
    try:
        body = {"code": "print(int(input()) * 3)", "language": "python", "stdin": "14"}
        deadline = time.monotonic() + 60
        while True:
            reply = requests.post(gateway.http_url + "/run_code", json=body, headers=auth, timeout=60)
            if reply.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # 503 until the gateway has seen the worker
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "Success" and reply.json()["run_result"]["stdout"] == "42\n"
        batch = {"completion": "```python\nprint(int(input()) + 1)\n```",
                 "config": {"language": "python", "provided_data": {"test_cases": {
                     "type": "stdin_stdout", "input": ["1", "2"], "output": ["2", "3"]}}}}
        result = requests.post(gateway.http_url + "/common_evaluate_batch", json=batch,
                               headers=auth, timeout=60).json()
        assert result["accepted"] is True, json.dumps(result)[:500]
        refused = requests.post(gateway.http_url + "/run_code", json=body, timeout=60)
        assert refused.status_code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        served = [line for line in text.splitlines()
                  if line.startswith('sandbox_gateway_worker_requests_total{worker="w1"}')]
        assert served and float(served[0].rsplit(" ", 1)[1]) >= 2.0, served
    finally:
        gateway.stop()
        _stop(worker)


def test_a_frozen_worker_fails_its_calls_within_the_keepalive(tmp_path, monkeypatch):
    """The gateway pings its workers while calls run: a frozen one (SIGSTOP) fails the call
    within seconds instead of holding it until its deadline."""
    monkeypatch.setenv("SANDBOX_GRPC_KEEPALIVE_S", "1")  # the gateway's channels to workers
    workers_dir = tmp_path / "sockets"
    workers_dir.mkdir()
    port = _free_port()
    gateway = _spawn("gateway", "--address", f"127.0.0.1:{port}", "--workers-dir", str(workers_dir))
    worker = _spawn("serve", "--address", f"unix:{workers_dir}/w1.sock", "--capacity", "1")
    client = SandboxClient(f"127.0.0.1:{port}", timeout=120)
    outcome: list = []
    try:
        _wait_for_capacity(client, 1)
        request = pb.ExecuteRequest(language="python", source="import time\ntime.sleep(45)\n",
                                    limits=pb.Limits(time_limit_s=50, memory_limit_mb=128))

        def call():
            try:
                outcome.append(client.execute(request, timeout=120))
            except grpc.RpcError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        time.sleep(2)
        worker.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        thread.join(30)
        waited = time.monotonic() - frozen
    finally:
        worker.send_signal(signal.SIGCONT)
        client.close()
        _stop(gateway)
        _stop(worker)
    assert outcome, "the call through the frozen worker hung"
    assert waited < 15, f"the frozen worker was noticed after {waited:.1f} s"
    failed = outcome[0]
    assert isinstance(failed, grpc.RpcError) or failed.verdict == pb.SE, failed

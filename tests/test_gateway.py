"""The gateway as real processes without Docker: local workers on unix sockets in a directory."""
from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import REPO, grade_request
from sandbox.client import SandboxClient
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

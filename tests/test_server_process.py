"""`sandbox serve` as a real process: it answers, and SIGTERM drains in-flight work."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import grade_request
from sandbox.client import SandboxClient
from sandbox.v1 import sandbox_pb2 as pb

REPO = Path(__file__).resolve().parent.parent
SANDBOX = REPO / ".venv" / "bin" / "sandbox"
if not SANDBOX.exists():
    SANDBOX = Path(sys.executable).parent / "sandbox"

SLOW_DOUBLE = "import time\ntime.sleep(3)\nprint(int(input()) * 2)\n"


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == pid:
            found.add(int(entry))
    return found


def _wait_until_answers(process: subprocess.Popen, client: SandboxClient, timeout: float = 60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`sandbox serve` exited early with {process.returncode}: "
                                 f"{process.stderr.read().decode(errors='replace')}")
        try:
            return client.info()
        except grpc.RpcError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"`sandbox serve` did not answer within {timeout} s: {last}")


@pytest.fixture
def served():
    """A `sandbox serve --grace 20` process on a fresh unix socket; always killed afterwards."""
    with tempfile.TemporaryDirectory(prefix="sandbox-serve-") as tmp:
        address = f"unix:{tmp}/s.sock"
        process = subprocess.Popen(
            [str(SANDBOX), "serve", "--address", address, "--grace", "20", "--capacity", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        try:
            yield process, address
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            for stream in (process.stdout, process.stderr):
                stream.close()


def test_serve_answers_grade_and_health(served):
    process, address = served
    with SandboxClient(address, timeout=60) as client:
        info = _wait_until_answers(process, client)
        assert {"python", "cpp"} <= {lang.name for lang in info.languages}
        assert info.capacity == 2
        response = client.grade(grade_request("print(int(input()) * 2)", [("2", "4")]))
        assert response.verdict == pb.AC
        health = health_pb2_grpc.HealthStub(client._channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service="sandbox.v1.Sandbox"),
                             timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


def test_sigterm_drains_in_flight_grade_and_refuses_new_work(served):
    process, address = served
    with SandboxClient(address, timeout=60) as client:
        _wait_until_answers(process, client)
        request = grade_request(SLOW_DOUBLE, [("21", "42")], time_limit=5)
        request.request_id = "in-flight"
        future = client._stub.Grade.future(request, timeout=60)

        # Wait until its jail runs (a child of the server process), then SIGTERM.
        deadline = time.monotonic() + 30
        while not _children_of(process.pid) and time.monotonic() < deadline:
            assert not future.done(), future.exception()
            time.sleep(0.05)
        assert _children_of(process.pid), "the in-flight grading never started a jail"
        process.send_signal(signal.SIGTERM)

        # New requests are refused while the old one drains (the program sleeps 3 s).
        refused = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not future.done():
            try:
                with SandboxClient(address, timeout=2) as other:
                    other.grade(grade_request("print(1)", [("", "1")]), timeout=2)
            except grpc.RpcError as exc:
                refused = exc
                break
            time.sleep(0.1)
        assert refused is not None, "a new request was still graded after SIGTERM"
        # UNAVAILABLE normally; CANCELLED when the call reached gRPC just as it stopped taking
        # new calls (gRPC core cancels calls no handler has picked up yet). Either way: refused.
        assert refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), refused
        assert not future.done() or future.exception() is None

        response = future.result(timeout=60)
        assert response.request_id == "in-flight"
        assert response.verdict == pb.AC, response

    assert process.wait(30) == 0
    out = process.stdout.read().decode()
    assert "listening on" in out
    assert "stopped" in out.split("listening on", 1)[1]
    stderr = process.stderr.read().decode(errors="replace")
    assert "Traceback" not in stderr, stderr


def test_new_connection_after_sigterm_is_refused(served):
    process, address = served
    with SandboxClient(address, timeout=60) as client:
        _wait_until_answers(process, client)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    with SandboxClient(address, timeout=3) as late:
        with pytest.raises(grpc.RpcError) as info:
            late.info()
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                     grpc.StatusCode.DEADLINE_EXCEEDED)


def _start_serve(address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(SANDBOX), "serve", "--address", address, "--capacity", "1",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    if process.poll() is None:
        process.kill()
    out, err = process.communicate(timeout=20)
    return out.decode(errors="replace"), err.decode(errors="replace")


def _free_tcp_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_refused_to_start(process: subprocess.Popen, what: str) -> None:
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"a second `sandbox serve` on {what} kept running") from None
    err = process.stderr.read().decode(errors="replace")
    assert code != 0, err
    assert "Traceback" not in err, err
    assert "sandbox: error:" in err, err


def test_second_server_on_the_same_tcp_port_is_refused():
    """Two servers must not share a port: each has its own queue and test-set store, so
    PutTestSet on one and Grade by digest on the other would answer NOT_FOUND."""
    address = f"127.0.0.1:{_free_tcp_port()}"
    first = _start_serve(address)
    second = None
    try:
        with SandboxClient(address, timeout=30) as client:
            _wait_until_answers(first, client)
        second = _start_serve(address)
        _assert_refused_to_start(second, address)
        assert first.poll() is None
    finally:
        for process in (first, second):
            if process is not None:
                _stop(process)


def test_second_server_on_the_same_unix_socket_is_refused(tmp_path):
    address = f"unix:{tmp_path}/s.sock"
    first = _start_serve(address)
    second = None
    try:
        with SandboxClient(address, timeout=30) as client:
            _wait_until_answers(first, client)
            second = _start_serve(address)
            _assert_refused_to_start(second, address)
            # The first server still owns the socket and answers on it.
            assert client.info().capacity == 1
        with SandboxClient(address, timeout=30) as fresh:
            assert fresh.info().capacity == 1
    finally:
        for process in (first, second):
            if process is not None:
                _stop(process)


def test_stale_unix_socket_of_a_killed_server_is_reused(tmp_path):
    address = f"unix:{tmp_path}/s.sock"
    first = _start_serve(address)
    try:
        with SandboxClient(address, timeout=30) as client:
            _wait_until_answers(first, client)
    finally:
        first.kill()
        _stop(first)
    assert (tmp_path / "s.sock").exists()  # SIGKILL leaves the socket file behind
    second = _start_serve(address)
    try:
        with SandboxClient(address, timeout=30) as client:
            _wait_until_answers(second, client)
    finally:
        _stop(second)


def test_serve_on_an_unusable_address_is_a_one_line_error(tmp_path):
    process = _start_serve(f"unix:{tmp_path}/no/such/dir/s.sock")
    try:
        _assert_refused_to_start(process, "an unusable address")
    finally:
        _stop(process)

"""`sandbox serve` as a real process: it answers, and SIGTERM drains in-flight work."""
from __future__ import annotations

import json
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

from conftest import grade_request, make_tests, process_rss
from sandbox.client import SandboxClient, channel_target
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

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


# ---------------------------------------------------------------- memory a client can make it hold

MIB = 1 << 20


def _start_serve_env(address: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([str(SANDBOX), "serve", "--address", address, "--capacity", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, **env})


def _rejected_grade(request_id: str, tests: pb.TestSet) -> pb.GradeRequest:
    """Answered INVALID_ARGUMENT without running anything (after its test set is stored)."""
    return pb.GradeRequest(request_id=request_id, language="no-such-language", source="print(1)",
                           test_set=tests)


def test_a_stored_test_set_does_not_keep_its_request_alive(tmp_path):
    """Each call stores a 2-test set that came with a 16 MiB request_id: the store must hold
    the set, not the request around it (20 calls held 320 MiB, for good), and a rejected
    request must not outlive its call either."""
    address = f"unix:{tmp_path}/s.sock"
    process = _start_serve_env(address)
    try:
        with SandboxClient(address, timeout=60) as client:
            _wait_until_answers(process, client)

            def send(i: int) -> None:
                request = _rejected_grade("x" * (16 * MIB), make_tests([(f"{i}", ""), ("", "")]))
                with pytest.raises(grpc.RpcError) as info:
                    client._stub.Grade(request, timeout=60)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            for i in range(2):  # warm up gRPC's and the allocator's buffers
                send(-1 - i)
            before = process_rss(process.pid)
            for i in range(20):
                send(i)
            grown = process_rss(process.pid) - before
            assert grown < 128 * MIB, f"the server grew by {grown / MIB:.0f} MiB and kept it"
    finally:
        _stop(process)


def test_the_test_set_store_cap_counts_memory_not_wire_bytes(tmp_path):
    """100 sets of 20,000 empty tests: 40 KB each on the wire, ~1.5 MB each in memory. With a
    32 MiB store the server must not hold 150 MB of them."""
    address = f"unix:{tmp_path}/s.sock"
    process = _start_serve_env(address, SANDBOX_TEST_SET_BYTES=str(32 * MIB))
    try:
        with SandboxClient(address, timeout=60) as client:
            _wait_until_answers(process, client)
            client.put_test_set(make_tests([("warm-up", "")] + [("", "")] * 20_000))
            before = process_rss(process.pid)
            for i in range(100):
                tests = make_tests([(f"{i}", "")] + [("", "")] * 20_000)
                assert tests.ByteSize() < 50_000
                client.put_test_set(tests)
            grown = process_rss(process.pid) - before
            assert grown < 80 * MIB, f"a 32 MiB store grew the server by {grown / MIB:.0f} MiB"
    finally:
        _stop(process)


def _settled(counter, timeout: float = 60.0, quiet: float = 2.0) -> int:
    """Waits until counter() stops changing for `quiet` seconds; returns its value."""
    deadline = time.monotonic() + timeout
    value, since = counter(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = counter()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return value


def test_a_client_that_does_not_read_its_answers_gets_backpressure(tmp_path):
    """A GradeStream client sends 2,000 requests (200 KiB request_id each, echoed in every
    answer) and never reads: the server must stop reading instead of queueing 400 MiB of
    answers, and keep serving everyone else."""
    address = f"unix:{tmp_path}/s.sock"
    process = _start_serve_env(address)
    target, options = channel_target(address)
    channel = grpc.insecure_channel(target, options=options)
    try:
        with SandboxClient(address, timeout=60) as client:
            _wait_until_answers(process, client)
            tests = make_tests([("1", "1")])
            sent = [0]

            def requests():
                for i in range(2000):
                    sent[0] += 1
                    yield _rejected_grade(f"{i}:" + "x" * (200 << 10), tests)

            before = process_rss(process.pid)
            call = pb_grpc.SandboxStub(channel).GradeStream(requests(), timeout=120)
            taken = _settled(lambda: sent[0])
            grown = process_rss(process.pid) - before
            started = time.monotonic()
            client.info()
            info_s = time.monotonic() - started
            call.cancel()
            assert grown < 150 * MIB, f"the server grew by {grown / MIB:.0f} MiB"
            assert taken < 2000, "the server read every request of a client that reads nothing"
            assert info_s < 1.0, f"another client's Info took {info_s:.2f} s"
    finally:
        channel.close()
        _stop(process)


_SERVE_WITH_SMALL_CHECKER_CACHE = """
import asyncio, sys
from sandbox.server import Server, run_until_signal
from sandbox.service import SandboxCore
from workers.judge import Judge
from workers.special_judges import BinaryCache

async def main():
    judge = Judge()
    judge.helper_binaries = BinaryCache(max_bytes=int(sys.argv[2]))
    server = Server(sys.argv[1], capacity=1, core=SandboxCore(judge))
    await server.start()
    print("sandbox listening", flush=True)
    await run_until_signal(server, 5)

asyncio.run(main())
"""
# A checker that accepts everything, with a 24 MiB initialized array: its binary is 24 MiB.
_BIG_CHECKER = """
static char pad[24 << 20] = {%d};
int main(int argc, char** argv) { return pad[argc] == 7 ? 3 : 0; }
"""


def test_checker_binaries_held_by_the_server_are_bounded_in_bytes(tmp_path):
    """5 distinct checkers of 24 MiB each: with a 32 MiB checker cache the server keeps one of
    them, not all five (120 MiB)."""
    address = f"unix:{tmp_path}/s.sock"
    process = subprocess.Popen([sys.executable, "-c", _SERVE_WITH_SMALL_CHECKER_CACHE, address,
                                str(32 * MIB)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=REPO)

    def grade_with_checker(client: SandboxClient, tag: int) -> None:
        checker = pb.Checker(language="cpp", source=_BIG_CHECKER % tag)
        request = grade_request("print(1)", [("", "1")])
        request.comparison.CopyFrom(pb.Comparison(mode=pb.Comparison.CHECKER, checker=checker))
        response = client.grade(request)
        assert response.verdict == pb.AC, response

    try:
        with SandboxClient(address, timeout=120) as client:
            _wait_until_answers(process, client)
            grade_with_checker(client, 100)  # warm up
            before = process_rss(process.pid)
            for tag in range(1, 6):
                grade_with_checker(client, tag)
            grown = process_rss(process.pid) - before
            assert grown < 64 * MIB, f"5 cached checkers grew the server by {grown / MIB:.0f} MiB"
    finally:
        _stop(process)


ABORTED_CALL_THEN_STOP = """
import asyncio, json, tempfile, threading
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sandbox.server import Server

def pollers():
    return sorted(t.name for t in threading.enumerate() if "poll" in t.name)

def aborted_call(address):
    with grpc.insecure_channel(address) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        except grpc.RpcError as exc:
            return exc.code().name

async def main(address):
    server = Server(address, capacity=1)
    await server.start()
    code = await asyncio.get_running_loop().run_in_executor(None, aborted_call, address)
    serving = pollers()
    await server.stop(5)
    print(json.dumps([code, serving, pollers()]))

with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(f"unix:{tmp}/s.sock"))
"""


def test_a_stopped_server_frees_grpc_aio_before_the_interpreter_exits():
    """An aborted call keeps grpc.aio objects in a reference cycle; a server still holding
    them when the interpreter finalizes shuts grpc.aio's poller down then, which can crash a
    cleanly stopped server (SIGSEGV). After stop() the poller must already be gone."""
    run = subprocess.run([sys.executable, "-c", ABORTED_CALL_THEN_STOP], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    code, serving, after = json.loads(run.stdout.strip().splitlines()[-1])
    assert code == "NOT_FOUND"
    assert serving, "no grpc.aio poller thread while serving: this test checks nothing"
    assert not after, f"grpc.aio's poller still runs after stop(): {after}"

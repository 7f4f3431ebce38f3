"""Shared fixtures: a real gRPC server on a unix socket, a client, and helpers."""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import faulthandler
import os
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from sandbox.client import SandboxClient
from sandbox.server import Server
from sandbox.service import SandboxCore
from sandbox.v1 import sandbox_pb2 as pb
from workers.judge import Judge

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


class ServerThread:
    """A real sandbox.v1 server running in its own event loop thread."""

    def __init__(self, address: str, **kwargs) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(self._make(address, kwargs))
        self.call(self.server.start())
        self.address = address if address.startswith("unix:") else \
            f"{address.rsplit(':', 1)[0]}:{self.server.port}"

    @staticmethod
    async def _make(address, kwargs):
        return Server(address, **kwargs)

    def call(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float = 5.0) -> None:
        self.call(self.server.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


SE_MARKER = "# test marker: the judge answers SE"
CRASH_MARKER = "# test marker: the judge crashes"


class PoisonJudge(Judge):
    """The real judge with a test-only bug that a marker in the source triggers, served by the
    real server code (not a hook in the production server): SE_MARKER is answered SE, and on
    CRASH_MARKER the judge raises (the worker fails the request: INTERNAL). Counts those runs."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.poisoned = 0
        self._lock = threading.Lock()

    def grade(self, request: pb.GradeRequest, tests: pb.TestSet, *args, **kwargs) -> pb.GradeResponse:
        if SE_MARKER in request.source or CRASH_MARKER in request.source:
            with self._lock:
                self.poisoned += 1
            if CRASH_MARKER in request.source:
                raise RuntimeError("the judge crashed on a marked source")
            return pb.GradeResponse(request_id=request.request_id, verdict=pb.SE,
                                    total=len(tests.tests), message="sandbox error: marked source")
        return super().grade(request, tests, *args, **kwargs)


EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Ends the run with pytest's own exit status once every report is out, after the exit
    handlers (ours remove the jails' temp dirs and cgroups), without the interpreter's
    finalization. In one process, this suite leaves native threads of grpc.aio, Ray's core
    worker and torch; tearing their modules down after the last test is a known crash
    (grpc/grpc#40447: the aio poller shut down while the interpreter finalizes), which once
    turned 1208 passed tests into a segfault (exit 139). Any crash in the exit handlers still
    shows, with every thread's stack."""
    if EXIT_STATUS not in config.stash:
        return
    faulthandler.enable(file=sys.__stderr__, all_threads=True)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(config.stash[EXIT_STATUS])


@pytest.fixture(scope="session")
def socket_dir():
    with tempfile.TemporaryDirectory(prefix="sandbox-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def judge() -> Judge:
    return Judge()


@pytest.fixture(scope="session")
def cold_judge() -> Judge:
    """The same engine with the Python fast path off: every test is a fresh interpreter."""
    return Judge(python_fast_path=False)


@pytest.fixture(scope="session")
def server(socket_dir, judge):
    thread = ServerThread(f"unix:{socket_dir}/sandbox.sock", core=SandboxCore(judge),
                          capacity=max(2, os.cpu_count() or 2), max_queue=256)
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def client(server):
    with SandboxClient(server.address, timeout=120) as c:
        c.wait_ready(10)
        yield c


def make_tests(pairs) -> pb.TestSet:
    return pb.TestSet(tests=[pb.TestCase(input=i.encode() if isinstance(i, str) else i,
                                         output=o.encode() if isinstance(o, str) else o)
                             for i, o in pairs])


def process_rss(pid: int) -> int:
    """A process's resident memory in bytes, read from outside it."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _has_cgroups() -> bool:
    from workers import cgroups
    return cgroups.support().complete


# Programs that create processes need per-jail cgroups (memory, pids, CPU) on the server.
needs_cgroups = pytest.mark.skipif(not _has_cgroups(),
                                   reason="this machine delegates no cgroups for jails")


def grade_request(source: str, tests, language: str = "python", *, time_limit: float = 2.0,
                  memory_mb: int = 256, compare: int = pb.Comparison.LCB_PROCESS,
                  kind: int = pb.STDIN, func_name: str = "", **limits) -> pb.GradeRequest:
    """compare: LCB_PROCESS by default, the process model these tests are about (lcb_runner's
    execution model, `LCB`, is tests/test_lcb_runner_parity.py's)."""
    test_set = tests if isinstance(tests, pb.TestSet) else make_tests(tests)
    return pb.GradeRequest(language=language, source=source, test_set=test_set, kind=kind,
                           func_name=func_name, comparison=pb.Comparison(mode=compare),
                           limits=pb.Limits(time_limit_s=time_limit, memory_limit_mb=memory_mb,
                                            **limits))


def execute_request(source: str, language: str = "python", stdin: bytes = b"", *,
                    time_limit: float = 2.0, memory_mb: int = 256, **limits) -> pb.ExecuteRequest:
    return pb.ExecuteRequest(language=language, source=source, stdin=stdin,
                             limits=pb.Limits(time_limit_s=time_limit, memory_limit_mb=memory_mb,
                                              **limits))


@contextlib.contextmanager
def mute_listener():
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word (a hung
    server); yields (address, accepted connections)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    accepted: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()

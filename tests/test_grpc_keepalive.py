"""Clients ping a server while their calls run: a server that stops answering (its machine
gone or frozen) fails the calls UNAVAILABLE within about twice the keepalive time, so they
are retried elsewhere instead of waiting for their deadlines; a long call to a live server
is never cut by its own pings."""
from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import pytest

from http_helpers import start
from sandbox.client import SandboxClient
from sandbox.v1 import sandbox_pb2 as pb


@pytest.fixture
def served():
    server = start("serve", "--capacity", "2", "--max-queue", "4")
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def sleeper(seconds: float) -> pb.ExecuteRequest:
    return pb.ExecuteRequest(language="python", source=f"import time\ntime.sleep({seconds})\n"
                                                       "print('woke')",
                             limits=pb.Limits(time_limit_s=seconds + 10, memory_limit_mb=128))


def test_a_long_call_to_a_live_server_outlives_many_pings(served, monkeypatch):
    monkeypatch.setenv("SANDBOX_GRPC_KEEPALIVE_S", "1")
    with SandboxClient(served.grpc_address, timeout=60) as client:
        reply = client.execute(sleeper(6))  # ~6 pings with no data; GOAWAY after 3 by default
    assert reply.stdout == b"woke\n"


def test_a_frozen_server_fails_the_call_within_the_keepalive_not_its_deadline(served,
                                                                              monkeypatch):
    monkeypatch.setenv("SANDBOX_GRPC_KEEPALIVE_S", "1")
    outcome: list = []
    with SandboxClient(served.grpc_address, timeout=120) as client:
        client.wait_ready()

        def call():
            try:
                outcome.append(client.execute(sleeper(45), timeout=120))
            except grpc.RpcError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        time.sleep(1.5)
        os.kill(served.process.pid, signal.SIGSTOP)  # answers nothing more, pings included
        frozen = time.monotonic()
        thread.join(30)
        waited = time.monotonic() - frozen
        os.kill(served.process.pid, signal.SIGCONT)
    assert outcome and isinstance(outcome[0], grpc.RpcError), outcome
    assert outcome[0].code() == grpc.StatusCode.UNAVAILABLE
    assert waited < 15, f"the frozen server was noticed after {waited:.1f} s"

"""Starting `sandbox serve` / `sandbox gateway` with the HTTP API as real subprocesses."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

SANDBOX = str(Path(sys.executable).parent / "sandbox")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """A `sandbox` server process with its gRPC and HTTP addresses."""

    def __init__(self, process: subprocess.Popen, grpc_address: str, http_url: str) -> None:
        self.process, self.grpc_address, self.http_url = process, grpc_address, http_url

    def stop(self) -> str:
        """Stops the process; returns what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""


def start(command: str, *args: str, env: dict | None = None, scheme: str = "http",
          verify=None, timeout: float = 60) -> Served:
    """`sandbox <command> --address … --http-address … ARGS`, once /health answers."""
    grpc_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [SANDBOX, command, "--address", f"127.0.0.1:{grpc_port}",
         "--http-address", f"127.0.0.1:{http_port}", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})})
    served = Served(process, f"127.0.0.1:{grpc_port}", f"{scheme}://127.0.0.1:{http_port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox {command} exited: {served.stop()}")
        try:
            if requests.get(served.http_url + "/health", timeout=2,
                            verify=verify if verify is not None else True).status_code == 200:
                return served
        except requests.RequestException:
            pass
        time.sleep(0.2)
    served.stop()
    raise RuntimeError(f"sandbox {command} did not answer /health within {timeout} s")

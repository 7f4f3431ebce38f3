"""A sandbox worker on Ray: an actor that owns one `sandbox serve` process.

The actor reserves its CPU share from Ray (num_cpus) and runs a server of that capacity next
to it, on 127.0.0.1 or, when the fleet says so, on the node's address with the fleet's token
(and TLS). It announces the server to the registry every HEARTBEAT_S. When the server dies
the actor exits abnormally, so that Ray restarts it (max_restarts); when the actor dies the
server stops on its own (`sandbox.ray_fleet.serve`).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sandbox.ray_fleet import NAMESPACE
from sandbox.ray_fleet.registry import HEARTBEAT_S, FleetSettings, WorkerEntry

log = logging.getLogger("sandbox.ray_fleet")

READY_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 0.5  # a heartbeat must not wait long for the server's load: it is optional
LISTENING = re.compile(r"sandbox listening on (\S+)")
# Settings a server reads from the environment: a worker's come from the fleet only.
SERVER_ENV = ("SANDBOX_ADDRESS", "SANDBOX_HTTP_ADDRESS", "SANDBOX_TOKEN", "SANDBOX_TOKEN_FILE",
              "SANDBOX_TLS_CERT", "SANDBOX_TLS_KEY", "SANDBOX_TLS_CLIENT_CA")


def server_command(host: str, settings: FleetSettings) -> list[str]:
    """`sandbox serve` on a port the kernel picks (the server prints it), with the fleet's
    capacity, grace and security."""
    host = f"[{host}]" if ":" in host else host  # an IPv6 node address
    command = [sys.executable, "-m", "sandbox.ray_fleet.serve", "--address", f"{host}:0",
               "--capacity", str(settings.capacity), "--grace", f"{settings.grace_s:g}"]
    if settings.token_file:
        command += ["--token-file", settings.token_file]
    if settings.tls:
        command += ["--tls-cert", settings.tls_cert, "--tls-key", settings.tls_key]
    return command


def server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SERVER_ENV}


def log_path(worker_id: str) -> Path:
    directory = Path(tempfile.gettempdir()) / "sandbox-ray"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{worker_id}.log"


class SandboxWorker:
    """The worker actor's class (made a Ray actor by `control.start_workers`)."""

    def __init__(self, fleet: str, worker_id: str, settings: dict) -> None:
        import ray

        self.worker_id = worker_id
        self.settings = FleetSettings.from_dict(settings)
        self.registry = ray.get_actor(fleet, namespace=NAMESPACE)
        self.node_id = ray.get_runtime_context().get_node_id()
        self.node_ip = ray.util.get_node_ip_address()
        host = "127.0.0.1" if self.settings.bind == "loopback" else self.node_ip
        self.log_path = log_path(worker_id)
        self._stopping = threading.Event()
        self.process, self.address = self._start_server(host)
        self.started = time.time()
        self._probe = self._probe_client()
        self._in_flight(timeout=10.0)  # the first Info is slow (versions); later ones are not
        self.heartbeat()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    # ---------------------------------------------------------------- the server
    def _start_server(self, host: str) -> tuple[subprocess.Popen, str]:
        with open(self.log_path, "a") as log_file:
            log_file.write(f"--- worker {self.worker_id} (pid {os.getpid()}) starts its server\n")
            log_file.flush()
            process = subprocess.Popen(server_command(host, self.settings), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=log_file, env=server_env(),
                                       text=True)
        found: list[str] = []
        listening = threading.Event()

        def read_stdout() -> None:  # keeps reading to the end, so the server never blocks on it
            for line in process.stdout:
                match = LISTENING.search(line)
                if match and not found:
                    found.append(match.group(1).split(",")[0])
                    listening.set()
            listening.set()

        threading.Thread(target=read_stdout, name="server-stdout", daemon=True).start()
        if not listening.wait(READY_TIMEOUT_S) or not found:
            process.kill()
            process.wait()
            raise RuntimeError(f"the sandbox server of {self.worker_id} on {self.node_ip} did not "
                               f"start: {self._last_log_line()}")
        return process, found[0]

    def _last_log_line(self) -> str:
        try:
            lines = [l.strip() for l in self.log_path.read_text(errors="replace").splitlines()
                     if l.strip()]
        except OSError:
            return "no log"
        return lines[-1] if lines else "no output"

    def _probe_client(self):
        from sandbox.client import SandboxClient
        settings = self.settings
        return SandboxClient(self.address, timeout=PROBE_TIMEOUT_S,
                             token_file=settings.token_file or None, tls=settings.tls,
                             tls_ca=settings.tls_ca or None)

    def _in_flight(self, timeout: float = PROBE_TIMEOUT_S) -> int:
        self._probe.timeout = timeout
        try:
            return int(self._probe.info().in_flight)
        except Exception:  # noqa: BLE001 - a busy or starting server: load unknown this round
            return -1

    # ---------------------------------------------------------------- heartbeats
    def entry(self) -> WorkerEntry:
        return WorkerEntry(worker_id=self.worker_id, address=self.address, node_id=self.node_id,
                           node_ip=self.node_ip, capacity=self.settings.capacity,
                           bind=self.settings.bind, in_flight=self._in_flight(),
                           pid=self.process.pid, started=self.started)

    def heartbeat(self) -> None:
        self.registry.heartbeat.remote(self.entry().to_dict())

    def _beat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_S):
            if self.process.poll() is not None:
                if self._stopping.is_set():
                    return
                log.error("the sandbox server of %s exited (%s): %s; Ray restarts this worker",
                          self.worker_id, self.process.returncode, self._last_log_line())
                os._exit(1)  # an abnormal exit: Ray restarts the actor (max_restarts)
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001 - the registry may be restarting; next beat
                log.warning("heartbeat of %s failed", self.worker_id, exc_info=True)

    # ---------------------------------------------------------------- methods
    def ready(self) -> dict:
        """This worker's registry entry, once its server listens (creation has finished)."""
        return self.entry().to_dict()

    def stop(self) -> int:
        """Stops the server (it finishes what it grades, within the fleet's grace) and leaves
        the registry; returns the server's exit status. The caller then kills the actor."""
        self._stopping.set()
        self.registry.leave.remote(self.address)
        self._probe.close()
        try:
            self.process.stdin.close()  # the server's signal to drain and stop
        except OSError:
            pass
        try:
            code = self.process.wait(self.settings.grace_s + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log_path.unlink(missing_ok=True)  # kept only when the server did not stop on purpose
        return code

"""Prometheus metrics of the gateway, served on a loopback HTTP port."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from sandbox.v1 import sandbox_pb2 as pb


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge("sandbox_gateway_pending_requests",
                                 "Requests admitted and not yet answered", registry=self.registry)
        self.in_flight = Gauge("sandbox_gateway_in_flight", "Requests running on workers",
                               registry=self.registry)
        self.live_workers = Gauge("sandbox_gateway_live_workers", "Healthy workers",
                                  registry=self.registry)
        self.retries = Counter("sandbox_gateway_retries", "Requests re-run on another worker",
                               registry=self.registry)
        self.worker_failures = Counter("sandbox_gateway_worker_failures",
                                       "Workers marked failed (out of rotation until their next "
                                       "health check), by worker", ["worker"], registry=self.registry)
        self.poisoned_requests = Counter("sandbox_gateway_poisoned_requests",
                                         "Requests answered SE and not run again: they failed "
                                         "on two workers", registry=self.registry)
        self.latency = Histogram("sandbox_gateway_latency_seconds", "End-to-end latency",
                                 ["language"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.worker_requests = Counter("sandbox_gateway_worker_requests",
                                       "Requests answered, by worker", ["worker"],
                                       registry=self.registry)
        self.verdicts = Counter("sandbox_gateway_verdicts", "Verdicts answered", ["verdict"],
                                registry=self.registry)
        self._server = None

    def observe(self, language: str, seconds: float, reply) -> None:
        self.latency.labels(language=language).observe(seconds)
        verdict = getattr(reply, "verdict", None)
        if verdict is not None:
            self.verdicts.labels(verdict=pb.Verdict.Name(verdict)).inc()

    def serve(self, address: str) -> int:
        """Starts the /metrics HTTP endpoint (host:port; port 0 picks one); returns the port."""
        host, _, port = address.rpartition(":")
        server, _thread = start_http_server(int(port), addr=host or "127.0.0.1",
                                            registry=self.registry)
        self._server = server
        return server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

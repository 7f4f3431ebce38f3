"""`sandbox serve`: the gRPC server with local workers (no Docker needed)."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection

from sandbox.grpc_release import release_grpc_objects
from sandbox.security import ServerSecurity
from sandbox.service import SandboxCore, SandboxService
from sandbox.settings import count_from_env
from sandbox.v1 import sandbox_pb2 as pb

DEFAULT_ADDRESS = "127.0.0.1:50051"
READY_JAILS_ENV = "SANDBOX_READY_JAILS"
DEFAULT_READY_JAILS = 2
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Sandbox"].full_name
MAX_MESSAGE_BYTES = 512 << 20
# Clients ping at most this often while their calls run (sandbox.client.keepalive_options);
# servers accept pings twice as often (a long grading sends no data for minutes: with gRPC's
# default of one ping per 5 minutes, the third ping would be answered with GOAWAY), and
# keep gRPC's strikes against faster ones.
MIN_PING_INTERVAL_MS = 1000

log = logging.getLogger("sandbox.server")


def beyond_loopback(address: str) -> bool:
    """Whether a listening address can be reached from other machines."""
    if address.startswith("unix:") or address.startswith("/"):
        return False
    host = address.rsplit(":", 1)[0].strip("[]")
    if host in ("localhost",):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name, or a wildcard spelled otherwise


def warn_if_exposed(what: str, addresses, security: ServerSecurity) -> None:
    """One warning line per address beyond loopback that lacks TLS or a token."""
    for address in addresses:
        if not address or not beyond_loopback(address):
            continue
        missing = [name for name, present in (("TLS", security.tls), ("a token", security.token))
                   if not present]
        if missing:
            log.warning("WARNING: the %s listens on %s, beyond loopback, without %s: anyone who "
                        "can reach it can run code here (--tls-cert/--tls-key, --token-file)",
                        what, address, " or ".join(missing))


def normalize_address(address: str) -> str:
    """Accepts host:port, unix:PATH, unix:///PATH or a bare socket path."""
    if address.startswith("/"):
        return "unix:" + address
    return address


class Server:
    """A running server; `await stop()` drains in-flight work, then returns."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, capacity: int | None = None,
                 max_queue: int | None = None, core: SandboxCore | None = None,
                 http_address: str | None = None, security: ServerSecurity | None = None,
                 ready_jails: int | None = None) -> None:
        """http_address: also serve the HTTP API (SandboxFusion's /run_code, …) there.
        security: TLS and the token, for gRPC and HTTP alike.
        ready_jails: fresh jails kept started per language in demand (default
        $SANDBOX_READY_JAILS, else 2; 0: none)."""
        self.address = normalize_address(address)
        self.core = core or SandboxCore()
        self.service = SandboxService(self.core, capacity, max_queue)
        self.health = new_health_servicer()
        self.security = security or ServerSecurity()
        self.http_address = http_address
        self.ready_jails = (count_from_env(READY_JAILS_ENV, DEFAULT_READY_JAILS)
                            if ready_jails is None else ready_jails)
        self.http = None  # sandbox.http_api.HttpApi, imported only when asked for
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None
        self.http_port: int | None = None

    async def start(self) -> None:
        warn_if_exposed("sandbox server", [self.address, self.http_address], self.security)
        await asyncio.get_running_loop().run_in_executor(None, self.core.judge.warm_up)
        self.core.judge.start_pool(self.ready_jails, self.service.capacity)
        self._server, self.port = await start_grpc_server(self.address, self.service, self.health,
                                                          self.security)
        if self.http_address:
            try:
                self.http, self.http_port = await start_http_api(self.http_address, self.service,
                                                                 self.security)
            except (OSError, ValueError):
                await self._server.stop(0)
                self._server = None
                raise

    async def stop(self, grace: float = 30.0) -> None:
        """Stops taking requests (health NOT_SERVING), lets in-flight ones finish within grace."""
        if self._server is None:
            return
        await set_not_serving(self.health)
        if self.http is not None:
            self.http.serving = False
        await self._server.stop(grace)
        if self.http is not None:
            await self.http.stop()
        # Kill what still runs and wait for the grading threads, off the event loop.
        try:
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                None, self.service.shutdown), timeout=30)
        except asyncio.TimeoutError:
            log.warning("grading threads did not stop within 30 s")
        self._server = None
        release_grpc_objects()  # an aborted call's cycle holds grpc.aio objects
        if self.address.startswith("unix:"):
            path = self.address.removeprefix("unix://").removeprefix("unix:")
            if os.path.exists(path):
                os.unlink(path)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def _claim_unix_socket(path: str) -> None:
    """Removes a socket file left by a killed predecessor; refuses one a live server holds."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: stale
        return
    finally:
        probe.close()
    raise OSError(f"{path} is in use by another running server")


class MalformedRequest:
    """Stands in for a request whose bytes do not parse (e.g. invalid UTF-8 in a string)."""

    def __init__(self, error: str) -> None:
        self.error = error
        self.request_id = ""

    @property
    def message(self) -> str:
        return f"malformed request: {self.error}"


def _lenient(parse):
    def deserialize(data: bytes):
        try:
            return parse(data)
        except DecodeError as exc:
            return MalformedRequest(str(exc))
    return deserialize


def add_sandbox_service(server, servicer) -> None:
    """Registers sandbox.v1.Sandbox like the generated helper, except that a request that
    does not parse is answered INVALID_ARGUMENT (the generated code says UNKNOWN)."""
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["Sandbox"].methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        implementation = getattr(servicer, method.name)
        kwargs = dict(request_deserializer=_lenient(request_type.FromString),
                      response_serializer=response_type.SerializeToString)
        if method.client_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(implementation, **kwargs)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _refuse_malformed(implementation), **kwargs)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


def _refuse_malformed(implementation):
    async def handle(request, context):
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return await implementation(request, context)
    return handle


def new_health_servicer():
    return health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()


async def start_grpc_server(address: str, servicer, health_servicer,
                            security: ServerSecurity | None = None) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server with sandbox.v1, health (SERVING) and reflection; TLS and
    the token check when `security` asks for them."""
    security = security or ServerSecurity()
    server = grpc.aio.server(interceptors=security.interceptors(), options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS // 2),
    ])
    add_sandbox_service(server, servicer)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    if address.startswith("unix:"):
        _claim_unix_socket(address.removeprefix("unix://").removeprefix("unix:"))
    try:
        port = (server.add_secure_port(address, security.grpc_credentials()) if security.tls
                else server.add_insecure_port(address))
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address} (address in use, or a directory that does "
                      "not exist or is not writable)")
    await server.start()
    for name in ("", SERVICE_NAME):
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


async def start_http_api(address: str, backend, security: ServerSecurity):
    """The HTTP API (sandbox.http_api, imported only when asked for) over a server's or a
    gateway's service, listening; returns it and its port."""
    from sandbox.http_api import HttpApi
    api = HttpApi(backend, security)
    return api, await api.start(address)


async def set_not_serving(health_servicer) -> None:
    for name in ("", SERVICE_NAME):
        await _set_health(health_servicer, name, health_pb2.HealthCheckResponse.NOT_SERVING)


async def _set_health(servicer, name: str, status) -> None:
    result = servicer.set(name, status)
    if asyncio.iscoroutine(result):
        await result


async def run_until_signal(server, grace: float) -> None:
    """Runs a started server until SIGTERM / SIGINT, then drains it (stop(grace))."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stopping.wait())
    await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    print("draining in-flight requests…", flush=True)
    await server.stop(grace)
    for task in (waiter, stopper):
        task.cancel()
    print("stopped", flush=True)


async def serve(address: str, capacity: int | None, max_queue: int | None, grace: float,
                http_address: str | None = None, security: ServerSecurity | None = None,
                ready_jails: int | None = None) -> None:
    server = Server(address, capacity=capacity, max_queue=max_queue, http_address=http_address,
                    security=security, ready_jails=ready_jails)
    await server.start()
    where = server.address if server.address.startswith("unix:") else \
        server.address.rsplit(":", 1)[0] + f":{server.port}"
    log.warning("sandbox listening on %s (capacity %d, queue %d, %s)", where,
                server.service.capacity, server.service.max_queue, server.security.describe())
    http = ""
    if server.http_port is not None:
        scheme = "https" if server.security.tls else "http"
        http = f", HTTP API on {scheme}://{server.http_address.rsplit(':', 1)[0]}:{server.http_port}"
    print(f"sandbox listening on {where}{http}", flush=True)
    await run_until_signal(server, grace)

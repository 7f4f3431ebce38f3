"""Python clients of the sandbox.v1 service, sync and asyncio.

Both accept one address or several (`host:port`, `unix:PATH`); several IP
addresses are balanced with gRPC's round_robin policy, skipping ones that go
away. `ray://NAME` is a fleet of workers on a Ray cluster (`sandbox ray up`): the
client is then sandbox.ray_fleet.client's, which finds the live workers through
the fleet's registry and sends each request to the least-loaded one. Test sets
are uploaded once per digest and referred to afterwards; a server that lost a
test set (restart, eviction) gets it again transparently.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence

import grpc

from sandbox.digest import test_set_digest
from sandbox.ray_fleet import is_ray_address
from sandbox.security import ClientSecurity, open_channel
from sandbox.server import MAX_MESSAGE_BYTES, MIN_PING_INTERVAL_MS, normalize_address
from sandbox.settings import positive_from_env
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

# Inline test sets at most this large are sent as they are; larger ones by digest.
INLINE_TEST_BYTES = 64 << 10
KEEPALIVE_ENV = "SANDBOX_GRPC_KEEPALIVE_S"
DEFAULT_KEEPALIVE_S = 20.0


def channel_target(addresses: str | Sequence[str]) -> tuple[str, list[tuple[str, object]]]:
    """A gRPC target and channel options for one or many addresses."""
    if isinstance(addresses, str):
        addresses = [a.strip() for a in addresses.split(",") if a.strip()]
    addresses = [normalize_address(a) for a in addresses]
    if not addresses:
        raise ValueError("no sandbox address given")
    options: list[tuple[str, object]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        *keepalive_options(),
    ]
    if len(addresses) == 1:
        return addresses[0], options
    if any(a.startswith("unix:") for a in addresses):
        raise ValueError("several addresses must all be host:port (one unix socket at most)")
    hosts = [_ipv4_endpoint(a.removeprefix("ipv4:")) for a in addresses]
    options.append(("grpc.lb_policy_name", "round_robin"))
    return "ipv4:" + ",".join(hosts), options


def keepalive_options() -> list[tuple[str, object]]:
    """Channel options for pings while calls are in flight, every $SANDBOX_GRPC_KEEPALIVE_S:
    a server that stops answering (its machine gone, frozen or cut off) fails the calls
    UNAVAILABLE within about twice that, and they are retried elsewhere, instead of waiting
    for their deadlines. (gRPC takes a ping's deadline from http2.ping_timeout_ms.)"""
    every_ms = max(MIN_PING_INTERVAL_MS,
                   int(positive_from_env(KEEPALIVE_ENV, DEFAULT_KEEPALIVE_S, float) * 1000))
    return [("grpc.keepalive_time_ms", every_ms), ("grpc.keepalive_timeout_ms", every_ms),
            ("grpc.http2.ping_timeout_ms", every_ms), ("grpc.http2.max_pings_without_data", 0)]


def _ipv4_endpoint(address: str) -> str:
    """host:port with the host resolved to an IPv4 address (gRPC's multi-address target
    takes literals only)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    try:
        ipaddress.IPv4Address(host)
        return address
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {host!r} to an IPv4 address: {exc}") from None
    return f"{infos[0][4][0]}:{port}"


def _security(target: str, token, tls_ca, tls_cert, tls_key, tls, token_file) -> ClientSecurity:
    """The client's settings; TLS from the environment alone is not applied to a unix socket
    (a local server, e.g. a fleet worker), only TLS asked for in the arguments."""
    if tls is None and target.startswith("unix:") and not (tls_ca or tls_cert):
        tls = False
    return ClientSecurity.from_settings(token, tls_ca, tls_cert, tls_key, tls, token_file)


class _AuthorizedStub:
    """The generated stub, with the token's metadata added to every call."""

    def __init__(self, stub: pb_grpc.SandboxStub, metadata: tuple) -> None:
        self._stub, self._metadata = stub, metadata

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)
        if not self._metadata:
            return method

        def call(request, **kwargs):
            kwargs.setdefault("metadata", self._metadata)
            return method(request, **kwargs)
        return call


def _use_digest(request: pb.GradeRequest) -> bool:
    return request.WhichOneof("tests") == "test_set" and request.test_set.ByteSize() > INLINE_TEST_BYTES


class SandboxClient:
    """Blocking client. Thread-safe; share one per process.

    token / tls_ca / tls_cert / tls_key: for a server that requires them (README: "Serving
    beyond one machine"); unset, they come from SANDBOX_TOKEN(_FILE), SANDBOX_TLS_CA,
    SANDBOX_TLS_CLIENT_CERT / _KEY. tls=True uses TLS with the system's CAs.
    `ray://NAME`: a RaySandboxClient over that fleet's workers (README: "On a Ray cluster").
    """

    def __new__(cls, addresses: str | Sequence[str] = "127.0.0.1:50051", **_kwargs):
        if cls is SandboxClient and is_ray_address(addresses):
            from sandbox.ray_fleet.client import RaySandboxClient
            cls = RaySandboxClient
        return super().__new__(cls)

    def __init__(self, addresses: str | Sequence[str] = "127.0.0.1:50051", *,
                 timeout: float | None = 600.0, token: str | None = None,
                 tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, tls: bool | None = None,
                 token_file: str | None = None) -> None:
        target, options = channel_target(addresses)
        self.target = target
        self.timeout = timeout
        self.security = _security(target, token, tls_ca, tls_cert, tls_key, tls, token_file)
        self._metadata = self.security.metadata()
        self._channel = open_channel(target, options, self.security)
        self._stub = _AuthorizedStub(pb_grpc.SandboxStub(self._channel), self._metadata)
        self._uploaded: set[str] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "SandboxClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    def info(self) -> pb.InfoResponse:
        return self._stub.Info(pb.InfoRequest(), timeout=self.timeout)

    def put_test_set(self, test_set: pb.TestSet) -> str:
        digest = self._stub.PutTestSet(pb.PutTestSetRequest(test_set=test_set),
                                       timeout=self.timeout).digest
        with self._lock:
            self._uploaded.add(digest)
        return digest

    def has_test_set(self, digest: str) -> bool:
        return self._stub.HasTestSet(pb.HasTestSetRequest(digest=digest), timeout=self.timeout).present

    def ensure_test_set(self, test_set: pb.TestSet) -> str:
        """Uploads a test set unless this client already did; returns its digest."""
        digest = test_set_digest(test_set)
        with self._lock:
            known = digest in self._uploaded
        return digest if known else self.put_test_set(test_set)

    def grade(self, request: pb.GradeRequest, timeout: float | None = None) -> pb.GradeResponse:
        """Grades one submission; big inline test sets travel once, by digest."""
        timeout = timeout or self.timeout
        if not _use_digest(request):
            return self._stub.Grade(request, timeout=timeout)
        tests = request.test_set
        by_digest = pb.GradeRequest()
        by_digest.CopyFrom(request)
        by_digest.test_set_digest = self.ensure_test_set(tests)
        try:
            return self._stub.Grade(by_digest, timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            self.put_test_set(tests)  # the server lost it: upload again, once
            return self._stub.Grade(by_digest, timeout=timeout)

    def grade_stream(self, requests: Iterable[pb.GradeRequest],
                     timeout: float | None = None) -> Iterator[pb.GradeResponse]:
        """Many submissions on one stream; answers arrive as they finish (match by request_id)."""
        return self._stub.GradeStream(iter(requests), timeout=timeout or self.timeout)

    def execute(self, request: pb.ExecuteRequest, timeout: float | None = None) -> pb.ExecuteResponse:
        return self._stub.Execute(request, timeout=timeout or self.timeout)


class AsyncSandboxClient:
    """asyncio client (grpc.aio). Create it inside a running event loop. The security
    arguments are SandboxClient's; `ray://NAME` gives an AsyncRaySandboxClient."""

    def __new__(cls, addresses: str | Sequence[str] = "127.0.0.1:50051", **_kwargs):
        if cls is AsyncSandboxClient and is_ray_address(addresses):
            from sandbox.ray_fleet.client import AsyncRaySandboxClient
            cls = AsyncRaySandboxClient
        return super().__new__(cls)

    def __init__(self, addresses: str | Sequence[str] = "127.0.0.1:50051", *,
                 timeout: float | None = 600.0, token: str | None = None,
                 tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, tls: bool | None = None,
                 token_file: str | None = None) -> None:
        target, options = channel_target(addresses)
        self.target = target
        self.timeout = timeout
        self.security = _security(target, token, tls_ca, tls_cert, tls_key, tls, token_file)
        self._channel = open_channel(target, options, self.security, aio=True)
        self._stub = _AuthorizedStub(pb_grpc.SandboxStub(self._channel), self.security.metadata())
        self._uploaded: set[str] = set()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncSandboxClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def info(self) -> pb.InfoResponse:
        return await self._stub.Info(pb.InfoRequest(), timeout=self.timeout)

    async def put_test_set(self, test_set: pb.TestSet) -> str:
        reply = await self._stub.PutTestSet(pb.PutTestSetRequest(test_set=test_set),
                                            timeout=self.timeout)
        self._uploaded.add(reply.digest)
        return reply.digest

    async def has_test_set(self, digest: str) -> bool:
        reply = await self._stub.HasTestSet(pb.HasTestSetRequest(digest=digest), timeout=self.timeout)
        return reply.present

    async def ensure_test_set(self, test_set: pb.TestSet) -> str:
        digest = test_set_digest(test_set)
        return digest if digest in self._uploaded else await self.put_test_set(test_set)

    async def grade(self, request: pb.GradeRequest, timeout: float | None = None) -> pb.GradeResponse:
        timeout = timeout or self.timeout
        if not _use_digest(request):
            return await self._stub.Grade(request, timeout=timeout)
        tests = request.test_set
        by_digest = pb.GradeRequest()
        by_digest.CopyFrom(request)
        by_digest.test_set_digest = await self.ensure_test_set(tests)
        try:
            return await self._stub.Grade(by_digest, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            await self.put_test_set(tests)
            return await self._stub.Grade(by_digest, timeout=timeout)

    def grade_stream(self, requests, timeout: float | None = None):
        """An async iterator of answers for an (async) iterable of requests."""
        return self._stub.GradeStream(requests, timeout=timeout or self.timeout)

    async def execute(self, request: pb.ExecuteRequest, timeout: float | None = None) -> pb.ExecuteResponse:
        return await self._stub.Execute(request, timeout=timeout or self.timeout)

"""The HTTP API (aiohttp) next to gRPC: SandboxFusion's `/run_code`, ScaleBox's
`/common_evaluate_batch`, our `/grade` (sandbox.v1 GradeRequest as protobuf JSON), health.

It runs in the same event loop as the gRPC server and goes through the same admission
(capacity, bounded queue), grading-time cap and, on the gateway, the same routing, retries
and metrics. A client that disconnects cancels its request and the jail is killed.

Status codes: 400 malformed JSON, 401 missing or wrong token, 404 unknown path or test set,
408 a body that came too slowly, 413 body too large, 422 a request that breaks the contract
(the reason in one line, as `{"detail": ...}`), 503 full or unavailable (with Retry-After),
504 deadline exceeded.

No client can hold the server's resources by being slow: a connection that has not sent a
whole request header within the idle timeout is closed (so is one idle that long between
requests), a body must arrive at a minimum rate, the body budget is taken as bytes arrive
(not as announced), and connections beyond a cap are closed as they come.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from typing import Callable, Protocol

import grpc
from aiohttp import web
from google.protobuf import json_format

from sandbox import sandbox_fusion, scalebox
from sandbox.sandbox_fusion import RequestError
from sandbox.security import UNAUTHENTICATED_MESSAGE, ServerSecurity
from sandbox.settings import count_from_env, positive_from_env
from sandbox.v1 import sandbox_pb2 as pb

log = logging.getLogger("sandbox.http")

MAX_BODY_ENV = "SANDBOX_HTTP_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 96 << 20
SHUTDOWN_TIMEOUT_S = 10.0  # in-flight handlers at stop: their runs are cancelled by then
BODY_BUDGET_FACTOR = 4  # bodies read and parsed at once: at most this many maximal ones
IDLE_ENV = "SANDBOX_HTTP_IDLE_TIMEOUT_S"
# To send a whole request header, between two requests, and the grace a body gets on top of
# its size at BODY_MIN_RATE.
DEFAULT_IDLE_TIMEOUT_S = 30.0
BODY_MIN_RATE = 1 << 20  # bytes per second
CONNECTIONS_ENV = "SANDBOX_HTTP_MAX_CONNECTIONS"
DEFAULT_MAX_CONNECTIONS = 1024  # open at once; more are closed as they come
OPEN_PATHS = {"/health", "/v1/ping"}  # answered without the token: they only say "serving"

_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 422, grpc.StatusCode.NOT_FOUND: 404,
           grpc.StatusCode.RESOURCE_EXHAUSTED: 503, grpc.StatusCode.UNAVAILABLE: 503,
           grpc.StatusCode.CANCELLED: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
           grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403,
           grpc.StatusCode.FAILED_PRECONDITION: 422, grpc.StatusCode.OUT_OF_RANGE: 422}


class Backend(Protocol):
    """What the HTTP API needs from a server or a gateway. Both raise an exception with
    `code` (a grpc.StatusCode) and `message` when they answer with a status instead."""

    async def run_execute(self, request: pb.ExecuteRequest) -> pb.ExecuteResponse: ...

    async def run_grade(self, request: pb.GradeRequest, client: str) -> pb.GradeResponse: ...


def max_body_bytes() -> int:
    raw = os.environ.get(MAX_BODY_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_BODY_BYTES
    except ValueError:
        raise ValueError(f"{MAX_BODY_ENV} must be a number of bytes, got {raw!r}") from None
    if value < 1024:
        raise ValueError(f"{MAX_BODY_ENV} must be at least 1024, got {value}")
    return value


def _error(status: int, detail: str, **headers: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers or None)


class HttpApi:
    """The aiohttp application over one backend; `serving` False answers health with 503."""

    def __init__(self, backend: Backend, security: ServerSecurity | None = None,
                 max_body: int | None = None) -> None:
        self.backend = backend
        self.security = security or ServerSecurity()
        self.max_body = max_body or max_body_bytes()
        self.idle_timeout_s = positive_from_env(IDLE_ENV, DEFAULT_IDLE_TIMEOUT_S, float)
        self.max_connections = count_from_env(CONNECTIONS_ENV, DEFAULT_MAX_CONNECTIONS)
        self.serving = True
        self.answered: Counter[str] = Counter()  # requests answered per endpoint (in /health)
        self._reading = 0  # bytes of bodies being read and parsed now
        self.app = web.Application(client_max_size=self.max_body,
                                   middlewares=[self._errors, self._authenticate])
        self.app.router.add_post("/run_code", self.run_code)
        self.app.router.add_post("/common_evaluate_batch", self.evaluate_batch)
        self.app.router.add_post("/grade", self.grade)
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/v1/ping", self.ping)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self, address: str) -> int:
        """Listens on host:port (port 0: any free one); returns the port."""
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise OSError(f"--http-address must be host:port, got {address!r}")
        # handler_cancellation: a client that goes away cancels its handler, so its jail dies.
        # keepalive_timeout runs from a connection's start (aiohttp >= 3.14.5) until a whole
        # request header came, and between requests.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                                     keepalive_timeout=self.idle_timeout_s)
        await self._runner.setup()
        site = CappedTCPSite(self._runner, host.strip("[]") or "127.0.0.1", int(port),
                             ssl_context=self.security.ssl_context() if self.security.tls else None,
                             max_connections=self.max_connections,
                             handshake_timeout_s=self.idle_timeout_s)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(f"cannot listen for HTTP on {address}: {exc.strerror or exc}") from None
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        self.serving = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ middlewares
    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the request body is larger than this server's limit of "
                               f"{self.max_body} bytes ({MAX_BODY_ENV})")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason or "error", **{k: v for k, v in exc.headers.items()
                                                                  if k == "Allow"})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one request must never take the server down
            log.exception("internal error in %s", request.path)
            return _error(500, f"internal error: {exc}")

    @web.middleware
    async def _authenticate(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not self.security.token_ok(
                request.headers.get("Authorization")):
            return _error(401, UNAUTHENTICATED_MESSAGE, **{"WWW-Authenticate": "Bearer"})
        return await handler(request)

    # ------------------------------------------------------------ helpers
    async def _body(self, request: web.Request) -> bytes:
        """The body, within a byte budget for all bodies being read and parsed at once (no
        more than BODY_BUDGET_FACTOR maximal requests' worth: 503 beyond), taken as its
        bytes arrive, and within the idle timeout plus its size at BODY_MIN_RATE (408 after)."""
        announced = request.content_length
        if announced is not None and announced > self.max_body:
            raise web.HTTPRequestEntityTooLarge(max_size=self.max_body, actual_size=announced)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.idle_timeout_s + (announced or self.max_body) / BODY_MIN_RATE
        request["reserved_bytes"] = 0
        chunks: list[bytes] = []
        while True:
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(request.content.readany(), left)
            except asyncio.TimeoutError:  # TimeoutError from 3.11 on, not before
                raise RequestError("the request body came too slowly (at least "
                                   f"{BODY_MIN_RATE >> 20} MiB/s after {self.idle_timeout_s:g} s)",
                                   status=408) from None
            if not chunk:
                return b"".join(chunks)
            received = request["reserved_bytes"] + len(chunk)
            if received > self.max_body:
                raise web.HTTPRequestEntityTooLarge(max_size=self.max_body, actual_size=received)
            if self._reading + len(chunk) > self.max_body * BODY_BUDGET_FACTOR:
                raise RequestError("the server is busy reading other large requests; "
                                   "retry shortly", status=503)
            self._reading += len(chunk)
            request["reserved_bytes"] += len(chunk)
            chunks.append(chunk)

    async def _handle(self, request: web.Request, endpoint: str, convert: Callable,
                      call: Callable, answer: Callable) -> web.Response:
        """read → convert (off the event loop) → the backend → the answer (off the loop)."""
        self.answered[endpoint] += 1
        if not self.serving:
            return _error(503, "the server is shutting down; retry on another one",
                          **{"Retry-After": "1"})
        try:
            try:
                body = await self._body(request)
                converted = await asyncio.to_thread(_parse_then, body, convert)
            finally:
                self._reading -= request.get("reserved_bytes", 0)
            reply = await call(converted, self._client(request))
            text = await asyncio.to_thread(_answer_text, answer, converted, reply)
        except RequestError as exc:
            headers = {"Retry-After": "1"} if exc.status == 503 else {}
            return _error(exc.status, str(exc), **headers)
        except Exception as exc:  # noqa: BLE001 - a status from the backend, or a bug
            code = getattr(exc, "code", None)
            if not isinstance(code, grpc.StatusCode):
                raise
            status = _STATUS.get(code, 500)
            headers = {"Retry-After": "1"} if status == 503 else {}
            return _error(status, getattr(exc, "message", str(exc)), **headers)
        return web.Response(text=text, content_type="application/json")

    @staticmethod
    def _client(request: web.Request) -> str:
        return f"http:{request.remote or 'unknown'}"

    # ------------------------------------------------------------ routes
    async def run_code(self, request: web.Request) -> web.Response:
        return await self._handle(
            request, "run_code", _run_code_request,
            lambda converted, client: self.backend.run_execute(converted[1]),
            lambda converted, reply: sandbox_fusion.from_execute(converted[0], reply)
            .model_dump(mode="json"))

    async def evaluate_batch(self, request: web.Request) -> web.Response:
        return await self._handle(
            request, "common_evaluate_batch", scalebox.to_grade,
            lambda converted, client: self.backend.run_grade(converted[0], client),
            lambda converted, reply: scalebox.from_grade(reply, converted[1]))

    async def grade(self, request: web.Request) -> web.Response:
        return await self._handle(
            request, "grade", _grade_request,
            lambda converted, client: self.backend.run_grade(converted, client),
            lambda converted, reply: json_format.MessageToDict(
                reply, preserving_proto_field_name=True))

    async def health(self, request: web.Request) -> web.Response:
        status = "SERVING" if self.serving else "NOT_SERVING"
        return web.json_response({"status": status, "requests": dict(self.answered)},
                                 status=200 if self.serving else 503)

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response("pong", status=200 if self.serving else 503)


class CappedTCPSite(web.BaseSite):
    """A TCP site that closes the connections that come while `max_connections` are open
    (each holds a descriptor of the server's, which its jails need too; 0: no cap). A TLS
    handshake must end within `handshake_timeout_s` (such connections are not counted yet)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *, ssl_context=None,
                 max_connections: int, handshake_timeout_s: float) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._address = (host, port)
        self._max_connections = max_connections
        self._handshake_timeout_s = handshake_timeout_s

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = f"[{self._address[0]}]" if ":" in self._address[0] else self._address[0]
        return f"{scheme}://{host}:{self._address[1]}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        limit = self._max_connections

        def protocol() -> asyncio.Protocol:
            return _Refused() if limit and len(server.connections) >= limit else server()

        self._server = await asyncio.get_running_loop().create_server(
            protocol, *self._address, ssl=self._ssl_context, reuse_address=True, backlog=128,
            ssl_handshake_timeout=self._handshake_timeout_s if self._ssl_context else None)


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


def _parse_then(body: bytes, convert: Callable):
    """The JSON body, converted; each problem becomes the client's RequestError."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise RequestError("the body is not valid JSON: nested too deeply", status=400) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too long an integer
        raise RequestError(f"the body is not valid JSON: {exc}", status=400) from None
    return _convert(convert, payload)


def _run_code_request(payload: object) -> tuple:
    body = sandbox_fusion.parse_run_code(payload)
    return body, sandbox_fusion.to_execute(body)


def _grade_request(payload: object) -> pb.GradeRequest:
    if not isinstance(payload, dict):
        raise RequestError("the body must be a JSON object (a sandbox.v1.GradeRequest)")
    try:
        return json_format.ParseDict(payload, pb.GradeRequest())
    except json_format.ParseError as exc:
        raise RequestError("not a sandbox.v1.GradeRequest: " + str(exc).splitlines()[0]) from None


def _answer_text(answer: Callable, converted, reply) -> str:
    """The answer as JSON text (ASCII escapes: valid whatever the strings hold)."""
    return json.dumps(answer(converted, reply))


def _convert(function: Callable, *args):
    """A body → sandbox.v1 conversion; what protobuf refuses is the client's error (422)."""
    try:
        return function(*args)
    except UnicodeEncodeError:
        raise RequestError("text must be valid Unicode: lone surrogate escapes such as \\ud800 "
                           "cannot be run") from None
    except RecursionError:
        raise RequestError("a value is nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        if isinstance(exc, RequestError):
            raise
        raise RequestError(f"a value is out of range or of the wrong type: {exc}") from None

"""TLS and bearer tokens for serving beyond one machine (gRPC and HTTP, server and client).

Server side: a certificate and key (TLS), optionally a CA whose client certificates are
required (mutual TLS), and a token every call must carry (gRPC `authorization` metadata or
the HTTP `Authorization` header, `Bearer <token>`). Health checks are answered without the
token so that orchestrators can probe; they say only whether the server is serving.
Client side: the CA to trust, an optional client certificate, the token.

Each setting comes from a flag or else from the environment:
SANDBOX_TLS_CERT, SANDBOX_TLS_KEY, SANDBOX_TLS_CLIENT_CA (server), SANDBOX_TLS_CA,
SANDBOX_TLS_CLIENT_CERT, SANDBOX_TLS_CLIENT_KEY (client), SANDBOX_TOKEN or
SANDBOX_TOKEN_FILE (both sides).
"""
from __future__ import annotations

import hmac
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

TOKEN_ENV, TOKEN_FILE_ENV = "SANDBOX_TOKEN", "SANDBOX_TOKEN_FILE"
# Only the one-shot check: an open Watch stream would let anyone hold a stream without the token.
OPEN_METHODS = {"/grpc.health.v1.Health/Check"}
UNAUTHENTICATED_MESSAGE = "a valid bearer token is required (Authorization: Bearer <token>)"


class SecurityError(ValueError):
    """A TLS or token setting that cannot be used; the message is one line."""


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"cannot read the {what} {path}: {exc.strerror}") from None


def resolve_token(token: str | None = None, token_file: str | None = None) -> str | None:
    """The token from the arguments, else SANDBOX_TOKEN, else SANDBOX_TOKEN_FILE; None: none."""
    if token is None and token_file is None:
        token, token_file = os.environ.get(TOKEN_ENV) or None, os.environ.get(TOKEN_FILE_ENV) or None
    if token is None and token_file:
        token = (_read(token_file, "token file") or b"").decode("utf-8", errors="strict").strip()
    if token is not None:
        token = token.strip()
        if not token:
            raise SecurityError("the token is empty")
        if not token.isascii() or any(ch.isspace() or not ch.isprintable() for ch in token):
            raise SecurityError("the token must be printable ASCII characters without spaces")
    return token


@dataclass(frozen=True)
class ServerSecurity:
    """What a server requires of its callers."""

    cert: bytes | None = None
    key: bytes | None = None
    client_ca: bytes | None = None
    token: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    client_ca_path: str | None = None

    @classmethod
    def from_settings(cls, cert: str | None = None, key: str | None = None,
                      client_ca: str | None = None, token: str | None = None,
                      token_file: str | None = None, use_env: bool = True) -> "ServerSecurity":
        """use_env False: the arguments only (a fleet worker behind its gateway's unix socket
        must not pick up settings meant for the gateway)."""
        if use_env:
            cert = cert or os.environ.get("SANDBOX_TLS_CERT") or None
            key = key or os.environ.get("SANDBOX_TLS_KEY") or None
            client_ca = client_ca or os.environ.get("SANDBOX_TLS_CLIENT_CA") or None
        if bool(cert) != bool(key):
            raise SecurityError("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
        if client_ca and not cert:
            raise SecurityError("client certificates (--tls-client-ca) need TLS (--tls-cert/--tls-key)")
        security = cls(cert=_read(cert, "TLS certificate"), key=_read(key, "TLS key"),
                       client_ca=_read(client_ca, "client CA"),
                       token=resolve_token(token, token_file) if use_env or token or token_file
                       else None,
                       cert_path=cert, key_path=key, client_ca_path=client_ca)
        if security.tls:
            security.ssl_context()  # a certificate and key that do not load fail now, not per call
        return security

    @property
    def tls(self) -> bool:
        return self.cert is not None

    def describe(self) -> str:
        parts = ["TLS" + (" with client certificates" if self.client_ca else "") if self.tls
                 else "plain text", "a bearer token" if self.token else "no token"]
        return " and ".join(parts)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.client_ca,
                                           require_client_auth=self.client_ca is not None)

    def ssl_context(self) -> ssl.SSLContext:
        """The HTTP server's TLS context (same certificate, key and client CA as gRPC)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_path, self.key_path)
        except (ssl.SSLError, OSError) as exc:
            raise SecurityError(f"cannot load the TLS certificate and key: {exc}") from None
        if self.client_ca_path:
            try:
                context.load_verify_locations(self.client_ca_path)
            except (ssl.SSLError, OSError) as exc:
                raise SecurityError(f"cannot load the client CA {self.client_ca_path}: {exc}") from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def token_ok(self, authorization: str | None) -> bool:
        """Whether an `Authorization` value carries this server's token (always, without one)."""
        if self.token is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        # surrogateescape: a header's undecodable bytes arrive as lone surrogates (aiohttp)
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), self.token.encode())

    def interceptors(self) -> list:
        return [TokenInterceptor(self)] if self.token else []


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Answers UNAUTHENTICATED to a call without the right token (health checks excepted)."""

    def __init__(self, security: ServerSecurity) -> None:
        self.security = security

        async def refuse_unary(request, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

        async def refuse_streams(request_iterator, context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
            yield  # pragma: no cover - never reached: abort raises

        self._refusals = {
            (False, False): grpc.unary_unary_rpc_method_handler(refuse_unary),
            (False, True): grpc.unary_stream_rpc_method_handler(refuse_unary),
            (True, False): grpc.stream_unary_rpc_method_handler(refuse_unary),
            (True, True): grpc.stream_stream_rpc_method_handler(refuse_streams),
        }

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method or ""
        if method in OPEN_METHODS:
            return await continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        if self.security.token_ok(metadata.get("authorization")):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._refusals[(handler.request_streaming, handler.response_streaming)]


@dataclass(frozen=True)
class ClientSecurity:
    """What a client presents: the CA it trusts (TLS), its own certificate, the token."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    token: str | None = None
    tls: bool = False

    @classmethod
    def from_settings(cls, token: str | None = None, tls_ca: str | None = None,
                      tls_cert: str | None = None, tls_key: str | None = None,
                      tls: bool | None = None, token_file: str | None = None) -> "ClientSecurity":
        tls_ca = tls_ca or os.environ.get("SANDBOX_TLS_CA") or None
        tls_cert = tls_cert or os.environ.get("SANDBOX_TLS_CLIENT_CERT") or None
        tls_key = tls_key or os.environ.get("SANDBOX_TLS_CLIENT_KEY") or None
        if bool(tls_cert) != bool(tls_key):
            raise SecurityError("a client certificate needs its key (tls_cert and tls_key)")
        use_tls = bool(tls_ca or tls_cert) if tls is None else tls
        return cls(ca=_read(tls_ca, "CA certificate"), cert=_read(tls_cert, "client certificate"),
                   key=_read(tls_key, "client key"), token=resolve_token(token, token_file),
                   tls=use_tls)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Credentials for a secure channel; None for a plain-text one."""
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def open_channel(target: str, options: list, security: ClientSecurity, *, aio: bool = False):
    """A gRPC channel to `target` with the client's TLS settings (plain text without)."""
    module = grpc.aio if aio else grpc
    credentials = security.channel_credentials()
    if credentials is None:
        return module.insecure_channel(target, options=options)
    return module.secure_channel(target, credentials, options=options)

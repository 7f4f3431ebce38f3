"""Serving beyond one machine: TLS (server and client certificates) and the bearer token,
over gRPC and HTTP, with our client, a plain gRPC stub, grpc health and `requests`."""
from __future__ import annotations

import datetime
import ipaddress
import json
import time
import subprocess
from pathlib import Path

import grpc
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from http_helpers import SANDBOX, free_port, start
from sandbox.client import SandboxClient
from sandbox.v1 import sandbox_pb2 as pb
from sandbox.v1 import sandbox_pb2_grpc as pb_grpc

TOKEN = "s3cret-token-for-tests"


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, key, cert) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _certificate(subject: str, key, issuer_key, issuer_name, *, ca: bool, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all made here."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = _certificate("test CA", ca_key, ca_key, ca_name, ca=True)
    _write(directory / "ca", ca_key, ca)
    server_key = _key()
    _write(directory / "server", server_key,
           _certificate("127.0.0.1", server_key, ca_key, ca_name, ca=False, server=True))
    client_key = _key()
    _write(directory / "client", client_key,
           _certificate("a client", client_key, ca_key, ca_name, ca=False))
    other_key = _key()  # a certificate from a CA the server does not trust
    other = _certificate("stranger", other_key, other_key,
                         x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")]), ca=True)
    _write(directory / "stranger", other_key, other)
    (directory / "token").write_text(TOKEN + "\n")
    return directory


@pytest.fixture(scope="module")
def secured(pki):
    """`sandbox serve` with TLS and a token (flags), gRPC and HTTP."""
    server = start("serve", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                   "--token-file", str(pki / "token"), scheme="https", verify=str(pki / "ca.pem"),
                   env={"SANDBOX_TOKEN": "", "SANDBOX_TLS_CA": ""})
    yield server
    server.stop()


def _execute() -> pb.ExecuteRequest:
    return pb.ExecuteRequest(language="python", source="print(6 * 7)")


def test_client_with_token_and_ca_works(secured, pki):
    with SandboxClient(secured.grpc_address, token=TOKEN, tls_ca=str(pki / "ca.pem")) as client:
        assert client.execute(_execute()).stdout == b"42\n"
        assert client.info().languages


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN + "x", ""])
def test_grpc_without_the_right_token_is_unauthenticated(secured, pki, token):
    credentials = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes())
    with grpc.secure_channel(secured.grpc_address, credentials) as channel:
        stub = pb_grpc.SandboxStub(channel)
        metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        for call, request in ((stub.Execute, _execute()), (stub.Info, pb.InfoRequest()),
                              (stub.Grade, pb.GradeRequest(language="python", source="x"))):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, metadata=metadata, timeout=30)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A stream is refused too, whatever it sends.
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.GradeStream(iter([pb.GradeRequest()]), metadata=metadata, timeout=30))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health answers without the token: orchestrators probe it. Only the one-shot check:
        # a Watch stream is held open, and needs the token.
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            next(iter(health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(),
                                                                 metadata=metadata, timeout=30)))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _reward(secured, pki, **kwargs):
    import asyncio

    from verl_plugin.reward import compute_score
    ground_truth = json.dumps({"tests": [{"input": "2\n", "output": "4\n"}]})
    answer = "```python\nprint(int(input()) * 2)\n```"
    return asyncio.run(compute_score("codeforces", answer, ground_truth,
                                     addresses=secured.grpc_address, tls_ca=str(pki / "ca.pem"),
                                     retries=3, sandbox_error_dir=str(pki), **kwargs))


def test_the_verl_reward_with_token_and_tls(secured, pki):
    assert _reward(secured, pki, token=TOKEN)["score"] == 1.0
    assert _reward(secured, pki, token_file=str(pki / "token"))["score"] == 1.0


def test_a_refused_token_stops_the_reward_at_once_and_is_not_retried(secured, pki):
    from verl_plugin.reward import SandboxRewardError
    started = time.monotonic()
    with pytest.raises(SandboxRewardError) as caught:
        _reward(secured, pki, token="wrong")
    assert "UNAUTHENTICATED" in str(caught.value) and "token" in str(caught.value)
    assert time.monotonic() - started < 5  # no backoff: retries would take longer


def test_plain_text_to_the_tls_port_fails_cleanly(secured, pki):
    with grpc.insecure_channel(secured.grpc_address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            pb_grpc.SandboxStub(channel).Info(pb.InfoRequest(), timeout=5)
        assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    with pytest.raises(requests.ConnectionError):
        requests.get(secured.http_url.replace("https://", "http://") + "/health", timeout=5)
    # The server is unaffected.
    with SandboxClient(secured.grpc_address, token=TOKEN, tls_ca=str(pki / "ca.pem")) as client:
        assert client.execute(_execute()).stdout == b"42\n"


def test_a_client_that_does_not_trust_the_server_fails(secured, pki):
    with SandboxClient(secured.grpc_address, token=TOKEN, tls_ca=str(pki / "stranger.pem")) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.execute(_execute(), timeout=5)
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_http_token_and_tls(secured, pki):
    ca = str(pki / "ca.pem")
    body = {"code": "print(6 * 7)", "language": "python"}
    good = requests.post(secured.http_url + "/run_code", json=body, verify=ca, timeout=60,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200 and good.json()["run_result"]["stdout"] == "42\n"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        refused = requests.post(secured.http_url + "/run_code", json=body, verify=ca, timeout=60,
                                headers=headers)
        assert refused.status_code == 401, headers
        assert "token" in refused.json()["detail"]
        assert refused.headers.get("WWW-Authenticate") == "Bearer"
    assert requests.get(secured.http_url + "/health", verify=ca, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(secured.http_url + "/health", verify=str(pki / "stranger.pem"), timeout=10)


def test_token_from_the_environment(pki, monkeypatch):
    server = start("serve", env={"SANDBOX_TOKEN": TOKEN})
    try:
        monkeypatch.setenv("SANDBOX_TOKEN", TOKEN)
        with SandboxClient(server.grpc_address) as client:  # the client reads it too
            assert client.execute(_execute()).stdout == b"42\n"
        monkeypatch.delenv("SANDBOX_TOKEN")
        with SandboxClient(server.grpc_address) as client:
            with pytest.raises(grpc.RpcError) as caught:
                client.execute(_execute())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert requests.post(server.http_url + "/run_code", timeout=30,
                             json={"code": "x", "language": "python"}).status_code == 401
    finally:
        server.stop()


def test_a_fleet_worker_ignores_the_gateways_settings_in_its_environment(tmp_path, pki):
    """A worker behind a gateway's unix socket takes flags only: a token, TLS or HTTP port
    meant for the gateway in the environment would make every forwarded request fail."""
    env = {"SANDBOX_TOKEN": TOKEN, "SANDBOX_TLS_CERT": str(pki / "server.pem"),
           "SANDBOX_TLS_KEY": str(pki / "server.key"), "SANDBOX_HTTP_ADDRESS": f"127.0.0.1:{free_port()}"}
    import os
    import socket as socket_module
    process = subprocess.Popen([SANDBOX, "serve", "--worker-dir", str(tmp_path)],
                               env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    path = tmp_path / (socket_module.gethostname() + ".sock")
    try:
        for _ in range(300):
            if path.exists():
                break
            time.sleep(0.1)
        with SandboxClient(f"unix:{path}") as client:
            client.wait_ready(timeout=30)
            assert client.execute(_execute()).stdout == b"42\n"
    finally:
        process.terminate()
        process.wait(20)


def test_client_certificates_when_required(pki):
    # Started by hand: /health over HTTPS needs a client certificate here too.
    grpc_port, http_port = free_port(), free_port()
    process = subprocess.Popen(
        [SANDBOX, "serve", "--address", f"127.0.0.1:{grpc_port}",
         "--http-address", f"127.0.0.1:{http_port}",
         "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
         "--tls-client-ca", str(pki / "ca.pem")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"127.0.0.1:{grpc_port}"
    try:
        with SandboxClient(address, tls_ca=str(pki / "ca.pem"), tls_cert=str(pki / "client.pem"),
                           tls_key=str(pki / "client.key")) as client:
            client.wait_ready(timeout=60)
            assert client.execute(_execute()).stdout == b"42\n"
        with SandboxClient(address, tls_ca=str(pki / "ca.pem")) as client:
            with pytest.raises(grpc.RpcError) as caught:
                client.execute(_execute(), timeout=5)
            assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                           grpc.StatusCode.DEADLINE_EXCEEDED)
        with SandboxClient(address, tls_ca=str(pki / "ca.pem"), tls_cert=str(pki / "stranger.pem"),
                           tls_key=str(pki / "stranger.key")) as client:
            with pytest.raises(grpc.RpcError):
                client.execute(_execute(), timeout=5)
        url = f"https://127.0.0.1:{http_port}/run_code"
        body = {"code": "print(1)", "language": "python"}
        reply = requests.post(url, json=body, verify=str(pki / "ca.pem"), timeout=60,
                              cert=(str(pki / "client.pem"), str(pki / "client.key")))
        assert reply.json()["run_result"]["stdout"] == "1\n"
        with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
            requests.post(url, json=body, verify=str(pki / "ca.pem"), timeout=10)
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.parametrize("args, words", [
    (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], "cannot read"),
    (["--tls-cert", "CERT"], "both a certificate"),
    (["--tls-client-ca", "CERT"], "need TLS"),
    (["--token-file", "/nonexistent-token"], "cannot read"),
    (["--tls-cert", "KEY", "--tls-key", "KEY"], "cannot load"),
])
def test_bad_security_settings_are_one_line_errors(pki, args, words):
    args = [a.replace("CERT", str(pki / "server.pem")).replace("KEY", str(pki / "server.key"))
            for a in args]
    done = subprocess.run([SANDBOX, "serve", "--address", f"127.0.0.1:{free_port()}", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


def test_binding_beyond_loopback_without_tls_or_token_warns(tmp_path):
    process = subprocess.Popen([SANDBOX, "serve", "--address", f"0.0.0.0:{free_port()}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = b""
        for _ in range(50):
            line = process.stderr.readline()
            if b"beyond loopback" in line or not line:
                break
        assert b"beyond loopback" in line and b"TLS or a token" in line, line
    finally:
        process.terminate()
        process.wait(20)

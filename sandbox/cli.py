"""The `sandbox` command: serve, grade, run, info, examples (and eval, ray, ...)."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

from sandbox.problem import TESTLIB_HELP, ProblemError, load_problem, with_testlib
from sandbox.server import DEFAULT_ADDRESS
from sandbox.v1 import sandbox_pb2 as pb
from workers.testlib import TestlibError

EXTENSIONS = {".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c++": "cpp"}
REPO_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class CliError(Exception):
    """A bad input or an unreachable server: one line, non-zero exit."""


def verdict_name(value: int) -> str:
    return pb.Verdict.Name(value) if value else "-"


def _backend(server: str | None):
    if server:
        from sandbox.client import SandboxClient
        from sandbox.ray_fleet import RayFleetError
        from sandbox.security import SecurityError
        try:
            client = SandboxClient(server)
        except (SecurityError, ValueError, RayFleetError) as exc:
            raise CliError(str(exc)) from None
        try:
            client.wait_ready(timeout=float(os.environ.get("SANDBOX_CONNECT_TIMEOUT", "5")))
        except grpc.FutureTimeoutError:
            client.close()
            raise CliError(f"cannot reach the sandbox server at {server}") from None
        return client
    from sandbox.embedded import EmbeddedSandbox
    return EmbeddedSandbox()


def _call(func, *args):
    from sandbox.service import RequestRejected
    try:
        return func(*args)
    except grpc.RpcError as exc:
        code = exc.code().name if hasattr(exc, "code") else "ERROR"
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        raise CliError(f"the server answered {code}: {detail}") from None
    except RequestRejected as exc:
        raise CliError(f"{exc.code.name}: {exc.message}") from None


def _read_source(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"source file not found: {path}") from None
    except UnicodeDecodeError:
        raise CliError(f"source file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def _language_for(path: str, given: str | None) -> str:
    if given:
        return given
    language = EXTENSIONS.get(Path(path).suffix.lower())
    if language is None:
        raise CliError(f"cannot tell the language of {path}: pass --language python|cpp|pypy")
    return language


def response_json(response) -> dict:
    data = json_format.MessageToDict(response, preserving_proto_field_name=True)
    data["verdict"] = verdict_name(response.verdict)
    if hasattr(response, "tests"):
        data["tests"] = [{"index": t.index, "verdict": verdict_name(t.verdict),
                          "cpu_time_s": round(t.usage.cpu_time_s, 4),
                          "wall_time_s": round(t.usage.wall_time_s, 4),
                          "peak_memory_kb": t.usage.peak_memory_kb,
                          "exit_code": t.exit.exit_code, "signal": t.exit.signal,
                          "message": t.message} for t in response.tests]
    return data


def print_grade(response: pb.GradeResponse) -> None:
    print(f"verdict: {verdict_name(response.verdict)}  ({response.passed}/{response.total} tests passed)")
    if response.message:
        print(f"message: {response.message}")
    if response.verdict == pb.CE and response.compile_log:
        print("compile log:\n" + response.compile_log.rstrip())
    if response.tests:
        marks = {pb.AC: ".", pb.WA: "W", pb.TLE: "T", pb.MLE: "M", pb.RE: "R", pb.OLE: "O",
                 pb.PE: "P", pb.SE: "E", pb.SKIPPED: "-"}
        print("tests:   " + "".join(marks.get(t.verdict, "?") for t in response.tests))
        worst = max(response.tests, key=lambda t: t.usage.cpu_time_s)
        print(f"slowest: test {worst.index}, {worst.usage.cpu_time_s:.3f} s CPU, "
              f"{worst.usage.peak_memory_kb / 1024:.1f} MiB")
    timings = response.timings
    print(f"time:    {timings.total_s:.3f} s (jail {timings.jail_start_s:.3f}, compile "
          f"{timings.compile_s:.3f}, run {timings.run_s:.3f})")


# ---------------------------------------------------------------- commands

def cmd_serve(args) -> int:
    from sandbox.server import serve
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    address = args.address or os.environ.get("SANDBOX_ADDRESS") or DEFAULT_ADDRESS
    if args.worker_dir:
        import socket
        # A fleet worker: a unix socket named after this host in the shared directory.
        address = f"unix:{Path(args.worker_dir) / (socket.gethostname() + '.sock')}"
    # A fleet worker serves its gateway over a unix socket: the gateway's settings in the
    # environment (its HTTP port, its TLS and token) are not the worker's; only flags count.
    worker = bool(args.worker_dir)
    if args.ready_jails is not None and args.ready_jails < 0:
        raise CliError("--ready-jails must be 0 or more")
    security = _server_security(args, use_env=not worker)
    http_address = args.http_address or (None if worker else os.environ.get("SANDBOX_HTTP_ADDRESS"))
    try:
        asyncio.run(serve(address, args.capacity, args.max_queue, args.grace,
                          http_address=http_address, security=security,
                          ready_jails=args.ready_jails))
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return 0


def _server_security(args, use_env: bool = True):
    from sandbox.security import SecurityError, ServerSecurity
    try:
        return ServerSecurity.from_settings(args.tls_cert, args.tls_key, args.tls_client_ca,
                                            token_file=args.token_file, use_env=use_env)
    except SecurityError as exc:
        raise CliError(str(exc)) from None


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http-address", metavar="HOST:PORT",
                        help="also serve the HTTP API there: SandboxFusion's POST /run_code, "
                             "ScaleBox's POST /common_evaluate_batch, POST /grade, GET /health "
                             "(default: none, or $SANDBOX_HTTP_ADDRESS)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve gRPC and HTTP over TLS with "
                                                          "this certificate ($SANDBOX_TLS_CERT)")
    parser.add_argument("--tls-key", metavar="PEM", help="the certificate's private key "
                                                         "($SANDBOX_TLS_KEY)")
    parser.add_argument("--tls-client-ca", metavar="PEM",
                        help="require client certificates signed by this CA "
                             "($SANDBOX_TLS_CLIENT_CA)")
    parser.add_argument("--token-file", metavar="PATH",
                        help="require `Authorization: Bearer <token>` on every call but health; "
                             "the token is this file's content ($SANDBOX_TOKEN or "
                             "$SANDBOX_TOKEN_FILE)")


def cmd_gateway(args) -> int:
    from sandbox.gateway.server import serve_gateway
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    address = args.address or os.environ.get("SANDBOX_ADDRESS") or DEFAULT_ADDRESS
    security = _server_security(args)
    http_address = args.http_address or os.environ.get("SANDBOX_HTTP_ADDRESS") or None
    try:
        asyncio.run(serve_gateway(address, args.workers_dir, args.metrics or None,
                                  args.max_pending, args.grace, http_address=http_address,
                                  security=security))
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_fleet_status(args) -> int:
    from sandbox.fleet import fleet_status
    try:
        rows = fleet_status(args.project, args.workers_dir)
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no fleet containers found")
        return 0
    header = ("container", "service", "state", "health", "in-flight/capacity", "socket")
    table = [header] + [(r["name"], r["service"], r["state"], r["health"],
                         f"{r['in_flight']}/{r['capacity']}" if r["capacity"] else "-",
                         r["socket"] or "-") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def cmd_grade(args) -> int:
    try:
        problem = load_problem(args.problem)
        with_testlib([problem], args.testlib)
    except (ProblemError, ValueError) as exc:
        raise CliError(str(exc)) from None
    source = _read_source(args.source)
    language = _language_for(args.source, args.language)
    request = problem.grade_request(source, language, request_id=Path(args.source).name,
                                    stop_on_first_failure=not args.all_tests)
    backend = _backend(args.server)
    try:
        response = _call(backend.grade, request)
    finally:
        backend.close()
    if args.json:
        print(json.dumps(response_json(response)))
    else:
        print_grade(response)
    return 0


def cmd_run(args) -> int:
    source = _read_source(args.file)
    language = _language_for(args.file, args.language)
    if args.stdin:
        try:
            stdin = Path(args.stdin).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read stdin file: {exc}") from None
    elif not sys.stdin.isatty():
        stdin = sys.stdin.buffer.read()
    else:
        stdin = b""
    request = pb.ExecuteRequest(language=language, source=source, stdin=stdin,
                                limits=pb.Limits(time_limit_s=args.time_limit,
                                                 memory_limit_mb=args.memory_limit))
    backend = _backend(args.server)
    try:
        response = _call(backend.execute, request)
    finally:
        backend.close()
    if args.json:
        print(json.dumps(response_json(response)))
        return 0
    sys.stdout.buffer.write(response.stdout)
    sys.stdout.flush()
    if response.stderr:
        sys.stderr.buffer.write(response.stderr)
    if response.compile_log and response.verdict == pb.CE:
        sys.stderr.write(response.compile_log)
    print(f"[{verdict_name(response.verdict)}] exit {response.exit.exit_code}"
          f"{' signal ' + str(response.exit.signal) if response.exit.signal else ''}, "
          f"{response.usage.cpu_time_s:.3f} s CPU, {response.usage.peak_memory_kb / 1024:.1f} MiB"
          f"{'  ' + response.message if response.message else ''}", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    backend = _backend(args.server)
    try:
        info = _call(backend.info)
    finally:
        backend.close()
    if args.json:
        print(json.dumps(json_format.MessageToDict(info, preserving_proto_field_name=True)))
        return 0
    print(f"sandbox {info.version}: capacity {info.capacity}, queue {info.max_queue}")
    for language in info.languages:
        print(f"  {language.name:7} {language.version}")
        if language.compile_command:
            print(f"          compile: {language.compile_command}")
        if language.modules:
            print(f"          modules: {', '.join(language.modules)}")
    d = info.default_limits
    print(f"default limits: {d.time_limit_s:g} s CPU, {d.memory_limit_mb} MiB, "
          f"{d.output_limit_bytes >> 20} MiB output, {d.max_processes} process(es), threads allowed")
    if info.isolation:
        print(f"per-submission budgets: {info.isolation}")
    for ready in info.ready_jails:
        print(f"ready jails: {ready.language} {ready.ready} ready (started {ready.started}, "
              f"taken {ready.taken}, missed {ready.missed}, closed idle {ready.closed_idle})")
    return 0


def cmd_examples(args) -> int:
    from sandbox.examples import grade_examples
    return grade_examples(Path(args.dir), _backend(args.server), as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="Grade untrusted Python / C++ submissions against tests in isolated jails.",
        epilog="Without --server, commands use an embedded sandbox in this process.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC server",
                           description="Run the sandbox gRPC server with local jails.")
    serve.add_argument("--address", help=f"host:port or unix:PATH (default {DEFAULT_ADDRESS}, "
                                         "or $SANDBOX_ADDRESS)")
    serve.add_argument("--capacity", type=int, help="submissions graded at once (default: cores)")
    serve.add_argument("--max-queue", type=int, help="waiting submissions before "
                                                     "RESOURCE_EXHAUSTED (default 16 × capacity)")
    serve.add_argument("--ready-jails", type=int, metavar="N",
                       help="fresh jails kept started ahead for each language in demand, "
                            "refilled while a grading slot is free (default 2, or "
                            "$SANDBOX_READY_JAILS; 0: start each jail on request)")
    serve.add_argument("--grace", type=float, default=30.0,
                       help="seconds to finish in-flight work on SIGTERM (default 30)")
    serve.add_argument("--worker-dir", help="run as a fleet worker: listen on "
                                            "DIR/<hostname>.sock for the gateway")
    add_security_flags(serve)
    serve.set_defaults(func=cmd_serve)

    gateway = sub.add_parser("gateway", help="run the fleet gateway in front of workers",
                             description="Public gRPC endpoint that routes to the workers whose "
                                         "unix sockets appear in --workers-dir.")
    gateway.add_argument("--address", help=f"host:port (default {DEFAULT_ADDRESS} or $SANDBOX_ADDRESS)")
    gateway.add_argument("--workers-dir", default="/run/sandbox",
                         help="directory of worker sockets (default /run/sandbox)")
    gateway.add_argument("--metrics", default="127.0.0.1:9090",
                         help="host:port of the Prometheus /metrics endpoint ('' to disable)")
    gateway.add_argument("--max-pending", type=int, default=4096,
                         help="requests admitted at once before RESOURCE_EXHAUSTED")
    gateway.add_argument("--grace", type=float, default=30.0,
                         help="seconds to finish in-flight work on SIGTERM (default 30)")
    add_security_flags(gateway)
    gateway.set_defaults(func=cmd_gateway)

    fleet = sub.add_parser("fleet", help="inspect the Docker fleet")
    fleet_sub = fleet.add_subparsers(dest="fleet_command", required=True)
    status = fleet_sub.add_parser("status", help="workers, their load and health")
    status.add_argument("--project", default=None, help="compose project name (default: any)")
    status.add_argument("--workers-dir", default=None,
                        help="socket directory to ask workers for their load (optional)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_fleet_status)

    grade = sub.add_parser("grade", help="grade a source file against a problem",
                           description="Grade one source file against a problem file (JSON).")
    grade.add_argument("--problem", required=True, help="problem JSON file (see README)")
    grade.add_argument("--source", required=True, help="the solution's source file")
    grade.add_argument("--language", help="python, pypy or cpp (default: from the extension)")
    grade.add_argument("--server", help="grade through this gRPC server instead of in-process "
                                              "(host:port, unix:PATH, or ray://NAME for a fleet on Ray)")
    grade.add_argument("--json", action="store_true", help="print one JSON object")
    grade.add_argument("--all-tests", action="store_true",
                       help="run every test instead of stopping at the first failure")
    grade.add_argument("--testlib", metavar="PATH", help=TESTLIB_HELP)
    grade.set_defaults(func=cmd_grade)

    run = sub.add_parser("run", help="run a program once (stdin from a file or a pipe)",
                         description="Run a program once in a jail and show its output.")
    run.add_argument("file", help="source file")
    run.add_argument("--language", help="python, pypy or cpp (default: from the extension)")
    run.add_argument("--stdin", help="file to feed on stdin (default: this command's stdin if piped)")
    run.add_argument("--time-limit", type=float, default=0, help="CPU seconds (default 6)")
    run.add_argument("--memory-limit", type=int, default=0, help="MiB (default 1024)")
    run.add_argument("--server", help="run through this gRPC server instead of in-process "
                                            "(host:port, unix:PATH or ray://NAME)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(func=cmd_run)

    info = sub.add_parser("info", help="languages, versions and limits")
    info.add_argument("--server", help="ask this gRPC server instead of the embedded sandbox "
                                             "(host:port, unix:PATH or ray://NAME)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    examples = sub.add_parser("examples", help="grade the bundled examples and print a table",
                              description="Grade every solution under examples/ and compare "
                                          "with the verdict its file name promises.")
    examples.add_argument("--dir", default=str(REPO_EXAMPLES), help="examples directory")
    examples.add_argument("--server", help="grade through this gRPC server "
                                                    "(host:port, unix:PATH or ray://NAME)")
    examples.add_argument("--json", action="store_true", help="print JSON lines")
    examples.set_defaults(func=cmd_examples)

    from sandbox.evaluation.commands import add_commands
    add_commands(sub, CliError)  # eval, cf-rating, cf-fetch
    from sandbox.ray_fleet.commands import add_commands as add_ray_commands
    add_ray_commands(sub, CliError)  # ray up, ray down, ray status
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, TestlibError) as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sandbox: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Sandbox code reward for verl: `async def compute_score(...)`, awaited by verl's reward loop.

verl config (0.9):

    reward:
      custom_reward_function:
        path: pkg://verl_plugin.reward
        name: compute_score
        reward_kwargs: {addresses: "10.0.0.5:50051,10.0.0.6:50051", max_concurrency: 64}
        # or a fleet on the trainer's Ray cluster (`sandbox ray up`): addresses: "ray://sandbox"

What it does with one sample:
1. the solution is the text after the last `</think>` (or the `solution_text` the budgeted rollout
   sends when `</think>` is a special token that verl's decoding strips);
2. the code is the last fenced code block of the solution (its info string picks the language,
   default python); none → score 0, verdict NO_CODE;
3. the problem (ground_truth JSON, see verl_plugin.groundtruth) has its tests uploaded once per
   server by digest (concurrent samples of a GRPO group wait for the same upload) and every grade
   refers to the digest;
4. grading goes through one pool per process and event loop: one AsyncSandboxClient per address,
   least-loaded server first, bounded concurrency (semaphore), a deadline per grade, retries with
   exponential backoff on UNAVAILABLE / RESOURCE_EXHAUSTED / ABORTED / CANCELLED / INTERNAL /
   UNKNOWN (grading is a pure function of code and tests: retrying is safe); an SE verdict is
   re-graded se_retries times, on another server when there are several;
5. score = 1.0 iff every test passes (AC); `partial_credit=True` gives passed / total instead.
   CE, WA, TLE, ... score 0 with the verdict and its reason.

Never scored as a wrong answer: a sandbox that stays unreachable, a grade over its deadline
(unless on_deadline="zero") or a problem the servers refuse (limits above their maximum) raise
SandboxRewardError, which fails verl's step with the message.

An SE on every attempt follows the code: a sandbox bug that this sample triggers (a submission can
force one), so stopping the run for it would let one sample stop training. on_sandbox_error="zero"
(default) scores it 0 with sandbox_error=True, logs the source's sha256 and saves the source to
sandbox_error_dir for a bug report; the run stops (SandboxRewardError) only when more than
sandbox_error_max_share of the last sandbox_error_window graded samples of this process got one,
which is a broken sandbox rather than a sample.

Settings come from reward_kwargs (each also readable from the environment):
  addresses        list or comma-separated string; env SANDBOX_ADDRESSES, then SANDBOX_ADDRESS,
                   else 127.0.0.1:50051. `ray://NAME`: the live workers of that fleet on this
                   Ray cluster, each used as a server, the list read again every second and
                   after a worker fails (verl_plugin.fleet_members); its token file is used
                   when no token is given here
  max_concurrency  grades in flight per process (64; env SANDBOX_REWARD_CONCURRENCY)
  retries          failed attempts retried (6); RESOURCE_EXHAUSTED (a full server) is not a
                   failure: it is retried after the server's retry-after for up to busy_timeout_s (600 s)
  per_server_inflight  grades sent to one server at once (default 2 x its Info.capacity): keeps
                   its queue short, so deadlines measure grading rather than queueing
  backoff_s        first backoff (0.5 s, doubled each time, jittered, at most backoff_max_s = 10 s)
  deadline_s       per grade; default: the tests' wall-clock caps (2 × limit + 1 s each) + 60 s
  on_deadline      "raise" (default) or "zero" (score 0, verdict DEADLINE)
  partial_credit   False
  require_think_end  False: without `</think>` the whole response is the solution
                   (True: no `</think>` → score 0, verdict NO_SOLUTION)
  on_sandbox_error "zero" (default: score 0, flagged) or "raise" (stop the step)
  se_retries       re-grades of an SE answer before it is taken as the sample's (2)
  sandbox_error_dir  where SE sources are saved (env SANDBOX_REWARD_SE_DIR, else
                   $TMPDIR/sandbox-reward-errors)
  sandbox_error_window, sandbox_error_max_share  256 samples, 0.05
  token            bearer token for servers that require one (env SANDBOX_TOKEN / SANDBOX_TOKEN_FILE;
                   token_file: a file holding it); a refused token stops the step at once
  tls_ca, tls_cert, tls_key  TLS: the CA to trust (env SANDBOX_TLS_CA) and a client certificate
                   (SANDBOX_TLS_CLIENT_CERT / _KEY); tls: true trusts the system's CAs
The result dict always has the same keys (verl stacks them into reward_extra_info): score, acc,
verdict, passed, total, reason, attempts, grade_s, source_sha256, sandbox_error,
sandbox_error_share (SE samples among the window's size), plus the budgeted rollout's budget_*
fields when the sample carries them.
"""
from __future__ import annotations

import asyncio
import atexit
import dataclasses
import hashlib
import json
import logging
import os
import random
import tempfile
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import grpc

from sandbox.benchmarks.extract import extract_code, solution_part
from sandbox.client import AsyncSandboxClient
from sandbox.digest import test_set_digest
from sandbox.problem import Problem, ProblemError
from sandbox.ray_fleet import RayFleetError, fleet_name, is_ray_address
from sandbox.grpc_release import release_grpc_objects
from sandbox.security import SecurityError
from sandbox.v1 import sandbox_pb2 as pb
from verl_plugin.fleet_members import FleetMembers
from verl_plugin.groundtruth import parse_ground_truth

log = logging.getLogger("verl_plugin.reward")

DEFAULT_ADDRESS = "127.0.0.1:50051"
RETRIABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
             grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
SANDBOX_ERROR_POLICIES = ("zero", "raise")
SOURCE_SUFFIXES = {"python": "py", "pypy": "py", "cpp": "cpp", "c": "c", "java": "java", "go": "go",
                   "rust": "rs", "javascript": "js"}
BUDGET_FIELDS = ("budget_thinking_tokens", "budget_solution_tokens", "budget_think_forced",
                 "budget_think_closed", "budget_eos_in_thinking", "budget_solution_truncated")


class SandboxRewardError(RuntimeError):
    """The sandbox could not grade: the step must stop rather than score a wrong reward."""


@dataclass(frozen=True)
class Settings:
    addresses: tuple[str, ...]
    max_concurrency: int = 64
    retries: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    deadline_s: float | None = None
    deadline_slack_s: float = 60.0
    on_deadline: str = "raise"
    busy_timeout_s: float = 600.0
    per_server_inflight: int = 0
    partial_credit: bool = False
    require_think_end: bool = False
    default_language: str = "python"
    rpc_timeout_s: float = 30.0
    results_log: str = ""
    on_sandbox_error: str = "zero"
    se_retries: int = 2
    sandbox_error_dir: str = ""
    sandbox_error_window: int = 256
    sandbox_error_max_share: float = 0.05
    token: str | None = None
    token_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls: bool | None = None

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "Settings":
        addresses = kwargs.get("addresses") or os.environ.get("SANDBOX_ADDRESSES") \
            or os.environ.get("SANDBOX_ADDRESS") or DEFAULT_ADDRESS
        if isinstance(addresses, str):
            addresses = [a.strip() for a in addresses.split(",")]
        addresses = tuple(str(a).strip() for a in addresses if str(a).strip())
        if not addresses:
            raise SandboxRewardError("no sandbox address: set reward_kwargs.addresses or SANDBOX_ADDRESSES")
        for address in addresses:
            if is_ray_address(address):
                try:
                    fleet_name(address)
                except ValueError as exc:
                    raise SandboxRewardError(f"reward_kwargs.addresses: {exc}") from None
        on_deadline = str(kwargs.get("on_deadline", "raise"))
        if on_deadline not in ("raise", "zero"):
            raise SandboxRewardError(f"on_deadline must be 'raise' or 'zero', got {on_deadline!r}")
        deadline = kwargs.get("deadline_s")
        return cls(addresses=addresses, **_sandbox_error_policy(kwargs),
                   max_concurrency=int(kwargs.get("max_concurrency")
                                       or os.environ.get("SANDBOX_REWARD_CONCURRENCY") or 64),
                   retries=int(kwargs.get("retries", 6)),
                   backoff_s=float(kwargs.get("backoff_s", 0.5)),
                   backoff_max_s=float(kwargs.get("backoff_max_s", 10.0)),
                   deadline_s=float(deadline) if deadline is not None else None,
                   deadline_slack_s=float(kwargs.get("deadline_slack_s", 60.0)),
                   on_deadline=on_deadline,
                   busy_timeout_s=float(kwargs.get("busy_timeout_s", 600.0)),
                   per_server_inflight=int(kwargs.get("per_server_inflight", 0)),
                   partial_credit=bool(kwargs.get("partial_credit", False)),
                   require_think_end=bool(kwargs.get("require_think_end", False)),
                   default_language=str(kwargs.get("default_language", "python")),
                   rpc_timeout_s=float(kwargs.get("rpc_timeout_s", 30.0)),
                   results_log=str(kwargs.get("results_log") or os.environ.get("SANDBOX_REWARD_LOG") or ""),
                   token=kwargs.get("token") or None, token_file=kwargs.get("token_file") or None,
                   tls_ca=kwargs.get("tls_ca") or None, tls_cert=kwargs.get("tls_cert") or None,
                   tls_key=kwargs.get("tls_key") or None,
                   tls=None if kwargs.get("tls") is None else bool(kwargs.get("tls")))

    def client(self, address: str, credentials: dict | None = None) -> AsyncSandboxClient:
        """A client of one server; `credentials`: a fleet worker's (else the reward's own)."""
        try:
            return AsyncSandboxClient(address, timeout=self.rpc_timeout_s,
                                      **(credentials or self.credentials()))
        except (SecurityError, ValueError) as exc:
            raise SandboxRewardError(f"reward_kwargs: {exc}") from None

    def credentials(self) -> dict:
        return {"token": self.token, "token_file": self.token_file, "tls_ca": self.tls_ca,
                "tls_cert": self.tls_cert, "tls_key": self.tls_key, "tls": self.tls}

    @property
    def max_sandbox_errors(self) -> float:
        """SE samples the window tolerates; one more stops the run."""
        return self.sandbox_error_max_share * self.sandbox_error_window

    def deadline_for(self, problem: Problem, n_tests: int) -> float:
        if self.deadline_s is not None:
            return self.deadline_s
        return n_tests * (2 * problem.time_limit_s + 1) + self.deadline_slack_s


def _sandbox_error_policy(kwargs: dict) -> dict:
    """The SE policy's settings, checked: a typo must not silently turn the policy off."""
    policy = str(kwargs.get("on_sandbox_error", "zero"))
    if policy not in SANDBOX_ERROR_POLICIES:
        raise SandboxRewardError(f"on_sandbox_error must be 'zero' or 'raise', got {policy!r}")
    window = int(kwargs.get("sandbox_error_window", 256))
    share = float(kwargs.get("sandbox_error_max_share", 0.05))
    if window < 1 or not 0.0 <= share <= 1.0:
        raise SandboxRewardError(f"sandbox_error_window must be >= 1 and sandbox_error_max_share in "
                                 f"[0, 1], got {window} and {share}")
    directory = (kwargs.get("sandbox_error_dir") or os.environ.get("SANDBOX_REWARD_SE_DIR")
                 or os.path.join(tempfile.gettempdir(), "sandbox-reward-errors"))
    return {"on_sandbox_error": policy, "se_retries": max(0, int(kwargs.get("se_retries", 2))),
            "sandbox_error_dir": str(directory), "sandbox_error_window": window,
            "sandbox_error_max_share": share}


@dataclass
class Prepared:
    problem: Problem  # its `tests` emptied: they live in test_set (once in memory)
    test_set: pb.TestSet
    digest: str
    n_tests: int


@lru_cache(maxsize=256)
def _prepare_text(ground_truth: str) -> Prepared:
    # Parsed once per problem (a GRPO group shares the string); 256 covers a 128-prompt step.
    return _prepare(parse_ground_truth(ground_truth, cache=False))


def _prepare(problem: Problem) -> Prepared:
    test_set = problem.test_set()
    light = dataclasses.replace(problem, tests=[])
    return Prepared(light, test_set, test_set_digest(test_set), len(test_set.tests))


def prepare(ground_truth) -> Prepared:
    if isinstance(ground_truth, str):
        return _prepare_text(ground_truth)
    return _prepare(parse_ground_truth(ground_truth, cache=False))


@dataclass
class _Server:
    address: str
    client: AsyncSandboxClient
    in_flight: int = 0
    down_until: float = 0.0
    uploaded: set = field(default_factory=set)
    uploading: dict = field(default_factory=dict)
    info: pb.InfoResponse | None = None
    slots: asyncio.Semaphore | None = None
    limit: int = 1
    fleet: FleetMembers | None = None  # the ray://NAME fleet this worker belongs to


class SandboxPool:
    """One client per server, shared by every compute_score call of one event loop. A
    `ray://NAME` address stands for its fleet's live workers, each a server of the pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Every RPC has a deadline: Info / PutTestSet get rpc_timeout_s, Grade its own deadline.
        self.servers = [_Server(a, settings.client(a)) for a in settings.addresses
                        if not is_ray_address(a)]
        self.fleets = [FleetMembers(a, settings.credentials()) for a in settings.addresses
                       if is_ray_address(a)]
        self.retired: list[_Server] = []  # fleet workers gone, closed once idle
        self.semaphore = asyncio.Semaphore(settings.max_concurrency)
        self.uploads = 0  # PutTestSet calls made (for tests and the benchmark)

    async def close(self) -> None:
        for server in self.servers + self.retired:
            await server.client.close()

    def pick(self, digest: str, avoid: frozenset[str] = frozenset()) -> _Server | None:
        """Least-loaded server that is up, other than `avoid` (those that answered SE) if any;
        None when there is none (a fleet without live workers)."""
        if not self.servers:
            return None
        now = time.monotonic()
        up = [s for s in self.servers if s.down_until <= now] or self.servers
        up = [s for s in up if s.address not in avoid] or up
        return min(up, key=lambda s: (s.in_flight / s.limit, digest not in s.uploaded, random.random()))

    async def refresh_fleets(self) -> None:
        """Brings the fleets' workers up to date (each fleet at most every second)."""
        for fleet in self.fleets:
            if not fleet.stale() or fleet.lock.locked():
                continue
            async with fleet.lock:
                try:
                    members = await fleet.members()
                except RayFleetError as exc:
                    raise SandboxRewardError(f"reward_kwargs.addresses {fleet.url}: {exc}") from None
                except Exception as exc:  # noqa: BLE001 - registry restarting: keep what we know
                    log.warning("could not read the workers of %s: %s", fleet.url, exc)
                    fleet.asked()
                    continue
                known = {s.address for s in self.servers if s.fleet is fleet}
                for address in members.keys() - known:
                    server = _Server(address, self.settings.client(address, fleet.client_kwargs))
                    server.fleet = fleet
                    self.servers.append(server)
                gone = [s for s in self.servers if s.fleet is fleet and s.address not in members]
                for server in gone:
                    self.servers.remove(server)
                self.retired += gone
        idle = [s for s in self.retired if s.in_flight == 0]
        self.retired = [s for s in self.retired if s.in_flight > 0]
        for server in idle:
            await server.client.close()

    async def _ensure(self, server: _Server, prepared: Prepared) -> None:
        digest = prepared.digest
        if digest in server.uploaded:
            return
        pending = server.uploading.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._upload(server, prepared))
            server.uploading[digest] = pending
            pending.add_done_callback(lambda _f: server.uploading.pop(digest, None))
        await asyncio.shield(pending)

    async def _upload(self, server: _Server, prepared: Prepared) -> None:
        self.uploads += 1
        stored = await server.client.put_test_set(prepared.test_set)
        if stored != prepared.digest:
            raise SandboxRewardError(f"{server.address} stored the tests under {stored}, "
                                     f"expected {prepared.digest}: client and server disagree")
        server.uploaded.add(prepared.digest)

    async def _ready(self, server: _Server) -> None:
        """Info once per server: its limits, and how many grades to keep in flight on it."""
        if server.info is None:
            info = await server.client.info()
            if server.info is None:
                server.info = info
                per_server = self.settings.per_server_inflight or 2 * max(1, info.capacity or 1)
                server.slots = asyncio.Semaphore(per_server)
                server.limit = per_server

    async def grade(self, prepared: Prepared, source: str, language: str,
                    request_id: str = "") -> tuple[pb.GradeResponse | None, int, str]:
        """(response or None on deadline with on_deadline="zero", attempts, reason).

        An SE response comes back after 1 + se_retries SE answers (reason: their messages)."""
        settings = self.settings
        deadline = settings.deadline_for(prepared.problem, prepared.n_tests)
        request = prepared.problem.grade_request(source, language, request_id=request_id,
                                                 digest=prepared.digest,
                                                 stop_on_first_failure=not settings.partial_credit)
        failures: list[str] = []
        started = time.monotonic()
        attempts = failed = 0
        busy_since = None
        answered_se: dict[str, str] = {}  # server -> its SE message; retried on the others
        se_answers = 0
        while failed <= settings.retries:
            attempts += 1
            await self.refresh_fleets()
            server = self.pick(prepared.digest, frozenset(answered_se))
            if server is None:
                failures.append(f"{', '.join(f.url for f in self.fleets)}: UNAVAILABLE: no live "
                                "sandbox worker reachable from here")
                failed += 1
                for fleet in self.fleets:
                    fleet.expire()
                if failed <= settings.retries:
                    await asyncio.sleep(self._backoff(failed))
                continue
            server.in_flight += 1
            phase = "Info"
            try:
                async with self.semaphore:
                    await self._ready(server)
                    _check_limits(server, prepared.problem)
                    async with server.slots:
                        phase = "PutTestSet"
                        await self._ensure(server, prepared)
                        phase = "Grade"
                        response = await server.client.grade(request, timeout=deadline)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                detail = f"{server.address}: {code.name}: {exc.details()}"
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    # Busy, not broken: wait (as the server asks) up to busy_timeout_s in all.
                    busy_since = busy_since or time.monotonic()
                    if time.monotonic() - busy_since < settings.busy_timeout_s:
                        await asyncio.sleep(_retry_after(exc, settings))
                        continue
                elif code == grpc.StatusCode.NOT_FOUND:  # the server lost the tests: upload again
                    server.uploaded.discard(prepared.digest)
                elif code == grpc.StatusCode.DEADLINE_EXCEEDED and phase != "Grade":
                    # Info and PutTestSet are idempotent and quick: a mute server is retried
                    # (elsewhere when there are several), then reported with the deadline.
                    detail = (f"{server.address}: {phase} did not answer within the "
                              f"{settings.rpc_timeout_s:g} s deadline (rpc_timeout_s)")
                    server.down_until = time.monotonic() + min(settings.backoff_max_s, 5.0)
                elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    reason = (f"grading did not finish within the {deadline:g} s deadline on "
                              f"{server.address} ({prepared.n_tests} tests, "
                              f"{prepared.problem.time_limit_s:g} s each)")
                    if settings.on_deadline == "zero":
                        return None, attempts, reason
                    raise SandboxRewardError(reason + "; raise deadline_s or set on_deadline=zero") from None
                elif code == grpc.StatusCode.INVALID_ARGUMENT:
                    return _rejected(request, exc.details()), attempts, exc.details()
                elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    raise SandboxRewardError(
                        f"the sandbox refused this client: {detail}; set reward_kwargs.token "
                        "(or SANDBOX_TOKEN) to the server's token") from None
                elif code not in RETRIABLE:
                    raise SandboxRewardError(f"sandbox refused the grade: {detail}") from None
                elif code == grpc.StatusCode.UNAVAILABLE:
                    server.down_until = time.monotonic() + min(settings.backoff_max_s, 5.0)
                if server.fleet is not None and code in (grpc.StatusCode.UNAVAILABLE,
                                                         grpc.StatusCode.CANCELLED):
                    server.fleet.expire()  # a worker that went away: look at the registry again
                failures.append(detail)
                failed += 1
                if failed <= settings.retries:
                    await asyncio.sleep(self._backoff(failed))
                continue
            finally:
                server.in_flight -= 1
            if response.verdict == pb.SE:
                se_answers += 1
                # one line, bounded: it ends up in the reason, the log and maybe the error
                answered_se[server.address] = " ".join((response.message or "sandbox error").split())[:300]
                if se_answers > settings.se_retries:
                    return response, attempts, "; ".join(f"{a}: {m}" for a, m in answered_se.items())
                await asyncio.sleep(self._backoff(se_answers))
                continue
            return response, attempts, ""
        elapsed = time.monotonic() - started
        unreachable = all("UNAVAILABLE" in f for f in failures)
        mute = all("deadline" in f for f in failures)
        what = "unreachable" if unreachable else "not answering" if mute else "failing"
        raise SandboxRewardError(
            f"sandbox {what} after {attempts} attempts in {elapsed:.1f} s "
            f"(addresses: {', '.join(settings.addresses)}); last errors: {'; '.join(dict.fromkeys(failures[-3:]))}. "
            f"Start the {'workers (`sandbox ray up`)' if self.fleets else 'fleet (`sandbox serve --address HOST:PORT`)'} or fix "
            "reward.custom_reward_function.reward_kwargs.addresses / SANDBOX_ADDRESSES.")

    def _backoff(self, failed: int) -> float:
        base = min(self.settings.backoff_max_s, self.settings.backoff_s * (2 ** (failed - 1)))
        return base * (0.5 + random.random() / 2)


def _retry_after(exc: grpc.aio.AioRpcError, settings: "Settings") -> float:
    for key, value in exc.trailing_metadata() or ():
        if key == "retry-after-ms":
            try:
                return min(settings.backoff_max_s, int(value) / 1000) * (0.75 + random.random() / 2)
            except ValueError:
                break
    return settings.backoff_s * (0.5 + random.random())


def _check_limits(server: _Server, problem: Problem) -> None:
    limits = server.info.max_limits if server.info is not None else None
    if limits is None:
        return
    if limits.time_limit_s and problem.time_limit_s > limits.time_limit_s:
        raise SandboxRewardError(f"problem {problem.id}: time limit {problem.time_limit_s:g} s is above "
                                 f"{server.address}'s maximum {limits.time_limit_s:g} s")
    if limits.memory_limit_mb and problem.memory_limit_mb > limits.memory_limit_mb:
        raise SandboxRewardError(f"problem {problem.id}: memory limit {problem.memory_limit_mb} MB is "
                                 f"above {server.address}'s maximum {limits.memory_limit_mb} MB")


def _rejected(request: pb.GradeRequest, message: str) -> pb.GradeResponse:
    """INVALID_ARGUMENT for a well-formed problem: the submission itself (too big, bad language)."""
    return pb.GradeResponse(verdict=pb.VERDICT_UNSPECIFIED, message=message)


class SandboxErrorWindow:
    """The last `size` graded samples of this process, and how many of them got an SE."""

    def __init__(self, size: int) -> None:
        self.marks: deque[bool] = deque(maxlen=size)
        self.errors = 0

    def add(self, sandbox_error: bool) -> None:
        if len(self.marks) == self.marks.maxlen and self.marks[0]:
            self.errors -= 1
        self.marks.append(sandbox_error)
        self.errors += sandbox_error

    @property
    def share(self) -> float:
        """SE samples over the window's size (not over the samples seen: no alarm at start-up)."""
        return self.errors / self.marks.maxlen


# Per process, not per event loop: verl may run each batch in a new loop, the window spans them.
_WINDOWS: dict[object, SandboxErrorWindow] = {}


def process_window(key: object, size: int) -> SandboxErrorWindow:
    """The window of this process for `key` (a reward's frozen settings), made on first use."""
    window = _WINDOWS.get(key)
    if window is None:
        window = _WINDOWS[key] = SandboxErrorWindow(size)
    return window


def sandbox_error_window(settings: Settings) -> SandboxErrorWindow:
    return process_window(settings, settings.sandbox_error_window)


# One pool per (event loop, settings): grpc.aio channels belong to the loop that made them.
_POOLS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Settings, SandboxPool]]" = \
    weakref.WeakKeyDictionary()


def get_pool(settings: Settings) -> SandboxPool:
    loop = asyncio.get_running_loop()
    pools = _POOLS.setdefault(loop, {})
    pool = pools.get(settings)
    if pool is None:
        pool = pools[settings] = SandboxPool(settings)
    return pool


async def close_pools() -> None:
    """Closes this loop's clients (tests, scripts; verl's reward workers keep theirs)."""
    pools = _POOLS.pop(asyncio.get_running_loop(), {})
    for pool in pools.values():
        await pool.close()


@atexit.register
def _release_pools_at_exit() -> None:
    """verl's reward workers keep their pools (grpc.aio channels) for the process's life: they
    are dropped here, at exit, so that grpc.aio is not shut down during the interpreter's
    finalization, a known crash (see sandbox.grpc_release)."""
    _POOLS.clear()
    release_grpc_objects()


def _solution_text(solution_str: str, extra_info: dict, settings: Settings) -> str | None:
    text = extra_info.get("solution_text") if isinstance(extra_info, dict) else None
    if isinstance(text, str):
        return text
    if "</think>" in solution_str:
        return solution_part(solution_str)
    if settings.require_think_end:
        return None
    return solution_str


async def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """verl reward: {score, acc, verdict, passed, total, reason, attempts, grade_s, budget_*}."""
    settings = Settings.from_kwargs(kwargs)
    extra_info = extra_info if isinstance(extra_info, dict) else {}
    result = await _score(settings, data_source, solution_str, ground_truth, extra_info)
    if settings.results_log:
        _log_result(settings.results_log, data_source, extra_info, result)
    return result


def _log_result(path: str, data_source, extra_info: dict, result: dict) -> None:
    """One JSON line per graded sample (results_log / SANDBOX_REWARD_LOG): an audit trail of the
    sandbox's verdicts that every verl trainer keeps (v1's rollout dump has no reward fields).
    One O_APPEND write per line, so several reward workers can share the file."""
    record = {"data_source": data_source, "index": extra_info.get("index"),
              "problem_id": extra_info.get("problem_id"), **result}
    line = (json.dumps(record, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def _score(settings: Settings, data_source, solution_str, ground_truth, extra_info: dict) -> dict:
    try:
        prepared = prepare(ground_truth)
    except ProblemError as exc:
        raise SandboxRewardError(f"bad ground_truth for data_source={data_source!r}: {exc}") from None
    total = prepared.n_tests
    window = sandbox_error_window(settings)
    result = {"score": 0.0, "acc": 0.0, "verdict": "", "passed": 0, "total": total, "reason": "",
              "attempts": 0, "grade_s": 0.0, "source_sha256": "", "sandbox_error": False,
              "sandbox_error_share": window.share}
    for name in BUDGET_FIELDS:
        if name in extra_info:
            value = extra_info[name]
            result[name] = float(value) if isinstance(value, (bool, int, float)) else value

    solution = _solution_text(solution_str or "", extra_info, settings)
    if solution is None:
        result.update(verdict="NO_SOLUTION", reason="no </think>: the thinking never ended")
        return result
    found = extract_code(solution, settings.default_language)
    if found is None:
        result.update(verdict="NO_CODE", reason="no fenced code block in the solution")
        return result
    code, language = found
    if not code.strip():
        result.update(verdict="NO_CODE", reason="the last code block is empty")
        return result
    result["source_sha256"] = hashlib.sha256(code.encode()).hexdigest()

    pool = get_pool(settings)
    started = time.monotonic()
    response, attempts, reason = await pool.grade(prepared, code, language,
                                                  request_id=str(extra_info.get("index", "")))
    result["attempts"] = attempts
    result["grade_s"] = round(time.monotonic() - started, 4)
    sandbox_error = response is not None and response.verdict == pb.SE
    window.add(sandbox_error)
    result["sandbox_error_share"] = window.share
    if sandbox_error:
        _sandbox_error(settings, result, prepared, code, language, reason,
                       {"data_source": data_source, "index": extra_info.get("index"),
                        "problem_id": extra_info.get("problem_id")})
        _check_window(settings, window)
        return result
    if response is None:
        result.update(verdict="DEADLINE", reason=reason)
        return result
    if response.verdict == pb.VERDICT_UNSPECIFIED:
        result.update(verdict="REJECTED", reason=reason or response.message)
        return result
    verdict = pb.Verdict.Name(response.verdict)
    passed = int(response.passed)
    accepted = response.verdict == pb.AC
    score = 1.0 if accepted else 0.0
    if settings.partial_credit and response.total:
        score = passed / response.total
    result.update(score=score, acc=1.0 if accepted else 0.0, verdict=verdict, passed=passed,
                  total=int(response.total) or total, reason=_reason(response))
    return result


def _sandbox_error(settings: Settings, result: dict, prepared: Prepared, code: str, language: str,
                   messages: str, sample: dict) -> None:
    """An SE on every attempt: saved for a bug report, then scored 0 (or the step stops)."""
    digest = result["source_sha256"]
    saved = _save_source(settings.sandbox_error_dir, digest, code, language,
                         {**sample, "language": language, "problem": prepared.problem.id,
                          "test_set_digest": prepared.digest, "messages": messages})
    where = f"saved to {saved}" if saved else "not saved"
    if settings.on_sandbox_error == "raise":
        raise SandboxRewardError(f"sandbox error on every attempt ({result['attempts']}) for source "
                                 f"sha256 {digest} ({where}): {messages}")
    log.warning("sandbox error on every attempt (%d) for source sha256 %s (problem %s, %s), scored 0: %s",
                result["attempts"], digest, prepared.problem.id, where, messages)
    result.update(verdict="SE", sandbox_error=True,
                  reason=f"sandbox error, source sha256 {digest} {where}: {messages}"[:500])


def _save_source(directory: str, digest: str, code: str, language: str, about: dict) -> str:
    """Writes DIR/<sha256>.<ext> and DIR/<sha256>.json; returns the source's path ("" on failure:
    a full disk must not stop training either)."""
    path = os.path.join(directory, f"{digest}.{SOURCE_SUFFIXES.get(language, 'txt')}")
    try:
        os.makedirs(directory, exist_ok=True)
        _write_atomic(path, code.encode())
        _write_atomic(os.path.join(directory, f"{digest}.json"),
                      json.dumps(about, default=str, indent=1).encode())
    except OSError as exc:
        log.warning("could not save the source of sha256 %s to %s: %s", digest, directory, exc)
        return ""
    return path


def _write_atomic(path: str, data: bytes) -> None:
    """Several reward workers may save the same source at once: each renames its own copy."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def _check_window(settings: Settings, window: SandboxErrorWindow) -> None:
    if window.errors > settings.max_sandbox_errors:
        raise SandboxRewardError(
            f"sandbox errors on {window.errors} of the last {settings.sandbox_error_window} graded "
            f"samples ({window.share:.1%} > sandbox_error_max_share "
            f"{settings.sandbox_error_max_share:.1%}): the sandbox is failing, not the samples; "
            f"their sources are in {settings.sandbox_error_dir}")


def _reason(response: pb.GradeResponse) -> str:
    if response.verdict == pb.AC:
        return ""
    if response.verdict == pb.CE:
        return ("compilation error: " + (response.compile_log or response.message))[:500]
    for test in response.tests:
        if test.verdict not in (pb.AC, pb.SKIPPED):
            detail = f": {test.message}" if test.message else ""
            return f"test {test.index}: {pb.Verdict.Name(test.verdict)}{detail}"[:500]
    return (response.message or pb.Verdict.Name(response.verdict))[:500]

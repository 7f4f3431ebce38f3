"""One bubblewrap jail per submission, driven through the in-jail agent.

The jail has new user, pid, net, ipc, uts and cgroup namespaces (only a
loopback interface), read-only /usr, a minimal /etc, private size-capped tmpfs
for /work and /tmp, a fresh /proc of its own pid namespace, a scrubbed
environment, no capabilities, the project's seccomp filter, and an
unprivileged uid (65534 when the server runs as root). The agent is the jail's
PID 1: when it exits, or the host end of its pipe closes, everything in the
jail is killed.
"""
from __future__ import annotations

import atexit
import logging
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from workers import agent as agent_module
from workers import cgroups
from workers.agent import read_message, write_message
from workers.languages.base import Language
from workers.languages.cpp import PCH_MOUNT
from workers.limits import MIB, RunLimits
from workers.seccomp_filter import child_filter_bytes, filter_fd

AGENT_MOUNT = "/opt/sandbox/agent.py"
# lcb_runner's execution model, imported by the agent from its own directory.
LCB_HARNESS_MOUNT = "/opt/sandbox/lcb_harness.py"
JAIL_UID = 65534  # "nobody": the uid inside every jail
# When the server is root, each running jail gets a host uid of its own from this range, so
# no jail shares the kernel's per-user quotas (pipe buffers, inotify, signals) with another.
JAIL_HOST_UID_BASE = 2_000_000_000
JAIL_HOST_UIDS = 65536
JAIL_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/work", "LANG": "C.UTF-8",
            "TMPDIR": "/tmp"}
ETC_FILES = ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime")
START_TIMEOUT_S = 60.0  # bwrap + the agent's interpreter, on a loaded machine
REPLY_TIMEOUT_S = 60.0  # beyond a run's own wall limit
SHM_BYTES = 64 * MIB
# Without a memory cgroup, files a test writes are bounded by these tmpfs sizes instead
# of being charged to its memory limit (the README states this allowance).
FALLBACK_TMPFS_BYTES = 128 * MIB
FALLBACK_SHM_BYTES = 16 * MIB


class JailError(RuntimeError):
    """The sandbox failed (not the submission): reported as SE."""


@dataclass
class RawRun:
    """What happened to one process in the jail, before any verdict is decided."""

    exit_code: int
    signal: int
    cpu_s: float
    wall_s: float
    maxrss_kb: int
    killed_for: str | None  # "cpu", "wall", "output" or None
    stdout: bytes
    stderr: bytes
    result: bytes | None = None  # functional problems: the tagged-JSON return value
    oom_killed: bool = False  # the kernel's memory cgroup killed one of its processes


class _HostUids:
    """The lowest free host uid of JAIL_HOST_UID_BASE's range, per running jail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[int] = []
        self._next = JAIL_HOST_UID_BASE

    def acquire(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
            if self._next >= JAIL_HOST_UID_BASE + JAIL_HOST_UIDS:
                raise JailError("no free host uid for another jail")
            self._next += 1
            return self._next - 1

    def release(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


_host_uids = _HostUids()


def is_jail_host_uid(uid: int) -> bool:
    return JAIL_HOST_UID_BASE <= uid < JAIL_HOST_UID_BASE + JAIL_HOST_UIDS


_runtime_lock = threading.Lock()
_runtime: Path | None = None


def runtime_dir() -> Path:
    """World-readable copies of the agent and its harness, bind-mounted read-only into
    every jail."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            path = Path(tempfile.mkdtemp(prefix="code-sandbox-rt-"))
            path.chmod(0o755)
            shutil.copyfile(agent_module.__file__, path / "agent.py")
            (path / "agent.py").chmod(0o644)
            shutil.copyfile(Path(agent_module.__file__).with_name("lcb_harness.py"),
                            path / "lcb_harness.py")
            (path / "lcb_harness.py").chmod(0o644)
            atexit.register(shutil.rmtree, path, True)
            _runtime = path
        return _runtime


def _raise_stack_rlimit() -> None:
    """Jails inherit an unlimited stack soft limit (deep recursion bounded only by memory)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))


_proc_lock = threading.Lock()
_proc_args: list[str] | None = None


def proc_arguments() -> list[str]:
    """`--proc /proc` when this host lets bubblewrap mount a fresh procfs, else an empty,
    read-only /proc.

    In a container whose /proc has masked paths (Docker without systempaths=unconfined,
    Kubernetes without procMount: Unmasked) the kernel refuses new proc mounts; jails then
    run without /proc at all, which hides even more. Probed once per process.
    """
    global _proc_args
    with _proc_lock:
        if _proc_args is None:
            probe = [bwrap_path(), "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
                     "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"]
            if os.path.isdir("/usr/lib64"):
                probe += ["--symlink", "usr/lib64", "/lib64"]
            probe += ["--proc", "/proc", "/usr/bin/true"]
            if os.geteuid() == 0:
                probe = [_setpriv(), f"--reuid={JAIL_UID}", f"--regid={JAIL_UID}",
                         "--clear-groups", "--"] + probe
            try:
                ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            _proc_args = (["--proc", "/proc"] if ok else
                          ["--tmpfs", "/proc", "--remount-ro", "/proc"])
        return list(_proc_args)


def _exited_within(proc: subprocess.Popen, seconds: float) -> bool:
    """Waits for the process to exit (a pidfd: no polling loop), at most `seconds`."""
    if proc.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        select.select([pidfd], [], [], seconds)
    finally:
        os.close(pidfd)
    return proc.poll() is not None


class _Reaper:
    """Waits for closed jails to exit (pidfds, one thread for all) and frees what they held;
    one that has not exited within CLOSE_GRACE_S is killed."""

    CLOSE_GRACE_S = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Jail] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None

    def add(self, jail: "Jail") -> None:
        with self._lock:
            self._pending.append(jail)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="jail-reaper", daemon=True)
                self._thread.start()
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # already awake

    def _run(self) -> None:
        watched: dict[int, tuple[Jail, float]] = {}
        while True:
            with self._lock:
                arrived, self._pending = self._pending, []
            for jail in arrived:
                proc = jail._proc
                try:
                    pidfd = os.pidfd_open(proc.pid)
                except (AttributeError, OSError):
                    self._finish(jail)  # gone already, or no pidfds: wait here
                    continue
                watched[pidfd] = (jail, time.monotonic() + self.CLOSE_GRACE_S)
            now = time.monotonic()
            for pidfd, (jail, deadline) in list(watched.items()):
                if now > deadline:
                    jail._kill_tree(jail._proc)
                    watched[pidfd] = (jail, float("inf"))
            timeout = min([d for _, d in watched.values()] + [now + 5.0]) - now
            ready, _, _ = select.select([self._wake_r, *watched], [], [], max(0.0, timeout))
            for fd in ready:
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                jail, _ = watched.pop(fd)
                os.close(fd)
                self._finish(jail)

    @staticmethod
    def _finish(jail: "Jail") -> None:
        try:
            jail._finish_close()
        except Exception:  # noqa: BLE001 - never stop reaping the others
            logging.getLogger("sandbox.jail").exception("closing a jail failed")


_reaper = _Reaper()


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if not found:
        raise JailError("bubblewrap (bwrap) is not installed: run scripts/setup.sh "
                        "or `apt-get install bubblewrap`")
    return found


def _setpriv() -> str:
    found = shutil.which("setpriv")
    if not found:
        raise JailError("setpriv (util-linux) is needed to drop root for the jail")
    return found


class Jail:
    """A running jail for one submission. Not thread-safe, except kill()."""

    def __init__(self, language: Language, *, tmpfs_bytes: int = 512 << 20,
                 pch_dir: Path | None = None,
                 cgroup_support: cgroups.CgroupSupport | None = None) -> None:
        self.language = language
        self.tmpfs_bytes = tmpfs_bytes
        self.pch_dir = pch_dir
        self._proc: subprocess.Popen | None = None
        self._killed = threading.Event()
        self._lock = threading.Lock()
        self.interpreter_version = ""
        self.cgroup_support = cgroup_support if cgroup_support is not None else cgroups.support()
        self._cgroups: dict[str, cgroups.JailCgroup] = {}
        self._filters_sent: set[str] = set()
        # A unix socket to hand the agent pipe ends (interactive problems) with SCM_RIGHTS.
        self._fd_socket, self._fd_socket_child = socket.socketpair(socket.AF_UNIX,
                                                                   socket.SOCK_STREAM)
        self.host_uid: int | None = None

    # ------------------------------------------------------------ lifecycle
    def _argv(self, seccomp_fd: int) -> list[str]:
        argv = [
            bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1",
            "--clearenv", "--hostname", "sandbox", "--cap-drop", "ALL",
            "--uid", str(JAIL_UID), "--gid", str(JAIL_UID),
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/sbin", "/sbin",
        ]
        if os.path.isdir("/usr/lib64"):
            argv += ["--symlink", "usr/lib64", "/lib64"]
        for path in (*ETC_FILES, *self.language.extra_mounts):
            if os.path.exists(path):
                argv += ["--ro-bind", path, path]
        tmpfs, shm = self.tmpfs_bytes, SHM_BYTES
        if self.cgroup_support.memory is None:
            tmpfs, shm = min(tmpfs, FALLBACK_TMPFS_BYTES), FALLBACK_SHM_BYTES
        argv += [*proc_arguments(), "--dev", "/dev",
            "--size", str(shm), "--tmpfs", "/dev/shm",
            "--size", str(tmpfs), "--tmpfs", "/tmp",
            "--size", str(tmpfs), "--tmpfs", "/work",
            "--ro-bind", str(runtime_dir() / "agent.py"), AGENT_MOUNT,
            "--ro-bind", str(runtime_dir() / "lcb_harness.py"), LCB_HARNESS_MOUNT,
        ]
        if self.language.needs_pch and self.pch_dir is not None:
            argv += ["--ro-bind", str(self.pch_dir), PCH_MOUNT]
        for key, value in JAIL_ENV.items():
            argv += ["--setenv", key, value]
        # Only /work, /tmp and /dev/shm (all size-capped) stay writable.
        argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
        argv += ["--chdir", "/work", "--seccomp", str(seccomp_fd),
                 self.language.agent_interpreter, AGENT_MOUNT]
        if not self.language.python_fast_path:
            argv.append("--no-warm")
        argv += ["--fd-socket", str(self._fd_socket_child.fileno())]
        return argv

    def start(self) -> None:
        _raise_stack_rlimit()
        seccomp_fd = filter_fd()
        argv = self._argv(seccomp_fd)
        if os.geteuid() == 0:
            # Drop to an unprivileged host uid with setpriv rather than Popen(user=...):
            # setuid between fork and exec in a multi-threaded gRPC process can crash the child.
            self.host_uid = _host_uids.acquire()
            argv = [_setpriv(), f"--reuid={self.host_uid}", f"--regid={self.host_uid}",
                    "--clear-groups", "--"] + argv
        try:
            # Its own process group: kill() reaches bwrap's children too, even ones that
            # have not armed --die-with-parent yet (a cancel during start).
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(seccomp_fd, self._fd_socket_child.fileno()), bufsize=0,
                close_fds=True, start_new_session=True)
        except OSError as exc:
            raise JailError(f"cannot start bubblewrap: {exc}") from exc
        finally:
            os.close(seccomp_fd)
            self._fd_socket_child.close()
        with self._lock:
            self._proc = proc
            if self._killed.is_set():
                self._kill_tree(proc)
        hello, _ = self._receive(timeout=START_TIMEOUT_S)
        if not hello.get("ready"):
            raise JailError(f"the jail's agent did not start: {hello}")
        self.interpreter_version = hello.get("version", "")

    def kill(self) -> None:
        """Kills the jail at once (safe from any thread); pending calls raise JailError."""
        with self._lock:
            self._killed.set()
            if self._proc is not None:
                self._kill_tree(self._proc)

    @staticmethod
    def _kill_tree(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except OSError:
            pass

    @property
    def killed(self) -> bool:
        return self._killed.is_set()

    @property
    def alive(self) -> bool:
        """Started, not killed, and its agent still running."""
        proc = self._proc
        return proc is not None and not self.killed and proc.poll() is None

    def import_harness(self) -> None:
        """Imports lcb_runner's execution model (workers/lcb_harness.py) in the agent ahead
        (tens of milliseconds, mostly unittest.mock), for a ready Python jail."""
        self._send({"op": "import_harness"})
        self._receive()

    def prepare_roles(self, roles: tuple[str, ...]) -> None:
        """Creates the roles' cgroups ahead and hands them to the agent (for ready jails, off
        any request's path). No process runs for it: the program's first process is the
        jail's second, as in a jail started on request."""
        for role in roles:
            self._cgroup(role)

    def close(self) -> None:
        """Ends the jail and waits until its processes are gone."""
        if self._begin_close():
            if not _exited_within(self._proc, 2.0):
                self._kill_tree(self._proc)
            self._finish_close()

    def close_soon(self) -> None:
        """Ends the jail now (its agent exits; the kernel kills anything left in it) and reaps
        it in the background: the request that used it need not wait for the teardown."""
        if self._begin_close():
            _reaper.add(self)

    def _begin_close(self) -> bool:
        """Tells the agent to exit and closes its pipes; False when nothing was running."""
        proc = self._proc
        if proc is None:
            self._release_resources()
            return False
        if proc.poll() is None and not proc.stdin.closed:
            try:
                write_message(proc.stdin.fileno(), {"op": "exit"})
            except OSError:
                pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return True

    def _finish_close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.wait()
        try:
            proc.stderr.close()
        except OSError:
            pass
        self._fd_socket.close()
        self._proc = None
        self._release_resources()

    def _release_resources(self) -> None:
        """Cgroups and the host uid, once the jail's processes are gone."""
        for cgroup in self._cgroups.values():
            cgroup.destroy()
        self._cgroups.clear()
        if self.host_uid is not None:
            _host_uids.release(self.host_uid)
            self.host_uid = None

    def __enter__(self) -> "Jail":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill() if exc_info[0] is not None else None
        self.close()

    # ------------------------------------------------------------ messaging
    def _send(self, header: dict, blobs: tuple[bytes, ...] = ()) -> None:
        if self._proc is None:
            raise JailError("the jail is not running")
        try:
            write_message(self._proc.stdin.fileno(), header, blobs)
        except OSError as exc:
            raise self._gone(f"cannot talk to the jail: {exc}") from exc

    def _await_reply(self, fd: int, timeout: float) -> None:
        """Waits until the agent starts answering; a kill() or the timeout ends the wait."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(200):
            if self.killed:
                raise JailError("the jail was killed (request cancelled)")
            if time.monotonic() > deadline:
                self.kill()
                raise JailError(f"the jail's agent did not answer within {timeout:.0f} s")

    def _receive(self, timeout: float = REPLY_TIMEOUT_S) -> tuple[dict, list[bytes]]:
        try:
            self._await_reply(self._proc.stdout.fileno(), timeout)
            header, blobs = read_message(self._proc.stdout.fileno())
        except (EOFError, OSError, ValueError) as exc:
            raise self._gone("the jail's agent exited unexpectedly") from exc
        if "error" in header:
            raise JailError(f"the jail's agent refused a request: {header['error']}")
        return header, blobs

    def _gone(self, what: str) -> JailError:
        if self.killed:
            return JailError("the jail was killed (request cancelled)")
        detail = b""
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(timeout=1)
                detail = proc.stderr.read(2000) or b""
            except (subprocess.TimeoutExpired, OSError, ValueError):
                pass
        suffix = f": {detail.decode(errors='replace').strip()}" if detail.strip() else ""
        return JailError(what + suffix)

    # ------------------------------------------------------------ operations
    def write_file(self, name: str, data: bytes, mode: int = 0o644, parents: bool = False) -> None:
        """parents: create the directories on a relative path (before the program runs)."""
        self._send({"op": "write_file", "path": name, "mode": mode, "parents": parents}, (data,))
        self._receive()

    def read_file(self, name: str, max_bytes: int = 1 << 28) -> bytes:
        """A file from the jail's /work (e.g. a compiled checker, to cache it)."""
        return self.fetch_file(name, max_bytes) or b""

    def fetch_file(self, name: str, max_bytes: int = 1 << 28) -> bytes | None:
        """A regular file of the jail's /work, at most max_bytes + 1 bytes; None if none."""
        self._send({"op": "read_file", "path": name, "max_bytes": max_bytes})
        reply, blobs = self._receive()
        if not reply.get("found", True):
            return None
        return blobs[0] if blobs else b""

    def load_python(self, spec: dict) -> str | None:
        """Compiles the source once in the warm agent; returns the syntax error, if any."""
        self._send({"op": "load_python", "python": spec})
        reply, _ = self._receive()
        return reply.get("syntax_error") or None

    def _cgroup(self, role: str) -> cgroups.JailCgroup | None:
        """The role's cgroup, created and handed to the agent on first use."""
        if role in self._cgroups or not self.cgroup_support.any:
            return self._cgroups.get(role)
        try:
            cgroup = cgroups.JailCgroup(self.cgroup_support, role)
        except OSError as exc:
            raise JailError(f"cannot create the jail's cgroup: {exc}") from exc
        self._cgroups[role] = cgroup
        fds = cgroup.procs_fds()
        header = {"op": "cgroup", "role": role, "procs": len(fds), "cpu_unit": None,
                  "peak_version": None, "events": False}
        cpu = cgroup.cpu_fd()
        if cpu is not None:
            fds.append(cpu[0])
            header["cpu_unit"] = cpu[1]
        peak = cgroup.peak_fd()
        if peak is not None:
            fds.append(peak[0])
            header["peak_version"] = peak[1]
        events = cgroup.events_fd()
        if events is not None:
            fds.append(events)
            header["events"] = True
        try:
            self._send(header)
            socket.send_fds(self._fd_socket, [b"c"], fds)
        except OSError as exc:
            raise self._gone(f"cannot pass cgroups to the jail: {exc}") from exc
        finally:
            for fd in fds:
                os.close(fd)
        self._receive()
        return cgroup

    def _child_filter(self, limits: RunLimits) -> str:
        """Names the test's seccomp filter, sending it to the agent on first use."""
        allow_processes = limits.max_processes > 1
        untracked_memory = self.cgroup_support.memory is not None
        name = f"p{int(allow_processes)}m{int(untracked_memory)}"
        if name not in self._filters_sent:
            self._send({"op": "filter", "name": name},
                       (child_filter_bytes(allow_processes, untracked_memory),))
            self._receive()
            self._filters_sent.add(name)
        return name

    def _program_request(self, op: str, limits: RunLimits, argv: list[str] | None,
                         python: dict | None, role: str, cgroup, child_filter: str,
                         **fields) -> dict:
        request: dict = {"op": op, "limits": limits.to_agent(self.language.memory_overhead_mb),
                         "cgroup": role if cgroup is not None else None,
                         "filter": child_filter, **fields}
        if argv is not None:
            request["argv"] = self.language.expand(argv, limits.memory_mb)
            request["env"] = {**JAIL_ENV, **self.language.environment(limits.memory_mb)}
        else:
            request["python"] = python
        return request

    def _confine(self, limits: RunLimits, role: str):
        """The role's cgroup with the limits set, and the test's seccomp filter's name."""
        try:
            cgroup = self._cgroup(role)
            child_filter = self._child_filter(limits)
            if cgroup is not None:
                cgroup.set_limits(limits.memory_mb * MIB, limits.tasks)
        except OSError as exc:
            raise JailError(f"cannot set the jail's cgroup limits: {exc}") from exc
        return cgroup, child_filter

    def run(self, limits: RunLimits, *, argv: list[str] | None = None,
            python: dict | None = None, stdin: bytes = b"", args: str | None = None,
            stdio_fds: tuple[int, int] | None = None, input_file: str = "",
            output_file: str = "", result_channel: bool = False, role: str = "run",
            clean: bool = True) -> RawRun:
        """Runs one process: an exec of `argv`, or a fork of the warm interpreter (`python`).

        stdio_fds: (stdin, stdout) for the process instead of `stdin` and a capture pipe
        (interactive problems). input_file / output_file: file-I/O problems; the input is
        written to /work/input_file and stdout is replaced by /work/output_file.
        role: the cgroup the process and all it starts are accounted in ("run" for tests,
        "compile"). clean: remove what the run wrote to the jail afterwards (not for a
        compilation, whose output is the program).
        """
        try:
            cgroup, child_filter = self._confine(limits, role)
            oom_before = 0
            if cgroup is not None:
                cgroup.reset_peak()
                oom_before = cgroup.oom_kills()
        except (JailError, OSError) as exc:
            for fd in stdio_fds or ():
                os.close(fd)
            if isinstance(exc, JailError):
                raise
            raise JailError(f"cannot set the jail's cgroup limits: {exc}") from exc
        request = self._program_request(
            "run", limits, argv, python, role, cgroup, child_filter,
            stdio_fds=bool(stdio_fds), input_file=input_file, output_file=output_file,
            result_channel=result_channel, clean=clean)
        if argv is None:
            request["args_json"] = args
        try:
            self._send(request, (stdin,))
        except JailError:
            for fd in stdio_fds or ():
                os.close(fd)
            raise
        if stdio_fds:
            try:
                socket.send_fds(self._fd_socket, [b"f"], list(stdio_fds))
            except OSError as exc:
                raise self._gone(f"cannot pass pipes to the jail: {exc}") from exc
            finally:
                for fd in stdio_fds:  # handed over: the jail's process now owns them
                    os.close(fd)
        header, blobs = self._receive(timeout=limits.wall_s + REPLY_TIMEOUT_S)
        functional = result_channel or (python is not None and python.get("mode") == "functional")
        maxrss_kb, oom_killed = header["maxrss_kb"], False
        if cgroup is not None:
            maxrss_kb = max(maxrss_kb, cgroup.peak_bytes() // 1024)
            oom_killed = cgroup.oom_kills() > oom_before
        return _raw_run(header, blobs, functional, maxrss_kb, oom_killed)

    def run_tests(self, limits: RunLimits, inputs: list[bytes], *,
                  argv: list[str] | None = None, python: dict | None = None,
                  arguments: list[str] | None = None, input_file: str = "",
                  output_file: str = "", result_channel: bool = False,
                  deadline_s: float | None = None, one_process: bool = False,
                  expected: list[bytes] | None = None) -> "TestBatch":
        """Runs every test in one exchange: the agent runs them back to back and streams
        one result per test (see TestBatch). arguments: functional problems' JSON arrays.
        deadline_s: seconds from now; a test's wall clock is cut to what is left, and no
        test starts after it. one_process: lcb_runner's model, every test in one Python
        process (a new one only after a test ended it). expected: the tests' expected
        outputs, of which a one-process functional worker may ask for the running test's
        (it compares in the program's process what is not plain data, as lcb_runner does)."""
        cgroup, child_filter = self._confine(limits, "run")
        request = self._program_request(
            "run_tests", limits, argv, python, "run", cgroup, child_filter,
            tests=len(inputs), input_file=input_file, output_file=output_file,
            result_channel=result_channel, clean=True, deadline_s=deadline_s,
            one_process=one_process)
        blobs = tuple(inputs) + tuple(a.encode() for a in arguments or ())
        self._send(request, blobs)
        functional = result_channel or (python is not None and python.get("mode") == "functional")
        return TestBatch(self, limits, functional, cgroup is not None, expected)

    def _stop_batch(self) -> None:
        self._send({"op": "stop"})

    def _send_expected(self, index: int, expected: bytes | None) -> None:
        self._send({"op": "expected", "index": index}, () if expected is None else (expected,))


@dataclass
class BatchResult:
    """One streamed answer of a batch: a test's run, or the deadline before test `index`."""

    index: int
    run: RawRun | None  # None: the deadline came before this test started
    wall_cut: bool = False  # the test's wall clock was cut to the deadline
    expected_sent: bool = False  # the test's expected output went into the jail


class TestBatch:
    """The results of Jail.run_tests as they come. stop() ends the batch early (a failure
    was found): the running test is killed, later ones never start."""

    def __init__(self, jail: Jail, limits: RunLimits, functional: bool, measured: bool,
                 expected: list[bytes] | None = None) -> None:
        self._jail = jail
        self._limits = limits
        self._functional = functional
        self._measured = measured  # the agent reads the memory cgroup per test
        self._expected = expected
        self._expected_sent: set[int] = set()
        self._done = False
        self._stopped = False

    def __iter__(self):
        while not self._done:
            header, blobs = self._jail._receive(timeout=self._limits.wall_s + REPLY_TIMEOUT_S)
            if header.get("done"):
                self._done = True
                return
            if self._stopped:
                continue
            if header.get("expected_wanted"):
                self._answer_expected(header.get("index"))
                continue
            if header.get("deadline"):
                yield BatchResult(header["index"], None)
                continue
            maxrss_kb = header["maxrss_kb"]
            if self._measured:
                maxrss_kb = max(maxrss_kb, header.get("peak_bytes", 0) // 1024)
            run = _raw_run(header, blobs, self._functional, maxrss_kb,
                           bool(header.get("oom_killed")))
            yield BatchResult(header["index"], run, bool(header.get("wall_cut")),
                              header["index"] in self._expected_sent)

    def _answer_expected(self, index: object) -> None:
        """Answers the agent's request for test `index`'s expected output at once (the agent
        waits for the answer before it writes anything else): the output, once, when this
        batch has them; else an answer without it."""
        if not isinstance(index, int):
            return  # the agent sends the index it runs: not a request of the agent's
        if (self._expected is None or index in self._expected_sent
                or not 0 <= index < len(self._expected)):
            self._jail._send_expected(index, None)
            return
        self._expected_sent.add(index)
        self._jail._send_expected(index, self._expected[index])

    def stop(self) -> None:
        """Asks the agent to stop; the results still in flight are read and dropped."""
        if not self._stopped and not self._done:
            self._stopped = True
            self._jail._stop_batch()

    def finish(self) -> None:
        """Stops the batch and reads it to its end (the jail is ready for the next call)."""
        self.stop()
        for _ in self:
            pass


def _raw_run(header: dict, blobs: list[bytes], functional: bool, maxrss_kb: int,
             oom_killed: bool) -> RawRun:
    blobs = list(blobs) + [b""] * (3 - len(blobs))
    return RawRun(exit_code=header["exit_code"], signal=header["signal"],
                  cpu_s=header["cpu_s"], wall_s=header["wall_s"],
                  maxrss_kb=maxrss_kb, killed_for=header["killed_for"],
                  stdout=blobs[0], stderr=blobs[1], result=blobs[2] if functional else None,
                  oom_killed=oom_killed)

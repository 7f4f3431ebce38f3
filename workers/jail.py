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

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            self._release_resources()
            return
        if proc.poll() is None:
            try:
                write_message(proc.stdin.fileno(), {"op": "exit"})
            except OSError:
                pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._kill_tree(proc)
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
        cpu = cgroup.cpu_fd()
        if cpu is not None:
            fds.append(cpu[0])
        try:
            self._send({"op": "cgroup", "role": role, "procs": len(fds) - (cpu is not None),
                        "cpu_unit": cpu[1] if cpu else None})
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
            cgroup = self._cgroup(role)
            child_filter = self._child_filter(limits)
            oom_before = 0
            if cgroup is not None:
                cgroup.set_limits(limits.memory_mb * MIB, limits.tasks)
                cgroup.reset_peak()
                oom_before = cgroup.oom_kills()
        except (JailError, OSError) as exc:
            for fd in stdio_fds or ():
                os.close(fd)
            if isinstance(exc, JailError):
                raise
            raise JailError(f"cannot set the jail's cgroup limits: {exc}") from exc
        request: dict = {"op": "run", "limits": limits.to_agent(self.language.memory_overhead_mb),
                         "stdio_fds": bool(stdio_fds), "input_file": input_file,
                         "output_file": output_file, "result_channel": result_channel,
                         "cgroup": role if cgroup is not None else None,
                         "filter": child_filter, "clean": clean}
        if argv is not None:
            request["argv"] = self.language.expand(argv, limits.memory_mb)
            request["env"] = {**JAIL_ENV, **self.language.environment(limits.memory_mb)}
        else:
            request["python"] = python
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
        blobs = list(blobs) + [b""] * (3 - len(blobs))
        functional = result_channel or (python is not None and python.get("mode") == "functional")
        result = blobs[2] if functional else None
        maxrss_kb, oom_killed = header["maxrss_kb"], False
        if cgroup is not None:
            maxrss_kb = max(maxrss_kb, cgroup.peak_bytes() // 1024)
            oom_killed = cgroup.oom_kills() > oom_before
        return RawRun(exit_code=header["exit_code"], signal=header["signal"],
                      cpu_s=header["cpu_s"], wall_s=header["wall_s"],
                      maxrss_kb=maxrss_kb, killed_for=header["killed_for"],
                      stdout=blobs[0], stderr=blobs[1], result=result, oom_killed=oom_killed)

"""Per-jail cgroups: one budget of memory, tasks and CPU time over everything a test creates.

The kernel counts every process and thread a test creates in its cgroup, waited for or
not, and charges it the memory they use, shared memory, memfds and tmpfs files included.
Each resource comes from cgroup v2 where its controller is delegated to us, else from a
writable cgroup v1 hierarchy (hybrid hosts). CPU accounting needs no controller on v2:
every v2 cgroup has `cpu.stat`.

The jail's agent is *not* in these cgroups: each test process moves itself in right after
fork, through a `cgroup.procs` descriptor the server opened (the kernel checks the opener's
credentials), so the agent's own buffers are never charged to the submission and the
submission never sees a writable cgroup file.
"""
from __future__ import annotations

import atexit
import errno
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sandbox.cgroups")
RESOURCES = ("memory", "pids", "cpu")
DISABLE_ENV = "SANDBOX_CGROUPS"  # "off": never use cgroups (the fallback, everywhere)
ROOT_ENV = "SANDBOX_CGROUP_ROOT"  # a delegated cgroup v2 directory to create jails under


@dataclass(frozen=True)
class Hierarchy:
    """Where one resource is controlled: a directory jails' cgroups are created under."""

    version: int
    base: Path


@dataclass(frozen=True)
class CgroupSupport:
    """Which per-jail mechanisms this server has (None: missing here)."""

    memory: Hierarchy | None = None
    pids: Hierarchy | None = None
    cpu: Hierarchy | None = None

    @property
    def any(self) -> bool:
        return (self.memory, self.pids, self.cpu) != (None, None, None)

    @property
    def complete(self) -> bool:
        return None not in (self.memory, self.pids, self.cpu)

    def describe(self) -> str:
        parts = []
        for name in RESOURCES:
            found = getattr(self, name)
            parts.append(f"{name}: cgroup v{found.version}" if found else f"{name}: none")
        return ", ".join(parts)


# ------------------------------------------------------------------ detection

def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount root, mount point, super options) of cgroup mounts."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((tail[0], fields[3], fields[4], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _join(mount_point: str, mount_root: str, path: str) -> Path:
    if mount_root != "/" and (path + "/").startswith(mount_root.rstrip("/") + "/"):
        path = path[len(mount_root.rstrip("/")):]
    candidate = Path(mount_point) / path.lstrip("/")
    return candidate if candidate.is_dir() else Path(mount_point)


def _writable_base(directory: Path) -> Path | None:
    """Makes this server's own directory of jail cgroups under `directory`."""
    base = directory / f"code-sandbox-{os.getpid()}"
    try:
        base.mkdir(exist_ok=True)
    except OSError:
        return None
    _remove_stale(directory)
    atexit.register(_remove_tree, base)
    return base


def _controllers(directory: Path, name: str) -> set[str]:
    try:
        return set((directory / name).read_text().split())
    except OSError:
        return set()


def _delegated_v2(directory: Path, wanted: set[str]) -> Path | None:
    """A v2 directory whose children get `wanted` controllers, or None.

    Controllers can only be enabled for children of a cgroup without processes of its
    own; when this server is alone in its cgroup (a container's or a systemd service's
    delegated cgroup) it moves itself into a leaf first.
    """
    if not wanted <= _controllers(directory, "cgroup.controllers"):
        return None
    enable = " ".join(f"+{name}" for name in sorted(wanted))
    try:
        (directory / "cgroup.subtree_control").write_text(enable)
        return directory
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            return None
    procs = (directory / "cgroup.procs").read_text().split()
    if procs != [str(os.getpid())]:
        return None
    leaf = directory / "code-sandbox-server"
    try:
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (directory / "cgroup.subtree_control").write_text(enable)
    except OSError:
        return None
    return directory


def detect() -> CgroupSupport:
    """Probes this host (support() caches the answer for the process)."""
    if os.environ.get(DISABLE_ENV, "").lower() in ("off", "0", "no", "false"):
        return CgroupSupport()
    own = _own_paths()
    found: dict[str, Hierarchy] = {}
    v2_dir = None
    for fstype, root, point, _options in _mounts():
        if fstype == "cgroup2" and "" in own:
            v2_dir = _join(point, root, own[""])
    if v2_dir is not None:
        start = Path(os.environ[ROOT_ENV]) if os.environ.get(ROOT_ENV) else v2_dir
        wanted = {"memory", "pids"} & _controllers(start, "cgroup.controllers")
        enabled = wanted if wanted and _delegated_v2(start, wanted) is not None else set()
        base = _writable_base(start)
        if base is not None:
            if enabled:
                try:  # base holds no processes: its children may get the controllers
                    (base / "cgroup.subtree_control").write_text(
                        " ".join(f"+{name}" for name in sorted(enabled)))
                except OSError:
                    enabled = set()
            for name in sorted(enabled):
                found[name] = Hierarchy(2, base)
            found["cpu"] = Hierarchy(2, base)  # cpu.stat exists in every v2 cgroup
    for fstype, root, point, options in _mounts():
        if fstype != "cgroup":
            continue
        for name, controller in (("memory", "memory"), ("pids", "pids"), ("cpu", "cpuacct")):
            if name in found or controller not in options or controller not in own:
                continue
            base = _writable_base(_join(point, root, own[controller]))
            if base is not None:
                found[name] = Hierarchy(1, base)
    return CgroupSupport(**found)


_support: CgroupSupport | None = None
_support_lock = threading.Lock()


def support() -> CgroupSupport:
    """The mechanisms this server uses (probed once per process)."""
    global _support
    with _support_lock:
        if _support is None:
            _support = detect()
        return _support


def _remove_tree(path: Path) -> None:
    for child in sorted(path.glob("*/"), reverse=True):
        _remove_tree(child)
    try:
        path.rmdir()
    except OSError:
        pass


def _remove_stale(directory: Path) -> None:
    """Removes jail cgroups left by servers that died (their pid is gone)."""
    for entry in directory.glob("code-sandbox-[0-9]*"):
        pid = int(entry.name.rsplit("-", 1)[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _remove_tree(entry)
        except PermissionError:
            pass


# ------------------------------------------------------------------ one jail

_names = itertools.count()


class JailCgroup:
    """The cgroup(s) one role of one jail (its tests, or its compilation) runs in."""

    def __init__(self, found: CgroupSupport, role: str) -> None:
        self.support = found
        self.name = f"{role}-{os.getpid()}-{next(_names)}"
        self.dirs: dict[str, Path] = {}
        self._memory_limit = -1
        self._tasks_limit = -1
        self._peak_fd: int | None = None
        self._peak_resettable = True
        for resource in RESOURCES:
            hierarchy = getattr(found, resource)
            if hierarchy is not None:
                self.dirs[resource] = hierarchy.base / self.name
        for directory in set(self.dirs.values()):
            directory.mkdir()

    def _file(self, resource: str, v1: str, v2: str) -> Path:
        version = getattr(self.support, resource).version
        return self.dirs[resource] / (v1 if version == 1 else v2)

    def procs_fds(self) -> list[int]:
        """Write descriptors of every cgroup.procs this role's processes join."""
        return [os.open(directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
                for directory in sorted(set(self.dirs.values()))]

    def cpu_fd(self) -> tuple[int, str] | None:
        """A read descriptor for the CPU time used, and its format ("usec" or "nsec")."""
        if "cpu" not in self.dirs:
            return None
        path = self._file("cpu", "cpuacct.usage", "cpu.stat")
        unit = "nsec" if self.support.cpu.version == 1 else "usec"
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC), unit

    def peak_fd(self) -> tuple[int, int] | None:
        """A read-write descriptor for the peak memory (the agent resets it before each
        test of a batch and reads it after), and the cgroup version; None where the peak
        cannot be reset (cgroup v2 before Linux 6.12) or there is no memory cgroup."""
        if "memory" not in self.dirs:
            return None
        version = self.support.memory.version
        path = self._file("memory", "memory.max_usage_in_bytes", "memory.peak")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        if version == 2:
            try:
                os.pwrite(fd, b"reset\n", 0)
            except OSError:
                os.close(fd)
                return None
        return fd, version

    def events_fd(self) -> int | None:
        """A read descriptor for the memory cgroup's event counts (oom_kill)."""
        if "memory" not in self.dirs:
            return None
        try:
            return os.open(self._file("memory", "memory.oom_control", "memory.events"),
                           os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def set_limits(self, memory_bytes: int, tasks: int) -> None:
        if "memory" in self.dirs and memory_bytes != self._memory_limit:
            self._file("memory", "memory.limit_in_bytes", "memory.max").write_text(
                str(memory_bytes))
            if self.support.memory.version == 2:
                swap = self.dirs["memory"] / "memory.swap.max"
                if swap.exists():
                    swap.write_text("0")
            self._memory_limit = memory_bytes
        if "pids" in self.dirs and tasks != self._tasks_limit:
            (self.dirs["pids"] / "pids.max").write_text(str(tasks))
            self._tasks_limit = tasks

    def oom_kills(self) -> int:
        if "memory" not in self.dirs:
            return 0
        path = self._file("memory", "memory.oom_control", "memory.events")
        try:
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def reset_peak(self) -> None:
        """Starts a new peak-memory measurement (one per test)."""
        if "memory" not in self.dirs:
            return
        if self.support.memory.version == 1:
            (self.dirs["memory"] / "memory.max_usage_in_bytes").write_text("0")
            return
        if self._peak_fd is None:
            path = self.dirs["memory"] / "memory.peak"
            try:
                self._peak_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:  # before Linux 6.12 memory.peak cannot be reset
                self._peak_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._peak_resettable = False
        if self._peak_resettable:
            try:
                os.pwrite(self._peak_fd, b"reset\n", 0)
            except OSError:
                self._peak_resettable = False

    def peak_bytes(self) -> int:
        if "memory" not in self.dirs:
            return 0
        try:
            if self.support.memory.version == 1:
                return int((self.dirs["memory"] / "memory.max_usage_in_bytes").read_text())
            if self._peak_fd is not None and self._peak_resettable:
                return int(os.pread(self._peak_fd, 64, 0))
        except (OSError, ValueError):
            pass
        return 0

    def destroy(self) -> None:
        """Removes the cgroups (their processes died with the jail; retried briefly)."""
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        for directory in set(self.dirs.values()):
            kill = directory / "cgroup.kill"
            for attempt in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        log.warning("cannot remove cgroup %s: %s", directory, exc)
                        break
                    if attempt == 0 and kill.exists():
                        try:
                            kill.write_text("1")
                        except OSError:
                            pass
                    time.sleep(0.01)

"""Resource limits: defaults, maxima, and their resolution from a request."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

MIB = 1 << 20
# Threads a test may run beyond its processes (tasks = max_processes + this): threads are
# always allowed, as in LiveCodeBench; the pids cgroup / RLIMIT_NPROC count both.
EXTRA_THREADS = 63


@dataclass(frozen=True)
class RunLimits:
    """Limits for one run inside the jail (one test, or one compilation), over everything
    it starts: CPU time and memory are totals over all its processes and threads."""

    time_limit_s: float = 6.0
    wall_limit_s: float = 0.0  # 0: derived as 2 × time limit + 1 s
    memory_mb: int = 1024
    output_bytes: int = 64 * MIB
    max_processes: int = 1  # 1: the test cannot create processes (threads are fine)
    file_size_bytes: int = 64 * MIB
    max_open_files: int = 256

    @property
    def wall_s(self) -> float:
        return self.wall_limit_s or (2 * self.time_limit_s + 1.0)

    @property
    def tasks(self) -> int:
        """Processes and threads the run may have at once."""
        return self.max_processes + EXTRA_THREADS

    def to_agent(self, memory_overhead_mb: int = 0) -> dict:
        """The form the in-jail agent applies as rlimits.

        memory_overhead_mb: extra address space for runtimes that reserve far more than they
        use (PyPy's GC); peak resident memory is still judged against the limit itself.
        """
        return {
            "cpu_s": self.time_limit_s,
            "wall_s": self.wall_s,
            "memory_bytes": (self.memory_mb + memory_overhead_mb) * MIB,
            # +1: the agent itself runs under the jail's uid and counts too.
            "nproc": self.tasks + 1,
            "fsize": self.file_size_bytes,
            "nofile": self.max_open_files,
            "output_bytes": self.output_bytes,
        }


DEFAULT_LIMITS = RunLimits()
MAX_LIMITS = RunLimits(
    time_limit_s=60.0,
    wall_limit_s=180.0,
    memory_mb=8192,
    output_bytes=256 * MIB,
    max_processes=512,
    file_size_bytes=256 * MIB,
    max_open_files=4096,
)
# A compilation's own limits, over all compiler processes (driver, cc1plus, as, ld).
COMPILE_LIMITS = RunLimits(
    time_limit_s=30.0,
    wall_limit_s=60.0,
    memory_mb=2048,
    output_bytes=1 * MIB,
    max_processes=64,
    file_size_bytes=256 * MIB,
    max_open_files=512,
)


class LimitError(ValueError):
    """A requested limit is negative, not finite, or above the server's maximum."""


_FIELDS = (
    ("time_limit_s", "time_limit_s"),
    ("wall_limit_s", "wall_limit_s"),
    ("memory_limit_mb", "memory_mb"),
    ("output_limit_bytes", "output_bytes"),
    ("max_processes", "max_processes"),
    ("file_size_limit_bytes", "file_size_bytes"),
    ("max_open_files", "max_open_files"),
)


def resolve_limits(requested, defaults: RunLimits = DEFAULT_LIMITS,
                   maximum: RunLimits = MAX_LIMITS) -> RunLimits:
    """Merges a sandbox.v1.Limits message (zero = default) into RunLimits, validating it."""
    values = {}
    for proto_name, field in _FIELDS:
        value = getattr(requested, proto_name) if requested is not None else 0
        if isinstance(value, float) and not math.isfinite(value):
            raise LimitError(f"{proto_name} must be a finite number, got {value}")
        if value < 0:
            raise LimitError(f"{proto_name} must not be negative, got {value}")
        if value == 0:
            continue
        ceiling = getattr(maximum, field)
        if value > ceiling:
            raise LimitError(f"{proto_name}={value} is above this server's maximum of {ceiling}")
        values[field] = value
    limits = replace(defaults, **values)
    if limits.wall_s > maximum.wall_limit_s:
        limits = replace(limits, wall_limit_s=maximum.wall_limit_s)
    return limits


def limits_to_proto(limits: RunLimits, message) -> None:
    """Fills a sandbox.v1.Limits message from RunLimits."""
    for proto_name, field in _FIELDS:
        value = limits.wall_s if field == "wall_limit_s" else getattr(limits, field)
        setattr(message, proto_name, value)



"""Turning what happened to a process into a verdict (before the output is compared)."""
from __future__ import annotations

import signal as signals

from sandbox.v1 import sandbox_pb2 as pb
from workers.agent import MAX_TEST_FILES
from workers.jail import RawRun
from workers.limits import RunLimits

# A failing run that peaked this close to the memory limit is judged MLE.
MLE_PEAK_FRACTION = 0.9
# What a compiler prints when it runs out of memory (cc1plus, the linker).
_COMPILER_OUT_OF_MEMORY = (b"out of memory", b"Cannot allocate memory",
                           b"virtual memory exhausted", b"std::bad_alloc")
# Go's runtime: an allocation it cannot map, and address space it cannot reserve.
_GO_OUT_OF_MEMORY = (b"fatal error: out of memory", b"fatal error: runtime: out of memory")


def signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _allocation_failed(raw: RawRun) -> bool:
    """The runtime's own report of a failed allocation, as it ends the program: an uncaught
    Python MemoryError (a traceback whose last line is it), an uncaught std::bad_alloc
    (terminate, SIGABRT), or the JVM's, Go's, V8's or Rust's own out-of-memory report with
    the exit it makes. Merely printing the word is not one."""
    tail = raw.stderr[-4096:]
    lines = [line.strip() for line in tail.strip().splitlines()]
    last = lines[-1] if lines else b""
    if b"Traceback (most recent call last):" in tail and (
            last == b"MemoryError" or last.startswith(b"MemoryError:")):
        return True
    if raw.signal == signals.SIGABRT:
        return (b"std::bad_alloc" in tail
                or any(line.startswith(b"FATAL ERROR:") and line.endswith(
                    b"JavaScript heap out of memory") for line in lines)
                or any(line.startswith(b"memory allocation of ") and line.endswith(
                    b"bytes failed") for line in lines))
    if raw.exit_code == 2:
        # Go prints its report first, then every goroutine's trace: look at the head too.
        head = [line.strip() for line in raw.stderr[:4096].splitlines()]
        return any(line in _GO_OUT_OF_MEMORY for line in head + lines)
    # An uncaught OutOfMemoryError (but not "unable to create native thread": a task limit).
    return raw.exit_code == 1 and any(
        line.startswith(b"Exception in thread ") and b" java.lang.OutOfMemoryError" in line
        and b"native thread" not in line for line in lines)


def compile_limit_exceeded(raw: RawRun, limits: RunLimits) -> str | None:
    """Why a compilation was stopped by its own limits (a CE with that reason), or None."""
    if raw.killed_for == "output":
        return f"the compiler's output exceeded {limits.output_bytes} bytes"
    if raw.killed_for == "cpu" or raw.cpu_s > limits.time_limit_s or raw.signal == signals.SIGXCPU:
        return (f"compilation exceeded its CPU time limit of {limits.time_limit_s:g} s "
                f"(all compiler processes; used {raw.cpu_s:.1f} s)")
    if raw.killed_for == "wall":
        return f"compilation exceeded its wall-clock limit of {limits.wall_s:g} s"
    failed = raw.exit_code != 0 or raw.signal != 0
    log = (raw.stderr + raw.stdout)[-8192:]
    if raw.oom_killed or failed and any(marker in log for marker in _COMPILER_OUT_OF_MEMORY):
        return (f"the compiler ran out of memory (limit {limits.memory_mb} MiB over all "
                "compiler processes)")
    return None


def classify_run(raw: RawRun, limits: RunLimits) -> tuple[int, str] | None:
    """TLE / MLE / RE / OLE with a message, or None when the process ran to exit code 0.

    TLE is judged on CPU time; the wall-clock cap only catches sleeping or blocked
    programs. MLE is a failing run that hit the address-space limit: it peaked near
    the limit, or its allocator reported the failure (Python MemoryError, C++ bad_alloc).
    """
    if raw.killed_for == "output":
        return pb.OLE, f"output exceeded {limits.output_bytes} bytes"
    if raw.killed_for == "files":
        return pb.RE, (f"created more than {MAX_TEST_FILES} files and directories in the jail "
                       "(each costs kernel memory that no limit counts otherwise)")
    if raw.killed_for == "cpu" or raw.cpu_s > limits.time_limit_s or raw.signal == signals.SIGXCPU:
        return pb.TLE, f"CPU time {raw.cpu_s:.3f} s exceeded the limit of {limits.time_limit_s:g} s"
    if raw.killed_for == "wall":
        return pb.TLE, (f"wall-clock time exceeded {limits.wall_s:g} s "
                        f"(the program slept or blocked; CPU time {raw.cpu_s:.3f} s)")
    if raw.oom_killed:
        return pb.MLE, (f"memory limit of {limits.memory_mb} MiB exceeded over all the "
                        f"program's processes and files (peak {raw.maxrss_kb} KiB)")
    limit_bytes = limits.memory_mb * (1 << 20)
    if raw.maxrss_kb * 1024 > limit_bytes:
        return pb.MLE, f"peak memory {raw.maxrss_kb} KiB exceeded the limit of {limits.memory_mb} MiB"
    failed = raw.exit_code != 0 or raw.signal != 0
    if not failed:
        return None
    near_limit = raw.maxrss_kb * 1024 >= MLE_PEAK_FRACTION * limit_bytes
    if near_limit or _allocation_failed(raw):
        return pb.MLE, f"memory limit of {limits.memory_mb} MiB exceeded (peak {raw.maxrss_kb} KiB)"
    if raw.signal == signals.SIGXFSZ:
        return pb.RE, f"file size limit of {limits.file_size_bytes} bytes exceeded"
    if raw.signal:
        return pb.RE, f"killed by {signal_name(raw.signal)}"
    return pb.RE, f"exit code {raw.exit_code}"

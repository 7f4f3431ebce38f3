"""workers/limits.py and workers/verdicts.py as pure functions, at their boundaries: how a request's
limits are merged and bounded, and how what happened to a process becomes TLE / MLE / RE / OLE.
Fast (no jail), so mutation testing runs them per mutant; tests/test_verdicts.py checks the same
rules end to end through real jails."""
from __future__ import annotations

import math
import signal
from dataclasses import replace
from types import SimpleNamespace

import pytest

from sandbox.v1 import sandbox_pb2 as pb
from workers.jail import RawRun
from workers.limits import (DEFAULT_LIMITS, MAX_LIMITS, MIB, LimitError, RunLimits, limits_to_proto,
                            resolve_limits)
from workers.verdicts import MLE_PEAK_FRACTION, classify_run, signal_name

LIMITS = RunLimits(time_limit_s=1.0, memory_mb=64, output_bytes=1000, file_size_bytes=500)


def raw(**kwargs) -> RawRun:
    fields = dict(exit_code=0, signal=0, cpu_s=0.1, wall_s=0.2, maxrss_kb=1000, killed_for=None,
                  stdout=b"", stderr=b"")
    fields.update(kwargs)
    return RawRun(**fields)


# ---------------------------------------------------------------- limits


def test_defaults_and_agent_form():
    assert DEFAULT_LIMITS.time_limit_s == 6.0 and DEFAULT_LIMITS.memory_mb == 1024
    assert DEFAULT_LIMITS.max_processes == 1 and DEFAULT_LIMITS.tasks == 64
    agent = LIMITS.to_agent(memory_overhead_mb=16)
    # nproc counts tasks (processes and threads) of the jail's uid: the agent is one more.
    assert agent == {"cpu_s": 1.0, "wall_s": 3.0, "memory_bytes": 80 * MIB,
                     "nproc": LIMITS.max_processes + 63 + 1, "fsize": 500,
                     "nofile": LIMITS.max_open_files, "output_bytes": 1000}
    assert LIMITS.to_agent()["memory_bytes"] == 64 * MIB


def test_zero_means_default_and_values_are_taken():
    assert resolve_limits(None) == DEFAULT_LIMITS
    assert resolve_limits(pb.Limits()) == DEFAULT_LIMITS
    got = resolve_limits(pb.Limits(time_limit_s=2.5, memory_limit_mb=256, output_limit_bytes=7,
                                   max_processes=3, file_size_limit_bytes=9, max_open_files=11))
    assert got == replace(DEFAULT_LIMITS, time_limit_s=2.5, memory_mb=256, output_bytes=7,
                          max_processes=3, file_size_bytes=9, max_open_files=11)
    assert got.wall_s == 6.0


@pytest.mark.parametrize("field, value, message", [
    ("time_limit_s", -1.0, "time_limit_s must not be negative, got -1.0"),
    ("time_limit_s", math.inf, "time_limit_s must be a finite number, got inf"),
    ("wall_limit_s", math.nan, "wall_limit_s must be a finite number, got nan"),
    ("memory_limit_mb", 8193, "memory_limit_mb=8193 is above this server's maximum of 8192"),
    ("time_limit_s", 60.5, "time_limit_s=60.5 is above this server's maximum of 60.0"),
    ("max_processes", -2, "max_processes must not be negative, got -2"),  # a uint in the proto
])
def test_bad_limits_are_refused_with_a_reason(field, value, message):
    requested = SimpleNamespace(**{name: 0 for name in pb.Limits.DESCRIPTOR.fields_by_name})
    setattr(requested, field, value)
    with pytest.raises(LimitError) as error:
        resolve_limits(requested)
    assert str(error.value) == message


def test_the_maximum_itself_is_allowed_and_the_wall_cap_is_bounded():
    at_max = resolve_limits(pb.Limits(time_limit_s=60.0, memory_limit_mb=8192))
    assert at_max.time_limit_s == 60.0 and at_max.memory_mb == 8192
    # 2 × 60 + 1 = 121 s fits under 180 s; a derived cap above the maximum is clamped
    assert at_max.wall_s == 121.0
    small_max = replace(MAX_LIMITS, wall_limit_s=10.0)
    clamped = resolve_limits(pb.Limits(time_limit_s=6.0), maximum=small_max)
    assert clamped.wall_s == 10.0 and clamped.wall_limit_s == 10.0
    exact = resolve_limits(pb.Limits(time_limit_s=4.5), maximum=small_max)  # 2 × 4.5 + 1 = 10
    assert exact.wall_s == 10.0 and exact.wall_limit_s == 0.0


def test_limits_to_proto_reports_the_derived_wall_cap():
    message = pb.Limits()
    limits_to_proto(LIMITS, message)
    assert (message.time_limit_s, message.wall_limit_s, message.memory_limit_mb) == (1.0, 3.0, 64)
    assert (message.output_limit_bytes, message.file_size_limit_bytes) == (1000, 500)
    assert message.max_processes == LIMITS.max_processes and message.max_open_files == LIMITS.max_open_files


# ---------------------------------------------------------------- verdicts


def test_a_clean_exit_has_no_verdict():
    assert classify_run(raw(), LIMITS) is None
    assert classify_run(raw(cpu_s=1.0, maxrss_kb=64 * 1024), LIMITS) is None  # at the limits: fine


def test_output_limit_comes_first():
    assert classify_run(raw(killed_for="output", cpu_s=5.0), LIMITS) == (
        pb.OLE, "output exceeded 1000 bytes")


@pytest.mark.parametrize("run", [raw(killed_for="cpu", cpu_s=0.5), raw(cpu_s=1.001),
                                 raw(signal=signal.SIGXCPU, exit_code=0, cpu_s=0.9)])
def test_cpu_time_over_the_limit_is_tle(run):
    verdict, message = classify_run(run, LIMITS)
    assert verdict == pb.TLE
    assert message == f"CPU time {run.cpu_s:.3f} s exceeded the limit of 1 s"


def test_wall_cap_is_tle_that_says_so():
    assert classify_run(raw(killed_for="wall", cpu_s=0.25), LIMITS) == (
        pb.TLE, "wall-clock time exceeded 3 s (the program slept or blocked; CPU time 0.250 s)")


def test_peak_memory_over_the_limit_is_mle_even_on_a_clean_exit():
    assert classify_run(raw(maxrss_kb=64 * 1024 + 1), LIMITS) == (
        pb.MLE, f"peak memory {64 * 1024 + 1} KiB exceeded the limit of 64 MiB")


def test_a_failing_run_near_the_limit_is_mle():
    near = math.ceil(MLE_PEAK_FRACTION * 64 * 1024)
    assert classify_run(raw(exit_code=1, maxrss_kb=near), LIMITS) == (
        pb.MLE, f"memory limit of 64 MiB exceeded (peak {near} KiB)")
    assert classify_run(raw(exit_code=1, maxrss_kb=near - 1), LIMITS)[0] == pb.RE
    assert classify_run(raw(signal=signal.SIGKILL, maxrss_kb=near), LIMITS)[0] == pb.MLE
    ten = RunLimits(memory_mb=10)  # 0.9 × 10 MiB is exactly 9216 KiB: the boundary counts
    assert classify_run(raw(exit_code=1, maxrss_kb=9216), ten)[0] == pb.MLE
    assert classify_run(raw(exit_code=1, maxrss_kb=9215), ten)[0] == pb.RE


TRACEBACK = b"Traceback (most recent call last):\n  File \"main.py\", line 1\n"


@pytest.mark.parametrize("stderr, sig", [
    (TRACEBACK + b"MemoryError\n", 0),
    (TRACEBACK + b"MemoryError: cannot allocate\n", 0),
    (b"terminate called after throwing an instance of 'std::bad_alloc'\n", signal.SIGABRT)])
def test_an_allocation_failure_is_mle(stderr, sig):
    failed = raw(exit_code=0 if sig else 1, signal=sig, stderr=b"x" * 10 + stderr)
    assert classify_run(failed, LIMITS)[0] == pb.MLE
    assert classify_run(raw(exit_code=0, stderr=stderr), LIMITS) is None  # only when it failed


@pytest.mark.parametrize("stderr, sig", [
    (b"MemoryError\n", 0),                                   # printed, then exit 1
    (TRACEBACK + b"MemoryError\nValueError: later\n", 0),      # not what ended it
    (b"Cannot allocate memory\n", 0), (b"out of memory\n", 0),
    (b"std::bad_alloc\n", 0)])                              # printed; not an abort
def test_printing_the_words_is_not_mle(stderr, sig):
    assert classify_run(raw(exit_code=1, signal=sig, stderr=stderr), LIMITS) == (pb.RE, "exit code 1")


def test_only_the_stderr_tail_is_searched():
    buried = TRACEBACK + b"x" * 4097 + b"\nMemoryError\n"  # the traceback header is 4097+ back
    assert classify_run(raw(exit_code=1, stderr=buried), LIMITS) == (pb.RE, "exit code 1")
    near = b"x" * 4000 + TRACEBACK + b"MemoryError\n"
    assert classify_run(raw(exit_code=1, stderr=near), LIMITS)[0] == pb.MLE


def test_runtime_errors_name_their_cause():
    assert classify_run(raw(signal=signal.SIGXFSZ), LIMITS) == (
        pb.RE, "file size limit of 500 bytes exceeded")
    assert classify_run(raw(signal=signal.SIGSEGV), LIMITS) == (pb.RE, "killed by SIGSEGV")
    assert classify_run(raw(exit_code=3), LIMITS) == (pb.RE, "exit code 3")
    assert classify_run(raw(exit_code=-1), LIMITS) == (pb.RE, "exit code -1")


def test_signal_names():
    assert signal_name(9) == "SIGKILL"
    assert signal_name(200) == "signal 200"

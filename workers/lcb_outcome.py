"""A test's verdict under lcb_runner's execution model, before its output is compared.

The harness (workers/lcb_harness.py) reports on the result channel how the test ended; the
process's own limits (output, CPU time, memory) still come first.
"""
from __future__ import annotations

import json

from sandbox.v1 import sandbox_pb2 as pb
from workers.jail import RawRun
from workers.limits import RunLimits
from workers.verdicts import classify_run

LIMIT_VERDICTS = (pb.OLE, pb.TLE, pb.MLE)


def _record(result: bytes | None) -> dict | None:
    """The outcome record: the result channel's first line."""
    if not result:
        return None
    try:
        found = json.loads(result.partition(b"\n")[0])
    except ValueError:
        return None
    return found if isinstance(found, dict) and "lcb" in found else None


def functional_payload(result: bytes | None) -> bytes:
    """A functional result's envelope, after the outcome record (compare_functional's input)."""
    return (result or b"").partition(b"\n")[2]


def harness_failure(raw: RawRun, limits: RunLimits) -> tuple[int, str] | None:
    """TLE / MLE / RE / OLE with a message, or None when the program's call returned (or,
    for a stdin program, raised SystemExit) and its output is to be compared."""
    failure = classify_run(raw, limits)
    if failure is not None and failure[0] in LIMIT_VERDICTS:
        return failure
    record = _record(raw.result)
    if record is None:
        detail = f" ({failure[1]})" if failure is not None else ""
        return pb.RE, ("the test process ended before the program's call returned (os._exit, "
                       f"a signal or a crash){detail}: a failure in lcb_runner")
    kind, exception = record["lcb"], record.get("exception") or ""
    if kind == "timeout":
        return pb.TLE, (f"{exception or 'TimeoutException'}: lcb_runner's per-test alarm, "
                        f"{limits.time_limit_s:g} s of wall-clock time not counting the time "
                        "spent waiting for a CPU")
    if kind == "error":
        return pb.RE, exception or "an exception"
    if kind == "exit":
        return pb.RE, (f"{exception} ended the test process (outside a stdin program's call, "
                       "lcb_runner's worker exits: a failure)")
    return failure

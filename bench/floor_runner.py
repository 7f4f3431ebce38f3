"""The machine's floor for grading Python programs: no isolation at all (not a product path).

Warm interpreters (one per core, the jail agent's modules and LiveCodeBench's header already
imported) fork once per test, feed stdin through a pipe, read stdout and compare, and stop at
the first failure: what grading would cost if isolation, limits and the protocol were free.
Used by bench/bench_overhead.py and bench/bench_reward.py to print ratios against.
"""
from __future__ import annotations

import io
import json
import os
import resource
import select
import signal
import sys
import time
import types
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.agent import LCB_HEADER, WARM_MODULES  # noqa: E402
from workers.compare import compare_lcb_stdin  # noqa: E402

_HEADER: dict = {}


def warm() -> None:
    """Imports what the jail's agent has warm, and runs the header once (for forks to copy)."""
    for name in WARM_MODULES:
        __import__(name)
    if not _HEADER:
        exec(compile(LCB_HEADER, "header", "exec"), _HEADER)


def _child_stdin(code, data: bytes, out_w: int, time_limit: float, header: bool = True) -> None:
    fd = os.memfd_create("stdin")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, 0)
    os.dup2(out_w, 1)
    resource.setrlimit(resource.RLIMIT_CPU, (int(time_limit) + 1, int(time_limit) + 2))
    sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False))
    sys.stdout = io.TextIOWrapper(io.open(1, "wb", closefd=False))
    namespace = dict(_HEADER, __name__="__main__") if header else {"__name__": "__main__"}
    status = 0
    try:
        exec(code, namespace)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001
        status = 1
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001
        status = 1
    os._exit(status)


def _child_functional(code, func_name: str, args: list, out_w: int, time_limit: float) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (int(time_limit) + 1, int(time_limit) + 2))
    module = types.ModuleType("tmp_sol")
    module.__dict__.update(_HEADER)
    try:
        exec(code, module.__dict__)
        owner = module.Solution() if hasattr(module, "Solution") else module
        result = getattr(owner, func_name)(*args)
        payload = json.dumps(result).encode()
        os.write(out_w, payload)
        os._exit(0)
    except BaseException:  # noqa: BLE001
        os._exit(1)


def _run_one(target, wall_s: float) -> tuple[int, bytes]:
    """(exit status, stdout) of one forked test; killed after wall_s."""
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        target(out_w)
    os.close(out_w)
    chunks, deadline = [], time.monotonic() + wall_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([out_r], [], [], left)
        if not ready:
            continue
        chunk = os.read(out_r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(out_r)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks)


def grade_bare(code_text: str | None, tests: list[dict], kind: str, func_name: str,
               time_limit: float) -> bool:
    """True when every test passes (the first failure stops), all unisolated."""
    if code_text is None:
        return False
    try:
        code = compile(code_text, "main.py", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    wall = 2 * time_limit + 1
    for test in tests:
        if kind == "functional":
            try:
                args = [json.loads(line) for line in test["input"].split("\n")]
                expected = json.loads(test["output"])
            except ValueError:
                return False
            status, out = _run_one(lambda w: _child_functional(code, func_name, args, w, time_limit), wall)
            if status != 0:
                return False
            try:
                got = json.loads(out)
            except ValueError:
                return False
            if got != expected and not (isinstance(expected, list) and got == list(expected)):
                return False
        else:
            data = test["input"].encode()
            status, out = _run_one(lambda w: _child_stdin(code, data, w, time_limit), wall)
            if status != 0 or not compare_lcb_stdin(out, test["output"].encode()).accepted:
                return False
    return True


def _grade_job(job: tuple) -> bool:
    return grade_bare(*job)


def grade_all_bare(jobs: list[tuple], workers: int) -> list[bool]:
    """grade_bare over many submissions, `workers` warm interpreters at once (all cores busy)."""
    with get_context("fork").Pool(workers, initializer=warm) as pool:
        return pool.map(_grade_job, jobs, chunksize=1)


def bare_fork_ms_per_test(count: int, source: str, make_input, header: bool = False) -> float:
    """Milliseconds per test of `count` forked tests of one stdin program (the per-test floor;
    header: the program's namespace starts from LiveCodeBench's header, as in lcb modes)."""
    warm()
    code = compile(source, "main.py", "exec")
    started = time.perf_counter()
    for index in range(count):
        data = make_input(index)
        _run_one(lambda w: _child_stdin(code, data, w, 2.0, header), 5.0)
    return (time.perf_counter() - started) * 1000 / count

"""Math-verify judges in child processes, with a per-sample timeout that is real.

Why processes: math-verify bounds its work with `signal.alarm`, which only works in a process's
main thread; verl runs reward functions in threads and event loops, where that timeout is off or
raises (verl's own history: SIGALRM in threads fails silently), and a sympy call stuck in C code
ignores Python-level cancellation anyway. Here each judge is a `python -m verl_plugin.math_worker`
child; a sample that runs past `timeout_s` gets its judge SIGKILLed (and a fresh one started), and
the caller is told `timed_out=True` — never a plain "not equal".

`VerifierPool.check` blocks; it is thread-safe, so async callers run it in a thread
(`asyncio.to_thread`) and one pool serves every event loop of a process.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0


class VerifierError(RuntimeError):
    """A judge could not start or answered nonsense: the reward must stop, not score 0."""


@dataclass(frozen=True)
class Check:
    equal: bool
    timed_out: bool = False
    seconds: float = 0.0


class Judge:
    """One child process running `verl_plugin.math_worker`."""

    def __init__(self, python: str = sys.executable) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([python, "-m", "verl_plugin.math_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                        text=True, bufsize=1)
        reply = self._read(START_TIMEOUT_S)
        if reply is None or not reply.get("ready"):
            self.kill()
            raise VerifierError(f"the math-verify judge did not start within {START_TIMEOUT_S:g} s "
                                "(is math-verify installed? pip install 'math-verify[antlr4_9_3]')")

    def _read(self, timeout_s: float) -> dict | None:
        """The next reply line, or None when none came within timeout_s (or the child died)."""
        stdout = self.process.stdout
        ready, _, _ = select.select([stdout], [], [], max(0.0, timeout_s))
        if not ready:
            return None
        line = stdout.readline()
        if not line:
            return None
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise VerifierError(f"the math-verify judge answered {line[:200]!r}") from None

    def check(self, golds: list[str], answer: str, timeout_s: float) -> Check:
        started = time.monotonic()
        try:
            request = {"gold": golds, "answer": answer, "cpu_limit_s": timeout_s}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise VerifierError(f"the math-verify judge is gone: {exc}") from None
        reply = self._read(timeout_s)
        seconds = time.monotonic() - started
        if reply is None:
            if self.process.poll() is not None:
                raise VerifierError(f"the math-verify judge died (exit {self.process.returncode})")
            return Check(equal=False, timed_out=True, seconds=seconds)
        if "error" in reply:
            raise VerifierError(f"math-verify failed on answer {answer[:200]!r}: {reply['error']}")
        return Check(equal=bool(reply["equal"]), seconds=seconds)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class VerifierPool:
    """`size` judges, started on first use; a timed-out judge is killed and replaced."""

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise ValueError(f"the verifier pool needs at least one judge, got {size}")
        self.size = size
        self._idle: queue.Queue[Judge] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()
        self.killed = 0  # judges killed for a timeout (for tests and metrics)

    def _take(self) -> Judge:
        """An idle judge, a new one while fewer than `size` run, else waits for one."""
        while True:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                start = self._started < self.size
                if start:
                    self._started += 1
            if start:
                try:
                    return Judge()
                except BaseException:
                    with self._lock:
                        self._started -= 1
                    raise
            try:
                return self._idle.get(timeout=0.05)
            except queue.Empty:
                continue  # a judge may have been killed meanwhile: its slot is free again

    def check(self, golds: list[str], answer: str, timeout_s: float) -> Check:
        judge = self._take()
        keep = False
        try:
            result = judge.check(golds, answer, timeout_s)
            keep = not result.timed_out and judge.alive()
            return result
        finally:
            if keep:
                self._idle.put(judge)
            else:
                judge.kill()
                with self._lock:
                    self._started -= 1
                    self.killed += 1

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


_POOLS: dict[int, VerifierPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(size: int) -> VerifierPool:
    """One pool per process and size (verl's reward workers keep theirs for the whole run)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(size)
        if pool is None:
            pool = _POOLS[size] = VerifierPool(size)
            atexit.register(pool.close)  # its judges would only notice a second later
        return pool

"""Keeps moves into cgroups fast while requests come in, so a test's first move is not slow.

Moving a process into a cgroup takes the kernel's global cgroup_threadgroup_rwsem for writing;
after some 50 ms without any such move, the next one first waits for an RCU grace period
(10–30 ms measured here: README, "Benchmarks"). Every test process makes one move, so a request
arriving at an idle server would pay it. While requests arrived in the last `active_s`, this
moves one sleeping process of its own between two empty cgroups every `period_s` (about 0.5 %
of a core), which keeps the kernel on its fast path, as cgroup2's `favordynmods` mount option
does where the mount can be changed. Readers (fork, exit) take a slightly slower path meanwhile.
"""
from __future__ import annotations

import logging
import os
import subprocess
import threading
import time

from workers import cgroups

log = logging.getLogger("sandbox.cgroup_warmth")
PERIOD_S = 0.01
ACTIVE_S = 60.0


class MigrationWarmth:
    """Started with the ready-jail pool; poke() on every request."""

    def __init__(self, found: cgroups.CgroupSupport, *, period_s: float = PERIOD_S,
                 active_s: float = ACTIVE_S) -> None:
        self.period_s, self.active_s = period_s, active_s
        self._found = found
        self._active_until = 0.0
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._sleeper: subprocess.Popen | None = None
        self._cgroups: list[cgroups.JailCgroup] = []
        self._fds: list[int] = []
        self.moves = 0

    def start(self) -> bool:
        """False (and nothing started) where there is no cgroup to move a process into."""
        if not self._found.any or self._thread is not None:
            return False
        try:
            # One hierarchy is enough: the semaphore is global to all of them.
            only = next(h for h in (self._found.pids, self._found.memory, self._found.cpu) if h)
            single = cgroups.CgroupSupport(pids=only)
            self._cgroups = [cgroups.JailCgroup(single, "warmth") for _ in range(2)]
            self._fds = [c.procs_fds()[0] for c in self._cgroups]
            # `cat` on a pipe only this process holds: it exits when the server does, however.
            self._sleeper = subprocess.Popen(["cat"], stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:
            log.warning("cannot keep cgroup moves fast: %s", exc)
            self.close()
            return False
        self._thread = threading.Thread(target=self._run, name="cgroup-warmth", daemon=True)
        self._thread.start()
        return True

    def poke(self) -> None:
        self._active_until = time.monotonic() + self.active_s
        self._wake.set()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sleeper is not None:
            self._sleeper.kill()
            self._sleeper.wait()
            self._sleeper.stdin.close()
        for fd in self._fds:
            os.close(fd)
        for cgroup in self._cgroups:
            cgroup.destroy()
        self._fds, self._cgroups = [], []

    def _run(self) -> None:
        pid = str(self._sleeper.pid).encode()
        which = 0
        while not self._closed.is_set():
            if time.monotonic() > self._active_until:
                self._wake.clear()
                if time.monotonic() > self._active_until:  # no poke came meanwhile
                    self._wake.wait()
                continue
            try:
                os.write(self._fds[which], pid)
                self.moves += 1
            except OSError as exc:
                log.warning("cgroup moves no longer kept fast: %s", exc)
                return
            which = 1 - which
            self._closed.wait(self.period_s)

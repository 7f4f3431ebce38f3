"""Fresh jails started ahead of requests, a few per language, so a submission does not wait
for bubblewrap and the agent's interpreter.

A ready jail has run no code but ours: it is handed to exactly one submission and closed
after it, as an on-demand jail is. The pool refills in a background thread only while the
server has free grading slots (jails started while every slot is busy would take CPU from
running tests), keeps jails only for languages asked for recently, and closes the ones of
a language nobody asked for within `idle_s`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from workers.jail import Jail, JailError
from workers.languages.base import Language

log = logging.getLogger("sandbox.jail_pool")
DEFAULT_IDLE_S = 120.0
RETRY_AFTER_FAILURE_S = 5.0


@dataclass
class PoolStats:
    """One language's ready jails and what happened to requests for it."""

    language: str
    ready: int = 0
    started: int = 0  # jails the pool started
    taken: int = 0  # requests that got a ready jail
    missed: int = 0  # requests that found none and started their own
    closed_idle: int = 0  # ready jails closed because nobody asked for the language


class JailPool:
    """Keeps up to `per_language` ready jails for each language in demand."""

    def __init__(self, start_jail: Callable[[Language], Jail], *, per_language: int,
                 free_slots: Callable[[], int], idle_s: float = DEFAULT_IDLE_S) -> None:
        """start_jail: starts and prepares a jail (the judge's own way, minus the request).
        free_slots: grading slots not in use right now (refills wait for one)."""
        self._start_jail = start_jail
        self.per_language = max(0, per_language)
        self._free_slots = free_slots
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._ready: dict[str, deque[Jail]] = {}
        self._languages: dict[str, Language] = {}
        self._asked: dict[str, float] = {}  # language -> last request (monotonic)
        self._stats: dict[str, PoolStats] = {}
        self._failed_until = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ requests
    def want(self, language: Language) -> None:
        """Marks a language as in demand (e.g. the default one at start-up)."""
        with self._lock:
            self._note_demand(language)
            self._wake.notify()

    def take(self, language: Language) -> Jail | None:
        """A ready jail for the language (its only user from now on), or None."""
        with self._lock:
            self._note_demand(language)
            stats = self._stats[language.name]
            queue = self._ready.get(language.name)
            while queue:
                jail = queue.popleft()
                stats.ready = len(queue)
                if jail.alive:
                    stats.taken += 1
                    self._wake.notify()
                    return jail
                self._close_later(jail)
            stats.missed += 1
            self._wake.notify()
            return None

    def stats(self) -> list[PoolStats]:
        with self._lock:
            return [PoolStats(**vars(s)) for _, s in sorted(self._stats.items())]

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.per_language == 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._refill_forever, name="jail-pool",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops refilling and closes every ready jail."""
        with self._lock:
            self._closed = True
            jails = [jail for queue in self._ready.values() for jail in queue]
            self._ready.clear()
            for stats in self._stats.values():
                stats.ready = 0
            self._wake.notify_all()
        for jail in jails:
            jail.kill()
            jail.close()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ------------------------------------------------------------ the refill thread
    def _note_demand(self, language: Language) -> None:
        self._languages[language.name] = language
        self._asked[language.name] = time.monotonic()
        self._stats.setdefault(language.name, PoolStats(language.name))

    @staticmethod
    def _close_later(jail: Jail) -> None:
        jail.kill()
        jail.close_soon()

    def _next_to_start(self) -> Language | None:
        """The language most short of ready jails, if a slot is free; closes idle ones."""
        now = time.monotonic()
        for name, asked in list(self._asked.items()):
            if now - asked > self.idle_s and self._ready.get(name):
                for jail in self._ready.pop(name):
                    self._close_later(jail)
                    self._stats[name].closed_idle += 1
                self._stats[name].ready = 0
        if now < self._failed_until or self._free_slots() <= 0:
            return None
        wanted = [(len(self._ready.get(name, ())), -asked, name)
                  for name, asked in self._asked.items()
                  if now - asked <= self.idle_s
                  and len(self._ready.get(name, ())) < self.per_language]
        if not wanted:
            return None
        return self._languages[min(wanted)[2]]

    def _refill_forever(self) -> None:
        while True:
            with self._lock:
                language = None
                while not self._closed:
                    language = self._next_to_start()
                    if language is not None:
                        break
                    self._wake.wait(timeout=1.0)
                if self._closed:
                    return
            try:
                jail = self._start_jail(language)
            except (JailError, OSError) as exc:
                log.warning("cannot start a ready %s jail: %s", language.name, exc)
                with self._lock:
                    self._failed_until = time.monotonic() + RETRY_AFTER_FAILURE_S
                continue
            with self._lock:
                if self._closed:
                    closing = jail
                else:
                    closing = None
                    self._ready.setdefault(language.name, deque()).append(jail)
                    stats = self._stats[language.name]
                    stats.started += 1
                    stats.ready = len(self._ready[language.name])
            if closing is not None:
                closing.kill()
                closing.close()

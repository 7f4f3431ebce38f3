"""Checkers and interactors (testlib conventions), each in a jail of its own.

C++ helpers are compiled once and the binary cached by the digest of language,
source and extra files (e.g. a Polygon package's testlib.h); later submissions
copy the cached binary into a fresh jail instead of compiling again.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from sandbox.v1 import sandbox_pb2 as pb
from workers.jail import Jail, JailError, RawRun
from workers.languages.base import Language
from workers.limits import COMPILE_LIMITS, RunLimits

HELPER_LIMITS = RunLimits(time_limit_s=10.0, memory_mb=1024)
CACHE_ENTRIES = 256
_CHECKER_FILES = ("input.txt", "output.txt", "answer.txt")
# testlib exit codes: 0 ok, 1 wrong answer, 2 presentation error, 3 fail, 7 points.
_EXIT_VERDICTS = {0: pb.AC, 1: pb.WA, 2: pb.PE}


def helper_digest(helper: pb.Checker) -> str:
    digest = hashlib.sha256()
    for part in (helper.language, helper.source):
        digest.update(part.encode("utf-8", errors="surrogatepass") + b"\0")
    for extra in sorted(helper.files, key=lambda f: f.name):
        digest.update(extra.name.encode() + b"\0" + hashlib.sha256(extra.content).digest())
    return digest.hexdigest()


class BinaryCache:
    """Compiled helper binaries by digest (LRU, in memory)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.entries = entries

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, binary: bytes) -> None:
        with self._lock:
            self._items[key] = binary
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def build_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._building.setdefault(key, threading.Lock())


class HelperProgram:
    """A checker or interactor loaded into its own jail for one submission."""

    def __init__(self, jail: Jail, language: Language, helper: pb.Checker,
                 cache: BinaryCache) -> None:
        self.jail = jail
        self.language = language
        self.helper = helper
        self.cache = cache

    def prepare(self) -> None:
        """Puts the helper in the jail: cached binary, fresh compile, or script."""
        jail, language = self.jail, self.language
        if not language.compiled:
            jail.write_file(language.source_file, self.helper.source.encode("utf-8",
                                                                             errors="surrogatepass"))
            return
        key = helper_digest(self.helper)
        binary = self.cache.get(key)
        if binary is None:
            with self.cache.build_lock(key):
                binary = self.cache.get(key)
                if binary is None:
                    binary = self._compile()
                    self.cache.put(key, binary)
        jail.write_file("main", binary, mode=0o755)

    def _compile(self) -> bytes:
        jail, language = self.jail, self.language
        for extra in self.helper.files:
            if "/" in extra.name or extra.name in ("", ".", ".."):
                raise JailError(f"bad helper file name {extra.name!r}")
            jail.write_file(extra.name, extra.content)
        jail.write_file(language.source_file, self.helper.source.encode("utf-8",
                                                                         errors="surrogatepass"))
        raw = jail.run(COMPILE_LIMITS, argv=list(language.compile_argv))
        if raw.exit_code != 0 or raw.signal != 0 or raw.killed_for:
            log = (raw.stderr + raw.stdout).decode("utf-8", errors="replace")[-3000:]
            raise JailError(f"the checker/interactor does not compile: {log}")
        return jail.read_file("main")

    def argv(self, *args: str) -> list[str]:
        if self.language.python_fast_path:
            return [self.language.agent_interpreter, self.language.source_file, *args]
        return [*self.language.run_argv, *args]

    def run(self, limits: RunLimits, *args: str, **kwargs) -> RawRun:
        return self.jail.run(limits, argv=self.argv(*args), **kwargs)


def exit_code_verdict(raw: RawRun, role: str) -> tuple[int, str]:
    """A helper's verdict from its exit status; crashes and timeouts are SE, never WA."""
    comment = (raw.stderr or raw.stdout).decode("utf-8", errors="replace").strip()[:500]
    if raw.killed_for or raw.signal:
        reason = {"cpu": "time limit", "wall": "wall-clock limit",
                  "output": "output limit"}.get(raw.killed_for or "", f"signal {raw.signal}")
        return pb.SE, f"{role} failed ({reason})"
    if raw.exit_code == 1 and b"Traceback (most recent call last)" in raw.stderr:
        # A Python helper that crashed exits 1 too: that is the helper failing, not a WA.
        return pb.SE, f"{role} crashed: {comment[-300:]}"
    if raw.exit_code == 7:
        return pb.WA, f"partial points: {comment}"
    verdict = _EXIT_VERDICTS.get(raw.exit_code)
    if verdict is None:
        return pb.SE, f"{role} failed with exit code {raw.exit_code}: {comment}"
    return verdict, comment


def check_output(checker: HelperProgram, test: pb.TestCase, output: bytes) -> tuple[int, str]:
    """Runs `checker input.txt output.txt answer.txt`."""
    for name, data in zip(_CHECKER_FILES, (test.input, output, test.output)):
        checker.jail.write_file(name, data)
    return exit_code_verdict(checker.run(HELPER_LIMITS, *_CHECKER_FILES), "checker")

"""Checkers and interactors (testlib conventions), each in a jail of its own.

C++ helpers are compiled once and the binary cached by the digest of language,
source and extra files (e.g. a Polygon package's testlib.h); later submissions
copy the cached binary into a fresh jail instead of compiling again.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import replace

from sandbox.v1 import sandbox_pb2 as pb
from workers import open_r1
from workers.jail import Jail, JailError, RawRun
from workers.languages.base import Language
from workers.limits import COMPILE_LIMITS, RunLimits

# A checker's or interactor's own limits (one process, threads allowed). A checker reads
# what the contestant wrote, so its budget grows with the bytes it is given (input, output
# and answer, the output bounded by the output limit): CHECKER_MB_PER_MIB and
# CHECKER_S_PER_MIB more per MiB, up to CHECKER_MAX_MB / CHECKER_MAX_S.
HELPER_LIMITS = RunLimits(time_limit_s=10.0, memory_mb=1024)
CHECKER_MB_PER_MIB = 32
CHECKER_S_PER_MIB = 0.5
CHECKER_MAX_MB = 8192
CHECKER_MAX_S = 60.0
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
    """Compiled helper binaries by digest (LRU, in memory), bounded in entries and in bytes.

    A helper's binary size is up to whoever wrote it (a 200 MB static array is one line), so
    the cache holds at most `max_bytes` (default 256 MiB) of binaries; a binary bigger than
    that is used for its submission and not kept (the next one compiles it again).
    """

    DEFAULT_MAX_BYTES = 256 << 20

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.entries = entries
        self.max_bytes = max_bytes
        self.total_bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, binary: bytes) -> None:
        with self._lock:
            self._building.pop(key, None)  # built: later callers find it here (or build again)
            if key in self._items:
                self.total_bytes -= len(self._items.pop(key))
            if len(binary) > self.max_bytes:
                return
            self._items[key] = binary
            self.total_bytes += len(binary)
            while len(self._items) > self.entries or self.total_bytes > self.max_bytes:
                self.total_bytes -= len(self._items.popitem(last=False)[1])

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
        raw = jail.run(COMPILE_LIMITS, argv=list(language.compile_argv), role="compile",
                       clean=False)
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


def checker_limits(given_bytes: int) -> RunLimits:
    """HELPER_LIMITS grown for a checker that is given `given_bytes` to read."""
    mib = -(-given_bytes // (1 << 20))
    return replace(HELPER_LIMITS,
                   memory_mb=min(CHECKER_MAX_MB, HELPER_LIMITS.memory_mb + CHECKER_MB_PER_MIB * mib),
                   time_limit_s=min(CHECKER_MAX_S, HELPER_LIMITS.time_limit_s + CHECKER_S_PER_MIB * mib))


def check_output(checker: HelperProgram, test: pb.TestCase, output: bytes) -> tuple[int, str]:
    """Runs the checker by its convention (testlib unless the Checker says open-r1)."""
    if checker.helper.convention == pb.Checker.OPEN_R1:
        return _check_open_r1(checker, test, output)
    files = (test.input, output, test.output)
    for name, data in zip(_CHECKER_FILES, files):
        checker.jail.write_file(name, data)
    limits = checker_limits(sum(len(data) for data in files))
    return exit_code_verdict(checker.run(limits, *_CHECKER_FILES), "checker")


_OPEN_R1_FILES = ("input.txt", "correct_output.txt", "solution_output.txt")


def _check_open_r1(checker: HelperProgram, test: pb.TestCase, output: bytes) -> tuple[int, str]:
    """`checker input answer output` on open-r1's normalised files; AC iff it prints 1 or 100.

    As in open-r1, anything else is WA, a crash or a timeout included: the checker's output
    is the verdict, its exit status is not.
    """
    files = (open_r1.strip_carriage_returns(test.input), open_r1.normalize_answer(test.output),
             open_r1.drop_empty_lines(output))
    for name, data in zip(_OPEN_R1_FILES, files):
        checker.jail.write_file(name, data)
    limits = replace(checker_limits(sum(len(data) for data in files)),
                     time_limit_s=open_r1.CHECKER_SECONDS, wall_limit_s=open_r1.CHECKER_SECONDS)
    raw = checker.run(limits, *_OPEN_R1_FILES)
    if open_r1.checker_accepts(raw.stdout) and not raw.killed_for:
        return pb.AC, ""
    printed = raw.stdout.decode("utf-8", errors="replace").strip()[:100]
    if raw.killed_for:
        why = f"the checker was stopped ({raw.killed_for} limit)"
    elif raw.exit_code or raw.signal:
        why = f"the checker failed (status {raw.exit_code}/{raw.signal}) printing {printed!r}"
    else:
        why = f"the checker printed {printed!r}"
    return pb.WA, f"{why}; open-r1 accepts only 1 or 100"

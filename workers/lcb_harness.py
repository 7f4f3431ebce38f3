"""LiveCodeBench's execution model (lcb_runner's testing_util) for one test, in the jail.

Written from reading lcb_runner (LiveCodeBench @28fef95: grade_stdio, grade_call_based,
call_method, reliability_guard, compute_code_generation_metrics), not copied from it. What a
solution observes there, it observes here:

- stdin programs: a last statement `if __name__ == '__main__':` (as ast.unparse spells it) is
  inlined; top-level imports run first, at module level, after LiveCodeBench's import header;
  every other statement becomes the body of a function `wrapped_function` in a module named
  `tmp_sol`, which is called once per test. A source containing the text `class Solution`
  must define it at module level (it is instantiated, as for LeetCode problems).
- during the call: `sys.stdin` is a stand-in over the test's input (read() returns all of it,
  whatever was read before; readlines() is the input split on "\\n"; readline() and input() read
  lines; it cannot be iterated; `.buffer.readline()` is always the first line); the methods
  read / readline / readlines of the original `sys.stdin` (the one `from sys import stdin` and
  the header's `from sys import *` bound) return the input, its lines without "\\n", the lines;
  `builtins.open` is unittest.mock's mock_open over the input; `sys.stdout` is a StringIO
  whose text is the output (closing it raises). The real fds 0 and 1 are /dev/null there, as
  in lcb_runner's worker process (its own stdin closed, the output not graded).
- SystemExit during a stdin program's call is swallowed: the output so far is graded. In a
  functional call, or outside the call, it ends the test process (lcb_runner's -1: a failure).
- reliability_guard's disabled names (`quit`, `help`, os.getcwd, os.kill, ... set to None;
  `resource`, `psutil`, ... unimportable), Python's int-string limit at 50,000 digits.
- an exception is a runtime error, or a time limit when its repr contains "timeoutexception"
  (lcb_runner's test); a per-test alarm raises `TimeoutException` in the program.

The one difference is time: lcb_runner's alarm is wall-clock. Here TLE stays on CPU time (the
agent's limit) and the alarm counts wall-clock time minus the time the program waited for a
CPU (from /proc/self/schedstat; without it, the time it spent off the CPU), so a program that
sleeps or blocks past the limit is TLE as there, and one slowed by load is not.

Stdlib-only: this file runs in the jail's interpreter (CPython 3 or PyPy 3), imported by the
agent, next to which it is mounted.
"""
import ast
import builtins
import contextlib
import io
import json
import os
import pickle  # lcb_runner's worker pickles its results (settle)
import shutil  # imported ahead (warm for forked tests): the guard disables names in it
import signal
import subprocess  # likewise
import sys
import time
import traceback
import types
from unittest import mock

MODULE_NAME = "tmp_sol"
WRAPPER_NAME = "wrapped_function"
INT_MAX_STR_DIGITS = 50000  # compute_code_generation_metrics' sys.set_int_max_str_digits
MAIN_GUARD = "__name__ == '__main__'"
OS_DISABLED = (
    "kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename "
    "renames truncate replace unlink fchmod fchown chmod chown chroot lchflags lchmod lchown "
    "getcwd chdir").split()
SHUTIL_DISABLED = ("rmtree", "move", "chown")
MODULES_DISABLED = ("ipdb", "joblib", "resource", "psutil", "tkinter")
ERROR_CHARS = 2000  # of an exception's repr in the outcome record

_read_fd, _open_fd, _close_fd = os.read, os.open, os.close  # the program may replace os's


class TimeoutException(Exception):
    """Raised in the program by the per-test alarm (lcb_runner's name: its verdict keys on it)."""


# ---------------------------------------------------------------- the program's text

_prepared = {}  # (mode, source) -> program text, filled in the agent before tests fork


def _inline_main_guard(code):
    """grade_stdio's clean_if_name: the last statement, if it is the main guard, inlined."""
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == MAIN_GUARD:
            return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:  # noqa: BLE001 - the code is then used as it is
        pass
    return code


def _wrap_in_function(code, header):
    """grade_stdio's make_function: header, the top-level imports, the rest in a function."""
    try:
        tree = ast.parse(code)
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        others = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
        function = ast.FunctionDef(
            name=WRAPPER_NAME,
            args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=others, decorator_list=[], lineno=-1)
        return header + "\n" + ast.unparse(imports) + "\n" + ast.unparse(function)
    except Exception:  # noqa: BLE001 - the code is then used as it is
        return code


# Modules lcb_runner's worker has imported before its guard runs (testing_util imports numpy),
# which therefore import fine there whatever the guard disables, and the names in a source
# that may import them (directly or through scipy, pandas, ...).
PRELOADED = ("numpy",)
PRELOAD_HINTS = ("numpy", "scipy", "pandas", "networkx", "sympy", "mpmath", "numba", "torch")


def preload(source):
    """Imports PRELOADED ahead, in the agent (single-threaded BLAS: tests are its forks),
    when the source names a module that may need them."""
    if not any(hint in source for hint in PRELOAD_HINTS):
        return
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    for name in PRELOADED:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - not installed: the program's import fails as there
            pass


def program_text(source, mode, header):
    """The text lcb_runner executes for this source: stdin programs transformed, functional
    ones behind the header. Remembered for program_text_of (the `class Solution` test)."""
    if mode == "functional":
        text = header + "\n\n" + source
    else:
        text = _wrap_in_function(_inline_main_guard(source), header)
    _prepared[(mode, source)] = text
    return text


def program_text_of(source, mode):
    return _prepared[(mode, source)]


# ---------------------------------------------------------------- the process lcb_runner's worker is

def _devnull_stdio():
    """fds 0 and 1 on /dev/null; sys.stdin a fresh /dev/null stream, the first one closed
    (multiprocessing's child does that); returns a descriptor on the real stdout pipe."""
    out_fd = os.dup(1)
    null = _open_fd(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    _close_fd(null)
    first = sys.stdin
    try:
        first.close()
    except (OSError, ValueError):
        pass
    sys.stdin = open(os.devnull)
    sys.__stdin__ = first
    return out_fd


def _read_all(fd):
    chunks = []
    while True:
        chunk = _read_fd(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _disable_functions():
    """reliability_guard's effect on the names a program sees (the jail's own filters and
    limits stay as they are: this is not what confines the program)."""
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in OS_DISABLED:
        setattr(os, name, None)
    for name in SHUTIL_DISABLED:
        setattr(shutil, name, None)
    subprocess.Popen = None
    for name in MODULES_DISABLED:
        sys.modules[name] = None
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(INT_MAX_STR_DIGITS)


def _run_queue_wait_s():
    """Seconds the main thread has waited for a CPU, or None without /proc."""
    try:
        fd = _open_fd("/proc/self/schedstat", os.O_RDONLY)
    except OSError:
        return None
    try:
        fields = _read_fd(fd, 256).split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None
    finally:
        _close_fd(fd)


class Alarm:
    """The per-test alarm: raises TimeoutException once the program has been running for the
    limit, not counting the time it waited for a CPU (README, "Comparison modes")."""

    def __init__(self, limit_s):
        self.limit_s = limit_s
        self.started = self.waited_before = self.cpu_before = None

    def start(self):
        self.started = time.monotonic()
        self.waited_before = _run_queue_wait_s()
        self.cpu_before = time.process_time()
        signal.signal(signal.SIGALRM, self._fired)
        signal.setitimer(signal.ITIMER_REAL, self.limit_s)

    def stop(self):
        signal.setitimer(signal.ITIMER_REAL, 0)

    def counted_s(self):
        elapsed = time.monotonic() - self.started
        waited = _run_queue_wait_s()
        if waited is None or self.waited_before is None:
            return elapsed - (time.process_time() - self.cpu_before)  # time off the CPU
        return elapsed - (waited - self.waited_before)

    def _fired(self, _signum, _frame):
        left = self.limit_s - self.counted_s()
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.01))
            return
        print("timeout occured: alarm went off")  # sic: lcb_runner's handler prints it
        raise TimeoutException()


# ---------------------------------------------------------------- one test

class _StandInStdin:
    """sys.stdin during a stdin program's call."""

    def __init__(self, text):
        self._text = text
        self._lines = io.StringIO(text)
        self.buffer = _StandInBuffer(text)

    def read(self, *_args):
        return self._text

    def readline(self, *args):
        return self._lines.readline(*args)

    def readlines(self, *_args):
        return self._text.split("\n")

    def __getattr__(self, name):
        return getattr(self._lines, name)


class _StandInBuffer:
    def __init__(self, text):
        self._data = text.encode("utf-8", "surrogateescape")

    def read(self, *_args):
        return self._data

    def readline(self, *_args):
        return self._data.split(b"\n")[0] + b"\n"


def _patched_input(stack, text):
    """Enters call_method's patches, in its order: the original stdin's methods first."""
    original = sys.stdin
    lines = iter(text.split("\n"))
    stack.enter_context(mock.patch.object(original, "read", lambda *_a: text))
    stack.enter_context(mock.patch.object(original, "readlines", lambda *_a: text.split("\n")))
    stack.enter_context(mock.patch.object(original, "readline", lambda *_a: next(lines)))
    stack.enter_context(mock.patch.object(sys, "stdin", _StandInStdin(text)))
    stack.enter_context(mock.patch.object(builtins, "open", mock.mock_open(read_data=text)))


class Outcome:
    """How a test ended: "ok", "timeout", "error" (an exception) or "exit" (SystemExit or
    another BaseException that ends lcb_runner's worker)."""

    def __init__(self, kind, exc=None):
        self.kind = kind
        self.exception = repr(exc) if exc is not None else ""
        self.trace = ""
        if exc is not None:
            self.trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def record(self):
        """The outcome record the agent sends on the result channel (one line of JSON)."""
        return json.dumps({"lcb": self.kind, "exception": self.exception[:ERROR_CHARS]})


def _failure(exc, timeouts=True):
    if not isinstance(exc, Exception):
        return Outcome("exit", exc)
    if timeouts and "timeoutexception" in repr(exc).lower():
        return Outcome("timeout", exc)
    return Outcome("error", exc)


# Names LiveCodeBench's header binds to per-process state: a module prepared ahead gets them
# again just before the program runs, as if the header ran at that moment.
HEADER_STATE_NAMES = (("sys", ("stdin", "stdout", "stderr", "argv")), ("builtins", ("quit", "help")))


def header_module(header_code, name, doc=None, file=None):
    """A module with the import header executed in it, in the warm agent once per jail:
    every forked test starts from its copy instead of running ~40 imports again.
    Returns (module, the state names it bound)."""
    module = types.ModuleType(name) if doc is None else types.ModuleType(name, doc)
    if file is not None:
        module.__dict__["__file__"] = file
        module.__dict__["__builtins__"] = builtins
    exec(header_code, module.__dict__)
    bound = []
    for source_name, names in HEADER_STATE_NAMES:
        source = sys.modules[source_name]
        for attribute in names:
            if attribute in module.__dict__ and module.__dict__[attribute] is getattr(source, attribute, None):
                bound.append((source, attribute))
    return module, tuple(bound)


def refresh_header_names(prepared):
    """The prepared module, its state names read again now; a fresh one without it."""
    module, bound = prepared
    for source, attribute in bound:
        module.__dict__[attribute] = getattr(source, attribute, None)
    return module


def _load(code_obj, text, target_name, prepared=None):
    """compile_code + get_function: the module executed, then the callable; (callable, None)
    or (None, Outcome). A failure here is an error whatever it is (lcb_runner: -4).
    prepared: the module with the header already executed (header_module)."""
    if prepared is not None:
        module = refresh_header_names(prepared)
    else:
        module = types.ModuleType(MODULE_NAME, "")
    try:
        exec(code_obj, module.__dict__)
        owner = module.Solution() if "class Solution" in text else module
        found = getattr(owner, target_name)
    except Exception as exc:  # noqa: BLE001
        return None, _failure(exc, timeouts=False)
    except BaseException as exc:  # noqa: BLE001
        return None, Outcome("exit", exc)
    return found, None


def run_stdin(code_obj, text, limit_s, prepared=None):
    """One stdin test in a process of its own. Returns (Outcome, the output text, the real
    stdout descriptor)."""
    data = _read_all(0).decode("utf-8", "surrogateescape")
    out_fd = _devnull_stdio()
    _disable_functions()
    alarm = Alarm(limit_s)
    alarm.start()
    try:
        method, failed = _load(code_obj, text, WRAPPER_NAME, prepared)
        if failed is not None:
            return failed, "", out_fd
        outcome, output = _call_stdin(method, data)
        return outcome, output, out_fd
    finally:
        alarm.stop()


def _call_stdin(method, data):
    """call_method under Capturing: (Outcome, the output text)."""
    capture = io.StringIO()
    capture.close = lambda _unused: 1  # as Capturing leaves it: close() raises TypeError
    real_stdout = sys.stdout
    sys.stdout = capture
    try:
        with contextlib.ExitStack() as stack:
            _patched_input(stack, data)
            try:
                method()
            except SystemExit:
                pass
        outcome = Outcome("ok")
    except BaseException as exc:  # noqa: BLE001 - classified as lcb_runner does
        outcome = _failure(exc)
    finally:
        sys.stdout = real_stdout
    return outcome, capture.getvalue()


def run_functional(code_obj, text, func_name, args, limit_s, prepared=None):
    """One functional test in a process of its own. Returns (Outcome, the returned value as
    data: plain_value)."""
    _read_all(0)
    os.close(_devnull_stdio())  # prints are not graded (lcb_runner's worker's own stdout)
    _disable_functions()
    alarm = Alarm(limit_s)
    alarm.start()
    try:
        method, failed = _load(code_obj, text, func_name, prepared)
        if failed is not None:
            return failed, None
        outcome, value = _call_functional(method, args, alarm)
    finally:
        alarm.stop()
    if outcome.kind != "ok":
        return outcome, None
    try:
        return outcome, plain_value(value)
    except ValueError as exc:
        return Outcome("error", exc), None


def _call_functional(method, args, alarm):
    """The call under the alarm: (Outcome, the value it returned)."""
    try:
        value = method(*args)
    except BaseException as exc:  # noqa: BLE001
        alarm.stop()
        return _failure(exc), None
    alarm.stop()
    return Outcome("ok"), value


class Worker:
    """All of a submission's tests in one process, as lcb_runner's worker runs them: the
    module is executed and the callable (a `Solution` instance's method) is made once, then
    called once per test, so what one test leaves (an attribute, a module-level list) is
    seen by the next. run() takes one test; the first raises the load's failure, if any."""

    def __init__(self, code_obj, text, mode, func_name, limit_s, prepared=None):
        self.code_obj, self.text, self.mode = code_obj, text, mode
        self.target = func_name if mode == "functional" else WRAPPER_NAME
        self.limit_s = limit_s
        self.prepared = prepared
        self.method = None
        os.close(_devnull_stdio())  # the graded output is the captured one
        _disable_functions()

    def load(self):
        """compile_code + get_function under their own alarm; None or the failure's Outcome."""
        alarm = Alarm(self.limit_s)
        alarm.start()
        try:
            self.method, failed = _load(self.code_obj, self.text, self.target, self.prepared)
        finally:
            alarm.stop()
        return failed

    def run(self, data, args):
        """One test: (Outcome, output text, the value a functional call returned, as it is:
        see settle)."""
        alarm = Alarm(self.limit_s)
        alarm.start()
        try:
            if self.mode == "functional":
                outcome, value = _call_functional(self.method, args, alarm)
                return outcome, "", value
            outcome, output = _call_stdin(self.method, data)
            return outcome, output, None
        finally:
            alarm.stop()


def plain_value(value):
    """numpy scalars as the Python numbers they compare equal to; a numpy array of more than
    one element cannot be compared (`==` gives an array whose truth value is ambiguous:
    lcb_runner's ValueError, a runtime error), one of one element is that element."""
    kind = type(value)
    if kind.__module__ == "numpy":
        if getattr(value, "ndim", 0) == 0 and hasattr(value, "item"):
            return plain_value(value.item())
        if value.size > 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        return plain_value(value.item()) if value.size == 1 else frozenset()
    if kind is list:
        return [plain_value(item) for item in value]
    if kind is tuple:
        return tuple(plain_value(item) for item in value)
    if kind is dict:
        return {plain_value(k): plain_value(v) for k, v in value.items()}
    return value


# Python's own data types: a value built only of these (exactly, no subclass) compares with
# `==` as data, running no code of the program's or of a library's.
PLAIN_SCALARS = frozenset((type(None), bool, int, float, str, bytes))
PLAIN_CONTAINERS = frozenset((list, tuple, dict, set, frozenset))
PLAIN_TYPES = PLAIN_SCALARS | PLAIN_CONTAINERS
PLAIN_MAX_NODES = 1 << 22
# How deep the host reads a result (compare.MAX_JSON_DEPTH): as tagged JSON a list takes one
# level, a tuple or set two ({"__tuple__": [...]}), a dict three ({"__dict__": [[k, v]]}), the
# envelope one. Deeper plain data is compared in process, where lcb_runner compares it.
PLAIN_MAX_DEPTH = 256
TAGGED_LEVELS = {list: 1, tuple: 2, set: 2, frozenset: 2, dict: 3}


def is_plain(value):
    """Whether `value` is plain data (PLAIN_TYPES all the way down, not too large or deep to
    send): then comparing it outside the program's process, as the host does, gives what
    `value == expected` gives inside it. A container's member types are read in one pass in
    C (a list of a million ints takes milliseconds)."""
    kind = type(value)
    if kind in PLAIN_SCALARS:
        return True
    if kind not in PLAIN_CONTAINERS:
        return False
    stack = [(value, 1)]  # (a container, the tagged JSON level it starts at)
    nodes = 0
    while stack:
        item, level = stack.pop()
        inner = level + TAGGED_LEVELS[type(item)]
        if inner >= PLAIN_MAX_DEPTH:  # its members' levels, a NaN's tag one more
            return False
        for members in ((item.keys(), item.values()) if type(item) is dict else (item,)):
            nodes += len(members)
            if nodes > PLAIN_MAX_NODES:
                return False
            kinds = set(map(type, members))
            if not kinds <= PLAIN_TYPES:
                return False
            if kinds & PLAIN_CONTAINERS:
                stack.extend((member, inner) for member in members
                             if type(member) in PLAIN_CONTAINERS)
    return True


SHOWN_CHARS = 300  # of a result that is not equal (lcb_runner's truncatefn)


def _shown(value):
    """The result as the failure's record holds it: a str as it is, anything else str()'d
    (may run the program's __str__); cut in the middle past SHOWN_CHARS."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return text[:SHOWN_CHARS // 2] + "...(truncated) ..." + text[-SHOWN_CHARS // 2:]


def settle(value, fetch_expected):
    """What grade_call_based does with a returned value, after its alarm: a tuple becomes a
    list, then `value == expected` in the program's process, so a returned object's own
    __eq__ (or numpy's) decides. Plain data is sent out as data instead (the host compares
    it, with the same result) and the expected output never enters the process; for anything
    else `fetch_expected()` brings the test's expected output (its JSON text) in now; without
    it (results compared as data only) it is sent as data too, numpy values as the Python
    values they equal (plain_value).

    Returns (Outcome, the value to send as data or None, the in-process comparison or None):
    the comparison is {"equal": True, "type": the name of the program's class, if it is one}
    or {"equal": False, "shown": str(value) cut, "why": a reason, if there is more to say}."""
    try:
        if isinstance(value, tuple):
            value = list(value)
    except Exception as exc:  # noqa: BLE001 - in lcb_runner's try: a runtime error
        return _failure(exc), None, None
    except BaseException as exc:  # noqa: BLE001
        return Outcome("exit", exc), None, None
    if is_plain(value):
        return Outcome("ok"), value, None
    if fetch_expected is None:
        try:
            return Outcome("ok"), plain_value(value), None
        except ValueError as exc:
            return Outcome("error", exc), None, None
    expected_text = fetch_expected()
    shown = None
    try:
        equal = value == json.loads(expected_text)
        if not equal:
            shown = _shown(value)
    except Exception as exc:  # noqa: BLE001 - __eq__, __bool__ or __str__ raised
        return _failure(exc), None, None
    except BaseException as exc:  # noqa: BLE001 - SystemExit there ends lcb_runner's worker
        return Outcome("exit", exc), None, None
    return _recorded(equal, shown, value)


def _recorded(equal, shown, value):
    """The test's result as lcb_runner's evaluation reads it. The `==` result (and, for a
    failure, the shown result) is pickled to the parent process (failing: its
    TestRunnerError); there a numpy array becomes its first item and a numpy bool a bool;
    a test whose `==` result was truthy passes when that is > 0."""
    try:
        pickle.dumps(equal)
        if shown is not None:
            pickle.dumps(shown)
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(equal, numpy.ndarray):
            equal = equal.item(0)
        if numpy is not None and isinstance(equal, numpy.bool_):
            equal = bool(equal)
        passed = shown is None and bool(equal > 0)
    except Exception as exc:  # noqa: BLE001 - lcb_runner's evaluation fails there
        return Outcome("error", exc), None, None
    try:
        if passed:
            accepted = {"equal": True}
            kind = type(value)
            if type.__getattribute__(kind, "__module__") == MODULE_NAME:  # the program's class
                accepted["type"] = str.__str__(type.__getattribute__(kind, "__qualname__"))
            return Outcome("ok"), None, accepted
        if shown is None:
            shown = _shown(value)
            why = "its == gave %s, which is not > 0" % (object.__repr__(equal)
                                                        if type(equal) not in PLAIN_TYPES
                                                        else repr(equal))
            return Outcome("ok"), None, {"equal": False, "shown": str.__str__(shown), "why": why}
        return Outcome("ok"), None, {"equal": False, "shown": str.__str__(shown)}
    except Exception:  # noqa: BLE001 - only the message is lost: the verdict stands
        return Outcome("ok"), None, {"equal": passed, "shown": ""}

"""The in-jail agent: runs as PID 1 of one submission's jail and executes tests on request.

It talks to the host over the bwrap process's stdin/stdout with length-prefixed
frames (see workers/protocol.py for the host side). Every test runs in a fresh
child: a fork of this warm interpreter (Python fast path) or a fork + exec of a
program. Being PID 1 of the jail's PID namespace, the agent cannot be killed by
the code it runs, and when it exits the kernel kills everything left in the jail.

This file is stdlib-only and must run on CPython 3 and PyPy 3: it is executed
*inside* the jail by the language's own interpreter, so it imports nothing from
the project.
"""
import errno
import gc
import json
import math
import os
import resource
import select
import signal
import struct
import sys
import time

# Modules pre-imported so a forked Python child finds them warm (the ones
# LiveCodeBench's header imports, plus common competitive-programming imports).
WARM_MODULES = (
    "string re datetime collections heapq bisect copy math random statistics itertools "
    "functools operator io sys json typing fractions decimal array traceback threading"
).split()

LCB_HEADER = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\n"
    "from functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\n"
    "from json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\n"
    "import datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\nimport math\n"
    "import random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)

RESULT_FD = 3  # functional children write their tagged-JSON result here
TASK_FD = 4  # a one-process worker (lcb_runner's model) reads its tests here
MAX_RESULT_DEPTH = 256  # deeper results are WA with a reason (the host's JSON depth limit too)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- framing

def read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(fd):
    """A message is a JSON header followed by header["blobs"] binary blobs."""
    (size,) = struct.unpack(">I", read_exact(fd, 4))
    header = json.loads(read_exact(fd, size))
    blobs = []
    for _ in range(header.get("blobs", 0)):
        (blen,) = struct.unpack(">Q", read_exact(fd, 8))
        blobs.append(read_exact(fd, blen))
    return header, blobs


def write_message(fd, header, blobs=()):
    header = dict(header, blobs=len(blobs))
    raw = json.dumps(header).encode()
    parts = [struct.pack(">I", len(raw)), raw]
    for blob in blobs:
        parts.append(struct.pack(">Q", len(blob)))
        parts.append(blob)
    data = b"".join(parts)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# ---------------------------------------------------------------- result encoding

# Exact types JSON writes as they are (floats: when finite).
JSON_SCALARS = frozenset((type(None), bool, int, str))


def _scalars_as_json(members):
    """`members` as a JSON list when they are all exact scalars JSON keeps (one pass in C
    for the common list of a million ints), else None."""
    kinds = set(map(type, members))
    if kinds <= JSON_SCALARS:
        return list(members)
    if kinds <= JSON_SCALARS | {float} and all(
            map(math.isfinite, [m for m in members if type(m) is float])):
        return list(members)
    return None


def encode_result(value, depth=0):
    """Tagged JSON that keeps tuples, sets, dict keys and non-finite floats exact."""
    if depth > MAX_RESULT_DEPTH:
        raise ValueError("result nested more than %d levels deep" % MAX_RESULT_DEPTH)
    if value is None or isinstance(value, (bool, str)):
        return value
    kind = type(value)
    if kind in (list, tuple, set, frozenset):
        flat = _scalars_as_json(value)
        if flat is not None:
            return flat if kind is list else {"__tuple__" if kind is tuple else "__set__": flat}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"__float__": repr(value)}
        return float(value)
    if isinstance(value, list):
        return [encode_result(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_result(v, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode_result(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode_result(k, depth + 1), encode_result(v, depth + 1)]
                             for k, v in value.items()]}
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    raise TypeError("result of type %s cannot be compared" % type(value).__name__)


def result_envelope(value):
    """A functional result as the JSON text the host compares: {"ok": tagged value}, or
    {"error": why it cannot be compared}. Integers of any length are written in full (the
    program's own int-string limit is set back afterwards)."""
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
    try:
        if limit is not None:
            sys.set_int_max_str_digits(0)
        return json.dumps({"ok": encode_result(value)})
    except (TypeError, ValueError, RecursionError) as exc:
        return json.dumps({"error": str(exc)})
    finally:
        if limit is not None:
            sys.set_int_max_str_digits(limit)


# ---------------------------------------------------------------- child side

def apply_limits(limits):
    """rlimits for one test process; called in the child right after fork."""
    cpu = int(limits["cpu_s"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    mem = limits["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if hasattr(resource, "RLIMIT_MSGQUEUE"):
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))  # mq memory is not in RLIMIT_AS


# ---------------------------------------------------------------- per-test confinement

CHILD_FILTERS = {}  # name -> (buffer, struct sock_fprog) the host sent, see op "filter"
CGROUPS = {}  # role -> {"procs": [write fds], "cpu": (read fd, "usec" | "nsec") or None}
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def load_child_filter(name, program):
    """Keeps a BPF program (struct sock_filter[]) ready for children to install."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    CHILD_FILTERS[name] = (buffer, fprog, ctypes.CDLL(None, use_errno=True))


def install_child_filter(name):
    """In the child, last before the program runs: the per-test seccomp filter."""
    _buffer, fprog, libc = CHILD_FILTERS[name]
    import ctypes
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the test's seccomp filter")


def join_cgroup(role):
    """In the child: move into the test's cgroups (the host opened these descriptors)."""
    for fd in CGROUPS[role]["procs"]:
        os.write(fd, b"0")


def cgroup_cpu_seconds(role):
    """CPU time of everything in the role's cgroup so far, or None without one."""
    found = CGROUPS.get(role) if role else None
    if not found or found["cpu"] is None:
        return None
    fd, unit = found["cpu"]
    text = os.pread(fd, 4096, 0)
    if unit == "nsec":
        return int(text) / 1e9
    for line in text.splitlines():
        if line.startswith(b"usage_usec "):
            return int(line.split()[1]) / 1e6
    return None


def reset_memory_peak(role):
    """Starts the role's peak-memory measurement over (one per test of a batch)."""
    found = CGROUPS.get(role) if role else None
    if not found or found.get("peak") is None:
        return
    fd, version = found["peak"]
    try:
        os.pwrite(fd, b"0" if version == 1 else b"reset\n", 0)
    except OSError:
        pass


def memory_peak_bytes(role):
    found = CGROUPS.get(role) if role else None
    if not found or found.get("peak") is None:
        return 0
    try:
        return int(os.pread(found["peak"][0], 64, 0))
    except (OSError, ValueError):
        return 0


def oom_kill_count(role):
    """The kernel's count of processes the role's memory cgroup killed, or 0."""
    found = CGROUPS.get(role) if role else None
    if not found or found.get("events") is None:
        return 0
    try:
        for line in os.pread(found["events"], 4096, 0).splitlines():
            key, _, value = line.partition(b" ")
            if key == b"oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


WRITABLE_DIRS = ("/work", "/tmp", "/dev/shm")
MAX_TEST_FILES = 10000  # files and directories a test may create (each costs kernel memory)


def inodes_in_use():
    """Files and directories on the jail's writable tmpfs mounts, from statvfs."""
    used = 0
    for directory in WRITABLE_DIRS:
        try:
            info = os.statvfs(directory)
        except OSError:
            continue
        used += info.f_files - info.f_ffree
    return used


def remove_tree(path):
    """Deletes a file or directory tree the test left, whatever its depth and permissions.

    Iterative, and by relative names from inside each directory (the agent's working
    directory walks down and back up), so neither recursion nor PATH_MAX limits it.
    """
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            os.unlink(path)
            return
        os.chmod(path, 0o700)
        os.chdir(path)
    except OSError:
        return
    names = []  # the directories entered below `path`, innermost last
    try:
        while True:
            descended = False
            for entry in os.scandir("."):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        os.chmod(entry.name, 0o700)
                        os.chdir(entry.name)
                        names.append(entry.name)
                        descended = True
                        break
                    os.unlink(entry.name)
                except OSError:
                    pass
            if descended:
                continue
            if not names:
                break
            os.chdir("..")
            try:
                os.rmdir(names.pop())
            except OSError:
                pass
    except OSError:
        pass
    finally:
        os.chdir("/")
    try:
        os.rmdir(path)
    except OSError:
        pass


def snapshot_roots():
    """The writable roots' modes (a test may chmod them to keep its files)."""
    modes = {}
    for directory in WRITABLE_DIRS:
        try:
            modes[directory] = os.stat(directory).st_mode & 0o7777
        except OSError:
            pass
    return modes


def restore_roots(modes):
    for directory, mode in modes.items():
        try:
            os.chmod(directory, mode)
        except OSError:
            pass


class KeptFiles:
    """The files in /work a test must not change for the next one (the source, the
    program): their identity before the test, and a copy to put back if it changed."""

    MAX_COPY = 64 << 20

    def __init__(self):
        self.copies = {}  # name -> (inode, mtime_ns, size, mode, data)

    def remember(self, names):
        for name in names:
            path = os.path.join("/work", name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            known = self.copies.get(name)
            if known and known[:3] == (info.st_ino, info.st_mtime_ns, info.st_size):
                continue
            import stat
            if stat.S_ISREG(info.st_mode) and info.st_size <= self.MAX_COPY:
                self.copies[name] = (info.st_ino, info.st_mtime_ns, info.st_size,
                                     info.st_mode & 0o7777, read_work_file(name, self.MAX_COPY))

    def restore(self):
        for name, (inode, mtime, size, mode, data) in self.copies.items():
            try:
                info = os.lstat(os.path.join("/work", name))
                if (info.st_ino, info.st_mtime_ns, info.st_size) == (inode, mtime, size) \
                        and info.st_mode & 0o7777 == mode:
                    continue
            except OSError:
                pass
            write_work_file(name, data, mode)
            info = os.lstat(os.path.join("/work", name))
            self.copies[name] = (info.st_ino, info.st_mtime_ns, info.st_size, mode, data)


KEPT = KeptFiles()


def clean_after_test(kept, modes):
    """Removes what a test wrote and undoes what it changed: tests are independent, and
    tmpfs pages are freed."""
    restore_roots(modes)
    for directory in WRITABLE_DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if directory == "/work" and name in kept:
                continue
            remove_tree(os.path.join(directory, name))
    KEPT.restore()


def make_std_streams():
    """Fresh sys.std* over fds 0/1/2, as a cold interpreter would build them."""
    import io
    sys.stdin = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.open(1, "wb", closefd=False), encoding="utf-8",
                                  line_buffering=False)
    sys.stderr = io.TextIOWrapper(io.open(2, "wb", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def run_python_program(code_obj, syntax_error, spec, args):
    """Runs user code in this process (a fresh fork or a cold interpreter). Never returns."""
    import atexit
    import traceback
    import types
    sys.argv = [spec["file"]]
    make_std_streams()
    # The signal setup CPython makes at start-up (a forked child inherits the agent's).
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    atexit._clear()  # exit handlers are the program's own
    if hasattr(sys, "set_int_max_str_digits"):  # the agent lifted it for its own messages
        sys.set_int_max_str_digits(sys.int_info.default_max_str_digits)
    if spec.get("harness") == "lcb" and syntax_error is None:
        if args is WORKER:
            run_lcb_worker(code_obj, spec)
        run_lcb_program(code_obj, spec, args)
    status = 0
    try:
        if syntax_error is not None:
            raise syntax_error
        prepared = PREPARED.get("module")
        if spec["mode"] == "functional":
            if prepared is not None:
                import lcb_harness
                module = lcb_harness.refresh_header_names(prepared)
            else:
                module = types.ModuleType("tmp_sol")
            sys.modules["tmp_sol"] = module
            exec(code_obj, module.__dict__)
            if "class Solution" in spec["source_text"]:
                target = getattr(module.__dict__["Solution"](), spec["func_name"])
            else:
                target = module.__dict__[spec["func_name"]]
            payload = result_envelope(target(*args))
            with os.fdopen(RESULT_FD, "w") as out:
                out.write(payload)
        else:
            if prepared is not None:
                import lcb_harness
                module = lcb_harness.refresh_header_names(prepared)
            else:
                module = types.ModuleType("__main__")
                module.__dict__["__file__"] = spec["file"]
                module.__dict__["__builtins__"] = __builtins__
            sys.modules["__main__"] = module
            exec(code_obj, module.__dict__)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            status = 0
        elif isinstance(code, int):
            status = code & 0xFF
        else:
            sys.stderr.write(str(code) + "\n")
            status = 1
    except BaseException:  # noqa: BLE001 - the user's code failed: report like CPython
        traceback.print_exc()
        status = 1
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001
        status = status or 120
    try:
        import threading
        threading._shutdown()  # join non-daemon threads, as interpreter exit does
    except BaseException:  # noqa: BLE001
        pass
    atexit._run_exitfuncs()  # then exit handlers, as interpreter exit does
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        status = status or 120
    os._exit(status)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_lcb_program(code_obj, spec, args):
    """One test under lcb_runner's execution model (workers/lcb_harness.py). Never returns.

    The graded output goes to the stdout pipe; the result channel holds the outcome record's
    line, then a functional result's envelope; the exit status is 1 after an exception (its
    traceback on stderr), else 0.
    """
    import lcb_harness
    text = lcb_harness.program_text_of(spec["source_text"], spec["mode"])
    limit = spec.get("time_limit_s") or 6.0
    status = 1
    try:
        if spec["mode"] == "functional":
            outcome, value = lcb_harness.run_functional(code_obj, text, spec["func_name"], args,
                                                        limit, PREPARED.get("module"))
            envelope = result_envelope(value) if outcome.kind == "ok" else ""
        else:
            outcome, output, out_fd = lcb_harness.run_stdin(code_obj, text, limit,
                                                             PREPARED.get("module"))
            write_all(out_fd, output.encode("utf-8", "surrogateescape"))
            envelope = ""
        # The outcome on the first line, a functional result's envelope after it.
        write_all(RESULT_FD, (outcome.record() + "\n" + envelope).encode())
        if outcome.trace:
            write_all(2, outcome.trace.encode("utf-8", "backslashreplace"))
        status = 1 if outcome.kind in ("error", "exit") else 0
    except BaseException as exc:  # noqa: BLE001 - no record: the judge reports the test's end
        try:
            write_all(2, ("sandbox: lcb harness: %r\n" % (exc,)).encode())
        except BaseException:  # noqa: BLE001
            pass
    os._exit(status)


# The header's stand-in in the text a test executes when the header ran ahead (header_module):
# as many lines, so line numbers stay; a statement first, so a leading string is no docstring.
HEADER_STAND_IN = "pass" + "\n" * LCB_HEADER.count("\n")
PREPARED = {}  # "module": (module, bound names) with the header executed, see compile_python


WORKER = object()  # run_python_program's `args` for a one-process worker


def run_lcb_worker(code_obj, spec):
    """All the tests a batch gives it (TASK_FD), in this one process, as lcb_runner's worker
    runs them (lcb_harness.Worker). Each test's result is one message on RESULT_FD: the outcome
    record, the output, a functional result's envelope, the traceback. Never returns."""
    import lcb_harness
    text = lcb_harness.program_text_of(spec["source_text"], spec["mode"])
    functional = spec["mode"] == "functional"
    status = 0
    try:
        worker = lcb_harness.Worker(code_obj, text, spec["mode"], spec["func_name"],
                                    spec.get("time_limit_s") or 6.0, PREPARED.get("module"))
        loaded = False
        while True:
            try:
                task, blobs = read_message(TASK_FD)
            except EOFError:
                break
            if not loaded:
                loaded = True
                failed = worker.load()
                if failed is not None:
                    send_worker_result(failed, "", None, functional)
                    status = 1
                    break
            args = json.loads(blobs[1]) if task.get("args") else None
            data = blobs[0].decode("utf-8", "surrogateescape")
            outcome, output, value = worker.run(data, args)
            compared = None
            if functional and outcome.kind == "ok":
                outcome, value, compared = lcb_harness.settle(
                    value, ask_expected if spec.get("results_in_process") else None)
            send_worker_result(outcome, output, value, functional, compared)
            if outcome.kind == "exit":  # lcb_runner's worker ends there
                status = 1
                break
    except BaseException as exc:  # noqa: BLE001 - no record: the judge reports the test's end
        try:
            write_all(2, ("sandbox: lcb worker: %r\n" % (exc,)).encode())
        except BaseException:  # noqa: BLE001
            pass
        status = 1
    os._exit(status)


def ask_expected():
    """In a one-process worker: the running test's expected output (its JSON text), asked of
    the agent, which asks the host (WorkerProcess.run_test), once the call has returned a
    value that is not plain data (lcb_harness.settle)."""
    write_message(RESULT_FD, {"expected_wanted": True})
    header, blobs = read_message(TASK_FD)
    if not header.get("expected") or not blobs:
        raise RuntimeError("the agent sent no expected output")
    return blobs[0]  # JSON text; json.loads reads UTF-8, -16 and -32 as lcb_runner's str


def send_worker_result(outcome, output, value, functional, compared=None):
    """One test's result message of a one-process worker (see run_lcb_worker). compared: the
    in-process comparison's result (settle), sent instead of the value."""
    if compared is not None and outcome.kind == "ok":
        envelope = json.dumps({"compared": compared})
    else:
        envelope = result_envelope(value) if functional and outcome.kind == "ok" else ""
    write_message(RESULT_FD, {"record": outcome.record()},
                  (output.encode("utf-8", "surrogateescape"), envelope.encode(),
                   outcome.trace.encode("utf-8", "backslashreplace")))


def compile_python(spec):
    """The program's code object (or its syntax error). With LiveCodeBench's header, the
    header runs here once, in a module each test's fork starts from (PREPARED)."""
    source = spec["source_text"]
    PREPARED.clear()
    if spec.get("harness") == "lcb":
        import lcb_harness  # mounted next to this file (workers/lcb_harness.py)
        lcb_harness.preload(source)
        full = lcb_harness.program_text(source, spec["mode"], LCB_HEADER)
        ahead = lcb_harness.program_text(source, spec["mode"], HEADER_STAND_IN)
        module_args = (lcb_harness.MODULE_NAME, "")
    elif spec.get("prelude") == "lcb":
        full = LCB_HEADER + "\n\n" + source
        ahead = HEADER_STAND_IN + "\n\n" + source
        module_args = ("__main__", None, spec["file"]) if spec["mode"] != "functional" \
            else ("tmp_sol",)
    else:
        full = ahead = None
    try:
        if full is None:
            return compile(source, spec["file"], "exec"), None
        compile(full, spec["file"], "exec")  # the syntax errors of the text as lcb_runner has it
        code_obj = compile(ahead, spec["file"], "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # RecursionError: deeply nested expressions the compiler cannot handle; lcb_runner
        # reports the same source as a compile error.
        return None, exc
    import lcb_harness
    PREPARED["module"] = lcb_harness.header_module(compile(LCB_HEADER, spec["file"], "exec"),
                                                   *module_args)
    return code_obj, None


def child_setup(stdin_fd, stdout_w, stderr_w, result_w, limits, cgroup=None, child_filter=None,
                task_r=None):
    """In the child: join the test's cgroup, wire fds 0/1/2 (and the result fd, and the task
    fd of a one-process worker), close all others, apply limits, install the test's seccomp
    filter."""
    if cgroup:
        join_cgroup(cgroup)
    os.setpgid(0, 0)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    if task_r is not None:
        task_r = os.dup(task_r)  # off the numbers the dup2s below may overwrite
    os.dup2(stdin_fd, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    first_free = 3
    if result_w is not None:
        os.dup2(result_w, RESULT_FD)
        first_free = RESULT_FD + 1
    if task_r is not None:
        os.dup2(task_r, TASK_FD)
        first_free = TASK_FD + 1
    os.closerange(first_free, 65536)
    os.chdir("/work")
    apply_limits(limits)
    if child_filter:
        install_child_filter(child_filter)


# ---------------------------------------------------------------- parent side

def proc_cpu_seconds(pid):
    """CPU time used so far by a running process, for early TLE kills.

    Reads the process's CPU-time clock (no /proc needed, so it also works in jails
    without their own /proc); falls back to /proc/PID/stat.
    """
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, SCHED)
    except (OSError, AttributeError, OverflowError):
        pass
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def kill_jail_processes():
    """SIGKILL everything in the jail but us (we are PID 1), then reap it all."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def make_stdin(data):
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("stdin", 0)
    else:
        import tempfile
        fd, path = tempfile.mkstemp(dir="/tmp")
        os.unlink(path)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def supervise(pid, started, streams, limits, control_fd, cpu_used=None):
    """Drains the child's pipes while it runs; enforces CPU, wall and output limits.

    `streams` maps "stdout" / "stderr" / "result" to the read ends this agent captures.
    `cpu_used()` is the CPU time of all the test's processes so far (its cgroup); without
    it the early check reads the child's own clock (all its threads).
    """
    outputs = {fd: [] for fd in streams.values()}
    total = 0
    cap = limits["output_bytes"]
    open_fds = set(streams.values())
    poller = select.poll()
    for fd in open_fds:
        poller.register(fd, select.POLLIN)
    poller.register(control_fd, select.POLLIN)  # EOF here: the host is gone
    pidfd = None
    if hasattr(os, "pidfd_open"):
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
    killed_for = None
    status = None
    rusage = None
    wall = 0.0
    last_cpu_check = started  # the first CPU check comes 50 ms in
    wall_cap = limits["wall_s"]
    cpu_cap = limits["cpu_s"]
    inodes_cap = inodes_in_use() + MAX_TEST_FILES
    while True:
        now = time.monotonic()
        if now - started > wall_cap and killed_for is None:
            killed_for = "wall"
            os.kill(pid, signal.SIGKILL)
        if now - last_cpu_check > 0.05 and killed_for is None:
            last_cpu_check = now
            used = cpu_used() if cpu_used is not None else proc_cpu_seconds(pid)
            if used > cpu_cap + 0.02:
                killed_for = "cpu"
                os.kill(pid, signal.SIGKILL)
            elif inodes_in_use() > inodes_cap:
                killed_for = "files"
                os.kill(-1, signal.SIGKILL)
        events = poller.poll(20 if pidfd is not None else 5)
        for fd, _event in events:
            if fd == control_fd:
                if not read_stop(control_fd):
                    continue
                if killed_for is None:
                    killed_for = "stopped"
                    os.kill(pid, signal.SIGKILL)
                poller.unregister(control_fd)
                STOP["requested"] = True
                continue
            if fd == pidfd:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            total += len(chunk)
            if total <= cap + 65536:
                outputs[fd].append(chunk)
            if total > cap and killed_for is None:
                killed_for = "output"
                os.kill(pid, signal.SIGKILL)
        if status is None:
            try:
                got, st, ru = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                got, st, ru = pid, 0, None
            if got == pid:
                status, rusage = st, ru
                wall = time.monotonic() - started
        if status is not None:
            # Drain what is already buffered (bounded: leftovers may keep writing), then
            # kill leftovers (daemons holding pipes).
            drain_until = time.monotonic() + 0.5
            for fd in list(open_fds):
                while total <= cap + 65536 and time.monotonic() < drain_until:
                    ready, _, _ = select.select([fd], [], [], 0)
                    if not ready:
                        break
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total <= cap + 65536:
                        outputs[fd].append(chunk)
            break
    if pidfd is not None:
        os.close(pidfd)
    kill_jail_processes()
    if total > cap and killed_for is None:
        killed_for = "output"
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    maxrss = rusage.ru_maxrss if rusage else 0
    blobs = []
    for name in ("stdout", "stderr", "result"):
        fd = streams.get(name)
        blobs.append(b"".join(outputs[fd])[: cap + 1] if fd is not None else b"")
    return {
        "exit_code": exit_code,
        "signal": sig,
        "wall_s": wall,
        "maxrss_kb": maxrss,
        "killed_for": killed_for,
    }, blobs


def read_work_file(name, cap):
    """A regular file of /work, at most cap + 1 bytes; b"" for anything else."""
    return read_regular_file(name, cap) or b""


def read_regular_file(name, cap):
    """A regular file of /work, at most cap + 1 bytes; None when there is none.

    The program controls /work: the name may be a symlink, a FIFO, a directory or a
    device by now, and so may any directory on its path. Links are not followed, the
    file must resolve inside /work, and nothing blocks.
    """
    import stat
    path = os.path.join("/work", name)
    folder = os.path.realpath(os.path.dirname(path))
    if folder != "/work" and not folder.startswith("/work/"):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_work_file(name, data, mode=0o644, parents=False):
    """Writes a fresh regular file in /work, replacing whatever the program left there.

    parents: create the directories on the path (only before any of the program's code
    ran: the names are the client's, the directories still the agent's own)."""
    path = os.path.join("/work", name)
    if parents:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.lexists(path):
        remove_tree(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def fork_program(setup, request, python_state, args):
    """Forks the test's process: child_setup(*setup), then an exec of the request's argv or the
    warm interpreter's program. Returns its pid."""
    if hasattr(gc, "freeze"):
        # The agent's objects go to the permanent generation: the test's collections never
        # walk (and so never copy-on-write) the pages they live on.
        gc.freeze()
    pid = os.fork()
    if pid == 0:
        try:
            child_setup(*setup)
            if "argv" in request:
                os.execve(request["argv"][0], request["argv"], request["env"])
            code_obj, syntax_error = python_state
            run_python_program(code_obj, syntax_error, request["python"], args)
        except BaseException as exc:  # noqa: BLE001
            try:
                os.write(2, ("sandbox: cannot start program: %s\n" % exc).encode())
            except OSError:
                pass
        os._exit(127)
    return pid


def run_one(request, blobs, control_fd, python_state, passed_fds):
    """Forks one test process and supervises it; returns (header, blobs).

    With `passed_fds` (interactive problems) the process's stdin/stdout are those
    fds (pipes to the interactor's jail) instead of the test input and a capture pipe.
    """
    limits = request["limits"]
    streams = {}
    to_close = []
    data = blobs[0] if blobs else b""
    if request.get("input_file"):
        write_work_file(request["input_file"], data)
        data = b""
    if passed_fds:
        stdin_fd, out_w = passed_fds
    else:
        stdin_fd = make_stdin(data)
        out_r, out_w = os.pipe()
        streams["stdout"] = out_r
    err_r, err_w = os.pipe()
    streams["stderr"] = err_r
    to_close += [stdin_fd, out_w, err_w]
    res_w = None
    if request.get("result_channel") or request.get("python", {}).get("mode") == "functional":
        res_r, res_w = os.pipe()
        streams["result"] = res_r
        to_close.append(res_w)
    args = json.loads(request["args_json"]) if request.get("args_json") is not None else None
    role = request.get("cgroup")
    kept = modes = None
    if request.get("clean"):
        modes = snapshot_roots()
        kept = set(os.listdir("/work"))
        KEPT.remember(kept - {request.get("input_file")})
    cgroup_before = cgroup_cpu_seconds(role)
    children_before = children_cpu_seconds()
    cpu_used = None
    if cgroup_before is not None:
        def cpu_used():
            return cgroup_cpu_seconds(role) - cgroup_before
    started = time.monotonic()
    pid = fork_program((stdin_fd, out_w, err_w, res_w, limits, role, request.get("filter")),
                       request, python_state, args)
    for fd in to_close:
        os.close(fd)
    header, outs = supervise(pid, started, streams, limits, control_fd, cpu_used)
    # Everything the test started is dead and reaped by now (we are the jail's init), so
    # both counters are final; reaped orphans count in RUSAGE_CHILDREN too.
    header["cpu_s"] = max(children_cpu_seconds() - children_before,
                          cpu_used() if cpu_used is not None else 0.0)
    for fd in streams.values():
        os.close(fd)
    if request.get("output_file"):
        outs[0] = read_work_file(request["output_file"], limits["output_bytes"])
    if kept is not None:
        # Charged to the test: a test that leaves many files pays for their removal.
        cleaning = time.process_time()
        clean_after_test(kept, modes)
        header["cpu_s"] += time.process_time() - cleaning
    return header, outs


STOP = {"requested": False}  # the host asked the running batch to stop


def read_control(control_fd):
    """Reads a message the host sent while a batch runs: (request, blobs). EOF: the host
    is gone, and the whole jail dies with us."""
    try:
        return read_message(control_fd)
    except (EOFError, OSError):
        os._exit(0)


def read_stop(control_fd):
    """Reads a message the host sent while a batch runs: True for "stop"."""
    return read_control(control_fd)[0].get("op") == "stop"


def stop_waiting(control_fd):
    """True when the host has sent "stop" (checked between the tests of a batch)."""
    if STOP["requested"]:
        return True
    while select.select([control_fd], [], [], 0)[0]:
        if read_stop(control_fd):
            STOP["requested"] = True
            return True
    return False


def parse_message(buffer):
    """A complete write_message frame at the start of `buffer`: (header, blobs, its size), or
    None while incomplete. Raises ValueError for a malformed one."""
    if len(buffer) < 4:
        return None
    (size,) = struct.unpack(">I", bytes(buffer[:4]))
    if size > 1 << 20:
        raise ValueError("result header too large")
    if len(buffer) < 4 + size:
        return None
    header = json.loads(bytes(buffer[4:4 + size]))
    if not isinstance(header, dict):
        raise ValueError("result header is not an object")
    offset, blobs = 4 + size, []
    for _ in range(int(header.get("blobs", 0))):
        if len(buffer) < offset + 8:
            return None
        (length,) = struct.unpack(">Q", bytes(buffer[offset:offset + 8]))
        if len(buffer) < offset + 8 + length:
            return None
        blobs.append(bytes(buffer[offset + 8:offset + 8 + length]))
        offset += 8 + length
    return header, blobs, offset


def encode_message(header, blobs=()):
    header = dict(header, blobs=len(blobs))
    raw = json.dumps(header).encode()
    parts = [struct.pack(">I", len(raw)), raw]
    for blob in blobs:
        parts += [struct.pack(">Q", len(blob)), blob]
    return b"".join(parts)


class WorkerProcess:
    """One process running a batch's tests under lcb_runner's model (run_lcb_worker): the
    agent gives it one test at a time and enforces each test's CPU, wall and output limits
    on it, as supervise() does for a process per test."""

    def __init__(self, request, python_state, tests_left):
        self.request = request
        self.functional = (request.get("python") or {}).get("mode") == "functional"
        self.role = request.get("cgroup")
        limits = request["limits"]
        # Its rlimit spans all its tests: each test's own CPU limit is enforced here.
        child_limits = dict(limits, cpu_s=limits["cpu_s"] * tests_left + 1)
        task_r, self.task_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.err_r, err_w = os.pipe()
        self.out_r, out_w = os.pipe()
        stdin_fd = make_stdin(b"")
        self.pid = fork_program((stdin_fd, out_w, err_w, res_w, child_limits, self.role,
                                 request.get("filter"), task_r), request, python_state, WORKER)
        for fd in (task_r, res_w, err_w, out_w, stdin_fd):
            os.close(fd)
        os.set_blocking(self.task_w, False)
        self.pidfd = os.pidfd_open(self.pid) if hasattr(os, "pidfd_open") else None
        self.status = self.rusage = None
        self.buffer = bytearray()
        self.cgroup_cpu = cgroup_cpu_seconds(self.role) is not None

    def cpu_now(self):
        if self.cgroup_cpu:
            return cgroup_cpu_seconds(self.role)
        if self.status is not None:
            return (self.rusage.ru_utime + self.rusage.ru_stime) if self.rusage else 0.0
        return proc_cpu_seconds(self.pid)

    def reap(self, block=False):
        if self.status is None:
            try:
                got, status, rusage = os.wait4(self.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                got, status, rusage = self.pid, 0, None
            if got == self.pid:
                self.status, self.rusage = status, rusage
        return self.status is not None

    def run_test(self, index, data, args, limits, control_fd, control_out):
        """Gives the worker one test and waits for its result; returns (header, blobs).

        A functional call that returned something other than plain data asks for the test's
        expected output (lcb_harness.settle): the request goes to the host, which alone holds
        the expected outputs, and its answer to the worker; once per test. Once asked, the
        host's answer (or a stop) is read before anything else is written to the host: the
        host writes the answer right away, and both writing at once could block both.
        """
        pending = memoryview(encode_message({"index": index, "args": args is not None},
                                            (data, args or b"")))
        cap = limits["output_bytes"]
        wall_cap, cpu_cap = limits["wall_s"], limits["cpu_s"]
        inodes_cap = inodes_in_use() + MAX_TEST_FILES
        del self.buffer[:]  # what the program wrote there before its test began is not a result
        started = time.monotonic()
        cpu_before = self.cpu_now()
        last_cpu_check = started
        killed_for = None
        errors, error_bytes = [], 0
        result = None
        expected_asked = expected_answered = False
        poller = select.poll()
        for fd in (self.res_r, self.err_r, self.out_r, control_fd):
            poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        if pending:
            poller.register(self.task_w, select.POLLOUT)
        while result is None:
            now = time.monotonic()
            if killed_for is None and self.status is None:
                if now - started > wall_cap:
                    killed_for = "wall"
                elif now - last_cpu_check > 0.05:
                    last_cpu_check = now
                    if self.cpu_now() - cpu_before > cpu_cap + 0.02:
                        killed_for = "cpu"
                    elif inodes_in_use() > inodes_cap:
                        killed_for = "files"
                if killed_for is not None:
                    os.kill(self.pid, signal.SIGKILL)
            for fd, _event in poller.poll(20 if self.pidfd is not None else 5):
                if fd == control_fd:
                    message, blobs = read_control(control_fd)
                    if (message.get("op") == "expected" and message.get("index") == index
                            and expected_asked and not expected_answered):
                        expected_answered = True
                        pending = memoryview(encode_message({"expected": bool(blobs)}, blobs[:1]))
                        poller.register(self.task_w, select.POLLOUT)
                    elif message.get("op") == "stop":
                        STOP["requested"] = True
                        poller.unregister(control_fd)
                        if killed_for is None:
                            killed_for = "stopped"
                            os.kill(self.pid, signal.SIGKILL)
                elif fd == self.task_w:
                    try:
                        pending = pending[os.write(self.task_w, pending):]
                    except BlockingIOError:
                        continue
                    except OSError:
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(self.task_w)
                elif fd in (self.res_r, self.err_r, self.out_r):
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        poller.unregister(fd)
                    elif fd == self.res_r:
                        self.buffer += chunk
                    elif fd == self.err_r and error_bytes <= cap:
                        errors.append(chunk)
                        error_bytes += len(chunk)
                    if (len(self.buffer) + error_bytes > cap + 65536 + 4096
                            and killed_for is None):
                        killed_for = "output"
                        os.kill(self.pid, signal.SIGKILL)
            if killed_for is None:
                try:
                    parsed = parse_message(self.buffer)
                except (ValueError, TypeError, OverflowError, struct.error):
                    parsed = None
                    killed_for = "garbled"
                    os.kill(self.pid, signal.SIGKILL)
                if parsed is not None and parsed[0].get("expected_wanted"):
                    del self.buffer[:parsed[2]]
                    if not expected_asked and self.functional:
                        expected_asked = True
                        write_message(control_out, {"index": index, "expected_wanted": True})
                    parsed = None
                if parsed is not None:
                    result = parsed
                    del self.buffer[:parsed[2]]
                    break
            if self.reap():
                if killed_for is None:
                    result = self._drained_result()
                break
        wall = time.monotonic() - started
        if expected_asked and not expected_answered and not STOP["requested"]:
            await_expected_answer(control_fd, index)
        if result is None and killed_for not in (None, "garbled"):
            self.reap(block=True)
        header = {"wall_s": wall, "cpu_s": max(0.0, self.cpu_now() - cpu_before),
                  "killed_for": killed_for if killed_for != "garbled" else None,
                  "maxrss_kb": 0, "exit_code": 0, "signal": 0}
        if result is not None:
            record, blobs = result[0].get("record"), result[1] + [b""] * 3
            output, envelope, trace = blobs[0], blobs[1], blobs[2]
            record = record if isinstance(record, str) else ""
            try:
                kind = json.loads(record).get("lcb")
            except (ValueError, AttributeError):
                kind = None
            header["exit_code"] = 1 if kind in ("error", "exit") else 0
            header["lcb_kind"] = kind
            if len(output) > cap and header["killed_for"] is None:
                header["killed_for"] = "output"
            stderr = trace + b"".join(errors)
            return header, [output[:cap + 1], stderr[:cap + 1],
                            record.encode() + b"\n" + envelope]
        self.reap(block=True)
        if self.rusage is not None:
            header["maxrss_kb"] = self.rusage.ru_maxrss
            if not self.cgroup_cpu:
                header["cpu_s"] = max(0.0, self.cpu_now() - cpu_before)
        status = self.status or 0
        header["exit_code"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
        header["signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        return header, [b"", b"".join(errors)[:cap + 1], b""]

    def _drained_result(self):
        """The result frame still in the pipe once the worker exited, if it is complete."""
        while select.select([self.res_r], [], [], 0)[0]:
            chunk = os.read(self.res_r, 65536)
            if not chunk:
                break
            self.buffer += chunk
        try:
            parsed = parse_message(self.buffer)
        except (ValueError, struct.error):
            return None
        if parsed is not None:
            del self.buffer[:parsed[2]]
        return parsed

    @property
    def alive(self):
        return not self.reap()

    def close(self):
        """Ends the worker and everything it started; the agent stays."""
        os.close(self.task_w)
        for fd in (self.res_r, self.err_r, self.out_r):
            os.close(fd)
        if self.pidfd is not None:
            os.close(self.pidfd)
        kill_jail_processes()


def await_expected_answer(control_fd, index):
    """Reads the host's messages until its answer to test `index`'s expected-output request,
    or a stop (then the host, stopping, answers no more)."""
    while True:
        message, _ = read_control(control_fd)
        if message.get("op") == "stop":
            STOP["requested"] = True
            return
        if message.get("op") == "expected" and message.get("index") == index:
            return


def limits_before_deadline(request, deadline, index, control_out):
    """(test `index`'s limits, whether its wall clock was cut to the deadline), or None
    (and the host told) when the deadline came before the test could start."""
    limits = dict(request["limits"])
    if deadline is None:
        return limits, False
    left = deadline - time.monotonic()
    if left <= 0:
        write_message(control_out, {"index": index, "deadline": True})
        return None
    if left < limits["wall_s"]:
        limits["wall_s"] = left
        return limits, True
    return limits, False


def run_batch_one_process(request, inputs, arguments, control_in, control_out, python_state,
                          deadline):
    """A batch under lcb_runner's model: one process for the tests (a new one only after a
    test ended it, when the host asked for every test)."""
    count = len(inputs)
    role = request.get("cgroup")
    modes = snapshot_roots()
    kept = set(os.listdir("/work"))
    KEPT.remember(kept)
    worker = None
    try:
        for index in range(count):
            if stop_waiting(control_in):
                break
            found = limits_before_deadline(request, deadline, index, control_out)
            if found is None:
                break
            limits, cut = found
            if worker is None or not worker.alive:
                if worker is not None:
                    worker.close()
                worker = WorkerProcess(request, python_state, count - index)
            reset_memory_peak(role)
            oom_before = oom_kill_count(role)
            header, outs = worker.run_test(index, inputs[index],
                                           arguments[index] if arguments else None,
                                           limits, control_in, control_out)
            header["index"] = index
            header["wall_cut"] = cut
            header["peak_bytes"] = memory_peak_bytes(role)
            header["oom_killed"] = oom_kill_count(role) > oom_before
            write_message(control_out, header, outs)
            if (header["killed_for"] is not None or header.get("lcb_kind") == "exit"
                    or not worker.alive):
                if header["killed_for"] == "stopped":
                    break
                worker.close()
                worker = None
    finally:
        if worker is not None:
            worker.close()
        clean_after_test(kept, modes)


def run_batch(request, blobs, control_in, control_out, python_state):
    """Runs a submission's tests back to back, one result message per test, then "done".

    blobs: each test's stdin, then (functional problems) each test's arguments. A "stop"
    from the host (it found a failure) kills the running test and ends the batch; so does
    the request's deadline (seconds from now), before a test that would start after it.
    """
    count = request["tests"]
    inputs, arguments = blobs[:count], blobs[count:]
    deadline = None
    if request.get("deadline_s") is not None:
        deadline = time.monotonic() + request["deadline_s"]
    role = request.get("cgroup")
    STOP["requested"] = False
    if request.get("one_process"):
        run_batch_one_process(request, inputs, arguments, control_in, control_out,
                              python_state, deadline)
        STOP["requested"] = False
        write_message(control_out, {"done": True})
        return
    for index in range(count):
        if stop_waiting(control_in):
            break
        found = limits_before_deadline(request, deadline, index, control_out)
        if found is None:
            break
        one = dict(request)
        one["limits"], cut = found
        if arguments:
            one["args_json"] = arguments[index].decode()
        reset_memory_peak(role)
        oom_before = oom_kill_count(role)
        header, outs = run_one(one, [inputs[index]], control_in, python_state, None)
        header["index"] = index
        header["wall_cut"] = cut
        header["peak_bytes"] = memory_peak_bytes(role)
        header["oom_killed"] = oom_kill_count(role) > oom_before
        write_message(control_out, header, outs)
        if header["killed_for"] == "stopped":
            break
    STOP["requested"] = False
    write_message(control_out, {"done": True})


def handle(request, blobs, control_in, control_out, fd_socket, state):
    """Answers one host request; `state` holds the compiled Python program."""
    op = request["op"]
    if op == "write_file":
        write_work_file(request["path"], blobs[0], request.get("mode", 0o644),
                        request.get("parents", False))
        write_message(control_out, {"ok": True})
    elif op == "read_file":
        data = read_regular_file(request["path"], request.get("max_bytes", 1 << 28))
        write_message(control_out, {"ok": True, "found": data is not None}, (data or b"",))
    elif op == "load_python":
        state["python"] = compile_python(request["python"])
        error = state["python"][1]
        if error is not None:
            import traceback
            error = "".join(traceback.format_exception_only(type(error), error))
        write_message(control_out, {"ok": True, "syntax_error": error})
    elif op == "filter":
        load_child_filter(request["name"], blobs[0])
        write_message(control_out, {"ok": True})
    elif op == "cgroup":
        import socket
        _msg, fds, _flags, _addr = socket.recv_fds(fd_socket, 16, 16)
        count = request["procs"]
        rest = fds[count:]
        found = {"procs": fds[:count], "cpu": None, "peak": None, "events": None}
        if request.get("cpu_unit"):
            found["cpu"] = (rest.pop(0), request["cpu_unit"])
        if request.get("peak_version"):
            found["peak"] = (rest.pop(0), request["peak_version"])
        if request.get("events"):
            found["events"] = rest.pop(0)
        CGROUPS[request["role"]] = found
        for fd in fds:
            os.set_inheritable(fd, False)
        write_message(control_out, {"ok": True})
    elif op == "import_harness":
        import lcb_harness  # noqa: F401 - LiveCodeBench mode (the default) needs it
        write_message(control_out, {"ok": True})
    elif op == "run_tests":
        run_batch(request, blobs, control_in, control_out, state["python"])
    elif op in ("stop", "expected"):
        pass  # a batch's message that came after the batch ended: nothing to answer
    elif op == "run":
        passed = None
        if request.get("stdio_fds"):
            import socket
            _msg, fds, _flags, _addr = socket.recv_fds(fd_socket, 16, 2)
            passed = tuple(fds)
        header, outs = run_one(request, blobs, control_in, state["python"], passed)
        write_message(control_out, header, outs)
    else:
        write_message(control_out, {"error": "unknown op %r" % op})


def serve(control_in, control_out, fd_socket):
    state = {"python": (None, None)}
    while True:
        try:
            request, blobs = read_message(control_in)
        except EOFError:
            return
        if request["op"] == "exit":
            return
        try:
            handle(request, blobs, control_in, control_out, fd_socket, state)
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                raise  # the host is gone
            write_message(control_out, {"error": "agent: %s" % exc})
        except Exception as exc:  # noqa: BLE001 - the agent answers and keeps serving
            write_message(control_out, {"error": "agent: %s: %s" % (type(exc).__name__, exc)})


def cold_child_main(spec_path, args_path):
    """Entry of a cold (exec'd) Python test process: same code path as a forked child."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # run_python_program restores the default for the code
    with open(spec_path) as fh:
        spec = json.load(fh)
    args = None
    if args_path != "-":
        with open(args_path) as fh:
            args = json.load(fh)
    code_obj, syntax_error = compile_python(spec)
    run_python_program(code_obj, syntax_error, spec, args)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--cold-child":
        cold_child_main(sys.argv[2], sys.argv[3])
        return
    # Move the control channel off fds 0/1 so children never inherit it.
    control_in = os.dup(0)
    control_out = os.dup(1)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    for fd in (control_in, control_out):
        os.set_inheritable(fd, False)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no /proc/1/mem, fd access
    except Exception:  # noqa: BLE001 - best effort; ptrace is also denied by seccomp
        pass
    os.environ.pop("PWD", None)  # bwrap's --chdir sets it; exec'd programs get none
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # functional arguments may be ints of any length
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # As PID 1 of the jail, only signals with a handler reach us: drop CPython's SIGINT
    # handler so the code under test cannot interrupt the agent.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if "--no-warm" not in sys.argv:
        # Python-family jails: tests are forks of this interpreter, so import ahead.
        # Other jails skip it: a smaller agent forks faster.
        for name in WARM_MODULES:
            try:
                __import__(name)
            except ImportError:
                pass
    write_message(control_out, {"ready": True, "version": sys.version.split()[0]})
    fd_socket = None
    if "--fd-socket" in sys.argv:
        import socket
        fd_socket = socket.socket(fileno=int(sys.argv[sys.argv.index("--fd-socket") + 1]))
        os.set_inheritable(fd_socket.fileno(), False)
    try:
        serve(control_in, control_out, fd_socket)
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.EBADF):
            raise


if __name__ == "__main__":
    main()

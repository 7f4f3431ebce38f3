"""Warm fork (fast path) vs cold interpreter: the same program must be judged the same way.

`judge` forks each Python test from a warm interpreter inside the jail; `cold_judge`
starts a fresh interpreter per test (`agent.py --cold-child`). Verdicts, per-test
verdicts and what the program prints must not depend on which one ran it.
"""
from __future__ import annotations

import pytest

from conftest import execute_request, grade_request
from sandbox.v1 import sandbox_pb2 as pb

V = pb.Verdict.Name

# name -> (source, tests, kind/func_name/limits for grade_request, stdin for Execute or None)
PROGRAMS = {
    "ac": ("print(int(input()) * 2)", [("1", "2"), ("21", "42")], {}, b"21\n"),
    "wa": ("print(int(input()) + 1)", [("1", "2"), ("21", "42")], {}, b"21\n"),
    "tle": ("while True:\n    pass", [("", "")], {"time_limit": 1}, None),
    "mle": ("a = []\nwhile True:\n    a.append([0] * 100000)", [("", "")], {"memory_mb": 256}, None),
    "re_exit_code": ("import sys\nprint('before')\nsys.exit(3)", [("", "before")], {}, b""),
    "re_exception": ("x = [1]\nprint(x[5])", [("", "")], {}, b""),
    "re_exit_message": ("import sys\nsys.exit('fatal: bad input')", [("", "")], {}, b""),
    "syntax_error": ("def f(:\n    return 1\n", [("", "1")], {}, b""),
    "ole": ("import sys\nfor i in range(10 ** 6):\n    sys.stdout.write('y' * 99 + '\\n')",
            [("", "")], {"output_limit_bytes": 100_000}, None),
    "stdin_read": ("import sys\ndata = sys.stdin.read().split()\nprint(sum(map(int, data)), len(data))",
                   [("1 2 3\n4\n", "10 4"), ("", "0 0")], {}, b"1 2 3\n4\n"),
    "stdin_buffer": ("import sys\nprint(sys.stdin.buffer.read().count(b'\\n'))",
                     [("a\nb\nc\n", "3")], {}, b"a\nb\nc\n"),
    "functional": ("class Solution:\n    def pair(self, xs: List[int], k: int) -> Tuple[int, int]:\n"
                   "        return min(xs) + k, max(xs) + k\n",
                   [("[3, 1, 2]\n10", "[11, 13]"), ("[5]\n1", "[6, 6]")],
                   {"kind": pb.FUNCTIONAL, "func_name": "pair"}, None),
    "functional_top_level": ("def add(a, b):\n    return a + b\n", [("1\n2", "3")],
                             {"kind": pb.FUNCTIONAL, "func_name": "add"}, None),
    "main_block": ("def main():\n    print('in main', __name__)\n\nif __name__ == '__main__':\n    main()\n",
                   [("", "in main __main__")], {}, b""),
    "exit0_midway_flushes": ("import sys\nprint('kept', end='')\nsys.stdout.write(' and this')\n"
                             "sys.exit(0)\nprint('never')", [("", "kept and this")], {}, b""),
    "exit_none_midway": ("print('a')\nexit()\nprint('b')", [("", "a")], {}, b""),
    "atexit_output": ("import atexit\natexit.register(lambda: print('bye'))\nprint('hi')",
                      [("", "hi\nbye")], {}, b""),
    "thread_prints_after_main": ("import threading, time\n"
                                 "def late():\n    time.sleep(0.2)\n    print('late')\n"
                                 "threading.Thread(target=late).start()\nprint('main done')",
                                 [("", "main done\nlate")], {}, b""),
    "recursion": ("import sys\nsys.setrecursionlimit(100000)\n"
                  "def d(n):\n    return 0 if n == 0 else 1 + d(n - 1)\nprint(d(50000))",
                  [("", "50000")], {"memory_mb": 512}, b""),
    "stderr_only": ("import sys\nprint('to stderr', file=sys.stderr)\nprint('out')", [("", "out")], {}, b""),
    "file_size_error_caught": ("try:\n    open('big', 'wb').write(b'x' * 200_000)\nexcept OSError as e:\n"
                               "    print('caught', e.errno)\n", [("", "caught 27")],
                               {"file_size_limit_bytes": 100_000}, b""),
    "keyboard_interrupt_caught": ("import os, signal\ntry:\n    os.kill(os.getpid(), signal.SIGINT)\n"
                                  "    import time; time.sleep(1)\nexcept KeyboardInterrupt:\n"
                                  "    print('interrupted')\n", [("", "interrupted")], {}, b""),
}


def _grade(judge, name):
    source, tests, options, _ = PROGRAMS[name]
    request = grade_request(source, tests, **options)
    request.stop_on_first_failure = False
    return judge.grade(request, request.test_set)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_grade_parity(judge, cold_judge, name):
    warm = _grade(judge, name)
    cold = _grade(cold_judge, name)
    summary = (f"warm {V(warm.verdict)} {[V(t.verdict) for t in warm.tests]} {warm.message!r} "
               f"stderr={warm.first_failure.stderr[-400:]!r}\n"
               f"cold {V(cold.verdict)} {[V(t.verdict) for t in cold.tests]} {cold.message!r} "
               f"stderr={cold.first_failure.stderr[-400:]!r}")
    assert warm.verdict == cold.verdict, summary
    assert [t.verdict for t in warm.tests] == [t.verdict for t in cold.tests], summary
    assert warm.passed == cold.passed, summary
    assert cold.verdict != pb.SE and warm.verdict != pb.SE, summary


EXPECTED_VERDICT = {
    "ac": pb.AC, "wa": pb.WA, "tle": pb.TLE, "mle": pb.MLE, "re_exit_code": pb.RE,
    "re_exception": pb.RE, "re_exit_message": pb.RE, "ole": pb.OLE, "stdin_read": pb.AC,
    "stdin_buffer": pb.AC, "functional": pb.AC, "functional_top_level": pb.AC,
    "main_block": pb.AC, "exit0_midway_flushes": pb.AC, "exit_none_midway": pb.AC,
    "thread_prints_after_main": pb.AC, "recursion": pb.AC, "stderr_only": pb.AC,
    "syntax_error": pb.CE,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_VERDICT))
def test_cold_path_verdicts(cold_judge, name):
    """The cold path is the reference: it must itself get these programs right."""
    response = _grade(cold_judge, name)
    assert response.verdict == EXPECTED_VERDICT[name], (
        f"{V(response.verdict)}: {response.message} {response.first_failure.stderr[-600:]!r}")


@pytest.mark.parametrize("name", [n for n, p in PROGRAMS.items() if p[3] is not None])
def test_execute_parity(judge, cold_judge, name):
    source, _, options, stdin = PROGRAMS[name]
    limits = {k: v for k, v in options.items() if k not in ("kind", "func_name")}
    warm = judge.execute(execute_request(source, stdin=stdin, **limits))
    cold = cold_judge.execute(execute_request(source, stdin=stdin, **limits))
    assert warm.verdict == cold.verdict, (warm.message, cold.message)
    assert warm.stdout == cold.stdout
    assert warm.exit.exit_code == cold.exit.exit_code
    assert warm.exit.signal == cold.exit.signal


def test_atexit_handlers_run_as_in_cpython(judge, cold_judge):
    """`python3 main.py` runs atexit handlers at exit; both paths must too."""
    source = PROGRAMS["atexit_output"][0]
    for which in (judge, cold_judge):
        response = which.execute(execute_request(source))
        assert response.stdout == b"hi\nbye\n", response.stdout


def test_exit_flushes_buffered_output_in_both_paths(judge, cold_judge):
    source = "import sys\nsys.stdout.write('x' * 100_000)\nsys.exit(0)"
    for which in (judge, cold_judge):
        response = which.execute(execute_request(source))
        assert response.verdict == pb.AC
        assert response.stdout == b"x" * 100_000


# ---------------------------------------------------------------- the same jail either way


ISOLATION_PROBE = r"""
import os, socket, sys
print("ids", os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
print("cwd", os.getcwd(), socket.gethostname())
print("argv", sys.argv, __name__)
print("proc", len(os.listdir('/proc')), sorted(p for p in os.listdir('/proc') if p.isdigit()))
print("fds", sorted(int(fd) for fd in os.listdir('/proc/self/fd')))
for path in ('/etc/shadow', '/etc/passwd', '/root', '/proc/1/environ', '/proc/1/mem'):
    try:
        with open(path, 'rb') as fh:
            fh.read(1)
        print(path, "READABLE")
    except Exception as exc:
        print(path, type(exc).__name__)
# no route off the jail's loopback (read from inside: nothing is sent)
try:
    routes = open("/proc/net/route").read().splitlines()[1:]
except FileNotFoundError:
    routes = []
print("network", "OPEN" if routes else "no-routes")
import resource
for name in ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_CORE"):
    print(name, resource.getrlimit(getattr(resource, name)))
"""


def _probe(judge, source):
    response = judge.execute(execute_request(source, max_open_files=64, max_processes=16,
                                             file_size_limit_bytes=1 << 20))
    assert response.verdict == pb.AC, (response.message, response.stderr[-800:])
    return response.stdout.decode().splitlines()


def test_isolation_is_identical(judge, cold_judge):
    warm = _probe(judge, ISOLATION_PROBE)
    cold = _probe(cold_judge, ISOLATION_PROBE)
    assert warm == cold
    facts = dict(line.split(" ", 1) for line in warm)
    uid = int(facts["ids"].split()[0])
    assert uid != 0                                         # never root in the jail
    assert facts["/etc/shadow"] != "READABLE"
    assert facts["/proc/1/mem"] != "READABLE"
    assert facts["/proc/1/environ"] != "READABLE"
    assert facts["network"] != "OPEN"
    assert int(facts["proc"].split()[0]) < 100              # its own /proc: no host processes


def test_environment_variables_are_identical(judge, cold_judge):
    source = "import os\nfor k in sorted(os.environ): print(k, os.environ[k])"
    assert _probe(judge, source) == _probe(cold_judge, source)


def test_signal_dispositions_are_identical(judge, cold_judge):
    """A cold CPython ignores SIGPIPE and SIGXFSZ and turns SIGINT into KeyboardInterrupt;
    a forked child must start the user's code with the same dispositions."""
    source = ("import signal\nfor s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, "
              "signal.SIGTERM, signal.SIGCHLD):\n    print(s.name, signal.getsignal(s))")
    assert _probe(judge, source) == _probe(cold_judge, source)

"""Every verdict and every limit, through the in-process judge and (a few) through gRPC.

Time limits stay at 1–2 s and nothing asserts how long anything took: the machine is
small and shared. Where a verdict depends on time, the program is far past the limit.
"""
from __future__ import annotations

import grpc
import pytest

from conftest import execute_request, grade_request, make_tests, needs_cgroups
from sandbox.v1 import sandbox_pb2 as pb

V = pb.Verdict.Name


def grade(judge, source, tests, language="python", *, stop_on_first_failure=None,
          comparison=None, **kwargs) -> pb.GradeResponse:
    request = grade_request(source, tests, language, **kwargs)
    if stop_on_first_failure is not None:
        request.stop_on_first_failure = stop_on_first_failure
    if comparison is not None:
        request.comparison.CopyFrom(comparison)
    return judge.grade(request, request.test_set)


def verdicts(response) -> list[str]:
    return [V(t.verdict) for t in response.tests]


def assert_verdict(response, expected):
    assert response.verdict == expected, (
        f"expected {V(expected)}, got {V(response.verdict)}: {response.message}\n"
        f"stderr: {response.first_failure.stderr[-1500:]!r}\ncompile log: {response.compile_log[:1500]}")


DOUBLE = "print(int(input()) * 2)"
DOUBLE_TESTS = [("1", "2"), ("2", "4"), ("3", "6")]
CPP_SUM = ("#include <bits/stdc++.h>\nint main(){ long long a, b; std::cin >> a >> b; "
           "std::cout << a + b << \"\\n\"; }\n")

# ---------------------------------------------------------------- AC / WA


def test_accepted_python(judge):
    response = grade(judge, DOUBLE, DOUBLE_TESTS)
    assert_verdict(response, pb.AC)
    assert response.passed == response.total == 3
    assert verdicts(response) == ["AC"] * 3
    assert not response.message
    for result in response.tests:
        assert result.exit.exit_code == 0 and result.exit.signal == 0


def test_accepted_cpp(judge):
    response = grade(judge, CPP_SUM, [("1 2", "3"), ("-5 5", "0")], "cpp")
    assert_verdict(response, pb.AC)
    assert response.passed == 2


def test_wrong_answer_and_failure_excerpt(judge):
    response = grade(judge, "x = int(input())\nprint(x * 2 if x != 2 else 5)", DOUBLE_TESTS,
                     stop_on_first_failure=False)
    assert_verdict(response, pb.WA)
    assert verdicts(response) == ["AC", "WA", "AC"]
    assert response.passed == 2 and response.total == 3
    assert response.message.startswith("test 1")
    excerpt = response.first_failure
    assert excerpt.test_index == 1
    assert excerpt.input == b"2" and excerpt.expected == b"4" and excerpt.stdout == b"5\n"
    assert not excerpt.truncated


def test_wrong_answer_cpp(judge):
    response = grade(judge, CPP_SUM.replace("a + b", "a - b"), [("1 2", "3")], "cpp")
    assert_verdict(response, pb.WA)


def test_no_output_is_wrong_answer(judge):
    assert_verdict(grade(judge, "x = input()", [("1", "2")]), pb.WA)


# ---------------------------------------------------------------- TLE


def test_tle_python_busy_loop(judge):
    response = grade(judge, "while True:\n    pass", [("", "")], time_limit=1)
    assert_verdict(response, pb.TLE)


def test_tle_cpp_busy_loop(judge):
    response = grade(judge, "int main(){ volatile unsigned long x = 0; while (true) x++; }",
                     [("", "")], "cpp", time_limit=1)
    assert_verdict(response, pb.TLE)


def test_tle_is_judged_on_cpu_time_not_wall_time(judge):
    """A program that sleeps past the time limit, but under the wall limit, is not TLE."""
    response = grade(judge, "import time\ntime.sleep(1.5)\nprint('ok')", [("", "ok")],
                     time_limit=1, wall_limit_s=10)
    assert_verdict(response, pb.AC)
    assert response.tests[0].usage.cpu_time_s < 1.0


def test_wall_limit_catches_a_sleeping_program(judge):
    response = grade(judge, "import time\ntime.sleep(30)\nprint('ok')", [("", "ok")],
                     time_limit=1, wall_limit_s=1.5)
    assert_verdict(response, pb.TLE)
    assert "wall" in response.message


@pytest.mark.parametrize("time_limit, wall", [(1.0, 3.0), (2.5, 6.0), (0.2, 1.4), (6.0, 13.0)])
def test_derived_wall_cap_is_twice_the_limit_plus_one_second(time_limit, wall):
    from workers.limits import RunLimits
    limits = RunLimits(time_limit_s=time_limit)
    assert limits.wall_s == pytest.approx(wall)
    assert limits.to_agent()["wall_s"] == pytest.approx(wall)
    assert RunLimits(time_limit_s=time_limit, wall_limit_s=7.5).wall_s == 7.5  # explicit wins


def test_derived_wall_cap_holds_a_sleeper_to_three_seconds_at_one(judge):
    """No wall limit in the request: 2 × 1 s + 1 s. A 4 s sleeper is stopped near 3 s, a 1.5 s
    one is not (a looser cap, e.g. 20×, would pass the first)."""
    stopped = grade(judge, "import time\ntime.sleep(4)\nprint('ok')", [("", "ok")], time_limit=1)
    assert_verdict(stopped, pb.TLE)
    assert "wall" in stopped.message
    assert 2.9 <= stopped.tests[0].usage.wall_time_s < 3.8, stopped.tests[0].usage.wall_time_s
    assert_verdict(grade(judge, "import time\ntime.sleep(1.5)\nprint('ok')", [("", "ok")], time_limit=1),
                   pb.AC)


def test_wall_limit_catches_a_program_blocked_on_a_pipe(judge):
    source = "import os\nr, w = os.pipe()\nos.read(r, 1)\n"  # blocks forever, no CPU
    assert_verdict(grade(judge, source, [("", "")], time_limit=1, wall_limit_s=1.5), pb.TLE)


@needs_cgroups
def test_tle_in_a_child_process_is_counted(judge):
    """CPU burnt by a forked child the program waits for still counts."""
    source = ("import os\npid = os.fork()\nif pid == 0:\n    while True: pass\n"
              "os.waitpid(pid, 0)\nprint('done')")
    response = grade(judge, source, [("", "done")], time_limit=1, wall_limit_s=4,
                     max_processes=2)
    assert response.verdict == pb.TLE, V(response.verdict)


# ---------------------------------------------------------------- MLE


def test_mle_python_list_growth(judge):
    response = grade(judge, "a = []\nwhile True:\n    a.append([0] * 100000)", [("", "")],
                     memory_mb=256)
    assert_verdict(response, pb.MLE)


def test_mle_python_one_big_allocation(judge):
    response = grade(judge, "a = bytearray(600 * 1024 * 1024)\nprint(len(a))", [("", "1")],
                     memory_mb=256)
    assert_verdict(response, pb.MLE)


def test_mle_cpp_vector(judge):
    source = ("#include <bits/stdc++.h>\nint main(){ std::vector<std::vector<int>> v; "
              "while (true) v.emplace_back(1 << 20, 1); }")
    assert_verdict(grade(judge, source, [("", "")], "cpp", memory_mb=256), pb.MLE)


def test_mle_cpp_one_big_vector(judge):
    source = ("#include <bits/stdc++.h>\nint main(){ std::vector<int> v(400000000); v[7] = 1; "
              "printf(\"%d\\n\", v[7]); }")
    assert_verdict(grade(judge, source, [("", "1")], "cpp", memory_mb=256), pb.MLE)


def test_memory_under_the_limit_is_fine(judge):
    source = "a = bytearray(100 * 1024 * 1024)\na[-1] = 1\nprint(sum(a[-10:]))"
    assert_verdict(grade(judge, source, [("", "1")], memory_mb=256), pb.AC)


def test_exception_is_runtime_error_not_mle(judge):
    response = grade(judge, "raise ValueError('boom')", [("", "")], memory_mb=256)
    assert_verdict(response, pb.RE)
    assert b"ValueError: boom" in response.first_failure.stderr


def test_exception_after_moderate_memory_use_is_runtime_error(judge):
    source = "a = bytearray(50 * 1024 * 1024)\nraise KeyError(3)"
    assert_verdict(grade(judge, source, [("", "")], memory_mb=256), pb.RE)


# ---------------------------------------------------------------- RE


def test_runtime_error_exit_code(judge):
    response = grade(judge, "import sys\nprint('partial')\nsys.exit(3)", [("", "partial")])
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.exit_code == 3
    assert response.tests[0].exit.signal == 0
    assert "3" in response.message


def test_runtime_error_cpp_exit_code(judge):
    response = grade(judge, "int main(){ return 7; }", [("", "")], "cpp")
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.exit_code == 7


def test_runtime_error_signal_cpp_null_dereference(judge):
    source = "int main(){ volatile int *p = nullptr; *p = 1; return 0; }"
    response = grade(judge, source, [("", "")], "cpp")
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.signal == 11
    assert "SIGSEGV" in response.message


def test_runtime_error_signal_python_abort(judge):
    response = grade(judge, "import os\nos.abort()", [("", "")])
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.signal == 6
    assert "SIGABRT" in response.message


def test_runtime_error_reading_past_eof(judge):
    response = grade(judge, "a = input()\nb = input()\nprint(a)", [("1", "1")])
    assert_verdict(response, pb.RE)
    assert b"EOFError" in response.first_failure.stderr


def test_python_syntax_error_is_a_compile_error(judge):
    # As lcb_runner and the README: a Python syntax error is CE, never RE.
    response = grade(judge, "def f(:\n    pass\n", [("", "")])
    assert_verdict(response, pb.CE)
    assert "SyntaxError" in response.compile_log
    assert response.passed == 0


# ---------------------------------------------------------------- CE


def test_compile_error_cpp(judge):
    response = grade(judge, "int main(){ return undefined_name; }", DOUBLE_TESTS, "cpp")
    assert_verdict(response, pb.CE)
    assert "undefined_name" in response.compile_log
    assert "error" in response.compile_log
    assert response.passed == 0
    assert all(t.verdict != pb.AC for t in response.tests)


# ---------------------------------------------------------------- OLE


def test_output_limit(judge):
    source = "import sys\nfor i in range(10 ** 6):\n    sys.stdout.write('x' * 100 + '\\n')"
    response = grade(judge, source, [("", "")], output_limit_bytes=100_000)
    assert_verdict(response, pb.OLE)


def test_output_limit_counts_stderr(judge):
    source = "import sys\nfor i in range(10 ** 6):\n    sys.stderr.write('x' * 100 + '\\n')"
    assert_verdict(grade(judge, source, [("", "")], output_limit_bytes=100_000), pb.OLE)


def test_output_limit_cpp(judge):
    source = "#include <cstdio>\nint main(){ for(;;) puts(\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"); }"
    assert_verdict(grade(judge, source, [("", "")], "cpp", output_limit_bytes=100_000), pb.OLE)


def test_output_under_the_limit_is_fine(judge):
    source = "print('x' * 50_000)"
    assert_verdict(grade(judge, source, [("", "x" * 50_000)], output_limit_bytes=100_000), pb.AC)


# ---------------------------------------------------------------- stop on first failure


def test_skipped_after_first_failure_by_default(judge):
    response = grade(judge, "x = int(input())\nprint(x * 2 if x != 2 else 5)",
                     DOUBLE_TESTS + [("4", "8")])
    assert_verdict(response, pb.WA)
    assert verdicts(response) == ["AC", "WA", "SKIPPED", "SKIPPED"]
    assert response.passed == 1 and response.total == 4


def test_all_tests_run_when_stop_on_first_failure_is_false(judge):
    response = grade(judge, "x = int(input())\nprint(x * 2 if x % 2 else x)",
                     DOUBLE_TESTS + [("4", "8")], stop_on_first_failure=False)
    assert_verdict(response, pb.WA)
    assert verdicts(response) == ["AC", "WA", "AC", "WA"]
    assert response.passed == 2
    assert response.first_failure.test_index == 1


def test_first_failure_decides_the_verdict(judge):
    source = ("import sys\nx = int(input())\nif x == 2: sys.exit(4)\nif x == 3:\n"
              "    while True: pass\nprint(x * 2)")
    response = grade(judge, source, DOUBLE_TESTS, stop_on_first_failure=False, time_limit=1)
    assert_verdict(response, pb.RE)
    assert verdicts(response) == ["AC", "RE", "TLE"]


# ---------------------------------------------------------------- limits


FORK_100 = """
import os, time
children = []
for i in range(100):
    pid = os.fork()
    if pid == 0:
        time.sleep(0.3)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(len(children))
"""


@needs_cgroups
def test_max_processes_blocks_a_fork_storm(judge):
    # 8 processes + EXTRA_THREADS (63) tasks at once: the 72nd fork fails.
    response = grade(judge, FORK_100, [("", "100")], max_processes=8)
    assert_verdict(response, pb.RE)
    assert b"BlockingIOError" in response.first_failure.stderr


@needs_cgroups
def test_max_processes_allows_a_few_children(judge):
    source = FORK_100.replace("range(100)", "range(4)")
    assert_verdict(grade(judge, source, [("", "4")], max_processes=8), pb.AC)


@needs_cgroups
def test_max_processes_cpp(judge):
    source = r"""#include <bits/stdc++.h>
#include <unistd.h>
#include <sys/wait.h>
int main(){ int n = 0; for (int i = 0; i < 100; i++) { pid_t p = fork();
  if (p == 0) { usleep(300000); _exit(0); } if (p < 0) return 1; n++; }
  while (wait(nullptr) > 0) {} printf("%d\n", n); }"""
    response = grade(judge, source, [("", "100")], "cpp", max_processes=8)
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.exit_code == 1


def test_threads_are_allowed_under_the_process_limit(judge):
    source = ("import threading\nout = []\nts = [threading.Thread(target=out.append, args=(i,)) "
              "for i in range(4)]\nfor t in ts: t.start()\nfor t in ts: t.join()\nprint(len(out))")
    assert_verdict(grade(judge, source, [("", "4")], max_processes=8), pb.AC)


def test_file_size_limit(judge):
    source = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * 200_000)\nprint('wrote')"
    response = grade(judge, source, [("", "wrote")], file_size_limit_bytes=100_000)
    assert response.verdict != pb.AC
    assert_verdict(response, pb.RE)


def test_file_size_limit_cpp(judge):
    source = r"""#include <cstdio>
int main(){ FILE *f = fopen("big.bin", "wb"); if (!f) return 2;
  static char buf[200000]; size_t n = fwrite(buf, 1, sizeof buf, f);
  if (fclose(f) != 0 || n != sizeof buf) return 3; puts("wrote"); }"""
    response = grade(judge, source, [("", "wrote")], "cpp", file_size_limit_bytes=100_000)
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.signal == 25 or response.tests[0].exit.exit_code == 3


def test_file_under_the_size_limit_is_fine(judge):
    source = ("with open('small.bin', 'wb') as f:\n    f.write(b'x' * 50_000)\n"
              "print(len(open('small.bin', 'rb').read()))")
    assert_verdict(grade(judge, source, [("", "50000")], file_size_limit_bytes=100_000), pb.AC)


def test_max_open_files(judge):
    source = "files = [open('/work/f%d' % i, 'w') for i in range(100)]\nprint(len(files))"
    response = grade(judge, source, [("", "100")], max_open_files=32)
    assert_verdict(response, pb.RE)
    assert b"Too many open files" in response.first_failure.stderr


def test_open_files_under_the_limit_are_fine(judge):
    source = "files = [open('/work/f%d' % i, 'w') for i in range(10)]\nprint(len(files))"
    assert_verdict(grade(judge, source, [("", "10")], max_open_files=32), pb.AC)


def test_deep_python_recursion(judge):
    source = ("import sys\nsys.setrecursionlimit(200000)\n"
              "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\n"
              "print(depth(100000))")
    assert_verdict(grade(judge, source, [("", "100000")], memory_mb=512), pb.AC)


def test_deep_python_recursion_with_lcb_header_limit(judge):
    # The LCB header raises the recursion limit to 50000 (as lcb_runner does).
    source = "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\nprint(depth(20000))"
    assert_verdict(grade(judge, source, [("", "20000")], memory_mb=512), pb.AC)


CPP_DEEP_SMALL_FRAMES = r"""#include <bits/stdc++.h>
int depth(int n) { volatile int keep = n; if (n == 0) return 0; return depth(n - 1) + (keep & 1); }
int main() { printf("%d\n", depth(1000000)); }
"""

CPP_DEEP_1KB_FRAMES = r"""#include <bits/stdc++.h>
int depth(int n) {
    volatile char frame[1024];
    frame[0] = (char)(n & 0x7f); frame[1023] = 1;
    if (n == 0) return frame[0];
    return depth(n - 1) + frame[1023];
}
int main() { printf("%d\n", depth(DEPTH)); }
"""


def test_deep_cpp_recursion_million_frames(judge):
    response = grade(judge, CPP_DEEP_SMALL_FRAMES, [("", "500000")], "cpp", memory_mb=512)
    assert_verdict(response, pb.AC)


def test_deep_cpp_recursion_1kb_frames(judge):
    # 10^5 frames of 1 KiB ≈ 100 MiB of stack: fits a 512 MiB limit (10^6 such frames, ≈ 1 GiB,
    # could not fit 512 MiB under any judge).
    source = CPP_DEEP_1KB_FRAMES.replace("DEPTH", "100000")
    response = grade(judge, source, [("", "100000")], "cpp", memory_mb=512)
    assert_verdict(response, pb.AC)


def test_cpp_stack_overflow_past_the_memory_limit_fails(judge):
    source = CPP_DEEP_1KB_FRAMES.replace("DEPTH", "1000000")  # ≈ 1 GiB of stack
    response = grade(judge, source, [("", "1000000")], "cpp", memory_mb=256, time_limit=2)
    assert response.verdict in (pb.MLE, pb.RE, pb.TLE), V(response.verdict)


# ---------------------------------------------------------------- C++ compiled once


def test_cpp_compiled_once_for_many_tests(judge):
    tests = [(f"{i} {2 * i}", str(3 * i)) for i in range(30)]
    response = grade(judge, CPP_SUM, tests, "cpp")
    assert_verdict(response, pb.AC)
    assert response.passed == 30 and len(response.tests) == 30
    assert response.timings.compile_s > 0
    assert response.compile_log == "" or "error" not in response.compile_log


def test_cpp_binary_persists_between_tests(judge):
    """The program is built once: every test runs the same binary (same inode, same mtime)."""
    source = r"""#include <bits/stdc++.h>
#include <sys/stat.h>
int main(){ struct stat st; stat("/work/main", &st);
  FILE *f = fopen("/work/seen.txt", "a+"); fseek(f, 0, SEEK_SET);
  long long ino, mt; int same = 1, lines = 0;
  while (fscanf(f, "%lld %lld", &ino, &mt) == 2) { lines++;
    if (ino != (long long)st.st_ino || mt != (long long)st.st_mtime) same = 0; }
  fprintf(f, "%lld %lld\n", (long long)st.st_ino, (long long)st.st_mtime); fclose(f);
  printf("%s\n", same ? "same" : "rebuilt"); }"""
    response = grade(judge, source, [("", "same")] * 10, "cpp")
    assert_verdict(response, pb.AC)


# ---------------------------------------------------------------- functional


FUNCTIONAL = dict(kind=pb.FUNCTIONAL)


def test_functional_solution_method(judge):
    source = ("class Solution:\n    def addAll(self, nums: List[int], k: int) -> int:\n"
              "        return sum(nums) + k\n")
    response = grade(judge, source, [("[1, 2, 3]\n4", "10"), ("[]\n0", "0")],
                     func_name="addAll", **FUNCTIONAL)
    assert_verdict(response, pb.AC)
    assert response.passed == 2


def test_functional_top_level_function(judge):
    source = "def concat(a, b):\n    return a + b\n"
    response = grade(judge, source, [('"ab"\n"cd"', '"abcd"'), ("[1]\n[2]", "[1, 2]")],
                     func_name="concat", **FUNCTIONAL)
    assert_verdict(response, pb.AC)


def test_functional_lcb_header_is_available(judge):
    source = ("class Solution:\n    def kSmallest(self, nums: List[int], k: int) -> List[int]:\n"
              "        counts = defaultdict(int)\n        for x in nums: counts[x] += 1\n"
              "        h = list(counts)\n        heapify(h)\n"
              "        return [heappop(h) for _ in range(k)] + [gcd(12, 18), bisect_left([1, 3], 2)]\n")
    response = grade(judge, source, [("[5, 1, 5, 3]\n2", "[1, 3, 6, 1]")],
                     func_name="kSmallest", **FUNCTIONAL)
    assert_verdict(response, pb.AC)


def test_lcb_header_in_stdin_programs(judge):
    # lcb_runner prepends the same header to stdin programs.
    source = "print(sqrt(16), Counter('aab')['a'], deque([1, 2]).pop())"
    assert_verdict(grade(judge, source, [("", "4.0 2 2")]), pb.AC)


def test_functional_args_one_json_per_line(judge):
    source = ("def f(a, b, c, d, e):\n"
              "    return [type(a).__name__, type(b).__name__, type(c).__name__, "
              "type(d).__name__, e]\n")
    test = ('[[1, 2], [3]]\n"text"\n{"k": 1}\n2.5\nnull', '["list", "str", "dict", "float", null]')
    assert_verdict(grade(judge, source, [test], func_name="f", **FUNCTIONAL), pb.AC)


def test_functional_tuple_result_accepted(judge):
    source = "def minmax(xs):\n    return min(xs), max(xs)\n"
    assert_verdict(grade(judge, source, [("[3, 1, 2]", "[1, 3]")], func_name="minmax",
                         **FUNCTIONAL), pb.AC)


def test_functional_wrong_answer(judge):
    source = "def minmax(xs):\n    return [(min(xs), max(xs))]\n"
    response = grade(judge, source, [("[3, 1, 2]", "[[1, 3]]")], func_name="minmax", **FUNCTIONAL)
    assert_verdict(response, pb.WA)


def test_functional_unencodable_result_is_wrong_answer(judge):
    source = "def f(x):\n    return object()\n"
    response = grade(judge, source, [("1", "1")], func_name="f", **FUNCTIONAL)
    assert_verdict(response, pb.WA)
    assert "object" in response.message


def test_functional_deeply_nested_result_is_wrong_answer(judge):
    # The host used to raise RecursionError reading a deep result back (INTERNAL for the
    # whole request). Deep ones are refused in the jail, shallower ones on the host: WA.
    source = ("def f(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n    return x\n")
    response = grade(judge, source, [("5000", "[]"), ("600", "[]"), ("3", "[[[[]]]]")],
                     func_name="f", stop_on_first_failure=False, **FUNCTIONAL)
    assert_verdict(response, pb.WA)
    assert verdicts(response) == ["WA", "WA", "AC"]
    for result in response.tests[:2]:
        assert "nested" in result.message


def test_lcb_output_bytes_are_not_replaced(judge):
    # errors="replace" read both invalid bytes as U+FFFD: this was AC.
    source = "import sys\nsys.stdout.buffer.write(b'caf\\xfe\\n')\n"
    assert_verdict(grade(judge, source, [("", b"caf\xe9")]), pb.WA)
    assert_verdict(grade(judge, source, [("", b"caf\xfe")]), pb.AC)


def test_functional_prints_do_not_matter(judge):
    source = "def f(x):\n    print('debug', x)\n    return x + 1\n"
    assert_verdict(grade(judge, source, [("1", "2")], func_name="f", **FUNCTIONAL), pb.AC)


def test_functional_exception_is_runtime_error(judge):
    source = "def f(x):\n    return x // 0\n"
    response = grade(judge, source, [("1", "2")], func_name="f", **FUNCTIONAL)
    assert_verdict(response, pb.RE)
    assert b"ZeroDivisionError" in response.first_failure.stderr


def test_functional_tle(judge):
    source = "def f(x):\n    while True: pass\n"
    response = grade(judge, source, [("1", "2")], func_name="f", time_limit=1, **FUNCTIONAL)
    assert_verdict(response, pb.TLE)


# ---------------------------------------------------------------- PyPy


def _needs_pypy(judge):
    if "pypy" not in judge.languages:
        pytest.skip("PyPy is not installed on this machine")


def test_pypy_accepted(judge):
    _needs_pypy(judge)
    response = grade(judge, DOUBLE, DOUBLE_TESTS, "pypy", memory_mb=1024)
    assert_verdict(response, pb.AC)


def test_pypy_functional(judge):
    _needs_pypy(judge)
    source = "class Solution:\n    def f(self, xs: List[int]) -> int:\n        return sum(xs)\n"
    response = grade(judge, source, [("[1, 2]", "3")], "pypy", memory_mb=1024,
                     func_name="f", **FUNCTIONAL)
    assert_verdict(response, pb.AC)


def test_pypy_accepted_at_a_256_mb_limit(judge):
    """256 MB is the usual Codeforces limit; a trivial program must not be MLE under it."""
    _needs_pypy(judge)
    response = grade(judge, DOUBLE, DOUBLE_TESTS, "pypy", memory_mb=256)
    assert_verdict(response, pb.AC)


# ---------------------------------------------------------------- comparison modes


def test_comparison_exact(judge):
    exact = pb.Comparison(mode=pb.Comparison.EXACT)
    assert_verdict(grade(judge, "print('1 2')", [("", "1 2\n")], comparison=exact), pb.AC)
    assert_verdict(grade(judge, "print('1 2 ')", [("", "1 2\n")], comparison=exact), pb.WA)
    assert_verdict(grade(judge, "print('1 2')", [("", "1 2")], comparison=exact), pb.WA)


def test_comparison_tokens(judge):
    tokens = pb.Comparison(mode=pb.Comparison.TOKENS)
    assert_verdict(grade(judge, "print(' 1\\n\\n2  ')", [("", "1 2")], comparison=tokens), pb.AC)
    assert_verdict(grade(judge, "print('1.0 2')", [("", "1 2")], comparison=tokens), pb.WA)


def test_comparison_float(judge):
    fl = pb.Comparison(mode=pb.Comparison.FLOAT, abs_epsilon=1e-6, rel_epsilon=1e-6)
    assert_verdict(grade(judge, "print(0.1 + 0.2)", [("", "0.3")], comparison=fl), pb.AC)
    assert_verdict(grade(judge, "print(1e9 + 0.5)", [("", "1000000000")], comparison=fl), pb.AC)
    response = grade(judge, "print(0.3001)", [("", "0.3")], comparison=fl)
    assert_verdict(response, pb.WA)
    assert "token 1" in response.message


def test_comparison_lcb_is_the_default(judge):
    response = grade(judge, "print('1.0\\n2   ')", [("", "1\n2\n")])
    assert_verdict(response, pb.AC)
    unspecified = grade(judge, "print('1.0\\n2   ')", [("", "1\n2\n")],
                        comparison=pb.Comparison())
    assert_verdict(unspecified, pb.AC)


def test_comparison_lcb_extra_line_in_the_middle(judge):
    assert_verdict(grade(judge, "print('1\\n\\n2')", [("", "1\n2")]), pb.WA)


# ---------------------------------------------------------------- never SE for user failures


HOSTILE = {
    # The agent is PID 1 of the jail: signals from the program cannot stop it.
    "kill_pid1": "import os, signal\ntry:\n    os.kill(1, signal.SIGKILL)\nexcept OSError:\n    pass\nprint(input())",
    "kill_everyone": "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nprint(input())",
    "kill_self": "import os, signal\nprint(input(), flush=True)\nos.kill(os.getpid(), signal.SIGKILL)",
    "close_stdout": "import os\nos.close(1)\nprint(input())",
    "os_exit_unflushed": "import os\nprint(input())\nos._exit(0)",
    "background_child_holds_stdout": "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint(input())",
    "setsid_daemon": "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)\nprint(input())",
    "stop_self": "import os, signal\nprint(input(), flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)",
    "huge_line_no_newline": "import sys\nsys.stdout.write('7' * 10_000_000)",
    "binary_garbage": "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 100)",
    "sigterm_self": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)",
    "chdir_and_delete_work": "import os, shutil\nos.chdir('/')\nshutil.rmtree('/work', ignore_errors=True)\nprint(input())",
    "read_agent_memory": "try:\n    open('/proc/1/mem', 'rb').read(1)\nexcept Exception:\n    pass\nprint(input())",
    "lcb_signaling_nan": "print('sNaN')",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_user_failures_are_never_system_errors(judge, name):
    response = grade(judge, HOSTILE[name], [("5", "5"), ("6", "6")], time_limit=1,
                     wall_limit_s=3, output_limit_bytes=1_000_000, stop_on_first_failure=False)
    assert response.verdict != pb.SE, response.message
    assert response.verdict != pb.VERDICT_UNSPECIFIED
    assert all(t.verdict not in (pb.SE, pb.VERDICT_UNSPECIFIED) for t in response.tests)
    assert len(response.tests) == 2


def test_hostile_programs_do_not_break_the_next_test(judge):
    """Both tests run in the same jail: the first one's mischief must not affect the second."""
    source = ("import os, signal\nx = input()\nif x == '1':\n"
              "    for pid in range(1, 200):\n        try: os.kill(pid, signal.SIGKILL)\n"
              "        except OSError: pass\n"
              "    open('/work/main.py', 'w').write('print(1/0)')\nprint(x)")
    response = grade(judge, source, [("1", "1"), ("2", "2"), ("3", "3")],
                     stop_on_first_failure=False)
    assert verdicts(response)[1:] == ["AC", "AC"]


def test_execute_reports_output_and_exit(judge):
    response = judge.execute(execute_request("import sys\nprint(input()[::-1])\nsys.exit(2)",
                                             stdin=b"abc\n"))
    assert response.verdict == pb.RE
    assert response.stdout == b"cba\n"
    assert response.exit.exit_code == 2


# ---------------------------------------------------------------- through gRPC


def test_grpc_verdicts(client):
    cases = [
        (grade_request(DOUBLE, DOUBLE_TESTS), pb.AC),
        (grade_request("print(0)", DOUBLE_TESTS), pb.WA),
        (grade_request("while True: pass", [("", "")], time_limit=1), pb.TLE),
        (grade_request("a = []\nwhile True: a.append([0] * 100000)", [("", "")]), pb.MLE),
        (grade_request("int main(){ return undefined_name; }", [("", "")], "cpp"), pb.CE),
        (grade_request("print('x' * 200_000)", [("", "")], output_limit_bytes=100_000), pb.OLE),
    ]
    for request, expected in cases:
        response = client.grade(request)
        assert_verdict(response, expected)
        assert response.test_set_digest


def test_grpc_runtime_errors(client):
    response = client.grade(grade_request("import sys\nsys.exit(3)", [("", "")]))
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.exit_code == 3
    response = client.grade(grade_request("int main(){ volatile int *p = nullptr; *p = 1; }",
                                          [("", "")], "cpp"))
    assert_verdict(response, pb.RE)
    assert response.tests[0].exit.signal == 11


def test_grpc_skipped_and_functional(client):
    response = client.grade(grade_request("print(2)", DOUBLE_TESTS))
    assert verdicts(response) == ["AC", "WA", "SKIPPED"]
    source = "class Solution:\n    def two(self, a: int) -> Tuple[int, int]:\n        return a, a\n"
    response = client.grade(grade_request(source, [("3", "[3, 3]")], kind=pb.FUNCTIONAL,
                                          func_name="two"))
    assert_verdict(response, pb.AC)


def test_grpc_grade_by_test_set_digest(client):
    digest = client.put_test_set(make_tests(DOUBLE_TESTS))
    assert client.has_test_set(digest)
    request = grade_request(DOUBLE, DOUBLE_TESTS)
    request.test_set_digest = digest  # replaces the inline test set (oneof)
    response = client.grade(request)
    assert_verdict(response, pb.AC)
    assert response.test_set_digest == digest


def test_grpc_user_output_never_breaks_the_request(client):
    """Whatever a program prints is a verdict, never an RPC error."""
    try:
        response = client.grade(grade_request("print('sNaN')", [("", "1")]))
    except grpc.RpcError as exc:
        pytest.fail(f"printing 'sNaN' made the RPC fail: {exc.code()} {exc.details()}")
    # lcb_runner's comparison raises on a signaling NaN: a runtime error there, and here.
    assert_verdict(response, pb.RE)


@pytest.mark.parametrize("fast", [True, False])
def test_functional_arguments_and_answers_over_the_int_string_limit(judge, cold_judge, fast):
    """Integers of any length go in and come out exactly (Python's 4300-digit limit is the
    program's business, not the harness's)."""
    digits = "1" + "0" * 5000
    tests = pb.TestSet(tests=[pb.TestCase(input=(digits + "7").encode(),
                                          output=(digits + "8").encode())])
    request = pb.GradeRequest(language="python", kind=pb.FUNCTIONAL, func_name="f",
                              source="def f(x):\n    return x + 1\n", test_set=tests)
    response = (judge if fast else cold_judge).grade(request, tests)
    assert response.verdict == pb.AC, response.message

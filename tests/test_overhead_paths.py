"""The fast paths of issue 12, each against the behaviour it must keep: ready jails (fresh for
every submission), one exchange per submission (early stop, deadlines, per-test memory), and
LiveCodeBench's header executed once per jail (what the program sees is as if it ran first).
"""
from __future__ import annotations

import os
import threading
import time

import pytest

from conftest import ServerThread, grade_request, make_tests
from sandbox.client import SandboxClient
from sandbox.service import SandboxCore
from sandbox.v1 import sandbox_pb2 as pb
from workers.agent import LCB_HEADER
from workers.jail import is_jail_host_uid
from workers.judge import DEADLINE_MESSAGE, Judge

V = pb.Verdict.Name


def wait_until(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def ready(judge: Judge, language: str = "python") -> int:
    return sum(s.ready for s in judge.pool_stats() if s.language == language)


def stats(judge: Judge, language: str = "python"):
    return next(s for s in judge.pool_stats() if s.language == language)


# ---------------------------------------------------------------- ready jails

@pytest.fixture
def pooled_judge():
    judge = Judge()
    judge.start_pool(per_language=2, capacity=2)
    wait_until(lambda: ready(judge) == 2)
    yield judge
    judge.close()


def test_ready_jails_are_taken_and_refilled(pooled_judge):
    request = grade_request("print(int(input()) * 2)", [("2", "4")])
    response = pooled_judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, response.message
    wait_until(lambda: ready(pooled_judge) == 2)
    found = stats(pooled_judge)
    assert found.taken >= 1 and found.started >= 3 and found.missed == 0


def test_every_submission_gets_a_jail_no_code_has_touched(pooled_judge):
    """A submission leaves files, a child and an environment change behind; the next one,
    in a ready jail, sees none of it."""
    dirty = ("import os, subprocess\n"
             "for d in ('/tmp', '/work', '/dev/shm'):\n"
             "    open(d + '/left-behind', 'w').write('x')\n"
             "os.environ['LEFT'] = '1'\n"
             "print('ok')\n")
    look = ("import os\n"
            "found = [d for d in ('/tmp', '/work', '/dev/shm') if os.path.exists(d + '/left-behind')]\n"
            "print(found, os.environ.get('LEFT'), sorted(os.listdir('/work')))\n")
    first = grade_request(dirty, [("", "ok")])
    assert pooled_judge.grade(first, first.test_set).verdict == pb.AC
    second = grade_request(look, [("", "[] None ['main.py']")])
    response = pooled_judge.grade(second, second.test_set)
    assert response.verdict == pb.AC, response.message + str(response.first_failure)
    assert stats(pooled_judge).taken >= 2


def test_a_dead_ready_jail_is_never_handed_out(pooled_judge):
    for jail in list(pooled_judge.pool._ready["python"]):
        jail.kill()
    request = grade_request("print(1)", [("", "1")])
    response = pooled_judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, response.message


def test_no_refill_while_every_slot_is_busy():
    judge = Judge()
    judge.start_pool(per_language=1, capacity=1)
    try:
        wait_until(lambda: ready(judge) == 1)
        sleeper = grade_request("import time\ntime.sleep(2)\nprint(1)", [("", "1")], time_limit=5)
        worker = threading.Thread(target=judge.grade, args=(sleeper, sleeper.test_set))
        worker.start()
        time.sleep(1.0)  # the grading took the ready jail; its slot is the only one
        assert ready(judge) == 0 and stats(judge).started == 1
        worker.join()
        wait_until(lambda: ready(judge) == 1)  # the slot is free again: refilled
    finally:
        judge.close()


def test_languages_nobody_asks_for_are_closed_when_idle():
    judge = Judge()
    judge.start_pool(per_language=1, capacity=2, idle_s=1.0)
    try:
        wait_until(lambda: ready(judge) == 1)
        wait_until(lambda: stats(judge).closed_idle == 1 and ready(judge) == 0, timeout=10)
    finally:
        judge.close()


def _jail_processes() -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if is_jail_host_uid(os.stat(f"/proc/{entry}").st_uid):
                    count += 1
            except OSError:
                pass
    return count


@pytest.mark.skipif(os.geteuid() != 0, reason="jails get their own host uids only under root")
def test_closing_the_pool_leaves_no_jail_behind():
    before = _jail_processes()
    judge = Judge()
    judge.start_pool(per_language=2, capacity=2)
    wait_until(lambda: ready(judge) == 2)
    assert _jail_processes() > before
    judge.close()
    wait_until(lambda: _jail_processes() <= before, timeout=10)


def test_server_reports_ready_jails_and_can_go_without(tmp_path):
    server = ServerThread(f"unix:{tmp_path}/pool.sock", core=SandboxCore(Judge()), capacity=2,
                          ready_jails=1)
    try:
        with SandboxClient(server.address, timeout=60) as client:
            wait_until(lambda: any(r.ready == 1 for r in client.info().ready_jails))
            info = client.info()
            assert [r.language for r in info.ready_jails] == ["python"]
    finally:
        server.stop()
    off = ServerThread(f"unix:{tmp_path}/off.sock", core=SandboxCore(Judge()), capacity=2,
                       ready_jails=0)
    try:
        with SandboxClient(off.address, timeout=60) as client:
            assert list(client.info().ready_jails) == []
    finally:
        off.stop()


# ---------------------------------------------------------------- one exchange per submission

def test_the_first_failure_stops_the_test_that_runs_after_it(judge):
    """The agent runs tests back to back; the host's stop kills the one that already began
    (here one that would sleep for a minute) and no later one starts."""
    source = ("import time\nn = int(input())\n"
              "if n == 0:\n    print('wrong')\nelse:\n    time.sleep(60)\n    print(n)\n")
    request = grade_request(source, [("0", "0"), ("1", "1"), ("2", "2")], time_limit=20)
    started = time.monotonic()
    response = judge.grade(request, request.test_set)
    assert time.monotonic() - started < 15, "the sleeping test was not stopped"
    assert response.verdict == pb.WA, response.message
    assert [V(t.verdict) for t in response.tests] == ["WA", "SKIPPED", "SKIPPED"]


def test_without_early_stop_every_test_is_judged(judge):
    source = "n = int(input())\nprint(n if n % 2 else -n)\n"
    request = grade_request(source, [("0", "0"), ("1", "1"), ("2", "2"), ("3", "3")])
    request.stop_on_first_failure = False
    response = judge.grade(request, request.test_set)
    assert [V(t.verdict) for t in response.tests] == ["AC", "AC", "WA", "AC"]
    assert response.verdict == pb.WA and response.passed == 3
    assert response.message.startswith("test 2:")


def test_the_deadline_cuts_the_running_test_and_skips_the_rest(judge):
    source = "import time\ntime.sleep(0.8)\nprint(1)\n"
    request = grade_request(source, [("", "1")] * 6, time_limit=5)
    response = judge.grade(request, request.test_set, deadline=time.monotonic() + 2.0)
    verdicts = [V(t.verdict) for t in response.tests]
    assert response.verdict == pb.TLE, response.message
    assert verdicts[0] == "AC" and verdicts[-1] == "SKIPPED", verdicts
    assert DEADLINE_MESSAGE in response.message


def test_peak_memory_is_measured_per_test(judge):
    source = ("n = int(input())\nblock = bytearray(n << 20)\n"
              "for i in range(0, len(block), 4096):\n    block[i] = 1\nprint(n)\n")
    request = grade_request(source, [("150", "150"), ("0", "0")], memory_mb=512)
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, response.message
    big, small = (t.usage.peak_memory_kb for t in response.tests)
    assert big > 150 * 1024 > small, (big, small)


def test_a_memory_kill_in_a_later_test_is_that_tests_mle(judge):
    source = ("import os\nn = int(input())\nfds = []\n"
              "for _ in range(n):\n    fd = os.memfd_create('x')\n    os.write(fd, bytes(63 << 20))\n"
              "    fds.append(fd)\nprint(n)\n")
    request = grade_request(source, [("1", "1"), ("40", "40")], memory_mb=256)
    response = judge.grade(request, request.test_set)
    verdicts = [V(t.verdict) for t in response.tests]
    expected = "MLE" if judge.cgroup_support.memory is not None else "RE"
    assert verdicts == ["AC", expected], (verdicts, response.message)


def test_file_io_problems_run_in_one_exchange(judge):
    request = grade_request("a, b = map(int, open('in.txt').read().split())\n"
                            "open('out.txt', 'w').write(str(a + b))\n",
                            [("1 2", "3"), ("5 5", "10")])
    request.file_io.input_name, request.file_io.output_name = "in.txt", "out.txt"
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, response.message


# ---------------------------------------------------------------- the header, once per jail

def _line_in_full_text(source: str, marker: str) -> int:
    """The line `marker` is on when the header is in front of the source (lcb-process)."""
    full = LCB_HEADER + "\n\n" + source
    return next(i for i, line in enumerate(full.split("\n"), 1) if marker in line)


def lcb(source: str, tests, mode: int = pb.Comparison.LCB_PROCESS, **kwargs) -> pb.GradeRequest:
    return grade_request(source, tests, compare=mode, **kwargs)


def test_header_names_for_the_process_state_are_the_tests_own(judge, cold_judge):
    source = "print(stdin is sys.stdin, stdout is sys.stdout, argv == sys.argv, stdin.read().strip())\n"
    for which in (judge, cold_judge):
        request = lcb(source, [("7 8", "True True True 7 8"), ("9", "True True True 9")])
        response = which.grade(request, request.test_set)
        assert response.verdict == pb.AC, (response.message, response.first_failure.stdout)


def test_line_numbers_and_docstrings_are_as_with_the_header_in_front(judge):
    source = '"not a docstring"\nimport sys\nprint(sys._getframe().f_lineno, __doc__)  # here\n'
    expected = f"{_line_in_full_text(source, '# here')} None"
    request = lcb(source, [("", expected)])
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, (response.message, response.first_failure.stdout)


def test_a_future_import_is_still_a_compile_error(judge):
    request = lcb("from __future__ import annotations\nprint(1)\n", [("", "1")])
    assert judge.grade(request, request.test_set).verdict == pb.CE


def test_lcb_harness_sees_the_guarded_builtins_and_the_patched_stdin(judge):
    """lcb_runner runs the header after its guard: `quit` is None there, and the original
    stdin the header bound reads the test's input."""
    source = "print(quit is None, help is None, stdin.read().split()[0])\n"
    request = lcb(source, [("5 6", "True True 5"), ("8", "True True 8")], mode=pb.Comparison.LCB)
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, (response.message, response.first_failure.stderr)


def test_lcb_harness_functional_state_of_the_header(judge):
    source = ("class Solution:\n    def f(self, x):\n"
              "        return [x * 2, quit is None, sys.getrecursionlimit()]\n")
    request = lcb(source, [("3", "[6, true, 50000]")], mode=pb.Comparison.LCB,
                  kind=pb.FUNCTIONAL, func_name="f")
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC, (response.message, response.first_failure.stderr)


def test_many_tests_in_one_exchange_agree_with_the_expected_outputs(judge):
    tests = make_tests([(f"{i} {i * 3}", str(i * 4)) for i in range(300)])
    for mode in (pb.Comparison.LCB, pb.Comparison.LCB_PROCESS, pb.Comparison.TOKENS):
        request = lcb("a, b = map(int, input().split())\nprint(a + b)\n", tests, mode=mode)
        response = judge.grade(request, request.test_set)
        assert response.verdict == pb.AC and response.passed == 300, response.message


# ---------------------------------------------------------------- lcb_runner's one process

def lcb_grade(judge, source, tests, **kwargs) -> pb.GradeResponse:
    request = lcb(source, tests, mode=pb.Comparison.LCB, **kwargs)
    stop = kwargs.pop("stop_on_first_failure", None)
    if stop is not None:
        request.stop_on_first_failure = stop
    return judge.grade(request, request.test_set)


def test_stdin_tests_share_one_process(judge):
    source = "import sys\nseen = sys.__dict__.setdefault('_seen', [])\nseen.append(1)\nprint(len(seen))\n"
    response = lcb_grade(judge, source, [("", "1"), ("", "2"), ("", "3")])
    assert response.verdict == pb.AC, response.message


def test_each_test_has_its_own_cpu_limit_in_one_process(judge):
    source = ("import time\nend = time.process_time() + 0.4\n"
              "while time.process_time() < end:\n    pass\nprint(1)\n")
    response = lcb_grade(judge, source, [("", "1")] * 5, time_limit=1)
    assert response.verdict == pb.AC, response.message
    assert all(t.usage.cpu_time_s < 1 for t in response.tests)


def test_after_a_test_ends_the_process_the_next_one_gets_a_new_one(judge):
    source = ("import os\nn = int(input())\nif n == 1:\n    os._exit(0)\n"
              "if n == 2:\n    while True:\n        pass\nprint(n)\n")
    request = lcb(source, [("0", "0"), ("1", "1"), ("2", "2"), ("3", "3")], mode=pb.Comparison.LCB,
                  time_limit=1)
    request.stop_on_first_failure = False
    response = judge.grade(request, request.test_set)
    assert [V(t.verdict) for t in response.tests] == ["AC", "RE", "TLE", "AC"], response.message


def test_the_first_failure_stops_the_one_process_worker(judge):
    source = ("import time\nn = int(input())\n"
              "if n == 0:\n    print('wrong')\nelse:\n    time.sleep(60)\n    print(n)\n")
    started = time.monotonic()
    response = lcb_grade(judge, source, [("0", "0"), ("1", "1"), ("2", "2")], time_limit=20)
    assert time.monotonic() - started < 15, "the sleeping test was not stopped"
    assert [V(t.verdict) for t in response.tests] == ["WA", "SKIPPED", "SKIPPED"]


@pytest.mark.parametrize("attack", [
    "import os\nos.write(3, b'\\xff' * 64)\nprint(1)",
    "import os\nos.close(3)\nprint(1)",
    "import os\nos.close(4)\nprint(1)",
    "import os, threading\nthreading.Thread(target=lambda: os.read(4, 1 << 20), daemon=True).start()\n"
    "import time\ntime.sleep(0.2)\nprint(1)",
    "import os, struct\nos.write(3, struct.pack('>I', 1 << 30))\nprint(1)",
])
def test_the_result_and_task_channels_cannot_force_a_sandbox_error(judge, attack):
    """The program shares its process with the harness, so it can write to, close or read
    the harness's channels: a failed or a correct test, never SE, never a hang."""
    response = lcb_grade(judge, attack, [("", "1"), ("", "1"), ("", "1")], time_limit=2)
    assert response.verdict in (pb.AC, pb.RE, pb.WA, pb.TLE), response.message
    assert response.verdict != pb.SE
    follow_up = lcb_grade(judge, "print(1)", [("", "1")])
    assert follow_up.verdict == pb.AC


def test_functional_tests_under_lcb_share_the_solution_instance(judge):
    source = ("class Solution:\n    def __init__(self):\n        self.seen = 0\n"
              "    def f(self, x):\n        self.seen += 1\n        return x + self.seen\n")
    response = lcb_grade(judge, source, [("1", "2"), ("1", "3"), ("1", "4")],
                         kind=pb.FUNCTIONAL, func_name="f")
    assert response.verdict == pb.AC, response.message


def test_bad_ready_jail_counts_are_one_line_errors(tmp_path):
    import subprocess
    import sys
    command = [sys.executable, "-m", "sandbox.cli", "serve", "--address", f"unix:{tmp_path}/s.sock"]
    for extra, env in (([ "--ready-jails", "-1"], {}), ([], {"SANDBOX_READY_JAILS": "two"})):
        done = subprocess.run(command + extra, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "READY_JAILS" in lines[0].upper().replace("-", "_"), done.stderr


# ---------------------------------------------------------------- cgroup moves kept fast

@pytest.mark.skipif(not Judge().cgroup_support.any, reason="no cgroups here")
def test_cgroup_moves_are_kept_fast_only_while_requests_come():
    from workers.cgroup_warmth import MigrationWarmth
    warmth = MigrationWarmth(Judge().cgroup_support, period_s=0.01, active_s=0.5)
    assert warmth.start()
    try:
        time.sleep(0.3)
        assert warmth.moves == 0  # nobody asked yet
        warmth.poke()
        time.sleep(0.3)
        assert warmth.moves > 5
        time.sleep(0.5)  # past active_s: it stops
        stopped_at = warmth.moves
        time.sleep(0.3)
        assert warmth.moves <= stopped_at + 1
        sleeper = warmth._sleeper
        directories = [path for c in warmth._cgroups for path in c.dirs.values()]
    finally:
        warmth.close()
    assert sleeper.poll() is not None
    assert not any(path.exists() for path in directories)


def test_the_pool_keeps_cgroup_moves_fast_and_stops_with_it(pooled_judge):
    if not pooled_judge.cgroup_support.any:
        pytest.skip("no cgroups here")
    warmth = pooled_judge.warmth
    request = grade_request("print(1)", [("", "1")])
    assert pooled_judge.grade(request, request.test_set).verdict == pb.AC
    time.sleep(0.2)
    assert warmth.moves > 0
    pooled_judge.close()
    assert pooled_judge.warmth is None and warmth._sleeper.poll() is not None


def test_a_ready_jail_looks_like_one_started_on_request(pooled_judge):
    """Same pids, fds and files: nothing ran in a ready jail before the program."""
    from conftest import execute_request
    probe = ("import os\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()), "
             "sorted(os.listdir('/proc/self/fd')), sorted(os.listdir('/work')), os.listdir('/tmp'))")
    fresh = Judge()
    pooled = pooled_judge.execute(execute_request(probe))
    started = fresh.execute(execute_request(probe))
    assert stats(pooled_judge).taken >= 1
    assert pooled.verdict == started.verdict == pb.AC, (pooled.stderr, started.stderr)
    assert pooled.stdout == started.stdout

"""The HTTP API of `sandbox serve --http-address`: SandboxFusion's /run_code as its own docs
and verl's own client use it, ScaleBox's batch endpoint, /grade, and bad input."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from http_helpers import start

VERIFIED = Path(__file__).resolve().parents[2] / "shared" / "data" / "verified" / "problems.jsonl"
RUN_CODE_KEYS = {"status", "message", "compile_result", "run_result", "executor_pod_name", "files"}
RESULT_KEYS = {"status", "execution_time", "return_code", "stdout", "stderr"}


@pytest.fixture(scope="module")
def served():
    server = start("serve", "--capacity", "2", "--max-queue", "64",
                   env={"SANDBOX_HTTP_MAX_BODY_BYTES": str(2 << 20)})
    yield server
    server.stop()


def run_code(served, payload, **kwargs) -> requests.Response:
    return requests.post(served.http_url + "/run_code", json=payload, timeout=60, **kwargs)


def assert_healthy(served) -> None:
    assert requests.get(served.http_url + "/health", timeout=10).json()["status"] == "SERVING"
    reply = run_code(served, {"code": "print(2 + 2)", "language": "python"}).json()
    assert reply["run_result"]["stdout"] == "4\n"


# ---------------------------------------------------------------- SandboxFusion's own examples

def test_docs_hello_world_python(served):
    # SandboxFusion docs, "Get Started": the response shape and statuses.
    response = requests.post(served.http_url + "/run_code",
                             headers={"Content-Type": "application/json"},
                             data='{"code": "print(\\"Hello, world!\\")", "language": "python"}')
    assert response.status_code == 200
    reply = response.json()
    assert set(reply) == RUN_CODE_KEYS
    assert reply["status"] == "Success" and reply["message"] == ""
    assert reply["compile_result"] is None and reply["files"] == {}
    run = reply["run_result"]
    assert set(run) == RESULT_KEYS
    assert run["status"] == "Finished" and run["return_code"] == 0
    assert run["stdout"] == "Hello, world!\n" and run["stderr"] == ""
    assert isinstance(run["execution_time"], float) and run["execution_time"] > 0


def test_docs_cpp_example(served):
    code = '\n#include <iostream>\n\nint main() {\n    std::cout << "Hello, world!" << std::endl;\n    return 0;\n}\n'
    reply = run_code(served, {"code": code, "language": "cpp"}).json()
    assert reply["status"] == "Success"
    assert reply["compile_result"]["status"] == "Finished"
    assert reply["compile_result"]["return_code"] == 0
    assert reply["run_result"]["stdout"] == "Hello, world!\n"


def test_docs_upload_and_download_files(served):
    # SandboxFusion docs, "Upload & Download Files".
    upload = base64.b64encode(b"secret flag").decode()
    reply = run_code(served, {"code": 'print(open("flag.txt").read())', "language": "python",
                              "files": {"flag.txt": upload}}).json()
    assert reply["status"] == "Success" and reply["run_result"]["stdout"] == "secret flag\n"
    reply = run_code(served, {"code": 'open("flag.txt", "w").write("this is a secret")',
                              "language": "python", "fetch_files": ["flag.txt"]}).json()
    assert reply["status"] == "Success"
    assert base64.b64decode(reply["files"]["flag.txt"]) == b"this is a secret"


def test_base64_with_line_breaks_is_read_as_sandbox_fusion_reads_it(served):
    content = base64.encodebytes(b"x" * 100).decode()  # a line break every 76 characters
    assert "\n" in content
    reply = run_code(served, {"code": "print(len(open('f').read()))", "language": "python",
                              "files": {"f": content}}).json()
    assert reply["run_result"]["stdout"] == "100\n", reply


def test_an_undecodable_authorization_header_is_not_an_error(served):
    host, port = served.http_url.removeprefix("http://").split(":")
    body = b'{"code": "print(1)", "language": "python"}'
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"POST /run_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert b" 200 " in status_line, status_line  # no token required here: the header is ignored


def test_files_in_subdirectories_and_missing_fetches(served):
    reply = run_code(served, {
        "code": "import os\nprint(open('data/in/x.txt').read())\nos.makedirs('out', exist_ok=True)\n"
                "open('out/y.txt', 'w').write('y')",
        "language": "python", "files": {"data/in/x.txt": base64.b64encode(b"x").decode(),
                                        "skipped.txt": None},
        "fetch_files": ["./out/y.txt", "never-written.txt"]}).json()
    assert reply["run_result"]["stdout"] == "x\n", reply
    assert reply["files"] == {"./out/y.txt": base64.b64encode(b"y").decode()}


def test_fetch_does_not_follow_links_or_block(served):
    code = ("import os\nos.symlink('/etc/passwd', 'link')\nos.mkfifo('fifo')\n"
            "os.symlink('/etc', 'dir')\n")
    reply = run_code(served, {"code": code, "language": "python",
                              "fetch_files": ["link", "fifo", "dir/passwd"]}).json()
    assert reply["status"] == "Success", reply
    assert reply["files"] == {}


@pytest.mark.parametrize("code, stdin, expected", [
    ("import sys\nprint(sys.stdin.read().upper(), end='')", "abc\n", "ABC\n"),
    ("print(input())", None, ""),
])
def test_stdin(served, code, stdin, expected):
    reply = run_code(served, {"code": code, "language": "python", "stdin": stdin}).json()
    if stdin is None:  # no stdin: input() meets EOF, as under SandboxFusion
        assert reply["status"] == "Failed" and "EOFError" in reply["run_result"]["stderr"]
    else:
        assert reply["run_result"]["stdout"] == expected


def test_failures_and_their_statuses(served):
    exit_code = run_code(served, {"code": "import sys\nprint('x')\nsys.exit(3)",
                                  "language": "python"}).json()
    assert exit_code["status"] == "Failed"
    assert exit_code["run_result"]["status"] == "Finished"
    assert exit_code["run_result"]["return_code"] == 3 and exit_code["run_result"]["stdout"] == "x\n"

    timeout = run_code(served, {"code": "while True: pass", "language": "python",
                                "run_timeout": 1}).json()
    assert timeout["status"] == "Failed"
    assert timeout["run_result"]["status"] == "TimeLimitExceeded"
    assert timeout["run_result"]["return_code"] is None

    syntax = run_code(served, {"code": "print(1", "language": "python"}).json()
    assert syntax["status"] == "Failed" and syntax["compile_result"] is None
    assert syntax["run_result"]["return_code"] == 1
    assert "SyntaxError" in syntax["run_result"]["stderr"]

    compile_error = run_code(served, {"code": "int main() {", "language": "cpp"}).json()
    assert compile_error["status"] == "Failed" and compile_error["run_result"] is None
    assert compile_error["compile_result"]["status"] == "Finished"
    assert compile_error["compile_result"]["return_code"] != 0
    assert "error" in compile_error["compile_result"]["stderr"]


@pytest.mark.parametrize("language, status", [("python", "Success"), ("cpp", "Failed")])
def test_an_empty_program_runs(served, language, status):
    reply = run_code(served, {"code": "  \n", "language": language, "stdin": "1"})
    assert reply.status_code == 200 and reply.json()["status"] == status, reply.text
    if language == "python":
        assert reply.json()["run_result"] == {**reply.json()["run_result"], "stdout": "",
                                              "return_code": 0}
    else:
        assert reply.json()["compile_result"]["return_code"] != 0


def test_memory_kill_says_so(served):
    # SandboxFusion issue #43: a run killed for memory must say it was.
    reply = run_code(served, {"code": "x = bytearray(600 << 20)\nprint(len(x))",
                              "language": "python", "memory_limit_MB": 256}).json()
    assert reply["status"] == "Failed"
    assert reply["run_result"]["return_code"] != 0
    assert "memory limit" in reply["run_result"]["stderr"]
    assert "memory limit" in reply["message"]


def test_sleeping_past_run_timeout_is_a_timeout(served):
    started = time.monotonic()
    reply = run_code(served, {"code": "import time\ntime.sleep(30)", "language": "python",
                              "run_timeout": 1}).json()
    assert reply["run_result"]["status"] == "TimeLimitExceeded"
    assert time.monotonic() - started < 10


def test_languages_spelled_as_sandbox_fusion_does(served):
    reply = run_code(served, {"code": "console.log(6 * 7)", "language": "nodejs"})
    if reply.status_code == 422:
        pytest.skip("node is not installed here")
    assert reply.json()["run_result"]["stdout"] == "42\n"


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("body, status, words", [
    (b'{"code": "x"', 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"[1, 2]", 422, "JSON object"),
    (b'"text"', 422, "JSON object"),
    (b'{"language": "python"}', 422, "code"),
    (b'{"code": "print(1)"}', 422, "language"),
    (b'{"code": 5, "language": "python"}', 422, "code"),
    (b'{"code": "x", "language": "python", "run_timeout": "soon"}', 422, "run_timeout"),
    (b'{"code": "x", "language": "python", "run_timeout": -1}', 422, "run_timeout"),
    (b'{"code": "x", "language": "python", "run_timeout": 1000}', 422, "maximum"),
    (b'{"code": "x", "language": "python", "memory_limit_MB": 1000000}', 422, "maximum"),
    (b'{"code": "x", "language": "python", "files": ["a"]}', 422, "files"),
    (b'{"code": "x", "language": "brainfuck"}', 422, "not available"),
    (b'{"code": "x", "language": "php"}', 422, "not available"),
    (b'{"code": "x", "language": "python", "files": {"a.txt": "@@@"}}', 422, "base64"),
    (b'{"code": "x", "language": "python", "files": {"../a.txt": "YQ=="}}', 422, "leaves"),
    (b'{"code": "x", "language": "python", "files": {"/etc/a": "YQ=="}}', 422, "absolute"),
    (b'{"code": "x", "language": "python", "fetch_files": ["../../etc/passwd"]}', 422, "leaves"),
    (b'{"code": "x", "language": "python", "files": {"a": "YQ==", "a/b": "YQ=="}}', 422, "directory"),
    (b"[" * 100000 + b"]" * 100000, 400, "JSON"),
    (b'{"code": "x", "language": "python", "memory_limit_MB": 100000000000000000000}', 422, "range"),
    (b'{"code": "print(\\"\\ud800\\")", "language": "python"}', 422, "surrogate"),
    (b'{"code": "x", "language": "python", "stdin": "\\udfff"}', 422, "surrogate"),
    (b'{"code": "x", "language": "python", "files": {"\\ud800": "YQ=="}}', 422, "surrogate"),
    (b'{"code": "x", "language": "python", "run_timeout": NaN}', 422, "run_timeout"),
    (b'{"code": "x", "language": "python", "memory_limit_MB": 1.5}', 422, "memory_limit_MB"),
    (b'{"code": "x", "language": "python", "fetch_files": ["a\\u0000b"]}', 422, "NUL"),
    (b'{"code": "x", "language": "python", "run_timeout": ' + b"1" * 5000 + b"}", 400, "JSON"),
    (('{"code": "x", "language": "python", "files": {"' + "\u00e9" * 128 + '": "YQ=="}}').encode(),
     422, "255 bytes"),
    (b'{"code": "x", "language": "python", "files": {"main.py": "YQ=="}}', 422, "own source"),
    (b'{"code": "x", "language": "python", "files": {' +
     b",".join(b'"f%d": "YQ=="' % i for i in range(300)) + b"}}", 422, "at most"),
])
def test_bad_input_is_a_one_line_4xx(served, body, status, words):
    response = requests.post(served.http_url + "/run_code", data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail, detail
    assert_healthy(served)


def test_oversized_body_is_413(served):
    response = requests.post(served.http_url + "/run_code", timeout=30,
                             json={"code": "x" * (3 << 20), "language": "python"})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert_healthy(served)


def test_unknown_path_and_method(served):
    assert requests.get(served.http_url + "/nope", timeout=10).status_code == 404
    assert requests.get(served.http_url + "/run_code", timeout=10).status_code == 405
    assert requests.get(served.http_url + "/v1/ping", timeout=10).json() == "pong"


# ---------------------------------------------------------------- verl's own client

def _verified_cases():
    """(problem, solution, test indices, deserved score) from the verified set: stdin and
    functional problems, correct and incorrect solutions, each on a few of its tests (the
    failing ones included) so the whole test stays short."""
    problems = [json.loads(line) for line in VERIFIED.read_text().splitlines()]
    chosen = {"codeforces/1873_A", "leetcode/2727", "atcoder/abc301_a", "codeforces/242C",
              "codeforces/12B", "codeforces/1000A", "codeforces/1198A",
              "leetcode/3248-snake-in-matrix", "leetcode/3270-find-the-key-of-the-numbers"}
    for problem in problems:
        if problem["id"] not in chosen:
            continue
        for solution in problem["solutions"]["correct"] + problem["solutions"]["incorrect"]:
            if solution["language"] != "python":
                continue
            marks = solution["observed_per_test"]
            failing = [i for i, mark in enumerate(marks) if mark != "."][:3]
            indices = sorted(set(range(min(6, len(marks)))) | set(failing))
            deserved = sum(marks[i] == "." for i in indices) / len(indices)
            yield pytest.param(problem, solution, indices, deserved,
                               id=f"{problem['id']}-{solution['origin'][:20]}")


@pytest.mark.parametrize("problem, solution, indices, deserved", list(_verified_cases()))
def test_verl_sandbox_fusion_client_scores(served, problem, solution, indices, deserved):
    from verl.utils.reward_score.sandbox_fusion import compute_score

    tests = [problem["tests"][i] for i in indices]
    ground_truth = {"inputs": [t["input"] for t in tests], "outputs": [t["output"] for t in tests]}
    if problem["kind"] == "functional":
        ground_truth["fn_name"] = problem["func_name"]
    completion = f"Here it is.\n```python\n{solution['code']}\n```"
    semaphore = threading.Semaphore(8)
    score, metadata = compute_score(served.http_url + "/run_code", semaphore, 1024, completion,
                                    json.dumps(ground_truth), timeout=problem.get("time_limit_s") or 6)
    statuses = [m.get("status") for m in metadata]
    assert "api_error" not in statuses and "sandbox_error" not in statuses, metadata[:2]
    assert score == pytest.approx(deserved), statuses


# ---------------------------------------------------------------- batch endpoints

def test_scalebox_batch_stdio_example(served):
    payload = {"completion": "```python\na, b = map(int, input().split())\nprint(a + b)\n```",
               "config": {"language": "python", "run_timeout": 10,
                          "provided_data": {"test_cases": {"type": "stdin_stdout",
                                                           "input": ["1 2", "3 4"],
                                                           "output": ["3", "7"], "fn_name": None}},
                          "extra": {"run_all_cases": True}}}
    result = requests.post(served.http_url + "/common_evaluate_batch", json=payload, timeout=60).json()
    assert result["accepted"] is True and result["id"] == 0
    assert result["extracted_code"] == "a, b = map(int, input().split())\nprint(a + b)\n"
    assert len(result["tests"]) == 2 and all(t["passed"] for t in result["tests"])
    info = result["tests"][0]["exec_info"]
    assert set(info) == RUN_CODE_KEYS and info["status"] == "Success"
    assert info["run_result"]["status"] == "Finished"
    assert result["tests"][1]["test_info"] == {"input": {"stdin": "3 4"}, "output": {"stdout": "7"}}


def test_scalebox_batch_sends_the_compile_log_once(served):
    code = "#warning look at me\n#include <cstdio>\nint main(){int a; scanf(\"%d\",&a); printf(\"%d\\n\",a);}"
    payload = {"completion": f"```cpp\n{code}\n```",
               "config": {"language": "cpp", "extra": {"run_all_cases": True},
                          "provided_data": {"test_cases": {"type": "stdin_stdout",
                                                           "input": ["1", "2", "3"],
                                                           "output": ["1", "2", "3"]}}}}
    result = requests.post(served.http_url + "/common_evaluate_batch", json=payload, timeout=120).json()
    assert result["accepted"] is True, result
    logs = [t["exec_info"]["compile_result"]["stderr"] for t in result["tests"]]
    assert "look at me" in logs[0] and logs[1:] == ["", ""], logs


def test_scalebox_batch_function_call_example(served):
    payload = {"completion": "```python\ndef add(a, b):\n    return a + b\n```",
               "config": {"language": "python",
                          "provided_data": {"test_cases": {"type": "function_call",
                                                           "input": [[1, 2], [3, 4]],
                                                           "output": [[3], [7]], "fn_name": "add",
                                                           "json_input": False}},
                          "extra": {"run_all_cases": True, "total_timeout": 1}}}
    result = requests.post(served.http_url + "/common_evaluate_batch", json=payload, timeout=60).json()
    assert result["accepted"] is True and [t["passed"] for t in result["tests"]] == [True, True]
    assert result["tests"][0]["test_info"]["fn_name"] == "add"


def test_scalebox_batch_failures(served):
    base = {"config": {"language": "python",
                       "provided_data": {"test_cases": {"type": "stdin_stdout",
                                                        "input": ["1", "2", "3"],
                                                        "output": ["1", "4", "9"]}}}}
    wrong = requests.post(served.http_url + "/common_evaluate_batch", timeout=60,
                          json={**base, "completion": "```python\nprint(int(input()))\n```"}).json()
    assert wrong["accepted"] is False and wrong["verdict"] == "WA"
    # Stopped at the first failure (run_all_cases false): tests after it are not listed.
    assert [t["passed"] for t in wrong["tests"]] == [True, False]
    assert wrong["tests"][1]["exec_info"]["run_result"]["stdout"] == "2\n"
    crash = requests.post(served.http_url + "/common_evaluate_batch", timeout=60,
                          json={**base, "completion": "```python\nraise SystemError\n```"}).json()
    assert crash["accepted"] is False and crash["tests"][0]["exec_info"]["status"] == "Failed"
    assert crash["tests"][0]["verdict"] == "RE"
    bad = requests.post(served.http_url + "/common_evaluate_batch", timeout=60,
                        json={**base, "completion": "x", "config": {"language": "cobol"}})
    assert bad.status_code == 422 and "cobol" in bad.json()["detail"]


@pytest.mark.parametrize("config, words", [
    ({"language": "python", "memory_limit_MB": 10 ** 20}, "range"),
    ({"language": "python", "run_timeout": "slow"}, "run_timeout"),
    ({"language": "python", "provided_data": {"test_cases": {"type": "assert"}}}, "not supported"),
    ({"language": "python", "provided_data": {"test_cases": {"input": ["1"], "output": []}}},
     "same length"),
    ({"language": "python", "provided_data": {"test_cases": {"input": [1], "output": ["1"]}}},
     "strings"),
    ({"language": "python", "provided_data": {"test_cases": {
        "type": "function_call", "fn_name": "f(", "input": [[1]], "output": [[1]]}}}, "fn_name"),
    ({"language": "python", "extra": {"compare": "fuzzy"},
      "provided_data": {"test_cases": {"input": ["1"], "output": ["1"]}}}, "compare"),
    ({"language": "python", "provided_data": {"test_cases": {"input": ["\ud800"], "output": ["1"]}}},
     "surrogate"),
    ("not an object", "config"),
])
def test_scalebox_batch_bad_input(served, config, words):
    payload = {"completion": "```python\nprint(1)\n```", "config": config}
    if isinstance(config, dict) and "provided_data" not in config:
        config["provided_data"] = {"test_cases": {"input": ["1"], "output": ["1"]}}
    response = requests.post(served.http_url + "/common_evaluate_batch", timeout=30,
                             data=json.dumps(payload).encode(),
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "\n" not in detail and words in detail, detail
    assert_healthy(served)


def test_grade_endpoint_takes_a_grade_request_as_json(served):
    request = {"language": "python", "source": "print(int(input()) * 2)",
               "test_set": {"tests": [{"input": base64.b64encode(b"2").decode(),
                                       "output": base64.b64encode(b"4").decode()},
                                      {"input": base64.b64encode(b"5").decode(),
                                       "output": base64.b64encode(b"10").decode()}]}}
    answer = requests.post(served.http_url + "/grade", json=request, timeout=60).json()
    assert answer["verdict"] == "AC" and answer["passed"] == 2
    bad = requests.post(served.http_url + "/grade", json={"language": 3}, timeout=60)
    assert bad.status_code == 422 and "GradeRequest" in bad.json()["detail"]
    empty = requests.post(served.http_url + "/grade", json={"language": "python", "source": "x"},
                          timeout=60)
    assert empty.status_code == 422 and "no tests" in empty.json()["detail"]


# ---------------------------------------------------------------- admission and cancellation

def test_a_full_server_answers_503_and_a_gone_client_frees_its_slot():
    server = start("serve", "--capacity", "1", "--max-queue", "0")
    try:
        host, port = server.http_url.removeprefix("http://").split(":")
        body = json.dumps({"code": "import time\ntime.sleep(60)", "language": "python",
                           "run_timeout": 30}).encode()
        sleeper = socket.create_connection((host, int(port)))
        sleeper.sendall(b"POST /run_code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(1.5)
        full = run_code(server, {"code": "print(1)", "language": "python"})
        assert full.status_code == 503 and "Retry-After" in full.headers
        assert "full" in full.json()["detail"]
        sleeper.close()  # the client goes away: its jail is killed and the slot freed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = run_code(server, {"code": "print(1)", "language": "python"})
            if reply.status_code == 200:
                break
            time.sleep(0.2)
        assert reply.status_code == 200 and reply.json()["run_result"]["stdout"] == "1\n"
    finally:
        server.stop()


# ---------------------------------------------------------------- slow and many clients

@pytest.fixture(scope="module")
def strict():
    """A server with a 1 s idle timeout and room for 10 connections."""
    server = start("serve", "--capacity", "2", "--max-queue", "16",
                   env={"SANDBOX_HTTP_MAX_BODY_BYTES": str(2 << 20),
                        "SANDBOX_HTTP_IDLE_TIMEOUT_S": "1", "SANDBOX_HTTP_MAX_CONNECTIONS": "10"})
    yield server
    server.stop()


def connect(served) -> socket.socket:
    host, port = served.http_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (what it sent is read)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def test_a_connection_that_sends_nothing_or_a_header_slowly_is_closed(strict):
    idle = connect(strict)
    assert closed_within(idle, 5)
    trickle = connect(strict)
    started = time.monotonic()
    try:
        for byte in b"POST /run_code HTTP/1.1\r\nHost: x\r\n":
            trickle.sendall(bytes([byte]))
            time.sleep(0.1)
    except OSError:
        pass  # closed while it was still sending: what is wanted
    assert closed_within(trickle, 5) and time.monotonic() - started < 8
    assert_healthy(strict)


def test_slow_bodies_hold_no_budget_and_get_408(strict):
    """Clients that announce the largest body and trickle it take only what they sent of
    the body budget (4 such bodies once took all of it) and are answered 408."""
    slow = []
    for _ in range(5):
        sock = connect(strict)
        sock.sendall(b"POST /run_code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{\"code\": \"" % (2 << 20))
        slow.append(sock)
    time.sleep(0.3)
    assert_healthy(strict)
    for sock in slow:
        sock.settimeout(10)
        assert sock.recv(200).startswith(b"HTTP/1.1 408"), "a slow body must get 408"
        sock.close()


def test_connections_over_the_cap_are_closed_and_the_server_goes_on(strict):
    held = [connect(strict) for _ in range(10)]
    time.sleep(0.2)
    extra = connect(strict)
    assert closed_within(extra, 0.5)  # at once, not after the idle timeout
    for sock in held:
        assert closed_within(sock, 5)  # the idle timeout frees them
    assert_healthy(strict)

"""The security suite: attacks on the sandbox, through the real gRPC server and real jails.

Every test submits an attack program and asserts two things:

* the attack was contained: the program reports what it could and could not do
  ("BLOCKED ..." lines, never "LEAK ..."), or the verdict shows the limit that
  stopped it (TLE / MLE / RE / OLE);
* the server is healthy afterwards: a trivial submission is still AC with the
  right output (`assert_healthy`).

Time limits are kept at 1-2 s and no test asserts how long something took
(beyond "it did not wait for a 100 s sleep"): the machine is small and shared.
"""
from __future__ import annotations

import os
import platform
import signal
import socket
import tempfile
import threading
import time
import uuid

import pytest

from conftest import REPO, ServerThread, execute_request, grade_request, needs_cgroups
from sandbox.service import SandboxCore
from sandbox.v1 import sandbox_pb2 as pb
from workers import cgroups
from workers.jail import FALLBACK_TMPFS_BYTES, JAIL_UID, is_jail_host_uid
from workers.judge import Judge
from workers.limits import EXTRA_THREADS

X86_64 = platform.machine() in ("x86_64", "AMD64")
needs_x86_64 = pytest.mark.skipif(not X86_64, reason="x86-64 syscall numbers / inline asm")

# ---------------------------------------------------------------- helpers


def verdict_name(verdict: int) -> str:
    return pb.Verdict.Name(verdict)


def describe(response) -> str:
    """Everything useful about a response, for assertion messages."""
    return (f"verdict={verdict_name(response.verdict)} message={response.message!r} "
            f"exit={response.exit.exit_code}/{response.exit.signal} "
            f"stdout={response.stdout[:1500]!r} stderr={response.stderr[-1500:]!r}")


def run(client, source: str, language: str = "python", *, stdin: bytes = b"",
        time_limit: float = 1.0, memory_mb: int = 256, **limits) -> pb.ExecuteResponse:
    return client.execute(execute_request(source, language, stdin, time_limit=time_limit,
                                          memory_mb=memory_mb, **limits))


def assert_healthy(client) -> None:
    """The server still grades a trivial program correctly."""
    response = run(client, "import sys\nprint(sum(range(10)))\nprint(sys.stdin.read().upper())",
                   stdin=b"ok")
    assert response.verdict == pb.AC, describe(response)
    assert response.stdout == b"45\nOK\n", describe(response)


def assert_contained(response, blocked: int | None = None) -> list[str]:
    """The attack ran to its end ("DONE"), reported nothing leaked, and was blocked `blocked` times."""
    out = response.stdout.decode(errors="replace")
    lines = out.splitlines()
    assert response.verdict == pb.AC, describe(response)
    assert "DONE" in lines, describe(response)
    leaks = [line for line in lines if line.startswith("LEAK")]
    assert not leaks, f"the attack got through: {leaks}\n{describe(response)}"
    blocked_lines = [line for line in lines if line.startswith("BLOCKED")]
    if blocked is not None:
        assert len(blocked_lines) == blocked, describe(response)
    return blocked_lines


def marker() -> str:
    """A unique short name (fits /proc/PID/comm's 15 characters)."""
    return "sx" + uuid.uuid4().hex[:12]


def host_processes_matching(mark: str) -> list[str]:
    """Host processes whose command line or comm contains `mark`."""
    found = []
    needle = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/comm", "rb") as fh:
                comm = fh.read()
        except OSError:
            continue
        if needle in cmdline or needle in comm:
            found.append(f"{entry}: {comm.strip()!r} {cmdline[:200]!r}")
    return found


def assert_no_host_survivors(mark: str, grace_s: float = 5.0) -> None:
    """No process carrying `mark` is left on the host (polls briefly: teardown is asynchronous)."""
    deadline = time.monotonic() + grace_s
    survivors = host_processes_matching(mark)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.1)
        survivors = host_processes_matching(mark)
    assert not survivors, f"processes escaped the jail and outlived the run: {survivors}"


PY_LIBC = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, func, *args):
    ctypes.set_errno(0)
    rc = func(*args)
    err = ctypes.get_errno()
    if rc == -1 and err == errno.EPERM:
        print("BLOCKED", name, errno.errorcode.get(err))
    else:
        print("LEAK", name, "rc=%r errno=%s" % (rc, errno.errorcode.get(err, err)))
    return rc
"""

# ---------------------------------------------------------------- network


NETWORK_FACTS = """
import fcntl, socket, struct
def ipv4(name):
    try:  # IPv4 sockets themselves are denied to tests: then the address is not read
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except PermissionError:
        return "-"
    try:
        packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return "-"
    finally:
        s.close()
names = sorted(name for _, name in socket.if_nameindex())
print("IFACES", ",".join(names))
print("IPV4", ",".join(f"{n}={ipv4(n)}" for n in names))
try:
    routes = open("/proc/net/route").read().splitlines()[1:]
except FileNotFoundError:  # no IPv4 routing table at all (seen in jails inside containers)
    routes = []
print("ROUTES4", len(routes))
try:
    v6 = [l.split() for l in open("/proc/net/if_inet6").read().splitlines()]
except OSError:
    v6 = []
print("IPV6", ",".join(f"{f[5]}={f[0]}" for f in v6))
try:
    routes6 = [l.split() for l in open("/proc/net/ipv6_route").read().splitlines()]
except OSError:
    routes6 = []
print("ROUTES6_OFF_LO", sum(1 for f in routes6 if f[-1] != "lo"))
print("DONE")
"""


def test_no_route_and_no_address_beyond_loopback(client):
    """No network, proven from inside (nothing is sent anywhere): the jail's only interface is
    lo with 127.0.0.1 / ::1, and there is no route off it, so no packet could leave."""
    response = run(client, NETWORK_FACTS)
    assert_contained(response)
    lines = dict(line.split(" ", 1) for line in response.stdout.decode().splitlines() if " " in line)
    assert lines["IFACES"] == "lo", describe(response)
    assert lines["IPV4"] in ("lo=127.0.0.1", "lo=-"), describe(response)
    assert lines["ROUTES4"] == "0", describe(response)
    assert lines.get("IPV6", "") in ("", "lo=00000000000000000000000000000001"), describe(response)
    assert lines["ROUTES6_OFF_LO"] == "0", describe(response)
    assert_healthy(client)


@pytest.fixture(scope="module")
def tcp_server(judge):
    """The same sandbox service, also listening on the host's loopback (TCP)."""
    thread = ServerThread("127.0.0.1:0", core=SandboxCore(judge), capacity=1, max_queue=4)
    yield thread
    thread.stop()


def test_host_loopback_server_port_unreachable(client, tcp_server):
    port = int(tcp_server.address.rsplit(":", 1)[1])
    # The port really is open on the host's loopback.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    source = f"""
import socket
for host in ("127.0.0.1", "127.0.0.2"):
    try:  # IPv4 sockets are denied to tests (EPERM); past that, the jail's own loopback
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect((host, {port}))
        print("LEAK connected to the host's sandbox server at", host)
    except OSError as exc:
        print("BLOCKED", host, exc.errno, exc)
print("DONE")
"""
    assert_contained(run(client, source), blocked=2)
    assert_healthy(client)


def test_host_tcp_listener_receives_nothing(client):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        source = f"""
import socket
try:
    s = socket.socket()
    s.settimeout(1)
    s.connect(("127.0.0.1", {port}))
    s.sendall(b"hello host")
    print("LEAK connected")
except OSError as exc:
    print("BLOCKED", exc.errno, exc)
print("DONE")
"""
        assert_contained(run(client, source), blocked=1)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            conn, peer = listener.accept()
            conn.close()
            pytest.fail(f"the jail reached the host's loopback listener from {peer}")
    finally:
        listener.close()
    assert_healthy(client)


def test_udp_send_fails(client):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    try:
        source = f"""
import socket
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # denied to tests (EPERM)
    # Past that, it lands on the jail's own loopback (nobody listens there), never the host's.
    for _ in range(5):
        s.sendto(b"exfiltrate", ("127.0.0.1", {port}))
except OSError:
    pass
print("DONE")
"""
        assert_contained(run(client, source))
        time.sleep(0.2)
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            data, peer = receiver.recvfrom(100)
            pytest.fail(f"the host's loopback received {data!r} from {peer}")
    finally:
        receiver.close()
    assert_healthy(client)


def test_dns_lookup_fails(client):
    source = """
import os, socket
try:
    print("LEAK resolved", socket.getaddrinfo("example.com", 80))
except OSError as exc:
    print("BLOCKED", type(exc).__name__, exc)
print("resolv.conf", os.path.exists("/etc/resolv.conf"))
print("DONE")
"""
    response = run(client, source)
    assert_contained(response, blocked=1)
    assert b"resolv.conf False" in response.stdout, describe(response)
    assert_healthy(client)


def test_only_loopback_interface(client):
    source = """
import socket
names = sorted(name for _, name in socket.if_nameindex())
print("IFACES", ",".join(names))
if names != ["lo"]:
    print("LEAK interfaces", names)
print("DONE")
"""
    response = run(client, source)
    assert_contained(response)
    assert b"IFACES lo\n" in response.stdout, describe(response)
    assert_healthy(client)


def test_server_unix_socket_unreachable(client, server):
    path = server.address.removeprefix("unix:")
    assert os.path.exists(path)
    source = f"""
import os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect({path!r})
    print("LEAK connected to the server's unix socket")
except OSError as exc:
    print("BLOCKED", exc.errno, exc)
print("DONE")
"""
    assert_contained(run(client, source), blocked=1)
    assert_healthy(client)


def test_host_abstract_unix_socket_unreachable(client):
    name = "\0" + marker()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(name)
    listener.listen(4)
    try:
        source = f"""
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect({name!r})
    print("LEAK connected to the host's abstract socket")
except OSError as exc:
    print("BLOCKED", exc.errno, exc)
print("DONE")
"""
        assert_contained(run(client, source), blocked=1)
    finally:
        listener.close()
    assert_healthy(client)


# ---------------------------------------------------------------- reading host files

READ_PROBE = """
import os
def probe(path):
    try:
        if os.path.isdir(path):
            print("LEAK listed", path, os.listdir(path)[:5])
        else:
            with open(path, "rb") as fh:
                print("LEAK read", path, fh.read(60))
    except OSError as exc:
        print("BLOCKED", path, exc.errno, exc)
"""


def test_etc_shadow_and_passwd_absent(client):
    source = READ_PROBE + """
probe("/etc/shadow")
probe("/etc/passwd")
probe("/etc/group")
extra = sorted(set(os.listdir("/etc")) - {"ld.so.cache", "alternatives", "localtime"})
if extra:
    print("LEAK /etc has", extra)
print("DONE")
"""
    assert_contained(run(client, source), blocked=3)
    assert_healthy(client)


def test_root_home_absent(client):
    source = READ_PROBE + """
probe("/root")
probe("/root/.bashrc")
probe("/home")
print("DONE")
"""
    assert_contained(run(client, source), blocked=3)
    assert_healthy(client)


def test_server_source_unreadable(client):
    paths = [str(REPO / "sandbox" / "server.py"), str(REPO / "workers" / "judge.py"),
             str(REPO / "workers" / "jail.py"), str(REPO)]
    for path in paths:
        assert os.path.exists(path)
    source = READ_PROBE + "".join(f"probe({path!r})\n" for path in paths) + "print('DONE')\n"
    assert_contained(run(client, source), blocked=len(paths))
    assert_healthy(client)


def test_host_tmp_invisible(client, server):
    secret = marker()
    with tempfile.NamedTemporaryFile("w", dir="/tmp", prefix="host-secret-", suffix=".txt") as fh:
        fh.write(secret)
        fh.flush()
        host_path = fh.name
        socket_dir = os.path.dirname(server.address.removeprefix("unix:"))
        source = READ_PROBE + f"""
probe({host_path!r})
probe({socket_dir!r})
names = os.listdir("/tmp")
if {os.path.basename(host_path)!r} in names:
    print("LEAK host file listed in /tmp")
for root, dirs, files in os.walk("/tmp"):
    for name in files:
        try:
            with open(os.path.join(root, name), "rb") as f:
                if {secret!r}.encode() in f.read():
                    print("LEAK secret found in", name)
        except OSError:
            pass
if any(n.startswith(("code-sandbox-rt-", "sandbox-test-", "host-secret-", "pytest-")) for n in names):
    print("LEAK host tmp entries", names)
print("TMP", names)
print("DONE")
"""
        assert_contained(run(client, source), blocked=2)
    assert_healthy(client)


def _proc_comm_pid(token: str) -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() == token:
                    return int(entry)
        except OSError:
            continue
    return None


def test_concurrent_submission_invisible(client):
    token = marker()
    victim_source = f"""
import os, socket, time
TOK = {token!r}
with open("/work/secret_" + TOK, "w") as fh:
    fh.write(TOK)
with open("/tmp/secret_" + TOK, "w") as fh:
    fh.write(TOK)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\\0secret_" + TOK)
s.listen(4)
import ctypes
ctypes.CDLL(None).prctl(15, TOK.encode(), 0, 0, 0)  # PR_SET_NAME: the host sees the secret is in place
time.sleep(4)
print("VICTIM_DONE")
"""
    attacker_source = f"""
import os, socket
TOK = {token!r}
hits = []
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "usr", "sys")]
    for name in dirs + files:
        if TOK in name:
            hits.append(os.path.join(root, name))
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            with open("/proc/%s/comm" % entry) as fh:
                if TOK in fh.read():
                    hits.append("pid " + entry)
        except OSError:
            pass
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect("\\0secret_" + TOK)
    hits.append("abstract socket")
except OSError:
    pass
print("LEAK %s" % hits if hits else "NOTFOUND")
print("DONE")
"""
    victim: dict = {}

    def run_victim():
        try:
            victim["response"] = run(client, victim_source, time_limit=2.0)
        except Exception as exc:  # noqa: BLE001 - reported below
            victim["error"] = exc

    thread = threading.Thread(target=run_victim)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        victim_pid = _proc_comm_pid(token)
        while victim_pid is None and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
            victim_pid = _proc_comm_pid(token)
        assert victim_pid is not None, f"the victim never started: {victim}"
        try:  # the host (root) can check that the secret really is in the victim's jail
            assert os.path.exists(f"/proc/{victim_pid}/root/work/secret_{token}")
        except PermissionError:
            pass
        attacker = run(client, attacker_source, time_limit=2.0)
        overlapped = _proc_comm_pid(token) is not None
    finally:
        thread.join(60)
    assert "error" not in victim, victim
    assert victim["response"].verdict == pb.AC, describe(victim["response"])
    assert victim["response"].stdout == b"VICTIM_DONE\n"
    assert_contained(attacker)
    assert b"NOTFOUND" in attacker.stdout, describe(attacker)
    assert_healthy(client)
    if not overlapped:
        pytest.skip("the machine was too slow: the victim ended before the attacker looked")


# ---------------------------------------------------------------- writing outside /work


@pytest.mark.parametrize("target", ["/usr/bin/x", "/etc/x", "/x", "/opt/x"])
def test_write_outside_work_fails(client, target):
    directory = os.path.dirname(target) or "/"
    source = f"""
import os
target = {target!r}
try:
    with open(target, "a") as fh:
        fh.write("pwned")
    print("LEAK wrote", target)
except OSError as exc:
    print("BLOCKED", exc.errno, exc)
try:
    os.mkdir(os.path.join({directory!r}, "newdir"))
    print("LEAK made a directory in", {directory!r})
except OSError as exc:
    print("BLOCKED", exc.errno, exc)
print("DONE")
"""
    assert_contained(run(client, source), blocked=2)
    assert_healthy(client)


def test_agent_bind_mount_read_only(client):
    source = """
import os
AGENT = "/opt/sandbox/agent.py"
original = open(AGENT, "rb").read()
def attempt(name, func):
    try:
        func()
        print("LEAK", name)
    except OSError as exc:
        print("BLOCKED", name, exc.errno, exc)
def append():
    with open(AGENT, "a") as fh:
        fh.write("\\nimport os; os.system('pwned')\\n")
def truncate():
    os.close(os.open(AGENT, os.O_WRONLY | os.O_TRUNC))
def replace():
    with open("/work/evil.py", "w") as fh:
        fh.write("print('pwned')\\n")
    os.rename("/work/evil.py", AGENT)
attempt("append", append)
attempt("truncate", truncate)
attempt("rename over", replace)
attempt("unlink", lambda: os.unlink(AGENT))
attempt("chmod", lambda: os.chmod(AGENT, 0o777))
if open(AGENT, "rb").read() != original:
    print("LEAK the agent changed")
print("DONE")
"""
    assert_contained(run(client, source), blocked=5)
    assert_healthy(client)


def test_write_in_work_and_tmp_allowed(client):
    source = """
import os
for path in ("/work/out.txt", "/tmp/out.txt", "out2.txt"):
    with open(path, "w") as fh:
        fh.write("data")
    print(path, open(path).read())
"""
    response = run(client, source)
    assert response.verdict == pb.AC, describe(response)
    assert response.stdout == b"/work/out.txt data\n/tmp/out.txt data\nout2.txt data\n"
    assert_healthy(client)


def test_writable_mounts_are_size_capped(client, judge):
    """Every filesystem the submission can write to is a tmpfs no bigger than the jail's cap."""
    cap = judge.tmpfs_bytes
    source = f"""
import os
seen = set()
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    mount_point, options = fields[4], fields[5]
    if mount_point in seen or mount_point.startswith("/proc"):
        continue
    seen.add(mount_point)
    if "ro" in options.split(",") or not os.path.isdir(mount_point):
        continue
    if not os.access(mount_point, os.W_OK):
        continue
    st = os.statvfs(mount_point)
    size = st.f_blocks * st.f_frsize
    if size > {cap}:
        print("LEAK writable", mount_point, "holds", size >> 20, "MiB (cap {cap >> 20} MiB)")
    else:
        print("CAPPED", mount_point, size >> 20)
print("DONE")
"""
    response = run(client, source)
    assert_contained(response)
    assert b"CAPPED /work" in response.stdout and b"CAPPED /tmp" in response.stdout, \
        describe(response)
    assert_healthy(client)


# ---------------------------------------------------------------- process bombs


@needs_cgroups
def test_fork_bomb_python(client):
    mark = marker()
    source = f"""
import os
import ctypes
ctypes.CDLL(None).prctl(15, {mark!r}.encode(), 0, 0, 0)  # PR_SET_NAME, inherited by children
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    response = run(client, source, time_limit=1.0, max_processes=16)
    assert response.verdict in (pb.TLE, pb.RE), describe(response)
    assert_no_host_survivors(mark)
    assert_healthy(client)


@needs_cgroups
def test_fork_loop_observes_process_limit(client):
    mark = marker()
    source = f"""
import os, time
import ctypes
ctypes.CDLL(None).prctl(15, {mark!r}.encode(), 0, 0, 0)  # PR_SET_NAME, inherited by children
n = 0
try:
    while n < 10000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    print("LEAK forked", n)
except OSError as exc:
    print("FORK_FAILED", n, exc.errno)
print("DONE")
"""
    response = run(client, source, time_limit=2.0, max_processes=16)
    assert_contained(response)
    forked = int(response.stdout.split()[1])
    # max_processes counts processes; EXTRA_THREADS more tasks (threads or processes) fit.
    assert 1 <= forked <= 16 + EXTRA_THREADS, describe(response)
    assert_no_host_survivors(mark)
    assert_healthy(client)


@needs_cgroups
def test_fork_bomb_cpp(client):
    mark = marker()
    source = f"""
#include <sys/prctl.h>
#include <unistd.h>
int main() {{
    prctl(PR_SET_NAME, "{mark}", 0, 0, 0);
    for (;;) fork();
}}
"""
    response = run(client, source, "cpp", time_limit=1.0, max_processes=16)
    assert response.verdict in (pb.TLE, pb.RE), describe(response)
    assert_no_host_survivors(mark)
    assert_healthy(client)


@needs_cgroups
def test_fork_loop_cpp_observes_process_limit(client):
    source = """
#include <cerrno>
#include <cstdio>
#include <unistd.h>
int main() {
    int n = 0;
    for (; n < 10000; n++) {
        pid_t pid = fork();
        if (pid < 0) { std::printf("FORK_FAILED %d %d\\nDONE\\n", n, errno); return 0; }
        if (pid == 0) { sleep(30); _exit(0); }
    }
    std::printf("LEAK forked %d\\nDONE\\n", n);
}
"""
    response = run(client, source, "cpp", time_limit=2.0, max_processes=16)
    assert_contained(response)
    assert response.stdout.startswith(b"FORK_FAILED"), describe(response)
    assert 1 <= int(response.stdout.split()[1]) <= 16 + EXTRA_THREADS, describe(response)
    assert_healthy(client)


def test_thread_bomb(client):
    source = """
import os, threading, time
n = 0
try:
    while n < 5000:
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        n += 1
    print("LEAK started", n, "threads")
except (RuntimeError, MemoryError) as exc:
    print("THREAD_FAILED", n, type(exc).__name__)
print("DONE", flush=True)
os._exit(0)
"""
    response = run(client, source, time_limit=2.0, max_processes=16)
    assert_contained(response)
    assert response.stdout.startswith(b"THREAD_FAILED"), describe(response)
    assert 1 <= int(response.stdout.split()[1]) <= 16 + EXTRA_THREADS, describe(response)
    assert_healthy(client)


# ---------------------------------------------------------------- memory, disk, output


def test_memory_bomb_python(client):
    source = """
data = bytearray()
while True:
    data += bytes(4 << 20)
"""
    response = run(client, source, memory_mb=128)
    assert response.verdict == pb.MLE, describe(response)
    assert_healthy(client)


def test_memory_bomb_cpp(client):
    source = """
#include <vector>
int main() {
    std::vector<long long> v;
    for (long long i = 0;; i++) v.push_back(i);
}
"""
    response = run(client, source, "cpp", memory_mb=128)
    assert response.verdict == pb.MLE, describe(response)
    assert_healthy(client)


def test_huge_file_in_work_hits_file_size_limit(client):
    source = """
with open("/work/huge", "wb") as fh:
    while True:
        fh.write(bytes(1 << 20))
        fh.flush()
"""
    response = run(client, source, file_size_limit_bytes=4 << 20)
    assert response.verdict == pb.RE, describe(response)
    # CPython ignores SIGXFSZ (as a cold interpreter does), so the write fails with EFBIG.
    assert response.exit.signal == signal.SIGXFSZ or b"File too large" in response.stderr, \
        describe(response)
    assert_healthy(client)


def test_many_files_in_tmp_hit_tmpfs_cap(client, judge):
    """Files are memory: charged to the memory limit (cgroup), else capped by the tmpfs."""
    cap_mib = judge.tmpfs_bytes >> 20
    if cgroups.support().memory is not None:
        response = run(client, "block = bytes(4 << 20)\nfor i in range(100000):\n"
                               "    open('/tmp/fill%d' % i, 'wb').write(block)\n",
                       time_limit=2.0, file_size_limit_bytes=8 << 20)
        assert response.verdict == pb.MLE, describe(response)
        assert_healthy(client)
        return
    cap_mib = min(cap_mib, FALLBACK_TMPFS_BYTES >> 20)
    source = f"""
import errno
block = bytes(4 << 20)
written = 0
try:
    for i in range(100000):
        with open("/tmp/fill%d" % i, "wb") as fh:
            fh.write(block)
        written += len(block)
    print("LEAK wrote", written >> 20, "MiB")
except OSError as exc:
    print("FULL", written >> 20, errno.errorcode.get(exc.errno))
print("DONE")
"""
    response = run(client, source, time_limit=2.0, file_size_limit_bytes=8 << 20)
    assert_contained(response)
    fields = response.stdout.split()
    assert fields[0] == b"FULL" and fields[2] == b"ENOSPC", describe(response)
    assert int(fields[1]) <= cap_mib, describe(response)
    assert_healthy(client)


def test_stdout_flood_is_ole(client):
    source = """
line = "x" * 1000
while True:
    print(line)
"""
    response = run(client, source, output_limit_bytes=1 << 20)
    assert response.verdict == pb.OLE, describe(response)
    assert len(response.stdout) <= (1 << 20) + 1
    assert_healthy(client)


def test_stderr_flood_is_ole(client):
    source = """
import sys
line = "y" * 1000 + "\\n"
while True:
    sys.stderr.write(line)
"""
    response = run(client, source, output_limit_bytes=1 << 20)
    assert response.verdict == pb.OLE, describe(response)
    assert len(response.stderr) <= (1 << 20) + 1
    assert_healthy(client)


# ---------------------------------------------------------------- sleeping and blocking


def test_long_sleep_is_tle(client):
    response = run(client, "import time\ntime.sleep(100)\nprint('LEAK woke up')", time_limit=1.0)
    assert response.verdict == pb.TLE, describe(response)
    assert b"LEAK" not in response.stdout
    assert response.usage.wall_time_s < 50, describe(response)  # killed at the wall cap, not after 100 s
    assert_healthy(client)


def test_blocking_pipe_read_is_tle(client):
    source = """
import os
r, w = os.pipe()   # we keep the write end open: no EOF will ever come
os.read(r, 1)
print("LEAK read returned")
"""
    response = run(client, source, time_limit=1.0)
    assert response.verdict == pb.TLE, describe(response)
    assert b"LEAK" not in response.stdout
    assert_healthy(client)


# ---------------------------------------------------------------- daemons


@needs_cgroups
def test_daemon_does_not_survive_its_test(client):
    mark = marker()
    source = f"""
import os, sys, time
MARK = {mark!r}
if sys.stdin.readline().strip() == "spawn":
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        code = ("import time\\ntime.sleep(1.0)\\n"
                "open('/tmp/' + %r, 'w').write('alive')\\ntime.sleep(60)\\n" % MARK)
        os.execv(sys.executable, [sys.executable, "-c", code, MARK])
    os.waitpid(pid, 0)
    time.sleep(0.3)
    print("SPAWNED")
else:
    time.sleep(1.6)
    me = os.getpid()
    others = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me))
    cmdlines = []
    for p in others:
        try:
            cmdlines.append(open("/proc/%d/cmdline" % p, "rb").read())
        except OSError:
            pass
    marker_written = os.path.exists("/tmp/" + MARK)
    if others or marker_written:
        print("LEAK others=%s %s marker=%s" % (others, cmdlines, marker_written))
    else:
        print("CLEAN")
"""
    request = grade_request(source, [("spawn", "SPAWNED"), ("check", "CLEAN")], time_limit=2.0,
                            max_processes=4)
    request.stop_on_first_failure = False
    response = client.grade(request)
    assert response.verdict == pb.AC and response.passed == 2, (
        f"{verdict_name(response.verdict)} {response.message} "
        f"stdout={response.first_failure.stdout!r} stderr={response.first_failure.stderr!r}")
    assert_no_host_survivors(mark)
    assert_healthy(client)


# ---------------------------------------------------------------- signals and ptrace


def test_sigkill_pid1_is_harmless(client):
    source = """
import os, signal, time
try:
    os.kill(1, signal.SIGKILL)
except PermissionError:
    pass  # denied on the agent (the jail's PID 1) by the test's seccomp filter
time.sleep(0.2)
print("SURVIVED")
"""
    response = run(client, source)
    assert response.verdict == pb.AC, describe(response)
    assert response.stdout == b"SURVIVED\n"
    assert_healthy(client)


@needs_cgroups
def test_kill_all_is_harmless(client):
    source = """
import os, signal, time
if os.fork() == 0:
    time.sleep(30)
    os._exit(0)
os.kill(-1, signal.SIGKILL)
time.sleep(0.2)
print("SURVIVED")
"""
    response = run(client, source, max_processes=2)
    assert response.verdict == pb.AC, describe(response)
    assert response.stdout == b"SURVIVED\n"
    assert_healthy(client)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGALRM",
                                     "SIGSTOP", "SIGSEGV"])
def test_signals_to_pid1_are_harmless(client, signame):
    source = f"""
import os, signal, time
try:
    os.kill(1, signal.{signame})
except PermissionError:
    pass
time.sleep(0.2)
print("SURVIVED")
"""
    response = run(client, source)
    assert response.verdict == pb.AC, describe(response)
    assert response.stdout == b"SURVIVED\n"
    assert_healthy(client)


@pytest.fixture
def sigint_not_ignored():
    """Runs the server the way `sandbox serve` runs: SIGINT handled, not ignored.

    A process started as a background job of a non-interactive shell inherits an
    ignored SIGINT; the jail's agent then inherits it too and CPython installs no
    handler, which would hide the bug this test is about.
    """
    changed = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if changed:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if changed:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigint_to_pid1_is_harmless(client, sigint_not_ignored):
    """PID 1 only receives signals it has a handler for; CPython installs one for SIGINT."""
    source = """
import os, signal, time
try:
    os.kill(1, signal.SIGINT)
except PermissionError:
    pass
time.sleep(0.3)
print("SURVIVED")
"""
    response = run(client, source)
    assert response.verdict == pb.AC, describe(response)
    assert response.stdout == b"SURVIVED\n"
    graded = client.grade(grade_request(source, [("", "SURVIVED")]))
    assert graded.verdict == pb.AC, f"{verdict_name(graded.verdict)}: {graded.message}"
    assert_healthy(client)


@needs_cgroups
def test_ptrace_fails_with_eperm(client):
    source = PY_LIBC + """
import time
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
call("PTRACE_TRACEME", libc.ptrace, 0, 0, None, None)
call("PTRACE_ATTACH 1", libc.ptrace, 16, 1, None, None)
call("PTRACE_SEIZE 1", libc.ptrace, 0x4206, 1, None, None)
call("PTRACE_ATTACH child", libc.ptrace, 16, child, None, None)
os.kill(child, 9)
print("DONE")
"""
    assert_contained(run(client, source, max_processes=2), blocked=4)
    assert_healthy(client)


def test_process_vm_readv_fails_with_eperm(client):
    source = PY_LIBC + """
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(64)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
remote = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)  # same layout: the agent is our fork parent
libc.process_vm_readv.restype = ctypes.c_ssize_t
call("process_vm_readv 1", libc.process_vm_readv, 1, ctypes.byref(local), 1,
     ctypes.byref(remote), 1, 0)
call("process_vm_writev 1", libc.process_vm_writev, 1, ctypes.byref(local), 1,
     ctypes.byref(remote), 1, 0)
print("DONE")
"""
    assert_contained(run(client, source), blocked=2)
    assert_healthy(client)


# ---------------------------------------------------------------- namespaces and mounts


def test_mount_unshare_setns_fail(client):
    source = PY_LIBC + """
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x20000, 0x10000000, 0x40000000, 0x20000000
call("unshare(CLONE_NEWUSER)", libc.unshare, CLONE_NEWUSER)
call("unshare(CLONE_NEWNS)", libc.unshare, CLONE_NEWNS)
call("unshare(CLONE_NEWNET)", libc.unshare, CLONE_NEWNET)
call("mount tmpfs", libc.mount, b"none", b"/work", b"tmpfs", ctypes.c_ulong(0), None)
call("remount agent rw", libc.mount, None, b"/opt/sandbox/agent.py", None,
     ctypes.c_ulong(0x20 | 0x1000), None)  # MS_REMOUNT | MS_BIND
call("umount agent", libc.umount2, b"/opt/sandbox/agent.py", 0)
call("chroot", libc.chroot, b"/tmp")
fd = os.open("/proc/self/ns/net", os.O_RDONLY)
call("setns(net)", libc.setns, fd, 0)
fd = os.open("/proc/self/ns/user", os.O_RDONLY)
call("setns(user)", libc.setns, fd, 0)
if hasattr(os, "unshare"):
    try:
        os.unshare(CLONE_NEWUSER)
        print("LEAK os.unshare")
    except OSError as exc:
        print("os.unshare failed", exc.errno)
print("DONE")
"""
    assert_contained(run(client, source), blocked=9)
    assert_healthy(client)


@needs_x86_64
def test_clone_with_namespace_flags_fails(client):
    source = PY_LIBC + """
SIGCHLD, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 17, 0x10000000, 0x20000000, 0x40000000
for name, flags in (("clone(NEWUSER)", CLONE_NEWUSER), ("clone(NEWPID)", CLONE_NEWPID),
                    ("clone(NEWNET)", CLONE_NEWNET)):
    ctypes.set_errno(0)
    rc = libc.syscall(56, ctypes.c_ulong(flags | SIGCHLD), None, None, None, None)
    if rc == 0:
        os._exit(0)  # we are a child in a new namespace: the parent reports the leak
    err = ctypes.get_errno()
    if rc == -1 and err == errno.EPERM:
        print("BLOCKED", name)
    else:
        print("LEAK", name, rc, err)
        if rc > 0:
            os.waitpid(rc, 0)
ctypes.set_errno(0)
rc = libc.syscall(435, None, ctypes.c_size_t(0))  # clone3: ENOSYS so libc falls back to clone
print("BLOCKED clone3" if rc == -1 and ctypes.get_errno() == errno.ENOSYS else "LEAK clone3 %d" % rc)
print("DONE")
"""
    assert_contained(run(client, source), blocked=4)
    assert_healthy(client)


# ---------------------------------------------------------------- /proc and the agent


def test_proc_pid1_mem_unreadable(client):
    source = """
import os
for path, mode in (("/proc/1/mem", "rb"), ("/proc/1/mem", "r+b"), ("/proc/1/maps", "rb"),
                   ("/proc/1/environ", "rb")):
    try:
        with open(path, mode) as fh:
            fh.seek(0)
            print("LEAK opened", path, mode, fh.read(40))
    except OSError as exc:
        print("BLOCKED", path, mode, exc.errno)
for link in ("/proc/1/root", "/proc/1/cwd", "/proc/1/exe"):
    try:
        print("LEAK", link, os.listdir(link)[:3] if os.path.isdir(link) else os.readlink(link))
    except OSError as exc:
        print("BLOCKED", link, exc.errno)
print("DONE")
"""
    assert_contained(run(client, source), blocked=7)
    assert_healthy(client)


def test_environment_scrubbed(client, monkeypatch):
    canary = marker()
    monkeypatch.setenv("SANDBOX_SECURITY_CANARY", canary)  # the server runs in this process
    source = f"""
import os
env = dict(os.environ)
print("ENV", sorted(env))
allowed = {{"PATH", "HOME", "LANG", "TMPDIR", "PWD", "LC_CTYPE"}}
if set(env) - allowed:
    print("LEAK extra variables", sorted(set(env) - allowed))
if env.get("HOME") != "/work":
    print("LEAK HOME", env.get("HOME"))
for part in env.get("PATH", "").split(":"):
    if not part.startswith(("/usr/", "/bin")):
        print("LEAK PATH entry", part)
texts = [repr(env)]
for path in ("/proc/self/environ", "/proc/1/environ"):
    try:
        texts.append(open(path, "rb").read().decode(errors="replace"))
    except OSError:
        pass
joined = "\\n".join(texts)
for needle in ({canary!r}, "/root", "pyenv", ".venv", "PYTEST", "VIRTUAL_ENV"):
    if needle in joined:
        print("LEAK", needle, "visible in the environment")
print("DONE")
"""
    assert_contained(run(client, source))
    assert_healthy(client)


def test_environment_scrubbed_cpp(client, monkeypatch):
    canary = marker()
    monkeypatch.setenv("SANDBOX_SECURITY_CANARY", canary)
    source = """
#include <cstdio>
extern char **environ;
int main() {
    for (char **e = environ; *e; e++) std::printf("%s\\n", *e);
}
"""
    response = run(client, source, "cpp")
    assert response.verdict == pb.AC, describe(response)
    names = {line.split("=", 1)[0] for line in response.stdout.decode().splitlines()}
    assert names <= {"PATH", "HOME", "LANG", "TMPDIR"}, describe(response)
    assert canary.encode() not in response.stdout and b"HOME=/work" in response.stdout
    assert_healthy(client)


def test_proc_pid1_fds_and_control_pipes_unreachable(client):
    source = """
import os
try:
    print("LEAK listed /proc/1/fd", os.listdir("/proc/1/fd"))
except OSError as exc:
    print("BLOCKED listdir", exc.errno)
opened = []
for fd in range(0, 32):
    for mode in (os.O_RDONLY, os.O_WRONLY):
        try:
            os.close(os.open("/proc/1/fd/%d" % fd, mode | os.O_NONBLOCK))
            opened.append((fd, mode))
        except OSError:
            pass
if opened:
    print("LEAK opened the agent's fds", opened)
# Our own descriptors: stdin/stdout/stderr only, no inherited control pipe.
own = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
extra = []
for fd in own:
    if fd > 2:
        try:
            extra.append((fd, os.readlink("/proc/self/fd/%d" % fd)))
        except OSError:
            pass  # the listdir's own descriptor, already closed
if extra:
    print("LEAK inherited descriptors", extra)
print("DONE")
"""
    assert_contained(run(client, source), blocked=1)
    assert_healthy(client)


def test_proc_shows_only_the_jail(client):
    source = """
import os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print("PIDS", pids)
if 1 not in pids or os.getpid() not in pids or len(pids) > 3:
    print("LEAK /proc shows", pids)
init = open("/proc/1/cmdline", "rb").read().split(b"\\0")
if b"/opt/sandbox/agent.py" not in init:
    print("LEAK pid 1 is not the jail's agent", init)
print("DONE")
"""
    assert_contained(run(client, source))
    assert_healthy(client)


# ---------------------------------------------------------------- identity, capabilities, seccomp

IDENTITY_PROBE = """
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
status = {k: v.strip() for k, v in status.items()}
print("UID", os.getuid(), os.geteuid(), os.getgid())
if os.getuid() == 0 or os.geteuid() == 0 or os.getgid() == 0:
    print("LEAK running as root")
for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    if int(status[cap], 16) != 0:
        print("LEAK", cap, status[cap])
print("NoNewPrivs", status.get("NoNewPrivs"))
print("Seccomp", status.get("Seccomp"))
for name, func in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0))):
    try:
        func()
        print("LEAK", name)
    except OSError as exc:
        print("BLOCKED", name, exc.errno)
print("DONE")
"""


@pytest.mark.parametrize("language", ["python", "pypy"])
def test_unprivileged_uid_no_capabilities(client, judge, language):
    if language not in judge.languages:
        pytest.skip(f"{language} is not installed")
    response = run(client, IDENTITY_PROBE, language)
    assert_contained(response, blocked=2)
    if os.geteuid() == 0:
        assert f"UID {JAIL_UID} {JAIL_UID} {JAIL_UID}".encode() in response.stdout, describe(response)
    assert b"NoNewPrivs 1\n" in response.stdout, describe(response)
    assert_healthy(client)


def test_seccomp_filter_active(client):
    response = run(client, IDENTITY_PROBE)
    assert_contained(response)
    assert b"Seccomp 2\n" in response.stdout, describe(response)
    assert_healthy(client)


@needs_x86_64
def test_int80_syscall_is_killed(client):
    source = """
#include <cstdio>
int main() {
    std::printf("BEFORE\\n");
    std::fflush(stdout);
    long ret;
    asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");  // i386 getpid
    std::printf("LEAK int 0x80 returned %ld\\n", ret);
}
"""
    response = run(client, source, "cpp")
    assert response.verdict == pb.RE, describe(response)
    assert response.exit.signal == signal.SIGSYS, describe(response)
    assert response.stdout == b"BEFORE\n", describe(response)
    assert_healthy(client)


@needs_x86_64
def test_x32_syscall_is_killed(client):
    source = """
#include <cstdio>
#include <unistd.h>
#include <sys/syscall.h>
int main() {
    std::printf("BEFORE\\n");
    std::fflush(stdout);
    long ret = syscall(0x40000000L | 39);  // x32 getpid
    std::printf("LEAK x32 syscall returned %ld\\n", ret);
}
"""
    response = run(client, source, "cpp")
    assert response.verdict == pb.RE, describe(response)
    assert response.exit.signal == signal.SIGSYS, describe(response)
    assert response.stdout == b"BEFORE\n", describe(response)
    assert_healthy(client)


# The documented deny list (workers/seccomp_filter.py), pinned here as well: a call dropped from
# the filter's list must fail this test, not vanish from it.
DOCUMENTED_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "mount", "umount2", "pivot_root",
    "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "unshare", "setns", "bpf", "perf_event_open", "userfaultfd", "fanotify_init", "keyctl",
    "add_key", "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
    "swapoff", "acct", "syslog", "quotactl", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "personality",
    "vhangup", "iopl", "ioperm",
)


def _denied_syscall_numbers() -> dict[str, int]:
    import pyseccomp

    from workers.seccomp_filter import DENIED_SYSCALLS
    numbers = {}
    for name in dict.fromkeys(DOCUMENTED_DENIED + tuple(DENIED_SYSCALLS)):
        number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if number >= 0:  # negative: not a syscall on this architecture
            numbers[name] = number
    return numbers


DENIED_NUMBERS = _denied_syscall_numbers()


@pytest.fixture(scope="module")
def denied_syscall_errnos(client):
    """Every call of the filter's own deny list, by number, from inside one jail, with all
    arguments -1 (invalid fds, pointers and flags: without the filter the kernel answers EBADF,
    EFAULT, EINVAL, ... or runs a harmless query, so EPERM is the filter's doing)."""
    source = f"""
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, number in {sorted(DENIED_NUMBERS.items())!r}:
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(number), *([ctypes.c_long(-1)] * 6))
    err = ctypes.get_errno()
    print("CALL", name, rc, errno.errorcode.get(err, err) if rc == -1 else "none")
print("DONE")
"""
    response = run(client, source)
    assert response.verdict == pb.AC, describe(response)
    results = {}
    for line in response.stdout.decode().splitlines():
        if line.startswith("CALL "):
            _, name, rc, err = line.split()
            results[name] = (int(rc), err)
    return results


@pytest.mark.parametrize("name", sorted(DENIED_NUMBERS))
def test_every_denied_syscall_fails_with_eperm(denied_syscall_errnos, name):
    assert denied_syscall_errnos.get(name) == (-1, "EPERM"), denied_syscall_errnos.get(name)


@needs_x86_64
def test_dangerous_syscalls_fail_with_eperm(client):
    source = PY_LIBC + """
calls = [("bpf", 321, (0, None, 0)), ("keyctl", 250, (0, 0, 0, 0, 0)),
         ("add_key", 248, (b"user", b"x", b"y", 1, ctypes.c_long(-2))),
         ("request_key", 249, (b"user", b"x", None, 0)),
         ("perf_event_open", 298, (None, 0, -1, -1, 0)),
         ("io_uring_setup", 425, (1, None)), ("io_uring_enter", 426, (0, 0, 0, 0, None, 0)),
         ("io_uring_register", 427, (0, 0, None, 0)),
         ("userfaultfd", 323, (0,)), ("fanotify_init", 300, (0, 0)),
         ("open_by_handle_at", 304, (0, None, 0)), ("init_module", 175, (None, 0, b"")),
         ("kexec_load", 246, (0, 0, None, 0)), ("personality", 135, (ctypes.c_ulong(0xffffffff),)),
         ("kcmp", 312, (1, 1, 0, 0, 0))]
for name, number, args in calls:
    call(name, libc.syscall, number, *args)
TIOCSTI = 0x5412
call("ioctl(TIOCSTI)", libc.ioctl, 0, TIOCSTI, b"x")
print("DONE")
"""
    assert_contained(run(client, source), blocked=16)
    assert_healthy(client)


# ---------------------------------------------------------------- one budget per submission
# CPU time and memory are judged over everything a test creates. The host's view is measured
# from outside the jail: the proportional resident memory of every process running as the
# jail's uid plus the growth of the host's shared memory (memfds, tmpfs, SysV shm), sampled;
# and CPU time from this process's reaped descendants (every jail is one).

FALLBACK = cgroups.CgroupSupport()  # no per-jail cgroups: the single-process fallback
HOST_ALLOWANCE_MIB = 96  # the agent, bwrap and the interpreter's own pages, sampling slack


def _meminfo_kib(field: str) -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _jail_pids() -> set[str]:
    found = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and is_jail_host_uid(os.stat(f"/proc/{entry}").st_uid):
                found.add(entry)
        except OSError:
            continue
    return found


def _jail_pss_kib(exclude: frozenset[str] = frozenset()) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry in exclude:
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                uid = next(line for line in fh if line.startswith("Uid:")).split()[1]
            if not is_jail_host_uid(int(uid)):
                continue
            with open(f"/proc/{entry}/smaps_rollup") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total


class HostMemory:
    """The peak host memory jails use while the block runs, in MiB, sampled every 10 ms: the
    processes of jails started before it (idle ready jails, their agents) do not count."""

    def __enter__(self) -> "HostMemory":
        self.peak_mib = 0.0
        self._before = frozenset(_jail_pids())
        self._shmem_base = _meminfo_kib("Shmem")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            used = _jail_pss_kib(self._before) + max(0, _meminfo_kib("Shmem") - self._shmem_base)
            self.peak_mib = max(self.peak_mib, used / 1024)
            self._stop.wait(0.01)

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def host_cpu_seconds() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def fallback_judge() -> Judge:
    return Judge(cgroup_support=FALLBACK)


@pytest.fixture(params=["cgroups", "fallback"])
def any_judge(request, judge, fallback_judge) -> Judge:
    """The host's judge (cgroups where delegated) and the fallback judge, each in turn."""
    if request.param == "cgroups" and not judge.cgroup_support.complete:
        pytest.skip("this machine delegates no cgroups for jails")
    return judge if request.param == "cgroups" else fallback_judge


def execute(judge: Judge, source: str, language: str = "python", **limits) -> pb.ExecuteResponse:
    limits.setdefault("time_limit", 1.0)
    return judge.execute(execute_request(source, language, **limits))


PROCESS_CREATION = {
    "os.fork": "import os\nos.fork()\nprint('forked')",
    "subprocess of a shell": "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'echo hi'])",
    "multiprocessing": ("import multiprocessing\np = multiprocessing.Process(target=print)\n"
                        "p.start()\np.join()"),
    "os.posix_spawn": "import os\nos.posix_spawn('/bin/true', ['true'], {})",
}


@pytest.mark.parametrize("name", sorted(PROCESS_CREATION))
def test_a_test_cannot_create_processes_by_default(any_judge, name):
    """As under LiveCodeBench's harness: creating a process fails (RE), threads work."""
    response = execute(any_judge, PROCESS_CREATION[name])
    assert response.verdict == pb.RE, describe(response)
    assert b"PermissionError" in response.stderr or b"Operation not permitted" in response.stderr, \
        describe(response)


def test_cpp_fork_and_clone_fail_by_default(any_judge):
    source = r"""
#include <cstdio>
#include <csignal>
#include <unistd.h>
#include <sys/syscall.h>
int main() {
    pid_t forked = fork();
    long cloned = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (forked == 0 || cloned == 0) _exit(0);
    std::printf("%d %ld\nDONE\n", (int)forked, cloned);
}
"""
    response = execute(any_judge, source, "cpp")
    assert response.verdict == pb.AC and response.stdout == b"-1 -1\nDONE\n", describe(response)


def test_threads_still_run_without_processes(any_judge):
    source = ("import threading\nout = []\nts = [threading.Thread(target=out.append, args=(i,))"
              " for i in range(32)]\nfor t in ts: t.start()\nfor t in ts: t.join()\n"
              "print(len(out))")
    response = execute(any_judge, source)
    assert response.verdict == pb.AC and response.stdout == b"32\n", describe(response)


def test_more_processes_are_refused_without_cgroups(fallback_judge):
    from workers.judge import InvalidRequest
    with pytest.raises(InvalidRequest, match="max_processes=4 needs per-jail cgroups"):
        execute(fallback_judge, "print(1)", max_processes=4)


CPU_BY_CHILDREN_NOT_WAITED_FOR = """
import os, time
for _ in range(2):
    if os.fork() == 0:
        start = time.process_time()
        while time.process_time() - start < 0.7:
            pass
        os._exit(0)
time.sleep(2.0)
print("done")
"""


@needs_cgroups
def test_cpu_of_children_not_waited_for_counts(judge):
    before = host_cpu_seconds()
    response = execute(judge, CPU_BY_CHILDREN_NOT_WAITED_FOR, max_processes=4)
    host = host_cpu_seconds() - before
    assert response.verdict == pb.TLE, describe(response)
    assert response.usage.cpu_time_s > 1.0, describe(response)
    assert host < 1.0 + 0.6, f"the jail used {host:.2f} s of host CPU under a 1 s limit"


@needs_cgroups
def test_cpu_of_threads_in_several_processes_is_one_budget(judge):
    source = """
import os, threading, time
def spin():
    end = time.monotonic() + 3
    while time.monotonic() < end:
        pass
if os.fork() == 0:
    for _ in range(2):
        threading.Thread(target=spin).start()
    spin()
    os._exit(0)
threading.Thread(target=spin).start()
time.sleep(3)
print("done")
"""
    before = host_cpu_seconds()
    response = execute(judge, source, max_processes=2)
    host = host_cpu_seconds() - before
    assert response.verdict == pb.TLE, describe(response)
    assert host < 1.0 + 0.6, f"the jail used {host:.2f} s of host CPU under a 1 s limit"


@needs_cgroups
def test_memory_of_forked_children_is_one_budget(judge):
    source = """
import os, time
for _ in range(8):
    if os.fork() == 0:
        block = bytearray(200 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(3)
        os._exit(0)
time.sleep(3)
print("done")
"""
    with HostMemory() as host:
        response = execute(judge, source, max_processes=9, time_limit=2.0)
    assert response.verdict == pb.MLE, describe(response)
    assert host.peak_mib < 256 + HOST_ALLOWANCE_MIB, f"host peak {host.peak_mib:.0f} MiB"


MEMFD_PYTHON = """
import os
fds = []
for _ in range(40):
    fd = os.memfd_create("x")
    os.write(fd, bytes(63 << 20))
    fds.append(fd)
print("done")
"""
MEMFD_CPP = r"""
#include <cstdio>
#include <vector>
#include <sys/mman.h>
#include <unistd.h>
int main() {
    std::vector<char> block(63 << 20, 'x');
    for (int i = 0; i < 40; i++) {
        int fd = memfd_create("x", 0);
        if (fd < 0 || write(fd, block.data(), block.size()) != (ssize_t)block.size()) return 3;
    }
    std::puts("done");
}
"""
SYSV_SHM_CPP = r"""
#include <cstdio>
#include <cstring>
#include <sys/shm.h>
int main() {
    for (int i = 0; i < 40; i++) {
        int id = shmget(IPC_PRIVATE, 63 << 20, IPC_CREAT | 0600);
        if (id < 0) return 3;
        char *p = (char *)shmat(id, nullptr, 0);
        if (p == (char *)-1) return 4;
        std::memset(p, 'x', 63 << 20);
        shmdt(p);  // the segment stays, outside every address space
    }
    std::puts("done");
}
"""
FILL_DIRECTORY = """
import sys
block = bytes(4 << 20)
for i in range(1000):
    with open("{directory}/fill%d" % i, "wb") as fh:
        fh.write(block)
print("done")
"""
MEMORY_OUTSIDE_THE_ADDRESS_SPACE = {
    "memfd python": (MEMFD_PYTHON, "python"),
    "memfd c++": (MEMFD_CPP, "cpp"),
    "sysv shm c++": (SYSV_SHM_CPP, "cpp"),
    "fill /tmp": (FILL_DIRECTORY.format(directory="/tmp"), "python"),
    "fill /work": (FILL_DIRECTORY.format(directory="/work"), "python"),
    "fill /dev/shm": (FILL_DIRECTORY.format(directory="/dev/shm"), "python"),
}


@pytest.mark.parametrize("name", sorted(MEMORY_OUTSIDE_THE_ADDRESS_SPACE))
def test_memory_outside_the_address_space_is_bounded(any_judge, name):
    """With a memory cgroup it is charged to the limit (MLE); without one it is denied or
    capped by the jail's tmpfs (RE); either way the host sees the limit plus the allowance."""
    source, language = MEMORY_OUTSIDE_THE_ADDRESS_SPACE[name]
    with HostMemory() as host:
        response = execute(any_judge, source, language, time_limit=2.0)
    charged = any_judge.cgroup_support.memory is not None
    # /dev/shm is a 64 MiB tmpfs, below this 256 MiB limit: it fills up first (ENOSPC);
    # SysV shared memory is denied to tests in every mode (it outlives a test).
    expected = pb.MLE if charged and name not in ("fill /dev/shm", "sysv shm c++") else pb.RE
    assert response.verdict == expected, describe(response)
    allowance = 0 if charged else FALLBACK_TMPFS_BYTES >> 20
    assert host.peak_mib < 256 + allowance + HOST_ALLOWANCE_MIB, f"host peak {host.peak_mib:.0f} MiB"
    assert_healthy_judge(any_judge)


def assert_healthy_judge(judge: Judge) -> None:
    response = execute(judge, "print(sum(range(10)))")
    assert response.verdict == pb.AC and response.stdout == b"45\n", describe(response)


def test_files_a_test_wrote_are_gone_before_the_next(any_judge):
    """Tests are independent, and their tmpfs pages do not pile up across a submission."""
    source = """
import os, sys
seen = sorted(os.listdir('/tmp') + os.listdir('/dev/shm') + [n for n in os.listdir('.') if n.startswith('left')])
open('/tmp/left', 'w').write('x'); open('/dev/shm/left', 'w').write('x'); open('left.txt', 'w').write('x')
os.mkdir('leftdir'); os.chmod('leftdir', 0)
print(seen)
"""
    request = grade_request(source, [("", "[]"), ("", "[]")])
    response = any_judge.grade(request, request.test_set)
    assert response.verdict == pb.AC and response.passed == 2, response.message


def test_a_compile_that_allocates_is_ce_within_its_memory_limit(any_judge):
    from workers.limits import COMPILE_LIMITS
    with HostMemory() as host:
        response = execute(any_judge, '#include "/dev/zero"\nint main() {}\n', "cpp",
                           memory_mb=64)
    assert response.verdict == pb.CE, describe(response)
    assert "ran out of memory" in response.message, response.message
    assert response.compile_usage.peak_memory_kb > 0
    assert host.peak_mib < COMPILE_LIMITS.memory_mb + HOST_ALLOWANCE_MIB, \
        f"host peak {host.peak_mib:.0f} MiB"


# About 20 s of cc1plus CPU: 40 constant evaluations, each within GCC's own loop limits.
SLOW_COMPILE = (
    "constexpr unsigned spin(unsigned k) {\n"
    "    unsigned s = k;\n"
    "    for (unsigned i = 0; i < 200000; i++) s += i ^ (s >> 3);\n"
    "    return s;\n}\n"
    + "".join(f'static_assert(spin({k}) != 1, "");\n' for k in range(40))
    + "int main() {}\n")


def test_compile_cpu_counts_every_compiler_process(any_judge, monkeypatch):
    """The CPU limit covers cc1plus, not just the g++ driver that waits for it."""
    from dataclasses import replace

    import workers.judge
    limits = replace(workers.judge.COMPILE_LIMITS, time_limit_s=1.0, wall_limit_s=30.0)
    monkeypatch.setattr(workers.judge, "COMPILE_LIMITS", limits)
    started = time.monotonic()
    response = execute(any_judge, SLOW_COMPILE, "cpp")
    elapsed = time.monotonic() - started
    assert response.verdict == pb.CE, describe(response)
    assert "CPU time limit of 1 s" in response.message, response.message
    assert response.compile_usage.cpu_time_s >= 1.0, response.compile_usage
    assert elapsed < 10, f"the compile ran {elapsed:.1f} s under a 1 s CPU limit"


# ---------------------------------------------------------------- no submission forces an SE


def test_deeply_chained_expression_is_ce_not_se(judge):
    source = "x = " + "+".join(["1"] * 5000) + "\nprint(x)\n"
    request = grade_request(source, [("", "5000")])
    started = time.monotonic()
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.CE, response.message
    assert "RecursionError" in response.compile_log
    assert time.monotonic() - started < 10


AGENT_TAMPERING = """
import os, resource
results = []
for name, call in [
        ("prlimit AS", lambda: resource.prlimit(1, resource.RLIMIT_AS, (1 << 20, 1 << 20))),
        ("prlimit NOFILE", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (3, 3))),
        ("setpriority pid 1", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19)),
        ("setpriority user", lambda: os.setpriority(os.PRIO_USER, 0, 19)),
        ("setpriority group", lambda: os.setpriority(os.PRIO_PGRP, 0, 19)),
        ("sched_setaffinity 1", lambda: os.sched_setaffinity(1, {0})),
        ("kill 1", lambda: os.kill(1, 15))]:
    try:
        call()
        results.append("LEAK:" + name)
    except PermissionError:
        results.append("denied")
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # its own limits: still allowed
os.setpriority(os.PRIO_PROCESS, 0, 5)
print(" ".join(results))
"""


def test_a_test_cannot_reach_the_agent(judge):
    request = grade_request(AGENT_TAMPERING, [("", " ".join(["denied"] * 7))] * 3)
    request.stop_on_first_failure = False
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC and response.passed == 3, (
        response.message, response.first_failure.stdout, response.first_failure.stderr[-500:])


def _file_io_request(source: str, tests, **limits) -> pb.GradeRequest:
    request = grade_request(source, tests, **limits)
    request.file_io.input_name, request.file_io.output_name = "input.txt", "output.txt"
    request.stop_on_first_failure = False
    return request


def test_file_io_output_that_is_a_fifo_or_a_link_is_read_as_nothing_without_blocking(judge):
    source = """
import os, sys
n = int(open("input.txt").read())
if n == 1:
    os.mkfifo("output.txt")
elif n == 2:
    os.symlink("main.py", "output.txt")
elif n == 3:
    os.mkdir("output.txt")
else:
    open("output.txt", "w").write(str(2 * n))
"""
    request = _file_io_request(source, [("1", "2"), ("2", "4"), ("3", "6"), ("4", "8")],
                               time_limit=1.0)
    started = time.monotonic()
    response = judge.grade(request, request.test_set)
    assert time.monotonic() - started < 15, "the agent blocked on the program's output file"
    assert [t.verdict for t in response.tests] == [pb.WA, pb.WA, pb.WA, pb.AC], response


def test_file_io_input_replaced_by_a_directory_or_a_link_is_rewritten(judge):
    source = """
import os, shutil
n = int(open("input.txt").read())
open("output.txt", "w").write(str(2 * n))
os.remove("input.txt")
if n == 1:
    os.mkdir("input.txt"); os.chmod("input.txt", 0)
else:
    os.symlink("/tmp/elsewhere", "input.txt")
"""
    request = _file_io_request(source, [("1", "2"), ("2", "4"), ("3", "6")])
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.AC and response.passed == 3, (response.message,
                                                                 response.first_failure.stderr)


@pytest.mark.parametrize("names", [("main.py", "out.txt"), ("in.txt", "main"), ("a/b", "out"),
                                   (".hidden", "out"), ("x" * 65, "out"), ("in\x00", "out"),
                                   ("same.txt", "same.txt"), ("in put", "out")])
def test_file_io_names_are_validated(judge, names):
    from workers.judge import InvalidRequest
    request = grade_request("print(1)", [("", "1")])
    request.file_io.input_name, request.file_io.output_name = names
    with pytest.raises(InvalidRequest, match="file_io"):
        judge.grade(request, request.test_set)


def test_printing_memoryerror_is_not_mle(judge):
    request = grade_request("import sys\nsys.stderr.write('MemoryError\\n')\nsys.exit(1)\n",
                            [("", "")])
    response = judge.grade(request, request.test_set)
    assert response.verdict == pb.RE, response.message


def test_an_agent_failure_is_answered_and_the_jail_keeps_serving(judge):
    """A request the agent cannot carry out gets an error answer, not a dead jail."""
    from workers.jail import Jail, JailError
    from workers.limits import RunLimits
    language = judge.language("python")
    with Jail(language) as jail:
        with pytest.raises(JailError, match="agent"):
            jail.write_file("no/such/dir/file", b"x")
        jail.write_file("ok.txt", b"fine")
        assert jail.read_file("ok.txt") == b"fine"
        raw = jail.run(RunLimits(time_limit_s=1), argv=["/bin/cat", "/work/ok.txt"])
        assert raw.exit_code == 0 and raw.stdout == b"fine"


def test_jails_do_not_share_per_user_kernel_quotas(judge):
    """Each running jail has a host uid of its own: one filling its pipe-buffer quota does
    not shrink another's pipes (the kernel counts pipe buffers per host user)."""
    if os.geteuid() != 0:
        pytest.skip("jails get their own host uids only when the server runs as root")
    hog = """
import fcntl, os, time
pipes = []
try:
    while True:
        r, w = os.pipe()
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
        pipes.append((r, w))
except OSError:
    pass
pipes += [os.pipe() for _ in range(40)]  # past the user's soft quota
print(len(pipes), flush=True)
time.sleep(2.5)
"""
    probe = "import fcntl, os, time\ntime.sleep(1.0)\nr, w = os.pipe()\nprint(fcntl.fcntl(w, 1032))\n"
    results = {}
    threads = [threading.Thread(target=lambda: results.__setitem__(
        "hog", execute(judge, hog, time_limit=3.0, max_open_files=512))),
               threading.Thread(target=lambda: results.__setitem__(
        "probe", execute(judge, probe, time_limit=3.0)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["probe"].verdict == pb.AC, describe(results["probe"])
    assert results["probe"].stdout == b"65536\n", describe(results["probe"])


# ---------------------------------------------------------------- nothing carries over between tests


def _two_tests(judge: Judge, source: str, language: str = "python", **limits) -> pb.GradeResponse:
    request = grade_request(source, [("1", "clean"), ("2", "clean")], language, **limits)
    request.stop_on_first_failure = False
    return judge.grade(request, request.test_set)


def test_a_deep_directory_tree_is_removed_not_a_sandbox_error(any_judge):
    source = """
import os, sys
clean = not os.listdir("/tmp")
if sys.stdin.read().strip() == "1":
    os.chdir("/tmp")
    for _ in range(3000):  # deeper than the agent's recursion limit and PATH_MAX
        os.mkdir("a"); os.chdir("a")
    os.chmod(".", 0)
print("clean" if clean else "dirty")
"""
    response = _two_tests(any_judge, source)
    assert response.verdict == pb.AC and response.passed == 2, (
        response.message, [t.message for t in response.tests])


LEAVES_STATE = """
import os, sys
test = sys.stdin.read().strip()
seen = []
if os.listdir("/tmp") or os.listdir("/dev/shm"):
    seen.append("files")
if oct(os.stat("/tmp").st_mode & 0o777) != "0o755" or oct(os.stat("/work").st_mode & 0o777) != "0o755":
    seen.append("modes")
if open("main.py").read().endswith("# mark"):
    seen.append("source")
if test == "1":
    open("/tmp/keep", "w").write("x"); open("/dev/shm/keep", "w").write("x")
    open("main.py", "a").write("# mark")
    os.chmod("/tmp", 0o555); os.chmod("/work", 0o555)
print("clean" if not seen else "seen " + " ".join(seen))
"""


def test_nothing_a_test_leaves_reaches_the_next(any_judge):
    response = _two_tests(any_judge, LEAVES_STATE)
    assert response.verdict == pb.AC and response.passed == 2, (
        response.message, response.first_failure.stdout, response.first_failure.stderr[-300:])


@pytest.mark.parametrize("name, call", [
    ("msgget", "libc.msgget(0, 0o1600)"), ("semget", "libc.semget(0, 1, 0o1600)"),
    ("shmget", "libc.shmget(0, 4096, 0o1600)"),
    ("setxattr", "libc.setxattr(b'/tmp', b'user.state', b'x', 1, 0)"),
    ("mq_open", "libc.mq_open(b'/q', 0o100 | 2, 0o600, None)")])
def test_objects_that_outlive_a_test_are_denied(any_judge, name, call):
    source = PY_LIBC + f"""
import ctypes.util
for lib in ("rt",):
    try:
        rt = ctypes.CDLL(ctypes.util.find_library(lib) or "librt.so.1", use_errno=True)
        libc.mq_open = rt.mq_open
    except OSError:
        pass
call({name!r}, lambda *a: {call})
print("DONE")
"""
    assert_contained(execute(any_judge, source), blocked=1)


def test_tcp_is_denied_and_in_the_fallback_socket_buffers_cannot_grow(any_judge):
    source = """
import socket
results = []
for make in (lambda: socket.socket(socket.AF_INET), lambda: socket.socket(socket.AF_INET6)):
    try:
        make().close()
        results.append("ok")
    except PermissionError:
        results.append("denied")
a, b = socket.socketpair()
try:
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    results.append("grown")
except PermissionError:
    results.append("default")
print(" ".join(results))
"""
    response = execute(any_judge, source)
    grown = "grown" if any_judge.cgroup_support.memory is not None else "default"
    assert response.stdout == f"denied denied {grown}\n".encode(), describe(response)


def test_many_files_are_stopped_and_their_removal_is_charged(any_judge):
    source = r"""
#include <cstdio>
#include <sys/stat.h>
int main() { char name[32]; for (int i = 0; i < 300000; i++) { std::snprintf(name, 32, "/tmp/%x", i); mkdir(name, 0700); } std::puts("made"); }
"""
    started = time.monotonic()
    response = execute(any_judge, source, "cpp", time_limit=2.0)
    assert response.verdict == pb.RE and "files and directories" in response.message, describe(response)
    assert time.monotonic() - started < 8
    assert_healthy_judge(any_judge)

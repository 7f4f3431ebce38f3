"""The languages Codeforces accepts beyond Python and C++: C, Java, Go, Rust, JavaScript.

For each: every verdict on a small problem (a + b), memory judged as resident memory with
and without per-jail cgroups, and the security suite's attacks in that language (process
creation, network, host files). A language whose toolchain is missing is skipped here,
but not in CI (CI=true), where scripts/setup.sh must have installed it.

Time limits stay at 1-2 s and nothing asserts how long anything took.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest

from conftest import execute_request, grade_request
from sandbox.info import build_info
from sandbox.v1 import sandbox_pb2 as pb
from workers import cgroups
from workers.jail import RawRun
from workers.judge import Judge
from workers.limits import RunLimits
from workers.special_judges import helper_digest
from workers.verdicts import classify_run

V = pb.Verdict.Name
SUM_TESTS = [("1 2\n", "3\n"), ("-5 5\n", "0\n"), ("1000000000 1000000000\n", "2000000000\n")]


@dataclass(frozen=True)
class Programs:
    """One language's programs. `moderate` touches ~64 MiB and prints "ok"; `probe`
    prints one BLOCKED/LEAK line per attack it tries, then DONE (PORT: a host port)."""

    accepted: str
    wrong: str
    compile_error: str
    runtime_error: str
    busy_loop: str
    memory_hog: str
    moderate: str
    spawn: str  # tries to start /bin/true: BLOCKED and exit 3, or LEAK and exit 0
    probe: str


C = Programs(
    accepted='#include <stdio.h>\nint main(void){long long a,b;scanf("%lld %lld",&a,&b);'
             'printf("%lld\\n",a+b);return 0;}\n',
    wrong='#include <stdio.h>\nint main(void){long long a,b;scanf("%lld %lld",&a,&b);'
          'printf("%lld\\n",a+b+1);return 0;}\n',
    compile_error="int main(void) { return undeclared_name; }\n",
    runtime_error="#include <stdio.h>\nint main(void){volatile int *p=0; *p=1; puts(\"x\");}\n",
    busy_loop="int main(void){volatile unsigned long x=0; for(;;) x++;}\n",
    memory_hog="#include <stdlib.h>\n#include <string.h>\nint main(void){for(;;){char*p=malloc(1<<24);"
               "if(!p) return 3; memset(p,1,1<<24);}}\n",
    moderate="#include <stdio.h>\n#include <stdlib.h>\nint main(void){"
             "volatile char*p=malloc(64<<20); for(int i=0;i<(64<<20);i++) p[i]=1;"
             " printf(\"ok %d\\n\", p[12345]);}\n",
    spawn="#include <stdio.h>\n#include <unistd.h>\n#include <sys/wait.h>\nint main(void){"
          "pid_t pid=fork(); if(pid==0) _exit(0); if(pid<0){perror(\"BLOCKED fork\");"
          "puts(\"BLOCKED fork\");return 3;} puts(\"LEAK forked\"); return 0;}\n",
    probe=r"""
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    struct if_nameindex *names = if_nameindex();
    for (struct if_nameindex *n = names; n && n->if_name; n++)
        printf("%s interface %s\n", strcmp(n->if_name, "lo") ? "LEAK" : "BLOCKED", n->if_name);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(s, (struct sockaddr *)&to, sizeof to) == 0) puts("LEAK connected");
    else printf("BLOCKED connect %d\n", errno);
    const char *paths[] = {"/etc/passwd", "/etc/shadow", "/root", "/root/.bashrc", "/home"};
    for (int i = 0; i < 5; i++) {
        FILE *f = fopen(paths[i], "r");
        if (f) printf("LEAK opened %s\n", paths[i]); else printf("BLOCKED %s\n", paths[i]);
    }
    puts("DONE");
}
""")

JAVA = Programs(
    accepted="import java.util.*;\npublic class Main { public static void main(String[] a) {"
             " Scanner s = new Scanner(System.in); long x = s.nextLong(), y = s.nextLong();"
             " System.out.println(x + y); } }\n",
    wrong="import java.util.*;\npublic class Main { public static void main(String[] a) {"
          " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() - s.nextLong());"
          " } }\n",
    compile_error="public class Main { public static void main(String[] a) { int x = \"s\"; } }\n",
    runtime_error="public class Main { public static void main(String[] a) {"
                  " throw new IllegalStateException(\"boom\"); } }\n",
    busy_loop="public class Main { static volatile long x; public static void main(String[] a) {"
              " while (true) x++; } }\n",
    memory_hog="import java.util.*;\npublic class Main { public static void main(String[] a) {"
               " List<long[]> keep = new ArrayList<>(); while (true) keep.add(new long[1 << 20]);"
               " } }\n",
    moderate="public class Main { public static void main(String[] a) {"
             " byte[] b = new byte[64 << 20]; java.util.Arrays.fill(b, (byte) 1);"
             " System.out.println(\"ok \" + b[12345]); } }\n",
    spawn="public class Main { public static void main(String[] a) throws Exception { try {"
          " new ProcessBuilder(\"/bin/true\").start().waitFor(); System.out.println(\"LEAK started\");"
          " } catch (java.io.IOException e) { System.out.println(\"BLOCKED \" + e.getMessage());"
          " System.exit(3); } } }\n",
    probe="""
import java.io.*;
import java.net.*;
import java.util.*;
public class Main {
    public static void main(String[] args) {
        try {
            for (NetworkInterface n : Collections.list(NetworkInterface.getNetworkInterfaces()))
                System.out.println((n.getName().equals("lo") ? "BLOCKED" : "LEAK")
                                   + " interface " + n.getName());
        } catch (Exception e) { System.out.println("BLOCKED interfaces " + e); }
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", PORT), 1000);
            System.out.println("LEAK connected");
        } catch (IOException e) { System.out.println("BLOCKED connect " + e.getMessage()); }
        for (String path : new String[] {"/etc/passwd", "/etc/shadow", "/root/.bashrc"}) {
            try (FileInputStream in = new FileInputStream(path)) { System.out.println("LEAK read " + path); }
            catch (IOException e) { System.out.println("BLOCKED " + path); }
        }
        for (String path : new String[] {"/root", "/home"}) {
            String[] listed = new File(path).list();
            System.out.println((listed == null ? "BLOCKED " : "LEAK listed ") + path);
        }
        System.out.println("DONE");
    }
}
""")

GO = Programs(
    accepted='package main\nimport "fmt"\nfunc main() { var a, b int64; fmt.Scan(&a, &b); '
             'fmt.Println(a + b) }\n',
    wrong='package main\nimport "fmt"\nfunc main() { var a, b int64; fmt.Scan(&a, &b); '
          'fmt.Println(a * b) }\n',
    compile_error='package main\nfunc main() { var x int = "s" }\n',
    runtime_error='package main\nfunc main() { var m map[string]int; m["x"] = 1 }\n',
    busy_loop="package main\nvar x int\nfunc main() { for { x++ } }\n",
    memory_hog="package main\nvar keep [][]byte\nfunc main() { for { b := make([]byte, 1<<24); "
               "for i := range b { b[i] = 1 }; keep = append(keep, b) } }\n",
    moderate='package main\nimport "fmt"\nfunc main() { b := make([]byte, 64<<20); '
             'for i := range b { b[i] = 1 }; fmt.Println("ok", b[12345]) }\n',
    spawn='package main\nimport ("fmt"; "os"; "os/exec")\nfunc main() { '
          'if err := exec.Command("/bin/true").Run(); err != nil { fmt.Println("BLOCKED", err); '
          'os.Exit(3) }; fmt.Println("LEAK started") }\n',
    probe="""
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	names, err := net.Interfaces()
	if err != nil {
		fmt.Println("BLOCKED interfaces", err)
	}
	for _, n := range names {
		if n.Name == "lo" {
			fmt.Println("BLOCKED interface lo")
		} else {
			fmt.Println("LEAK interface", n.Name)
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:PORT", time.Second); err == nil {
		c.Close()
		fmt.Println("LEAK connected")
	} else {
		fmt.Println("BLOCKED connect", err)
	}
	for _, path := range []string{"/etc/passwd", "/etc/shadow", "/root", "/root/.bashrc", "/home"} {
		if _, err := os.ReadFile(path); err == nil {
			fmt.Println("LEAK read", path)
		} else if _, err := os.ReadDir(path); err == nil {
			fmt.Println("LEAK listed", path)
		} else {
			fmt.Println("BLOCKED", path)
		}
	}
	fmt.Println("DONE")
}
""")

RUST = Programs(
    accepted="use std::io::Read;\nfn main() { let mut s = String::new(); "
             "std::io::stdin().read_to_string(&mut s).unwrap(); let v: Vec<i64> = "
             "s.split_whitespace().map(|x| x.parse().unwrap()).collect(); println!(\"{}\", v[0] + v[1]); }\n",
    wrong="fn main() { println!(\"42\"); }\n",
    compile_error="fn main() { let x: i32 = \"s\"; }\n",
    runtime_error="fn main() { let v: Vec<i32> = Vec::new(); let i = std::env::args().count() + 5; "
                  "println!(\"{}\", v[i]); }\n",
    busy_loop="fn main() { let mut x: u64 = 1; loop { x = x.wrapping_mul(6364136223846793005)"
              ".wrapping_add(1); if x == 7 { println!(\"{}\", x); } } }\n",
    memory_hog="fn main() { let mut keep: Vec<Vec<u8>> = Vec::new(); loop { "
               "keep.push(vec![1u8; 1 << 24]); } }\n",
    moderate="fn main() { let v = vec![1u8; 64 << 20]; println!(\"ok {}\", v[12345]); }\n",
    spawn="fn main() { match std::process::Command::new(\"/bin/true\").status() { "
          "Ok(_) => println!(\"LEAK started\"), Err(e) => { println!(\"BLOCKED {}\", e); "
          "std::process::exit(3) } } }\n",
    probe="""
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
fn main() {
    // No interface listing in std: the namespace's own /proc/net/dev lists them.
    match std::fs::read_to_string("/proc/net/dev") {
        Ok(text) => for line in text.lines().skip(2) {
            let name = line.split(':').next().unwrap_or("").trim();
            println!("{} interface {}", if name == "lo" { "BLOCKED" } else { "LEAK" }, name);
        },
        Err(e) => println!("BLOCKED interfaces {}", e),
    }
    let to: SocketAddr = "127.0.0.1:PORT".parse().unwrap();
    match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
        Ok(_) => println!("LEAK connected"),
        Err(e) => println!("BLOCKED connect {}", e),
    }
    for path in ["/etc/passwd", "/etc/shadow", "/root/.bashrc"] {
        match std::fs::read(path) { Ok(_) => println!("LEAK read {}", path),
                                    Err(_) => println!("BLOCKED {}", path) }
    }
    for path in ["/root", "/home"] {
        match std::fs::read_dir(path) { Ok(_) => println!("LEAK listed {}", path),
                                        Err(_) => println!("BLOCKED {}", path) }
    }
    println!("DONE");
}
""")

JAVASCRIPT = Programs(
    accepted="const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(BigInt);\n"
             "console.log((a + b).toString());\n",
    wrong="const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\n"
          "console.log(a - b);\n",
    compile_error="function main( {\n  console.log(1);\n}\n",
    runtime_error="null.property;\n",
    busy_loop="let x = 0;\nwhile (true) { x++; }\n",
    memory_hog="const keep = [];\nwhile (true) { keep.push(new Array(1 << 20).fill(1.5)); }\n",
    moderate="const a = new Float64Array(8 << 20).fill(1);\nconsole.log('ok', a[12345]);\n",
    spawn="const r = require('child_process').spawnSync('/bin/true');\n"
          "if (r.error) { console.log('BLOCKED', r.error.code); process.exit(3); }\n"
          "console.log('LEAK started');\n",
    probe="""
const fs = require('fs');
const net = require('net');
for (const name of Object.keys(require('os').networkInterfaces()))
  console.log((name === 'lo' ? 'BLOCKED' : 'LEAK') + ' interface ' + name);
for (const path of ['/etc/passwd', '/etc/shadow', '/root/.bashrc']) {
  try { fs.readFileSync(path); console.log('LEAK read ' + path); }
  catch (e) { console.log('BLOCKED ' + path); }
}
for (const path of ['/root', '/home']) {
  try { fs.readdirSync(path); console.log('LEAK listed ' + path); }
  catch (e) { console.log('BLOCKED ' + path); }
}
const s = net.connect({host: '127.0.0.1', port: PORT, timeout: 1000});
s.on('connect', () => { console.log('LEAK connected'); s.destroy(); console.log('DONE'); });
s.on('error', (e) => { console.log('BLOCKED connect ' + e.code); console.log('DONE'); });
s.on('timeout', () => { console.log('BLOCKED connect timeout'); s.destroy(); console.log('DONE'); });
""")

PROGRAMS = {"c": C, "java": JAVA, "go": GO, "rust": RUST, "javascript": JAVASCRIPT}
LANGUAGES = sorted(PROGRAMS)


# ---------------------------------------------------------------- helpers


def require(judge: Judge, name: str) -> None:
    """Skips a test whose language is not installed, except in CI, where that fails."""
    if name in judge.languages:
        return
    message = f"the {name} toolchain is not installed (scripts/setup.sh installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def fallback_judge() -> Judge:
    """No per-jail cgroups: memory is one process's address space (the fallback)."""
    return Judge(cgroup_support=cgroups.CgroupSupport())


@pytest.fixture(params=["cgroups", "fallback"])
def any_judge(request, judge, fallback_judge) -> Judge:
    if request.param == "cgroups" and not judge.cgroup_support.complete:
        pytest.skip("this machine delegates no cgroups for jails")
    return judge if request.param == "cgroups" else fallback_judge


def grade(judge: Judge, source: str, language: str, tests=SUM_TESTS, **limits) -> pb.GradeResponse:
    limits.setdefault("time_limit", 2.0)
    request = grade_request(source, tests, language, **limits)
    return judge.grade(request, request.test_set)


def execute(judge: Judge, source: str, language: str, **limits) -> pb.ExecuteResponse:
    limits.setdefault("time_limit", 2.0)
    return judge.execute(execute_request(source, language, **limits))


def describe(response) -> str:
    failure = getattr(response, "first_failure", None)
    stderr = failure.stderr if failure is not None else response.stderr
    stdout = getattr(response, "stdout", b"")
    return (f"verdict={V(response.verdict)} message={response.message!r} stdout={stdout[:800]!r} "
            f"stderr={stderr[-1500:]!r} compile_log={response.compile_log[:1500]!r}")


def assert_verdict(response, expected: int) -> None:
    assert response.verdict == expected, f"expected {V(expected)}: {describe(response)}"


# ---------------------------------------------------------------- registration


def test_info_lists_each_installed_language_with_a_version(judge):
    """`sandbox info` lists what is installed, each with its version and commands."""
    info = {language.name: language for language in build_info(judge, 1, 1).languages}
    for name in LANGUAGES:
        require(judge, name)
        assert info[name].version and "unknown" not in info[name].version, info[name]
        assert info[name].run_command and info[name].source_file, info[name]
    assert "-O2" in info["c"].compile_command.split()
    assert "-Xmx{memory_mb}m" in info["java"].run_command.split()


def test_a_missing_toolchain_is_not_registered(monkeypatch):
    """A machine without a toolchain (the fleet image has no JDK, Go, Rust or Node.js) just
    does not offer the language: the others are unaffected."""
    import importlib

    from workers.languages import available_languages
    for module in ("c", "java", "go", "rust", "javascript"):
        monkeypatch.setattr(importlib.import_module(f"workers.languages.{module}"),
                            "first_existing", lambda *candidates: None)
    names = {language.name for language in available_languages().values()}
    assert not names & set(LANGUAGES), names
    assert "python" in names


def test_aliases_reach_the_same_language(judge):
    for alias, name in (("golang", "go"), ("rs", "rust"), ("js", "javascript"),
                        ("node", "javascript"), ("java17", "java"), ("c11", "c")):
        require(judge, name)
        assert judge.language(alias).name == name


# ---------------------------------------------------------------- every verdict


@pytest.mark.parametrize("name", LANGUAGES)
def test_accepted(judge, name):
    require(judge, name)
    response = grade(judge, PROGRAMS[name].accepted, name)
    assert_verdict(response, pb.AC)
    assert response.passed == response.total == len(SUM_TESTS)


@pytest.mark.parametrize("name", LANGUAGES)
def test_wrong_answer(judge, name):
    require(judge, name)
    response = grade(judge, PROGRAMS[name].wrong, name)
    assert_verdict(response, pb.WA)
    assert response.tests[0].verdict == pb.WA


@pytest.mark.parametrize("name", LANGUAGES)
def test_compile_error(judge, name):
    """A CE with the compiler's own message, and no test run."""
    require(judge, name)
    response = grade(judge, PROGRAMS[name].compile_error, name)
    assert_verdict(response, pb.CE)
    assert response.compile_log.strip(), describe(response)
    assert all(test.verdict != pb.AC for test in response.tests)


@pytest.mark.parametrize("name", LANGUAGES)
def test_runtime_error(judge, name):
    require(judge, name)
    response = grade(judge, PROGRAMS[name].runtime_error, name)
    assert_verdict(response, pb.RE)


@pytest.mark.parametrize("name", LANGUAGES)
def test_busy_loop_is_tle(judge, name):
    require(judge, name)
    response = grade(judge, PROGRAMS[name].busy_loop, name, tests=SUM_TESTS[:1], time_limit=1.0)
    assert_verdict(response, pb.TLE)


# ---------------------------------------------------------------- memory: resident, not virtual


@pytest.mark.parametrize("name", LANGUAGES)
def test_64_mib_fits_a_256_mib_limit(any_judge, name):
    """The runtime's reserved address space (JVM, Go, V8) does not count against the limit."""
    require(any_judge, name)
    response = execute(any_judge, PROGRAMS[name].moderate, name, memory_mb=256)
    assert_verdict(response, pb.AC)
    assert response.stdout == b"ok 1\n", describe(response)
    assert response.usage.peak_memory_kb >= 64 << 10, response.usage  # it was really touched


@pytest.mark.parametrize("name", LANGUAGES)
def test_allocating_past_the_limit_is_mle(any_judge, name):
    require(any_judge, name)
    response = execute(any_judge, PROGRAMS[name].memory_hog, name, memory_mb=256)
    assert_verdict(response, pb.MLE)


# ---------------------------------------------------------------- attacks


@pytest.mark.parametrize("name", LANGUAGES)
def test_starting_a_process_fails(any_judge, name):
    """Tests cannot create processes (threads are fine: the JVM, Go and V8 use them)."""
    require(any_judge, name)
    response = execute(any_judge, PROGRAMS[name].spawn, name)
    assert b"LEAK" not in response.stdout, describe(response)
    assert b"BLOCKED" in response.stdout, describe(response)
    assert_verdict(response, pb.RE)


@pytest.mark.parametrize("name", LANGUAGES)
def test_no_network_and_no_host_files(judge, name):
    """Only lo inside; the host's loopback listener is unreachable; no host account files."""
    require(judge, name)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        source = PROGRAMS[name].probe.replace("PORT", str(listener.getsockname()[1]))
        response = execute(judge, source, name)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()[0].close()
            pytest.fail(f"a {name} program reached the host's loopback listener")
    finally:
        listener.close()
    assert_verdict(response, pb.AC)
    lines = response.stdout.decode(errors="replace").splitlines()
    assert lines[-1:] == ["DONE"], describe(response)
    assert not [line for line in lines if line.startswith("LEAK")], describe(response)
    # Only lo is listed, or listing needs an IPv4 socket, which tests are denied (EPERM).
    assert "BLOCKED interface lo" in lines or any(
        line.startswith("BLOCKED interfaces") and "not permitted" in line for line in lines), \
        describe(response)
    assert any(line.startswith("BLOCKED connect") for line in lines), describe(response)
    assert sum(line.startswith("BLOCKED /") for line in lines) == 5, describe(response)
    assert b"root:x:0:0" not in response.stdout


# ---------------------------------------------------------------- language specifics


JAVA_NAMED = {
    "a public class of another name": (
        "import java.util.*;\npublic class Solution { public static void main(String[] a) {"
        " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); }"
        " static class Inner {} }\nclass Helper {}\n"),
    "no public class": (
        "import java.io.*;\nclass Helper { /* public class Decoy { */ static String s = \"class X {\"; }\n"
        "class Prog { public static void main(String[] a) throws IOException {"
        " String[] t = new BufferedReader(new InputStreamReader(System.in)).readLine().trim().split(\" \");"
        " System.out.println(Long.parseLong(t[0]) + Long.parseLong(t[1])); } }\n"),
    "a package": (
        "package contest.a;\nimport java.util.*;\npublic class Main { public static void main(String[] a) {"
        " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }\n"),
}


@pytest.mark.parametrize("case", sorted(JAVA_NAMED))
def test_java_main_class_is_found(judge, case):
    """Codeforces takes any class name: the file is named after the public class and the
    class with main is run."""
    require(judge, "java")
    assert_verdict(grade(judge, JAVA_NAMED[case], "java", tests=SUM_TESTS[:1]), pb.AC)


def test_java_without_main_is_ce_that_says_so(judge):
    require(judge, "java")
    response = grade(judge, "public class Main { void run() {} }\n", "java")
    assert_verdict(response, pb.CE)
    assert "static void main" in response.compile_log, describe(response)


ONE_HUGE_ALLOCATION = {
    "java": ("public class Main { public static void main(String[] a) {"
             " long[] big = new long[400 << 17]; System.out.println(big.length); } }\n"),
    "go": ('package main\nimport "fmt"\nvar n = 3 << 30\n'
           'func main() { b := make([]byte, n); fmt.Println(len(b)) }\n'),
    "rust": ("fn main() { let n = (3usize << 30) + std::env::args().count(); "
             "let v: Vec<u8> = Vec::with_capacity(n); println!(\"{}\", v.capacity()); }\n"),
}


@pytest.mark.parametrize("name", sorted(ONE_HUGE_ALLOCATION))
def test_one_allocation_far_past_the_limit_is_mle(any_judge, name):
    """It fails before any memory is touched (peak far below the limit): the runtime's own
    report makes it MLE, not RE."""
    require(any_judge, name)
    response = execute(any_judge, ONE_HUGE_ALLOCATION[name], name, memory_mb=256)
    assert_verdict(response, pb.MLE)
    assert response.usage.peak_memory_kb < 128 << 10, describe(response)


def test_go_cannot_fetch_modules(judge):
    """No network and GOPROXY=off: a non-standard import is a CE, quickly."""
    require(judge, "go")
    source = ('package main\nimport "golang.org/x/exp/slices"\n'
              'func main() { println(slices.Contains([]int{1}, 1)) }\n')
    response = grade(judge, source, "go")
    assert_verdict(response, pb.CE)
    assert "golang.org/x/exp/slices" in response.compile_log, describe(response)


def test_go_goroutines_run(judge):
    require(judge, "go")
    source = ('package main\nimport ("fmt"; "sync")\nfunc main() { var wg sync.WaitGroup; '
              'var mu sync.Mutex; n := 0; for i := 0; i < 32; i++ { wg.Add(1); go func() { '
              'defer wg.Done(); mu.Lock(); n++; mu.Unlock() }() }; wg.Wait(); fmt.Println(n) }\n')
    response = execute(judge, source, "go")
    assert_verdict(response, pb.AC)
    assert response.stdout == b"32\n", describe(response)


def test_javascript_deep_recursion_is_a_range_error_or_runs(judge):
    """V8's stack limit is below the jail's stack: deep recursion never segfaults."""
    require(judge, "javascript")
    source = ("function f(n) { return n === 0 ? 0 : 1 + f(n - 1); }\n"
              "try { console.log(f(100000)); } catch (e) { console.log(e.name); }\n")
    response = execute(judge, source, "javascript")
    assert_verdict(response, pb.AC)
    assert response.stdout in (b"100000\n", b"RangeError\n"), describe(response)


# Token-free checkers: `checker input output answer`, exit 0 when output equals the answer.
CHECKERS = {
    "c": ('#include <stdio.h>\n#include <string.h>\nstatic char o[1<<16], a[1<<16];\n'
          'static void rd(const char *p, char *b) { FILE *f = fopen(p, "r"); size_t n = fread(b, 1, '
          '(1<<16) - 1, f); while (n && (b[n-1] == 10 || b[n-1] == 32)) n--; b[n] = 0; }\n'
          'int main(int c, char **v) { rd(v[2], o); rd(v[3], a); return strcmp(o, a) != 0; }\n'),
    "java": ("import java.nio.file.*;\npublic class Check { public static void main(String[] a) "
             "throws Exception { String out = Files.readString(Path.of(a[1])).trim(), "
             "ans = Files.readString(Path.of(a[2])).trim(); System.exit(out.equals(ans) ? 0 : 1); } }\n"),
    "go": ('package main\nimport ("os"; "strings")\nfunc main() { o, _ := os.ReadFile(os.Args[2]); '
           'a, _ := os.ReadFile(os.Args[3]); if strings.TrimSpace(string(o)) != '
           'strings.TrimSpace(string(a)) { os.Exit(1) } }\n'),
    "rust": ("fn main() { let v: Vec<String> = std::env::args().collect(); "
             "let o = std::fs::read_to_string(&v[2]).unwrap(); let a = std::fs::read_to_string(&v[3])"
             ".unwrap(); std::process::exit(if o.trim() == a.trim() { 0 } else { 1 }); }\n"),
    "javascript": ("const fs = require('fs');\nconst [o, a] = process.argv.slice(3, 5).map("
                   "(p) => fs.readFileSync(p, 'utf8').trim());\nprocess.exit(o === a ? 0 : 1);\n"),
}


@pytest.mark.parametrize("name", LANGUAGES)
def test_a_checker_in_the_language_is_compiled_once_and_cached(judge, name):
    """Its one compiled file (binary, jar or checked script) is what the checker cache keeps:
    the second grading runs the cached file in a fresh jail."""
    require(judge, name)
    require(judge, "c")
    checker = pb.Checker(language=name, source=CHECKERS[name])
    for source, expected in ((PROGRAMS["c"].accepted, pb.AC), (PROGRAMS["c"].wrong, pb.WA),
                             (PROGRAMS["c"].accepted, pb.AC)):
        request = grade_request(source, SUM_TESTS, "c", compare=pb.Comparison.CHECKER)
        request.comparison.checker.CopyFrom(checker)
        assert_verdict(judge.grade(request, request.test_set), expected)
        cached = judge.helper_binaries.get(helper_digest(checker))
        assert cached, "the checker's compiled file was not cached"
    if name == "java":
        assert cached.startswith(b"PK"), "the cached Java checker is not a jar"


# ---------------------------------------------------------------- the runtimes' own OOM reports

# What each runtime prints when an allocation fails, and how it exits (exit code, signal).
OUT_OF_MEMORY_REPORTS = {
    "java": ((b'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n'
              b"\tat Main.main(Main.java:3)\n"), 1, 0),
    # Go reports first, then prints every goroutine's trace (here, more than 4 KiB of them).
    "go": (b"runtime: out of memory: cannot allocate 3221225472-byte block (3899392 in use)\n"
           b"fatal error: out of memory\n\n"
           + b"goroutine 1 [running]:\nmain.main()\n\t/work/main.go:4 +0x2c\n" * 100, 2, 0),
    "javascript": ((b"<--- Last few GCs --->\n\nFATAL ERROR: Reached heap limit Allocation failed - "
                    b"JavaScript heap out of memory\n 1: 0xb7c3e0 node::Abort() [/usr/bin/node]\n"),
                   0, 6),
    "rust": (b"memory allocation of 1073741824 bytes failed\n", 0, 6),
}


def classify(stderr: bytes, exit_code: int, signal: int) -> int:
    raw = RawRun(exit_code=exit_code, signal=signal, cpu_s=0.1, wall_s=0.1, maxrss_kb=30_000,
                 killed_for=None, stdout=b"", stderr=stderr)
    found = classify_run(raw, RunLimits(memory_mb=256))
    return found[0] if found else pb.AC


@pytest.mark.parametrize("name", sorted(OUT_OF_MEMORY_REPORTS))
def test_a_runtimes_own_out_of_memory_report_is_mle(name):
    """A failed allocation can end a program long before its resident memory nears the
    limit (one huge array): the runtime's report, with the exit it makes, is MLE."""
    stderr, exit_code, signal = OUT_OF_MEMORY_REPORTS[name]
    assert classify(stderr, exit_code, signal) == pb.MLE


@pytest.mark.parametrize("name", sorted(OUT_OF_MEMORY_REPORTS))
def test_printing_an_out_of_memory_report_is_not_mle(name):
    """The words alone are not the runtime's report: with another exit it is RE (or AC)."""
    stderr = OUT_OF_MEMORY_REPORTS[name][0]
    assert classify(stderr, 0, 0) == pb.AC
    assert classify(stderr, 3, 0) == pb.RE


def test_java_out_of_threads_is_not_mle():
    """The task limit, not memory: RE."""
    stderr = (b'Exception in thread "main" java.lang.OutOfMemoryError: unable to create native '
              b"thread: possibly out of memory or process/resource limits reached\n")
    assert classify(stderr, 1, 0) == pb.RE

"""Java 17 (OpenJDK): javac once per submission into a jar, run as Codeforces runs Java.

Codeforces takes any class name; javac insists that a public top-level class lives in a
file of its name. So the compile step (a short Python program run by the jail's own
interpreter, COMPILE_PROGRAM) names the file after the public class, compiles it, and packs
the classes into /work/main, a jar whose manifest names the top-level class that has
`static void main` (the public one first). A source without one is a CE that says so. The
jar is one file, like a C++ binary, so a Java checker is compiled once and cached like one.
"""
from __future__ import annotations

import os

from workers.languages.base import MEMORY_MB, Language, first_existing, in_usr

JAVAC_FLAGS = ("-encoding", "UTF-8", "-nowarn",
               # javac itself: a small heap and one GC thread (it runs under COMPILE_LIMITS).
               "-J-XX:+UseSerialGC", "-J-Xmx1024m", "-J-XX:TieredStopAtLevel=1")
# Codeforces' Java line (-Xmx = the memory limit, a 64 MiB stack, NewRatio=5 so large
# arrays fit the old generation), with the serial collector: one GC thread, no
# concurrent GC CPU on top of the program's own.
JAVA_FLAGS = ("-XX:+UseSerialGC", "-XX:NewRatio=5", "-Xms8m", f"-Xmx{MEMORY_MB}m", "-Xss64m",
              "-DONLINE_JUDGE=true", "-Duser.language=en", "-Duser.region=US")
# Address space beyond -Xmx that the JVM reserves but does not touch: 1 GiB of compressed
# class space, 240 MiB of code cache, 64 MiB per Java thread's stack (-Xss applies to the
# JVM's own Java threads too), CDS archives. Resident memory is still judged on the limit.
JAVA_MEMORY_OVERHEAD_MB = 3072
# One malloc arena per thread would reserve 64 MiB of address space each.
JAVA_ENV = (("MALLOC_ARENA_MAX", "2"),)

# Runs inside the jail under the agent's interpreter: argv[1:] is the javac command line.
# Comments, strings, text blocks and character literals are blanked before top-level
# types are found by brace depth, so a "class" in a string or comment is never taken.
COMPILE_PROGRAM = r'''
import os, re, subprocess, sys, zipfile
def blank(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i); j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2); j = n if j < 0 else j + 2
        elif text.startswith('"""', i):
            j = text.find('"""', i + 3); j = n if j < 0 else j + 3
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            out.append(c); i += 1; continue
        out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
    return "".join(out)
DECL = re.compile(r"\b((?:(?:public|final|abstract|static|strictfp|sealed|non-sealed)\s+)*)"
                  r"(?:class|interface|enum|record)\s+([A-Za-z_$][\w$]*)")
MAIN = re.compile(r"\bstatic\b[^;{}=]*\bvoid\s+main\s*\(")
def top_level_types(code):
    found, depth, i = [], 0, 0
    while i < len(code):
        c = code[i]
        if depth == 0:
            m = DECL.match(code, i)
            if m and (i == 0 or not (code[i - 1].isalnum() or code[i - 1] in "_$")):
                body = code.find("{", m.end())
                end, d = body, 0
                while 0 <= end < len(code):
                    d += {"{": 1, "}": -1}.get(code[end], 0)
                    if d == 0:
                        break
                    end += 1
                inner = code[body:end] if body >= 0 else ""
                found.append((m.group(2), "public" in m.group(1).split(), bool(MAIN.search(inner))))
                i = max(m.end(), end + 1)
                continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        i += 1
    return found
source = open("Main.java", encoding="utf-8", errors="replace").read()
code = blank(source)
types = top_level_types(code)
public = [name for name, is_public, _ in types if is_public]
runnable = [name for name, is_public, has_main in types if has_main]
runnable.sort(key=lambda name: name not in public)
if not runnable:
    sys.exit("no top-level class has a `static void main(String[] args)` method: "
             "write `public class Main { public static void main(String[] args) { ... } }`")
file_name = (public[0] if public else "Main") + ".java"
if file_name != "Main.java":
    os.rename("Main.java", file_name)
status = subprocess.run(sys.argv[1:] + ["-d", "/tmp/classes", file_name]).returncode
if status:
    sys.exit(status)
package = re.match(r"\s*(?:@[\w.]+\s*(?:\([^)]*\))?\s*)*package\s+([\w.]+)\s*;", code)
main_class = (package.group(1) + "." if package else "") + runnable[0]
with zipfile.ZipFile("main", "w") as jar:
    jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: %s\r\n\r\n" % main_class)
    for root, _dirs, files in os.walk("/tmp/classes"):
        for name in files:
            path = os.path.join(root, name)
            jar.write(path, os.path.relpath(path, "/tmp/classes"))
'''


def _configuration(java: str) -> tuple[str, ...]:
    """The JDK's configuration directory when it lives outside /usr: Debian links
    conf/security/java.security and lib/jvm.cfg to /etc/java-<version>-openjdk."""
    home = os.path.dirname(os.path.dirname(java))
    real = os.path.realpath(os.path.join(home, "conf", "security", "java.security"))
    if real.startswith("/usr/") or not os.path.exists(real):
        return ()
    return (os.path.dirname(os.path.dirname(real)),)


def java_language(agent_interpreter: str | None) -> Language | None:
    # The JDK the alternatives system selects (Debian bookworm: openjdk-17-jdk-headless).
    javac = in_usr(first_existing("/usr/bin/javac"))
    java = in_usr(first_existing("/usr/bin/java"))
    if not javac or not java or not agent_interpreter:
        return None
    return Language(
        name="java",
        aliases=("java17",),
        source_file="Main.java",
        agent_interpreter=agent_interpreter,
        compile_argv=(agent_interpreter, "-c", COMPILE_PROGRAM, javac, *JAVAC_FLAGS),
        compile_summary=f"{javac} {' '.join(JAVAC_FLAGS)} <public class>.java; jar -> main",
        run_argv=(java, *JAVA_FLAGS, "-jar", "/work/main"),
        version_argv=(java, "-version"),
        memory_overhead_mb=JAVA_MEMORY_OVERHEAD_MB,
        env=JAVA_ENV,
        extra_mounts=_configuration(java),
    )

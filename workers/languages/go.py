"""Go (the distribution's toolchain): `go build` once per submission into a static binary.

The jail has no network and a read-only /usr: the build cache goes to the jail's /tmp
(emptied by the first test), modules are never fetched, and only the standard library
can be imported, as on Codeforces.
"""
from __future__ import annotations

from workers.languages.base import MEMORY_MB, Language, first_existing, in_usr

GO_BUILD_FLAGS = ("build", "-o", "main", "main.go")
GO_ENV = (
    ("GOCACHE", "/tmp/go-cache"), ("GOPATH", "/tmp/go"), ("GOENV", "off"),
    ("GOPROXY", "off"), ("GO111MODULE", "on"),
    ("GOTOOLCHAIN", "local"), ("GOTELEMETRY", "off"),
    # A fixed processor count: the same GC behaviour on any host, and few enough threads
    # for the test's task budget (limits.EXTRA_THREADS).
    ("GOMAXPROCS", "4"),
    # The GC works harder as the heap nears the memory limit rather than letting it double.
    ("GOMEMLIMIT", f"{MEMORY_MB}MiB"),
)
# The runtime reserves ~700 MiB of address space at start (page summaries, arena hints)
# that it never touches. Resident memory is still judged on the limit.
GO_MEMORY_OVERHEAD_MB = 1024


def go_language(agent_interpreter: str | None) -> Language | None:
    go = in_usr(first_existing("/usr/bin/go", "/usr/local/bin/go"))
    if not go or not agent_interpreter:
        return None
    return Language(
        name="go",
        aliases=("golang",),
        source_file="main.go",
        agent_interpreter=agent_interpreter,
        compile_argv=(go, *GO_BUILD_FLAGS),
        run_argv=("/work/main",),
        version_argv=(go, "version"),
        memory_overhead_mb=GO_MEMORY_OVERHEAD_MB,
        env=GO_ENV,
    )

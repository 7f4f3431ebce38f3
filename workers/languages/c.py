"""C11 with gcc, compiled once per submission, statically linked like the C++ binary."""
from __future__ import annotations

from workers.languages.base import Language, first_existing

# Codeforces' "GNU GCC C11" line (-O2, C11, ONLINE_JUDGE, no strict aliasing, libm), with
# the GNU dialect: on 64-bit Linux, -std=c11 hides POSIX declarations (strdup, getline,
# fileno), and a call to an undeclared function returning a pointer is truncated to int.
C_FLAGS = ("-O2", "-std=gnu11", "-DONLINE_JUDGE", "-fno-strict-aliasing")
LINK_FLAGS = ("-lm", "-static")


def c_language(agent_interpreter: str | None) -> Language | None:
    compiler = first_existing("/usr/bin/gcc", "/usr/local/bin/gcc")
    if not compiler or not agent_interpreter:
        return None
    return Language(
        name="c",
        aliases=("c11", "gcc", "gnu11"),
        source_file="main.c",
        agent_interpreter=agent_interpreter,
        compile_argv=(compiler, *C_FLAGS, "main.c", "-o", "main", *LINK_FLAGS),
        run_argv=("/work/main",),
        version_argv=(compiler, "--version"),
    )

"""JavaScript on Node.js (CommonJS, as Codeforces' Node.js), V8's heap sized to the limit.

"Compiling" is `node --check`: a syntax error is a CE, as it is for Python. The checked
source is then copied to /work/main, the one file a compiled program is, so a checker
written in JavaScript is cached like a C++ binary.
"""
from __future__ import annotations

import resource

from workers.languages.base import MEMORY_MB, Language, first_existing, in_usr

# V8's own stack limit in KiB. Only set when the jail's stack can hold it (jails run
# with the stack soft limit raised to the hard one): past the OS stack V8 would segfault
# instead of throwing RangeError.
NODE_STACK_KB = 65500
# The old space may grow to the memory limit; V8 fails with "heap out of memory" there.
NODE_FLAGS = (f"--max-old-space-size={MEMORY_MB}",)
# V8 reserves ~800 MiB of address space at start (code range, cages) that it never
# touches. Resident memory is still judged on the limit.
NODE_MEMORY_OVERHEAD_MB = 1024
NODE_ENV = (("MALLOC_ARENA_MAX", "2"),)


# Runs inside the jail under the agent's interpreter: argv[1] is node.
CHECK_PROGRAM = (
    "import shutil, subprocess, sys\n"
    "status = subprocess.run([sys.argv[1], '--check', 'main.js']).returncode\n"
    "if status == 0:\n"
    "    shutil.copyfile('main.js', 'main')\n"
    "sys.exit(status)\n")


def _stack_flags() -> tuple[str, ...]:
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    roomy = hard == resource.RLIM_INFINITY or hard >= (NODE_STACK_KB + 16384) * 1024
    return (f"--stack-size={NODE_STACK_KB}",) if roomy else ()


def javascript_language(agent_interpreter: str | None) -> Language | None:
    node = in_usr(first_existing("/usr/bin/node", "/usr/bin/nodejs", "/usr/local/bin/node"))
    if not node or not agent_interpreter:
        return None
    return Language(
        name="javascript",
        aliases=("js", "node", "nodejs"),
        source_file="main.js",
        agent_interpreter=agent_interpreter,
        compile_argv=(agent_interpreter, "-c", CHECK_PROGRAM, node),
        compile_summary=f"{node} --check main.js",
        run_argv=(node, *NODE_FLAGS, *_stack_flags(), "/work/main"),
        version_argv=(node, "--print", "'Node.js ' + process.version"),
        memory_overhead_mb=NODE_MEMORY_OVERHEAD_MB,
        env=NODE_ENV,
    )

"""PyPy 3, when installed: same warm-fork fast path as CPython, under pypy3."""
from __future__ import annotations

import os

from workers.languages.base import LCB_MODULES, Language, first_existing


def pypy_language() -> Language | None:
    interpreter = os.environ.get("SANDBOX_PYPY") or first_existing("/usr/bin/pypy3",
                                                                   "/usr/local/bin/pypy3")
    if not interpreter or not interpreter.startswith("/usr/"):
        return None
    return Language(
        name="pypy",
        aliases=("pypy3",),
        source_file="main.py",
        agent_interpreter=interpreter,
        run_argv=(interpreter, "main.py"),
        python_fast_path=True,
        version_argv=(interpreter, "--version"),
        probe_modules=LCB_MODULES,
        # PyPy reserves a few hundred MB of address space for its GC up front.
        memory_overhead_mb=768,
    )

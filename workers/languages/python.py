"""CPython 3: tests are forks of a warm interpreter inside the jail."""
from __future__ import annotations

import os

from workers.languages.base import LCB_MODULES, Language, first_existing


def python_language() -> Language | None:
    # The jail sees /usr only, so the interpreter must live there (not in a venv or pyenv).
    interpreter = os.environ.get("SANDBOX_PYTHON") or first_existing(
        "/usr/bin/python3", "/usr/local/bin/python3")
    if not interpreter or not interpreter.startswith("/usr/"):
        return None
    return Language(
        name="python",
        aliases=("python3", "py", "py3"),
        source_file="main.py",
        agent_interpreter=interpreter,
        run_argv=(interpreter, "main.py"),
        python_fast_path=True,
        version_argv=(interpreter, "--version"),
        probe_modules=LCB_MODULES,
    )

"""What a language is to the sandbox: files, commands, and the interpreter the agent uses."""
from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass, field


def first_existing(*candidates: str) -> str | None:
    """The first candidate that is an executable on this machine (paths or PATH names)."""
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass(frozen=True)
class Language:
    """One language. Adding a language is one module that builds one of these."""

    name: str
    source_file: str
    # Interpreter that runs the in-jail agent. For Python-family languages it is
    # also the one that runs the submission (the warm fork fast path).
    agent_interpreter: str
    run_argv: tuple[str, ...]
    compile_argv: tuple[str, ...] = ()
    # True: tests are forks of the warm agent interpreter rather than exec'd programs.
    python_fast_path: bool = False
    version_argv: tuple[str, ...] = ()
    needs_pch: bool = False
    # Address space granted beyond the memory limit (peak RSS is still judged on the limit).
    memory_overhead_mb: int = 0
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def compiled(self) -> bool:
        return bool(self.compile_argv)

    @functools.cached_property
    def version(self) -> str:
        try:
            out = subprocess.run(list(self.version_argv), capture_output=True, text=True,
                                 timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        text = (out.stdout or out.stderr).strip().splitlines()
        return " ".join(line.strip() for line in text[:2]) if text else "unknown"

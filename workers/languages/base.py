"""What a language is to the sandbox: files, commands, and the interpreter the agent uses."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

# In compile_argv, run_argv and env: replaced by the run's memory limit in MiB, for runtimes
# that size their own heap (the JVM's -Xmx, V8's old space, Go's GOMEMLIMIT).
MEMORY_MB = "{memory_mb}"
# Third-party modules of LiveCodeBench's own environment (its uv.lock) that solutions import;
# scripts/setup.sh installs them for the jail's python3 from Debian packages.
LCB_MODULES = ("numpy", "scipy", "sympy", "mpmath", "networkx", "pandas", "sortedcontainers")


def first_existing(*candidates: str) -> str | None:
    """The first candidate that is an executable on this machine (paths or PATH names)."""
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def in_usr(path: str | None) -> str | None:
    """The real path of a tool when the jail can see it (it has /usr only), else None.

    /usr/bin/java and friends are links through /etc/alternatives, which may point anywhere.
    """
    if not path:
        return None
    real = os.path.realpath(path)
    return real if real.startswith("/usr/") else None


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
    # Environment added to the jail's for this language's compilations and runs.
    env: tuple[tuple[str, str], ...] = ()
    # What `sandbox info` shows as the compile command when compile_argv is a wrapper.
    compile_summary: str = ""
    # Host paths outside /usr that the toolchain reads (e.g. the JDK's /etc/java-17-openjdk),
    # bound read-only at the same place in this language's jails.
    extra_mounts: tuple[str, ...] = ()
    # Third-party modules to look for; `sandbox info` lists those the interpreter imports.
    probe_modules: tuple[str, ...] = ()

    @property
    def compiled(self) -> bool:
        return bool(self.compile_argv)

    @property
    def compile_command(self) -> str:
        return self.compile_summary or " ".join(self.compile_argv)

    @property
    def run_command(self) -> str:
        return " ".join(self.run_argv)

    def expand(self, argv: list[str] | tuple[str, ...], memory_mb: int) -> list[str]:
        """argv with MEMORY_MB replaced by this run's memory limit."""
        return [part.replace(MEMORY_MB, str(memory_mb)) for part in argv]

    def environment(self, memory_mb: int) -> dict[str, str]:
        """The language's extra environment for a run under this memory limit."""
        return {key: value.replace(MEMORY_MB, str(memory_mb)) for key, value in self.env}

    @functools.cached_property
    def modules(self) -> tuple[str, ...]:
        """The probe_modules this language's interpreter can import (the jail sees the same
        /usr)."""
        if not self.probe_modules:
            return ()
        script = ("import sys\nfor name in sys.argv[1:]:\n    try:\n        __import__(name)\n"
                  "    except Exception:\n        continue\n    print(name)\n")
        try:
            out = subprocess.run([self.agent_interpreter, "-c", script, *self.probe_modules],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return ()
        found = set(out.stdout.split())
        return tuple(name for name in self.probe_modules if name in found)

    @functools.cached_property
    def version(self) -> str:
        try:
            out = subprocess.run(list(self.version_argv), capture_output=True, text=True,
                                 timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unknown ({exc})"
        text = (out.stdout or out.stderr).strip().splitlines()
        return " ".join(line.strip() for line in text[:2]) if text else "unknown"

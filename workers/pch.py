"""Builds the precompiled bits/stdc++.h once per machine, so a C++ compile takes ~0.3 s."""
from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path

from workers.languages.cpp import CXX_FLAGS

_lock = threading.Lock()


def cache_root() -> Path:
    """Readable by the jail's unprivileged uid (so not under /root when we run as root)."""
    configured = os.environ.get("SANDBOX_CACHE_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/code-sandbox")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "code-sandbox"


def _find_header(compiler: str) -> Path:
    probe = subprocess.run([compiler, "-std=c++17", "-x", "c++", "-E", "-H", "-"],
                           input="#include <bits/stdc++.h>\n", capture_output=True, text=True)
    for line in probe.stderr.splitlines():
        if line.startswith(". ") and line.endswith("bits/stdc++.h"):
            return Path(line[2:].strip())
    raise RuntimeError("cannot locate bits/stdc++.h: " + probe.stderr[-500:])


def ensure_pch(compiler: str, version: str) -> Path | None:
    """Returns the directory holding bits/stdc++.h.gch (built if missing), or None on failure.

    Without the PCH, compiles still work, only slower (g++ falls back to the header).
    """
    key = hashlib.sha256(f"{compiler}|{version}|{' '.join(CXX_FLAGS)}".encode()).hexdigest()[:16]
    directory = cache_root() / f"pch-{key}"
    target = directory / "bits" / "stdc++.h.gch"
    with _lock:
        if target.exists():
            return directory
        try:
            header = _find_header(compiler)
            (directory / "bits").mkdir(parents=True, exist_ok=True)
            for path in (cache_root(), directory, directory / "bits"):
                path.chmod(0o755)
            partial = target.with_suffix(f".tmp{os.getpid()}")
            subprocess.run([compiler, *CXX_FLAGS, "-x", "c++-header", str(header), "-o",
                            str(partial)], check=True, capture_output=True, timeout=300)
            partial.chmod(0o644)
            partial.replace(target)
            return directory
        except (OSError, RuntimeError, subprocess.SubprocessError):
            return None


def main() -> int:
    """`python -m workers.pch`: builds (or finds) the precompiled header and prints where."""
    from workers.languages import available_languages
    cpp = available_languages().get("cpp")
    if cpp is None:
        print("pch: g++ not found; C++ is unavailable")
        return 0
    directory = ensure_pch(cpp.compile_argv[0], cpp.version)
    print(f"pch: {directory}" if directory else "pch: could not build (C++ compiles stay slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

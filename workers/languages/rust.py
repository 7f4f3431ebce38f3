"""Rust (the distribution's rustc): one rustc -O per submission, std only, no cargo."""
from __future__ import annotations

from workers.languages.base import Language, first_existing

# Codeforces' Rust line: optimised, edition 2021, the ONLINE_JUDGE cfg.
RUSTC_FLAGS = ("-O", "--edition", "2021", "--cfg", "ONLINE_JUDGE")


def rust_language(agent_interpreter: str | None) -> Language | None:
    # Only a toolchain under /usr is visible in the jail (not ~/.cargo's rustup).
    rustc = first_existing("/usr/bin/rustc", "/usr/local/bin/rustc")
    if not rustc or not agent_interpreter:
        return None
    return Language(
        name="rust",
        aliases=("rs", "rust2021"),
        source_file="main.rs",
        agent_interpreter=agent_interpreter,
        compile_argv=(rustc, *RUSTC_FLAGS, "-o", "main", "main.rs"),
        run_argv=("/work/main",),
        version_argv=(rustc, "--version"),
    )

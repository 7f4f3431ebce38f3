"""The languages this machine can run, by name and alias."""
from __future__ import annotations

from workers.languages.base import Language
from workers.languages.c import c_language
from workers.languages.cpp import cpp_language
from workers.languages.go import go_language
from workers.languages.java import java_language
from workers.languages.javascript import javascript_language
from workers.languages.pypy import pypy_language
from workers.languages.python import python_language
from workers.languages.rust import rust_language


def available_languages() -> dict[str, Language]:
    """Languages whose toolchain is installed, keyed by name and aliases."""
    python = python_language()
    # The agent runs under CPython in every jail; the other languages need it too.
    agent = python.agent_interpreter if python else None
    found = [python, pypy_language(), cpp_language(agent), c_language(agent),
             java_language(agent), go_language(agent), rust_language(agent),
             javascript_language(agent)]
    table: dict[str, Language] = {}
    for language in found:
        if language is None:
            continue
        table[language.name] = language
        for alias in language.aliases:
            table.setdefault(alias, language)
    return table


__all__ = ["Language", "available_languages"]

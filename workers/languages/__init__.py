"""The languages this machine can run, by name and alias."""
from __future__ import annotations

from workers.languages.base import Language
from workers.languages.cpp import cpp_language
from workers.languages.pypy import pypy_language
from workers.languages.python import python_language


def available_languages() -> dict[str, Language]:
    """Languages whose toolchain is installed, keyed by name and aliases."""
    python = python_language()
    found = [python, pypy_language(), cpp_language(python.agent_interpreter if python else None)]
    table: dict[str, Language] = {}
    for language in found:
        if language is None:
            continue
        table[language.name] = language
        for alias in language.aliases:
            table.setdefault(alias, language)
    return table


__all__ = ["Language", "available_languages"]

"""Pulling the code out of a model's completion: the last fenced code block."""
from __future__ import annotations

import re

_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.S)
_LANGUAGES = {"python": "python", "python3": "python", "py": "python", "pypy": "pypy",
              "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "c": "c", "java": "java",
              "go": "go", "golang": "go", "rust": "rust", "rs": "rust", "javascript": "javascript",
              "js": "javascript", "node": "javascript"}


def extract_code(completion: str, default_language: str = "python") -> tuple[str, str] | None:
    """(code, language) of the last fenced block; None when there is none.

    The language comes from the fence's info string (```cpp, ```python); an unknown or
    missing one means `default_language`.
    """
    blocks = _FENCE.findall(completion or "")
    if not blocks:
        return None
    info, code = blocks[-1]
    tag = info.strip().split()[0].lower() if info.strip() else ""
    return code, _LANGUAGES.get(tag, default_language)


def solution_part(response: str, end_think: str = "</think>") -> str:
    """The text after the last `</think>` (the whole response when there is none)."""
    return response.rsplit(end_think, 1)[-1] if end_think in response else response

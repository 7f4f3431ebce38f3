"""Reading benchmark files: JSONL, a JSON list, or either gzip-compressed."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from sandbox.problem import ProblemError


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise ProblemError(f"file not found: {path}") from None
    except OSError as exc:
        raise ProblemError(f"cannot read {path}: {exc}") from None
    text = raw.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProblemError(f"{path} is not valid JSON: {exc}") from None
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ProblemError(f"{path}:{number}: not a JSON line: {exc}") from None
    if not all(isinstance(row, dict) for row in rows):
        raise ProblemError(f"{path}: every row must be a JSON object")
    return rows

"""results.jsonl: one graded sample per line, appended and flushed as each grading finishes.

A restart reads it back and skips the (problem_id, sample_index) pairs already there, so an
interrupted evaluation resumes where it stopped. A last line cut short (a killed process) is
dropped before appending.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

RESULTS_FILE = "results.jsonl"


def read_results(path: str | Path) -> list[dict]:
    """Every complete result line of a results file (none if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill; its sample is graded again
        if isinstance(row, dict) and "problem_id" in row and "sample_index" in row:
            results.append(row)
    return results


def result_key(row: dict) -> tuple[str, int]:
    return str(row["problem_id"]), int(row["sample_index"])


class ResultsFile:
    """Appends results, one flushed line each; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_partial_line()
        self.existing = {result_key(row): row for row in read_results(self.path)}
        self._file = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def _drop_partial_line(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, row: dict) -> None:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
        self.existing[result_key(row)] = row

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

"""testlib.h for C++ checkers and interactors: the project does not ship it (no package
registry does); users point at one with $SANDBOX_TESTLIB or --testlib."""
from __future__ import annotations

import os
import re
from pathlib import Path

TESTLIB_ENV = "SANDBOX_TESTLIB"
WHERE_TO_GET = "https://github.com/MikeMirzayanov/testlib (testlib.h, one file)"
_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]testlib\.h[>"]', re.MULTILINE)


class TestlibError(ValueError):
    """The testlib.h pointed at cannot be read."""

    __test__ = False  # not a pytest class


def includes_testlib(source: str) -> bool:
    return bool(_INCLUDE.search(source))


def read_testlib(path: str | os.PathLike | None = None) -> bytes | None:
    """testlib.h from `path` or $SANDBOX_TESTLIB (None when neither is set)."""
    path = path or os.environ.get(TESTLIB_ENV)
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TestlibError(f"cannot read testlib.h at {path} (--testlib / ${TESTLIB_ENV}): "
                           f"{exc.strerror}") from None

"""Files a client puts into an Execute's working directory and fetches back after the run.

Paths are relative to the jail's /work (SandboxFusion's `files` / `fetch_files` are relative
to the program's directory there too). Absolute paths and `..` are refused: they would name
places outside the one directory the submission owns.
"""
from __future__ import annotations

from pathlib import PurePosixPath

MAX_FILES = 256
MAX_UPLOAD_BYTES = 64 << 20  # all uploaded files together
MAX_FETCH_BYTES = 64 << 20  # all fetched files together
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255  # one directory or file name (the kernel's NAME_MAX)


class FileRequestError(ValueError):
    """A path or a size that cannot be honoured; the message is one line for the client."""


def work_path(name: str) -> str:
    """The normalised relative path, or FileRequestError saying why it is refused."""
    if not name or len(name) > MAX_PATH_CHARS:
        raise FileRequestError(f"file path must be 1 to {MAX_PATH_CHARS} characters, got {len(name)}")
    if "\x00" in name:
        raise FileRequestError("file path contains a NUL character")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise FileRequestError(f"file path {name!r} is absolute: paths are relative to the "
                               "program's working directory")
    parts = [part for part in path.parts if part != "."]
    if not parts or ".." in parts:
        raise FileRequestError(f"file path {name!r} leaves the working directory")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise FileRequestError(f"a name in file path {name[:80]!r} is longer than "
                               f"{MAX_NAME_BYTES} bytes")
    return "/".join(parts)


def check_uploads(files) -> list[tuple[str, bytes]]:
    """(path, content) of the request's files, validated; `files` are sandbox.v1 File messages."""
    if len(files) > MAX_FILES:
        raise FileRequestError(f"at most {MAX_FILES} files per request, got {len(files)}")
    total = sum(len(f.content) for f in files)
    if total > MAX_UPLOAD_BYTES:
        raise FileRequestError(f"the files are {total} bytes together; the limit is {MAX_UPLOAD_BYTES}")
    uploads, seen = [], set()
    for file in files:
        path = work_path(file.name)
        if path in seen:
            raise FileRequestError(f"file {path!r} is given twice")
        seen.add(path)
        uploads.append((path, bytes(file.content)))
    folders = {"/".join(path.split("/")[:i]) for path in seen for i in range(1, path.count("/") + 1)}
    clash = sorted(seen & folders)
    if clash:
        raise FileRequestError(f"{clash[0]!r} is given both as a file and as a directory")
    return uploads


def check_fetches(names) -> list[str]:
    """The validated, de-duplicated paths to read back, in the order given."""
    if len(names) > MAX_FILES:
        raise FileRequestError(f"at most {MAX_FILES} files to fetch, got {len(names)}")
    paths: list[str] = []
    for name in names:
        path = work_path(name)
        if path not in paths:
            paths.append(path)
    return paths

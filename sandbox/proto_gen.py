"""Generates the Python gRPC modules (sandbox/v1/*_pb2*.py) from proto/.

Run `python -m sandbox.proto_gen` after editing proto/sandbox/v1/sandbox.proto;
tests/test_proto_gen.py fails when the committed modules are out of date.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "proto"
PROTO_FILE = PROTO_ROOT / "sandbox" / "v1" / "sandbox.proto"
GENERATED = ("sandbox_pb2.py", "sandbox_pb2.pyi", "sandbox_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc (from grpcio-tools) into out_dir; returns the generated files."""
    from grpc_tools import protoc
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + str(PROTO_FILE))
    return [out_dir / "sandbox" / "v1" / name for name in GENERATED]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            target = REPO / "sandbox" / "v1" / path.name
            target.write_bytes(path.read_bytes())
            print(f"wrote {target.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

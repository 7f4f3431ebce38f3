"""Generated gRPC modules of the sandbox.v1 contract (see sandbox/proto_gen.py)."""

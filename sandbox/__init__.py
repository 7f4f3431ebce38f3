"""Code-reward sandbox: gRPC service, client and CLI."""
import os as _os

# The server forks jails from worker threads; gRPC's fork handlers are not needed for that
# (children exec at once) and would log a warning on every fork.
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

__version__ = "0.1.0"

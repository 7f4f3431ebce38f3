"""Code-reward sandbox: gRPC service, client and CLI."""
__version__ = "0.1.0"

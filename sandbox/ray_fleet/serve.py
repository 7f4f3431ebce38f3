"""`python -m sandbox.ray_fleet.serve ARGS`: `sandbox serve ARGS` that stops with its owner.

A worker actor starts its server this way, holding the other end of the server's stdin. When
the actor's process ends for any reason (stopped, killed, its node gone), the kernel closes
that end; the server reads end-of-file, sends itself SIGTERM and drains as on any SIGTERM:
nothing outlives its actor, and the work in flight is finished rather than cut off.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from sandbox import cli


def stop_when_owner_goes() -> None:
    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass  # the owner never writes; anything it did would be ignored
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    stop_when_owner_goes()
    return cli.main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

"""Preparing a machine for the Docker fleet: daemon, base image, wheelhouse, project image.

`python -m sandbox.fleet_image` (run by `scripts/setup.sh --with-fleet`):
1. reaches the Docker daemon, starting `dockerd --bridge=none --iptables=false` if none answers
   (the fleet uses host and `none` networking only);
2. picks the base image: the official Python slim image when it is present or can be pulled,
   else a local Debian base built with debootstrap (docker/build-base.sh), cached by tag;
3. builds a wheelhouse of the project and its dependencies on the host when the base is the
   local one (package indexes are not reachable from inside a build container there);
4. builds the project image with the Docker SDK.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OFFICIAL_BASE = "python:3.11-slim-bookworm"
# Tagged by the build script's content: a changed package list builds a new base instead of
# reusing a cached one that lacks it (the project image builds offline on it).
LOCAL_BASE = ("code-sandbox-base:bookworm-"
              + hashlib.sha256((REPO / "docker" / "build-base.sh").read_bytes()).hexdigest()[:10])
IMAGE = "code-sandbox:latest"
WHEELHOUSE = REPO / "docker" / "wheelhouse"


def log(message: str) -> None:
    print(f"fleet: {message}", flush=True)


def docker_client(start_daemon: bool = True, wait_s: float = 60.0):
    import docker
    try:
        client = docker.from_env()
        client.ping()
        return client
    except Exception:  # noqa: BLE001 - no daemon yet
        if not start_daemon:
            raise
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise RuntimeError("dockerd is not installed (apt-get install docker.io docker-compose)")
    log("starting dockerd --bridge=none --iptables=false")
    logfile = open("/var/log/dockerd-sandbox.log", "ab")
    subprocess.Popen([dockerd, "--bridge=none", "--iptables=false"], stdout=logfile,
                     stderr=logfile, start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            client = docker.from_env()
            client.ping()
            return client
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    raise RuntimeError("dockerd did not answer within a minute; see /var/log/dockerd-sandbox.log")


def has_image(client, tag: str) -> bool:
    import docker
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def choose_base(client) -> str:
    if has_image(client, OFFICIAL_BASE):
        return OFFICIAL_BASE
    try:
        log(f"pulling {OFFICIAL_BASE}")
        client.images.pull(OFFICIAL_BASE)
        return OFFICIAL_BASE
    except Exception as exc:  # noqa: BLE001 - offline: build a local base instead
        log(f"cannot pull {OFFICIAL_BASE} ({str(exc).splitlines()[0][:120]}); using a local base")
    if not has_image(client, LOCAL_BASE):
        subprocess.run(["bash", str(REPO / "docker" / "build-base.sh"), LOCAL_BASE], check=True)
    else:
        log(f"local base {LOCAL_BASE} is cached")
    return LOCAL_BASE


def build_wheelhouse() -> None:
    """The project and its dependencies as wheels for the image's Python (same minor version)."""
    for old in WHEELHOUSE.glob("*.whl"):
        old.unlink()
    log("building the wheelhouse")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                    "-w", str(WHEELHOUSE), f"{REPO}[fleet]"], check=True)


def clear_wheelhouse() -> None:
    for old in WHEELHOUSE.glob("*.whl"):
        old.unlink()


def build_image(client, base: str, tag: str = IMAGE) -> None:
    log(f"building {tag} on {base}")
    try:
        _image, output = client.images.build(path=str(REPO), tag=tag, buildargs={"BASE": base},
                                             network_mode="none" if base == LOCAL_BASE else None,
                                             rm=True, forcerm=True)
    except Exception as exc:  # noqa: BLE001 - show the build log, not a traceback
        lines = getattr(exc, "build_log", None) or []
        text = "".join(chunk.get("stream", "") or chunk.get("error", "") for chunk in lines)
        raise RuntimeError(f"image build failed: {exc}\n{text[-3000:]}") from None
    log(f"built {tag}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default=IMAGE, help=f"image tag (default {IMAGE})")
    args = parser.parse_args(argv)
    try:
        client = docker_client()
        base = choose_base(client)
        if base == LOCAL_BASE:
            build_wheelhouse()
        else:
            clear_wheelhouse()
        build_image(client, base, args.tag)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Sets up everything on a Debian/Ubuntu machine (idempotent): Debian packages, a .venv at the
# repo root with the project and its extras, and the C++ precompiled header.
# Run as root, or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

PACKAGES=(bubblewrap g++ python3 python3-venv libseccomp2 ca-certificates)
# The other languages Codeforces accepts (README, "Languages"): C, Java 17, Go, Rust, Node.js.
PACKAGES+=(gcc openjdk-17-jdk-headless golang-go rustc nodejs)
# What LiveCodeBench's own environment (its uv.lock) makes importable that solutions use, for
# the jail's interpreter (/usr/bin/python3): numpy, scipy, sympy (with mpmath), networkx.
PACKAGES+=(python3-numpy python3-scipy python3-sympy python3-networkx)
# PyPy 3 is optional: installed when the distribution has it.
missing=()
for package in "${PACKAGES[@]}" pypy3; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pypy3 >/dev/null 2>&1 \
    || echo "setup: pypy3 is not available here; the sandbox runs without it"
fi

# bubblewrap needs unprivileged user namespaces (Ubuntu 24.04 restricts them through AppArmor).
if [ "$(sysctl -n kernel.apparmor_restrict_unprivileged_userns 2>/dev/null || echo 0)" = "1" ]; then
  echo "setup: warning: kernel.apparmor_restrict_unprivileged_userns=1 blocks bubblewrap;" >&2
  echo "       allow it with an AppArmor profile for /usr/bin/bwrap (see README, Troubleshooting)" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# torch before the verl extra, pinned, so pip never swaps in another build.
.venv/bin/python -c "import torch" 2>/dev/null \
  || .venv/bin/python -m pip install -q --disable-pip-version-check "torch==${TORCH_VERSION:-2.13.0}" 2>&1 \
  | grep -v -E '^(WARNING: Location|  )' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,fleet,eval,verl,ray]' 2>&1 \
  | grep -v -E '^(WARNING: Location|  )' || true
.venv/bin/python -c "import sandbox.v1.sandbox_pb2, pyseccomp, verl, transfer_queue, matplotlib, docker, math_verify, ray" \
  || { echo "setup: the Python environment is incomplete" >&2; exit 1; }
.venv/bin/ray --version >/dev/null || { echo "setup: the ray CLI is missing (ray[default])" >&2; exit 1; }

# --with-fleet: Docker (daemon started when none answers), the base image and the project image.
if [ "${1:-}" = "--with-fleet" ]; then
  fleet_missing=()
  for package in docker.io docker-compose debootstrap; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || fleet_missing+=("$package")
  done
  if [ "${#fleet_missing[@]}" -gt 0 ] && ! { command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null; }; then
    echo "setup: installing Debian packages: ${fleet_missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${fleet_missing[@]}" >/dev/null
  fi
  $SUDO .venv/bin/python -m sandbox.fleet_image
fi

# Build the precompiled bits/stdc++.h once (C++ compiles then take ~0.3 s instead of ~1.5 s).
.venv/bin/python -m workers.pch
echo "setup: ready"

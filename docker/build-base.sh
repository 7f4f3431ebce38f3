#!/usr/bin/env bash
# Builds a local Debian base image with debootstrap + `docker import`, for machines that cannot
# pull images. It already holds the Debian packages the sandbox needs, because package indexes
# are not reachable from inside a build container there. The mirror comes from the machine's
# apt sources. Usage: docker/build-base.sh IMAGE_TAG
set -euo pipefail
tag=${1:-code-sandbox-base:bookworm}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag is cached"
  exit 0
fi
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mirror=$( { grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
  | grep -v -E 'security|nodesource|google' | head -n1 | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/sandbox-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "building $tag from $mirror ($suite) with debootstrap…"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,bubblewrap,g++,pypy3,util-linux,ca-certificates,libseccomp2,python3-numpy,python3-scipy,python3-sympy,python3-networkx \
  "$suite" "$root" "$mirror" >/var/tmp/debootstrap.log 2>&1 \
  || { tail -20 /var/tmp/debootstrap.log >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "built $tag"

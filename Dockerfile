# One image for both fleet roles (gateway and worker).
# BASE: any Debian-based image with Python 3.10+. The default is the official slim image;
# machines that cannot pull build a local base with docker/build-base.sh (it already holds
# the Debian packages below, so nothing is fetched at build time).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

RUN set -e; \
    if ! command -v bwrap >/dev/null || ! command -v g++ >/dev/null || ! command -v setpriv >/dev/null; then \
      apt-get update; \
      apt-get install -y --no-install-recommends bubblewrap g++ libseccomp2 util-linux ca-certificates; \
      apt-get install -y --no-install-recommends pypy3 || echo "pypy3 unavailable: skipped"; \
      rm -rf /var/lib/apt/lists/*; \
    fi
# What LiveCodeBench's environment makes importable (README, "Comparison modes"), for the jail's
# interpreter: Debian's python3 (/usr/bin/python3, which the sandbox then prefers) with numpy,
# scipy, sympy and networkx. The local base already holds them.
RUN set -e; \
    if ! /usr/bin/python3 -c "import numpy, scipy, sympy, networkx" 2>/dev/null; then \
      apt-get update; \
      apt-get install -y --no-install-recommends python3 python3-numpy python3-scipy python3-sympy \
        python3-networkx; \
      rm -rf /var/lib/apt/lists/*; \
    fi

# Python packages: from docker/wheelhouse when it holds wheels (offline builds), else PyPI.
COPY docker/wheelhouse/ /tmp/wheelhouse/
COPY pyproject.toml README.md /opt/code-sandbox/
COPY proto /opt/code-sandbox/proto
COPY sandbox /opt/code-sandbox/sandbox
COPY workers /opt/code-sandbox/workers
RUN set -e; python3 -m venv /opt/venv; \
    if ls /tmp/wheelhouse/*.whl >/dev/null 2>&1; then \
      /opt/venv/bin/pip install --no-index --find-links /tmp/wheelhouse code-sandbox; \
    else \
      /opt/venv/bin/pip install --no-cache-dir /opt/code-sandbox; \
    fi; \
    rm -rf /tmp/wheelhouse

# The precompiled bits/stdc++.h, built once into the image.
ENV SANDBOX_CACHE_DIR=/opt/pch-cache PATH=/opt/venv/bin:$PATH
RUN python3 -m venv --help >/dev/null && /opt/venv/bin/python -m workers.pch \
    && chmod -R a+rX /opt/pch-cache

# Unprivileged runtime user; /run/sandbox (the worker sockets) is owned by it so a named
# volume mounted there starts with that ownership.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin sandbox \
    && mkdir -p /run/sandbox && chown sandbox:sandbox /run/sandbox
USER sandbox
WORKDIR /home/sandbox
CMD ["sandbox", "--help"]

"""Per-jail cgroups: what the server finds on this host, and one jail's cgroup lifecycle."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import needs_cgroups
from workers import cgroups
from workers.cgroups import CgroupSupport, Hierarchy, JailCgroup


def test_describe_names_each_mechanism():
    assert CgroupSupport().describe() == "memory: none, pids: none, cpu: none"
    found = CgroupSupport(cpu=Hierarchy(2, Path("/x")))
    assert found.describe() == "memory: none, pids: none, cpu: cgroup v2"
    assert found.any and not found.complete and not CgroupSupport().any


def test_disabled_by_the_environment(monkeypatch):
    monkeypatch.setenv(cgroups.DISABLE_ENV, "off")
    assert cgroups.detect() == CgroupSupport()


@needs_cgroups
def test_a_jail_cgroup_is_created_limited_and_removed():
    found = cgroups.support()
    jail = JailCgroup(found, "run")
    dirs = set(jail.dirs.values())
    assert all(d.is_dir() and d.parent.name == f"code-sandbox-{os.getpid()}" for d in dirs)
    jail.set_limits(64 << 20, 70)
    memory = jail.dirs["memory"]
    name = "memory.limit_in_bytes" if found.memory.version == 1 else "memory.max"
    assert int((memory / name).read_text()) == 64 << 20
    assert (jail.dirs["pids"] / "pids.max").read_text().strip() == "70"
    jail.reset_peak()
    assert jail.oom_kills() == 0 and jail.peak_bytes() == 0
    fd, unit = jail.cpu_fd()
    os.close(fd)
    assert unit in ("usec", "nsec")
    for fd in jail.procs_fds():
        os.close(fd)
    jail.destroy()
    assert not any(d.exists() for d in dirs)


def test_v2_files_are_the_v2_names(tmp_path):
    """cgroup v2 cannot run on this hybrid host: its file names and formats, on plain files."""
    found = CgroupSupport(memory=Hierarchy(2, tmp_path), pids=Hierarchy(2, tmp_path),
                          cpu=Hierarchy(2, tmp_path))
    jail = JailCgroup(found, "run")
    (directory,) = set(jail.dirs.values())
    jail.set_limits(256 << 20, 64)
    assert (directory / "memory.max").read_text() == str(256 << 20)
    assert (directory / "pids.max").read_text() == "64"
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n")
    assert jail.oom_kills() == 2
    (directory / "cpu.stat").write_text("usage_usec 1500000\n")
    fd, unit = jail.cpu_fd()
    os.close(fd)
    assert unit == "usec"

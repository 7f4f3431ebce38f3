"""The project's own seccomp filter, applied by bubblewrap to everything in the jail.

bubblewrap's namespaces are the first wall; this filter removes the kernel
interfaces a submission never needs and that have been the source of sandbox
escapes (ptrace, mounts, new namespaces, bpf, keyrings, perf, io_uring, module
and kexec loading, ...). Denied calls fail with EPERM (ENOSYS for clone3, so
libc falls back to clone, whose namespace flags are checked here). Syscalls of
foreign ABIs (i386 via int 0x80, x32) kill the process.
"""
from __future__ import annotations

import errno
import os
import tempfile
import threading

import pyseccomp as seccomp

DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    "unshare", "setns",
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
    "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
    "personality", "vhangup", "iopl", "ioperm",
)

# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NAMESPACE_FLAGS = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
    | 0x40000000 | 0x00000080
)
TIOCSTI = 0x5412
CLONE_THREAD = 0x00010000
AGENT_PID = 1  # the jail's agent, as the jail's processes see it
# Calls that act on another process by pid: denied on the agent, so a test cannot shrink
# its limits, starve it or pin it (the agent runs under the same uid as the test).
PID_ARG_SYSCALLS = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam",
                    "sched_setattr", "kill", "tkill", "tgkill", "rt_sigqueueinfo",
                    "rt_tgsigqueueinfo", "pidfd_open", "migrate_pages", "move_pages")
PROCESS_CREATION = ("fork", "vfork")
# Kernel objects that outlive a test or that no limit bounds well (SysV IPC and POSIX
# message queues live on in the jail's IPC namespace; xattrs sit on tmpfs inodes outside
# its size): a test never gets them.
NEVER_FOR_TESTS = ("msgget", "semget", "shmget", "mq_open", "setxattr", "lsetxattr",
                   "fsetxattr")
AF_UNIX, AF_NETLINK, AF_MAX = 1, 16, 64
# Memory the kernel keeps outside a process's address space (RLIMIT_AS does not bound it):
# denied when no memory cgroup charges it to the test. Unix sockets' buffers are in it.
# Sockets of other families than unix and netlink (reading the empty namespace's
# interfaces) are always denied: the jail has only loopback anyway, and the memory cgroup
# v1 does not charge TCP buffers.
UNTRACKED_MEMORY = ("memfd_create", "memfd_secret")
SOL_SOCKET = 1
# Without a memory cgroup, unix sockets (the JVM's NIO makes a socketpair at start) keep the
# kernel's default buffer sizes: a test cannot grow them.
SOCKET_BUFFER_OPTIONS = (7, 8, 32, 33)  # SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE

_lock = threading.Lock()
_cached: bytes | None = None


def build_filter() -> "seccomp.SyscallFilter":
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a syscall on this architecture
    for flag in _single_bits(CLONE_NAMESPACE_FLAGS):
        flt.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    flt.add_rule(seccomp.ERRNO(errno.EPERM), "ioctl", seccomp.Arg(1, seccomp.EQ, TIOCSTI))
    return flt


def build_child_filter(allow_processes: bool, untracked_memory: bool) -> "seccomp.SyscallFilter":
    """The extra filter each test process installs on itself (on top of the jail's).

    Without `allow_processes` a test may start threads but no processes, as LiveCodeBench's
    harness allows (fork, vfork and clone without CLONE_THREAD fail with EPERM; clone3 is
    already ENOSYS). SysV IPC, POSIX message queues, xattrs and sockets other than unix and
    netlink ones always fail; without `untracked_memory`, memfds and socket buffer sizes
    fail too.
    """
    flt = seccomp.SyscallFilter(seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in PID_ARG_SYSCALLS:
        _add(flt, deny, name, seccomp.Arg(0, seccomp.EQ, AGENT_PID))
    # setpriority(which, who): only on a single process, and never the agent.
    _add(flt, deny, "setpriority", seccomp.Arg(0, seccomp.NE, 0))
    _add(flt, deny, "setpriority", seccomp.Arg(1, seccomp.EQ, AGENT_PID))
    _add(flt, deny, "ioprio_set")
    for name in NEVER_FOR_TESTS:
        _add(flt, deny, name)
    allowed_families = {AF_NETLINK, AF_UNIX}
    for family in range(AF_MAX):
        if family not in allowed_families:
            _add(flt, deny, "socket", seccomp.Arg(0, seccomp.EQ, family))
    _add(flt, deny, "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
    if not allow_processes:
        for name in PROCESS_CREATION:
            _add(flt, deny, name)
        _add(flt, deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    if not untracked_memory:
        for name in UNTRACKED_MEMORY:
            _add(flt, deny, name)
        for option in SOCKET_BUFFER_OPTIONS:
            _add(flt, deny, "setsockopt", seccomp.Arg(1, seccomp.EQ, SOL_SOCKET),
                 seccomp.Arg(2, seccomp.EQ, option))
    return flt


def _add(flt: "seccomp.SyscallFilter", action, name: str, *args) -> None:
    try:
        flt.add_rule(action, name, *args)
    except (RuntimeError, ValueError, OSError):
        pass  # not a syscall on this architecture


_child_filters: dict[tuple[bool, bool], bytes] = {}


def child_filter_bytes(allow_processes: bool, untracked_memory: bool) -> bytes:
    """A test filter as classic BPF instructions (struct sock_filter[]), built once."""
    key = (allow_processes, untracked_memory)
    with _lock:
        if key not in _child_filters:
            _child_filters[key] = _export(build_child_filter(*key))
        return _child_filters[key]


def _export(flt: "seccomp.SyscallFilter") -> bytes:
    with tempfile.TemporaryFile() as fh:
        flt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def _single_bits(mask: int) -> list[int]:
    return [1 << i for i in range(64) if mask & (1 << i)]


def compiled_filter() -> bytes:
    """The filter as classic BPF bytes, for `bwrap --seccomp FD` (built once per process)."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = _export(build_filter())
        return _cached


def filter_fd() -> int:
    """A fresh readable fd holding the BPF program (bwrap reads it to EOF)."""
    data = compiled_filter()
    fd = os.memfd_create("seccomp", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd

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


def _single_bits(mask: int) -> list[int]:
    return [1 << i for i in range(64) if mask & (1 << i)]


def compiled_filter() -> bytes:
    """The filter as classic BPF bytes, for `bwrap --seccomp FD` (built once per process)."""
    global _cached
    with _lock:
        if _cached is None:
            with tempfile.TemporaryFile() as fh:
                build_filter().export_bpf(fh)
                fh.seek(0)
                _cached = fh.read()
        return _cached


def filter_fd() -> int:
    """A fresh readable fd holding the BPF program (bwrap reads it to EOF)."""
    data = compiled_filter()
    fd = os.memfd_create("seccomp", 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd

"""Identity (kern_prot.py) and resource limits, priorities, usage (kern_resource.py)."""
from __future__ import annotations

import os
import struct
import sys
import types

import pytest

try:                                   # khelp needs kern_descrip (written in parallel)
    import nbemu.syscalls.kern_descrip  # noqa: F401
except ImportError:                    # pragma: no cover
    _stub = types.ModuleType("nbemu.syscalls.kern_descrip")
    _stub.filedesc_init = lambda p: None          # type: ignore[attr-defined]
    sys.modules["nbemu.syscalls.kern_descrip"] = _stub

from nbemu.syscalls.errno import Errno
from nbemu.syscalls.kern_prot import NOID, Cred, proc_cred
from nbemu.syscalls.kern_resource import (RLIM_INFINITY, RLIMIT_AS, RLIMIT_DATA, RLIMIT_NOFILE,
                                    RLIMIT_NPROC, RLIMIT_NTHR, RLIMIT_STACK, rlimits_init)
from tests.khelp import call, make_kernel, scratch

BAD = 0x7000_0000_0000


@pytest.fixture
def kl():
    k, l = make_kernel()
    return k, l, scratch(l)


def _read(l, va: int, n: int) -> bytes:
    data = l.l_proc.p_vmspace.copyin(va, n)
    assert isinstance(data, bytes)
    return data


def _write(l, va: int, data: bytes) -> None:
    assert l.l_proc.p_vmspace.copyout(data, va) == 0


# -- kern_prot ----------------------------------------------------------------------

def test_getpid_returns_pid_and_ppid(kl) -> None:
    k, l, _ = kl
    assert call(l, "getpid") == (0, [100, 1])
    assert call(l, "getppid") == (0, [1, 0])


def test_uid_gid_pairs(kl) -> None:
    k, l, _ = kl
    uid, gid = os.getuid(), os.getgid()
    assert call(l, "getuid") == (0, [uid, uid])
    assert call(l, "geteuid")[1][0] == uid
    assert call(l, "getgid") == (0, [gid, gid])
    assert call(l, "getegid")[1][0] == gid
    assert call(l, "issetugid") == (0, [0, 0])


def test_getgroups(kl) -> None:
    k, l, buf = kl
    gid = os.getgid()
    assert call(l, "getgroups", 0, 0) == (0, [1, 0])
    err, rv = call(l, "getgroups", 16, buf)
    assert (err, rv[0]) == (0, 1) and struct.unpack("<I", _read(l, buf, 4))[0] == gid
    assert call(l, "getgroups", 16, BAD)[0] == Errno.EFAULT
    l.l_proc.p_cred = Cred(1, 1, 1, 2, 2, 2, (2, 3))
    assert call(l, "getgroups", 1, buf)[0] == Errno.EINVAL


def test_setgroups_needs_root(kl) -> None:
    k, l, buf = kl
    assert call(l, "setgroups", 17, buf)[0] == Errno.EINVAL
    assert call(l, "setgroups", 1, BAD)[0] == Errno.EFAULT
    assert call(l, "setgroups", 1, buf)[0] == Errno.EPERM


def test_setuid_family_unprivileged(kl) -> None:
    k, l, _ = kl
    uid, gid = os.getuid(), os.getgid()
    other = uid + 1000
    assert call(l, "setuid", uid)[0] == 0
    assert call(l, "setuid", other)[0] == Errno.EPERM
    assert call(l, "seteuid", uid)[0] == 0
    assert call(l, "seteuid", other)[0] == Errno.EPERM
    assert call(l, "setreuid", NOID, NOID)[0] == 0
    assert call(l, "setreuid", other, NOID)[0] == Errno.EPERM
    assert call(l, "setgid", gid)[0] == 0
    assert call(l, "setgid", gid + 1000)[0] == Errno.EPERM
    assert call(l, "setegid", gid + 1000)[0] == Errno.EPERM
    assert call(l, "setregid", NOID, gid)[0] == 0
    assert proc_cred(l.l_proc) == Cred(uid, uid, uid, gid, gid, gid, (gid,))
    assert call(l, "issetugid")[1][0] == 0


def test_setuid_to_a_held_id_changes_and_taints(kl) -> None:
    """A set-user-id process (real 10, effective 20) may swap between its ids."""
    k, l, _ = kl
    p = l.l_proc
    p.p_cred = Cred(10, 20, 20, 5, 5, 5, (5,))
    assert call(l, "seteuid", 10)[0] == 0
    assert call(l, "getuid")[1] == [10, 10]
    assert call(l, "seteuid", 20)[0] == 0          # back to the saved id
    assert call(l, "issetugid")[1][0] == 1
    assert call(l, "setuid", 20)[0] == Errno.EPERM   # setuid must equal the real id
    assert call(l, "setuid", 10)[0] == 0
    assert proc_cred(p) == Cred(10, 10, 10, 5, 5, 5, (5,))


def test_process_group_and_session(kl) -> None:
    k, l, _ = kl
    pid = l.l_proc.p_pid
    assert call(l, "getpgrp")[1][0] == pid
    assert call(l, "getpgid", 0)[1][0] == pid
    assert call(l, "getpgid", pid)[1][0] == pid
    assert call(l, "getpgid", 4242)[0] == Errno.ESRCH
    assert call(l, "getsid", 0)[1][0] == 1           # the parent's session
    assert call(l, "getsid", 4242)[0] == Errno.ESRCH
    assert call(l, "setsid")[0] == Errno.EPERM        # already a process-group leader
    assert call(l, "setpgid", 0, 0)[0] == 0
    assert call(l, "setpgid", 0, 77)[0] == Errno.EPERM
    assert call(l, "setpgid", 4242, 0)[0] == Errno.ESRCH
    assert call(l, "setpgid", 0, -1)[0] == Errno.EINVAL


def test_setsid_when_not_a_group_leader(kl) -> None:
    k, l, _ = kl
    p = l.l_proc
    call(l, "getpgrp")
    p.p_pgid = 55
    assert call(l, "setsid") == (0, [p.p_pid, 0])
    assert call(l, "getsid", 0)[1][0] == p.p_pid
    assert call(l, "getpgrp")[1][0] == p.p_pid


def test_getlogin_setlogin(kl) -> None:
    k, l, buf = kl
    _write(l, buf, b"\xAA" * 32)
    assert call(l, "__getlogin", buf, 32)[0] == 0
    data = _read(l, buf, 17)
    assert len(data.split(b"\0")[0]) <= 16 and data[16:17] == b"\xAA"
    assert call(l, "__getlogin", BAD, 16)[0] == Errno.EFAULT
    _write(l, buf, b"me\0")
    assert call(l, "__setlogin", buf)[0] == Errno.EPERM


# -- kern_resource: limits ----------------------------------------------------------------

def _getrlimit(l, buf: int, which: int) -> tuple[int, int]:
    assert call(l, "getrlimit", which, buf)[0] == 0
    return struct.unpack("<QQ", _read(l, buf, 16))


def _setrlimit(l, buf: int, which: int, cur: int, mx: int) -> int:
    _write(l, buf + 64, struct.pack("<QQ", cur, mx))
    return call(l, "setrlimit", which, buf + 64)[0]


def test_rlimit_defaults(kl) -> None:
    k, l, buf = kl
    rlimits_init(l.l_proc)
    abi = k.abi
    assert _getrlimit(l, buf, RLIMIT_STACK) == (abi.dflssiz, abi.maxssiz)
    assert _getrlimit(l, buf, RLIMIT_DATA) == (abi.dfldsiz, abi.maxdsiz)
    assert _getrlimit(l, buf, RLIMIT_NOFILE) == (128, 3404)
    assert _getrlimit(l, buf, RLIMIT_NPROC) == (160, 1044)
    assert _getrlimit(l, buf, RLIMIT_NTHR) == (8192, 8192)     # site_rlimits: kern.maxlwp of 8 GiB
    assert _getrlimit(l, buf, RLIMIT_AS) == (RLIM_INFINITY, RLIM_INFINITY)
    assert RLIM_INFINITY == 0x7FFFFFFFFFFFFFFF


@pytest.mark.parametrize("gib, maxlwp", [(2, 4096), (8, 8192), (16, 16384), (128, 65535)])
def test_maxlwp_follows_the_guest_ram(gib: int, maxlwp: int) -> None:
    """kern.maxlwp is lwp_maxlwp() of the RAM -m gives the guest (one LWP per MiB,
    within [MAXLWP, MAXMAXLWP]), and RLIMIT_NTHR's hard limit with it."""
    k, l = make_kernel(physmem=gib << 30)
    buf = scratch(l)
    rlimits_init(l.l_proc)
    assert k.maxlwp == maxlwp
    assert _getrlimit(l, buf, RLIMIT_NTHR) == (maxlwp, maxlwp)
    assert _setrlimit(l, buf, RLIMIT_NTHR, maxlwp - 1, maxlwp - 1) == 0
    assert _getrlimit(l, buf, RLIMIT_NTHR) == (maxlwp - 1, maxlwp - 1)


def test_rlimits_exist_without_exec(kl) -> None:
    k, l, buf = kl
    l.l_proc.p_limits = {}
    assert _getrlimit(l, buf, RLIMIT_STACK) == (k.abi.dflssiz, k.abi.maxssiz)


def test_getrlimit_errors(kl) -> None:
    k, l, buf = kl
    assert call(l, "getrlimit", 12, buf)[0] == Errno.EINVAL
    assert call(l, "getrlimit", -1, buf)[0] == Errno.EINVAL
    assert call(l, "getrlimit", RLIMIT_STACK, BAD)[0] == Errno.EFAULT


def test_setrlimit_rules(kl) -> None:
    k, l, buf = kl
    assert _setrlimit(l, buf, RLIMIT_NOFILE, 4000, 3404) == Errno.EINVAL    # cur > max
    assert _setrlimit(l, buf, RLIMIT_NOFILE, 128, 5000) == Errno.EPERM      # raise max
    assert _setrlimit(l, buf, RLIMIT_NOFILE, 3404, 3404) == 0               # cur up to max
    assert _getrlimit(l, buf, RLIMIT_NOFILE) == (3404, 3404)
    assert _setrlimit(l, buf, RLIMIT_NOFILE, 64, 1000) == 0                 # lower both
    assert _getrlimit(l, buf, RLIMIT_NOFILE) == (64, 1000)
    assert _setrlimit(l, buf, RLIMIT_NOFILE, 64, 2000) == Errno.EPERM       # not back up
    assert _setrlimit(l, buf, 12, 1, 1) == Errno.EINVAL
    assert call(l, "setrlimit", RLIMIT_NOFILE, BAD)[0] == Errno.EFAULT
    assert call(l, "setrlimit", 99, BAD)[0] == Errno.EFAULT                 # copyin first


def test_setrlimit_stack_rounds_to_a_page(kl) -> None:
    k, l, buf = kl
    mx = k.abi.maxssiz
    assert _setrlimit(l, buf, RLIMIT_STACK, 1 << 20 | 1, mx) == 0
    assert _getrlimit(l, buf, RLIMIT_STACK) == ((1 << 20) + 4096, mx)


def test_setrlimit_unchanged_infinity_is_allowed(kl) -> None:
    k, l, buf = kl
    assert _setrlimit(l, buf, RLIMIT_AS, RLIM_INFINITY, RLIM_INFINITY) == 0


# -- priorities and usage -----------------------------------------------------------------

def test_priority(kl) -> None:
    k, l, _ = kl
    pid = l.l_proc.p_pid
    assert call(l, "getpriority", 0, 0) == (0, [0, 0])
    assert call(l, "setpriority", 0, 0, 5)[0] == 0
    assert call(l, "getpriority", 0, pid)[1][0] == 5
    assert call(l, "setpriority", 0, pid, 2)[0] == Errno.EACCES     # only root lowers it
    assert call(l, "setpriority", 1, 0, 99)[0] == 0                 # clamped to PRIO_MAX
    assert call(l, "getpriority", 1, 0)[1][0] == 20
    assert call(l, "getpriority", 2, 0)[1][0] == 20
    assert call(l, "getpriority", 0, 4242)[0] == Errno.ESRCH
    assert call(l, "getpriority", 7, 0)[0] == Errno.EINVAL
    assert call(l, "setpriority", 7, 0, 0)[0] == Errno.EINVAL


def test_getrusage(kl) -> None:
    k, l, buf = kl
    # What the kernel counted for l's turns: 12 us of CPU time, 10 system calls.
    l.l_rtime, l.l_nsyscall = 12_000, 10
    assert call(l, "__getrusage50", 0, buf)[0] == 0
    ru = struct.unpack("<qi4xqi4x14q", _read(l, buf, 144))
    utime, stime = ru[0] * 10**6 + ru[1], ru[2] * 10**6 + ru[3]
    assert 0 <= ru[1] < 10**6 and 0 <= ru[3] < 10**6
    assert (utime, stime) == (7, 5)                    # system: 10 calls x 500 ns
    assert ru[4] > 0                                   # maxrss: the mapped scratch area
    _write(l, buf, b"\xAA" * 144)
    assert call(l, "__getrusage50", -1, buf)[0] == 0
    assert _read(l, buf, 144) == bytes(144)
    assert call(l, "__getrusage50", 1, buf)[0] == Errno.EINVAL
    assert call(l, "__getrusage50", 0, BAD)[0] == Errno.EFAULT


def test_rlimit_kernel_nthr_default_and_overrides(kl) -> None:
    """NetBSD's proc0 soft limit min(maxlwp, maxuprc), restored through k.config."""
    k, l, buf = kl
    k.config["rlimits"] = {RLIMIT_NTHR: (160, 8192)}
    rlimits_init(l.l_proc)
    assert _getrlimit(l, buf, RLIMIT_NTHR) == (160, 8192)
    assert _getrlimit(l, buf, RLIMIT_NOFILE) == (128, 3404)

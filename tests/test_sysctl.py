"""__sysctl (kern_sysctl.py): the MIB tree, sizes, errors, CTL_QUERY/CTL_DESCRIBE."""
from __future__ import annotations

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
from nbemu.syscalls.kern_sysctl import (CTL_DESCRIBE, CTL_QUERY, CTLFLAG_IMMEDIATE, CTLTYPE_INT,
                                  CTLTYPE_NODE, CTLTYPE_QUAD, CTLTYPE_STRING, CTLTYPE_STRUCT,
                                  SIZEOF_SYSCTLNODE, SYSCTL_VERSION, sysctl_find)
from tests.khelp import call, make_kernel, scratch

NAME, OLDLENP, NEWV, OLDV = 0x0, 0x100, 0x200, 0x1000


class Guest:
    """A kernel, its LWP and a scratch area laid out for sysctl calls."""

    def __init__(self, deterministic: bool = True, seed: int = 0,
                 physmem: int | None = None) -> None:
        self.k, self.l = make_kernel(deterministic=deterministic, physmem=physmem)
        if seed:
            import random
            self.k.rng = random.Random(seed)
        self.base = scratch(self.l, 0x10000)
        self.vm = self.l.l_proc.p_vmspace

    def write(self, off: int, data: bytes) -> int:
        assert self.vm.copyout(data, self.base + off) == 0
        return self.base + off

    def read(self, off: int, n: int) -> bytes:
        data = self.vm.copyin(self.base + off, n)
        assert isinstance(data, bytes)
        return data

    def sysctl(self, mib: list[int], oldlen: int | None = 0x4000, want_old: bool = True,
               new: bytes | None = None, newlen: int | None = None,
               namelen: int | None = None) -> tuple[int, int, bytes]:
        """(error, *oldlenp after the call, bytes copied to the old buffer)."""
        name = self.write(NAME, struct.pack(f"<{len(mib)}i", *mib))
        self.write(OLDV, b"\xAA" * 0x4000)
        oldlenp = 0
        if oldlen is not None:
            oldlenp = self.write(OLDLENP, struct.pack("<Q", oldlen))
        newv = 0
        if new is not None:
            newv = self.write(NEWV, new)
        err, _ = call(self.l, "__sysctl", name, len(mib) if namelen is None else namelen,
                      self.base + OLDV if want_old else 0, oldlenp, newv,
                      len(new or b"") if newlen is None else newlen)
        outlen = struct.unpack("<Q", self.read(OLDLENP, 8))[0] if oldlen is not None else -1
        copied = self.read(OLDV, min(max(outlen, 0), 0x4000)) if want_old else b""
        return err, outlen, copied


@pytest.fixture
def g() -> Guest:
    return Guest()


def qnode() -> bytes:
    return struct.pack("<I", SYSCTL_VERSION).ljust(SIZEOF_SYSCTLNODE, b"\0")


def parse_nodes(data: bytes) -> list[dict]:
    out = []
    for i in range(0, len(data) - len(data) % 96, 96):
        flags, num, name, ver, _, un, size = struct.unpack_from("<Ii32sII16sQ", data, i)
        out.append({"flags": flags, "type": flags & 0xF, "num": num, "ver": ver,
                    "name": name.split(b"\0")[0].decode(), "un": un, "size": size})
    return out


# -- every node, right type and size --------------------------------------------------

def _i(b: bytes) -> int:
    return struct.unpack("<i", b)[0]


def _q(b: bytes) -> int:
    return struct.unpack("<q", b)[0]


NODES = [
    # (mib, dotted name, ctltype, size, check)
    ([1, 1], "kern.ostype", CTLTYPE_STRING, 7, lambda b, k: b == b"NetBSD\0"),
    ([1, 2], "kern.osrelease", CTLTYPE_STRING, 5, lambda b, k: b == b"10.1\0"),
    ([1, 3], "kern.osrevision", CTLTYPE_INT, 4, lambda b, k: _i(b) == 1001000000),
    ([1, 4], "kern.version", CTLTYPE_STRING, None,
     lambda b, k: b.startswith(b"NetBSD 10.1 (GENERIC)") and b.endswith(b"\n\0")),
    ([1, 6], "kern.maxproc", CTLTYPE_INT, 4, lambda b, k: _i(b) == 1044),
    ([1, 7], "kern.maxfiles", CTLTYPE_INT, 4, lambda b, k: _i(b) == 3404),
    ([1, 8], "kern.argmax", CTLTYPE_INT, 4, lambda b, k: _i(b) == 262144),
    ([1, 10], "kern.hostname", CTLTYPE_STRING, None, lambda b, k: b == b"nbemu\0"),
    ([1, 11], "kern.hostid", CTLTYPE_INT, 4, lambda b, k: _i(b) == 0),
    ([1, 12], "kern.clockrate", CTLTYPE_STRUCT, 20,
     lambda b, k: struct.unpack("<5i", b) == (100, 10000, 40, 100, 100)),
    ([1, 17], "kern.posix1version", CTLTYPE_INT, 4, lambda b, k: _i(b) == 200112),
    ([1, 18], "kern.ngroups", CTLTYPE_INT, 4, lambda b, k: _i(b) == 16),
    ([1, 38], "kern.iov_max", CTLTYPE_INT, 4, lambda b, k: _i(b) == 1024),
    ([1, 44], "kern.login_name_max", CTLTYPE_INT, 4, lambda b, k: _i(b) == 17),
    ([1, 61], "kern.urandom", CTLTYPE_INT, 4, lambda b, k: True),
    ([1, 66], "kern.posix_threads", CTLTYPE_INT, 4, lambda b, k: _i(b) == 200112),
    ([1, 83], "kern.boottime", CTLTYPE_STRUCT, 16,
     lambda b, k: struct.unpack("<qq", b) == divmod(k.clock.boottime_ns, 10**9)),
    ([2, 2], "vm.loadavg", CTLTYPE_STRUCT, 24,
     lambda b, k: struct.unpack("<3I4xq", b) == (0, 0, 0, 2048)),
    ([2, 9], "vm.maxslp", CTLTYPE_INT, 4, lambda b, k: _i(b) == 20),
    ([2, 15], "vm.maxaddress", CTLTYPE_QUAD, 8, lambda b, k: _q(b) == 0x7FBFDFEFF000),
    ([2, 17], "vm.guard_size", CTLTYPE_INT, 4, lambda b, k: _i(b) == 1 << 20),
    ([2, 18], "vm.thread_guard_size", CTLTYPE_INT, 4, lambda b, k: _i(b) == 65536),
    ([6, 1], "hw.machine", CTLTYPE_STRING, 6, lambda b, k: b == b"amd64\0"),
    ([6, 2], "hw.model", CTLTYPE_STRING, None, lambda b, k: b.endswith(b"\0") and len(b) > 1),
    ([6, 3], "hw.ncpu", CTLTYPE_INT, 4, lambda b, k: _i(b) == k.ncpu),
    ([6, 4], "hw.byteorder", CTLTYPE_INT, 4, lambda b, k: _i(b) == 1234),
    ([6, 5], "hw.physmem", CTLTYPE_INT, 4, lambda b, k: b == b"\xff\xff\xff\xff"),
    ([6, 6], "hw.usermem", CTLTYPE_INT, 4, lambda b, k: b == b"\xff\xff\xff\xff"),
    ([6, 7], "hw.pagesize", CTLTYPE_INT, 4, lambda b, k: _i(b) == 4096),
    ([6, 10], "hw.machine_arch", CTLTYPE_STRING, 7, lambda b, k: b == b"x86_64\0"),
    ([6, 11], "hw.alignbytes", CTLTYPE_INT, 4, lambda b, k: _i(b) == 7),
    ([6, 13], "hw.physmem64", CTLTYPE_QUAD, 8, lambda b, k: _q(b) == 8 << 30),
    ([6, 14], "hw.usermem64", CTLTYPE_QUAD, 8, lambda b, k: 0 < _q(b) < 8 << 30),
    ([6, 16], "hw.ncpuonline", CTLTYPE_INT, 4, lambda b, k: _i(b) == k.ncpu),
]


@pytest.mark.parametrize("mib,path,ctype,size,check", NODES, ids=[n[1] for n in NODES])
def test_node_reads_back(g: Guest, mib, path, ctype, size, check) -> None:
    node = sysctl_find(g.k, path)
    assert node is not None and node.num == mib[-1] and node.type == ctype
    err, outlen, data = g.sysctl(mib)
    assert err == 0
    if size is not None:
        assert outlen == size
    assert check(data, g.k), data


def test_ncpu_follows_the_kernel() -> None:
    k_g = Guest()
    assert k_g.k.ncpu == 4
    err, _, data = k_g.sysctl([6, 16])
    assert err == 0 and _i(data) == 4


@pytest.mark.parametrize("mib,size", [([1, 1], 7), ([6, 7], 4), ([6, 13], 8), ([1, 12], 20),
                                      ([1, 10], 6)])
def test_null_oldv_reports_the_size(g: Guest, mib, size) -> None:
    err, outlen, _ = g.sysctl(mib, oldlen=0, want_old=False)
    assert (err, outlen) == (0, size)


def test_too_small_buffer_truncates_and_enomem(g: Guest) -> None:
    err, outlen, _ = g.sysctl([1, 1], oldlen=3)
    assert err == Errno.ENOMEM and outlen == 7
    assert g.read(OLDV, 4) == b"Net\xAA"            # truncated, no NUL, nothing past it
    err, outlen, _ = g.sysctl([6, 13], oldlen=4)
    assert err == Errno.ENOMEM and outlen == 8
    assert g.read(OLDV, 8) == struct.pack("<q", 8 << 30)[:4] + b"\xAA" * 4


def test_oldv_without_oldlenp_is_enomem(g: Guest) -> None:
    err, _, _ = g.sysctl([6, 7], oldlen=None)
    assert err == Errno.ENOMEM


def test_bigger_buffer_is_fine(g: Guest) -> None:
    err, outlen, data = g.sysctl([6, 7], oldlen=100)
    assert (err, outlen, _i(data)) == (0, 4, 4096)


@pytest.mark.parametrize("mib,error", [
    ([1, 9999], Errno.ENOENT), ([99], Errno.ENOENT), ([99, 1], Errno.ENOENT),
    ([8, 1], Errno.ENOENT),               # user.* lives in libc, not in the kernel
    ([1, 9999, 1], Errno.ENOENT),
    ([6, 7, 1], Errno.ENOTDIR),           # through an immediate leaf
    ([2, 18, 0, 1], Errno.ENOTDIR),
    ([1, 10, 1], Errno.EINVAL),           # through a leaf with a helper: its lookup says EINVAL
    ([1], Errno.EINVAL),                  # a node cannot be looked up
    ([1, -99], Errno.EOPNOTSUPP),         # unknown meta operation
])
def test_bad_names(g: Guest, mib, error) -> None:
    err, outlen, _ = g.sysctl(mib, oldlen=64)
    assert err == error
    assert outlen == 64                   # *oldlenp is written back unchanged


@pytest.mark.parametrize("namelen", [0, 13, 0xFFFFFFFF])
def test_namelen_out_of_range(g: Guest, namelen) -> None:
    err, _, _ = g.sysctl([6, 7], namelen=namelen)
    assert err == Errno.EINVAL


def test_bad_pointers(g: Guest) -> None:
    l = g.l
    bad = 0x7000_0000_0000
    name = g.write(NAME, struct.pack("<2i", 6, 7))
    oldlenp = g.write(OLDLENP, struct.pack("<Q", 4))
    assert call(l, "__sysctl", bad, 2, g.base + OLDV, oldlenp, 0, 0)[0] == Errno.EFAULT
    assert call(l, "__sysctl", name, 2, g.base + OLDV, bad, 0, 0)[0] == Errno.EFAULT
    # oldlenp is read before namelen is checked
    assert call(l, "__sysctl", name, 0, g.base + OLDV, bad, 0, 0)[0] == Errno.EFAULT
    assert call(l, "__sysctl", name, 2, bad, oldlenp, 0, 0)[0] == Errno.EFAULT
    assert struct.unpack("<Q", g.read(OLDLENP, 8))[0] == 4          # unchanged, written back


@pytest.mark.parametrize("mib,new", [([1, 10], b"evil\0"), ([6, 7], struct.pack("<i", 8192)),
                                     ([2, 18], struct.pack("<i", 0)), ([1, 81], b"\0" * 4)])
def test_writes_are_eperm(g: Guest, mib, new) -> None:
    err, outlen, _ = g.sysctl(mib, oldlen=64, new=new)
    assert err == Errno.EPERM and outlen == 64
    err, _, data = g.sysctl([1, 10])
    assert data == b"nbemu\0"


def test_zero_newlen_is_a_read(g: Guest) -> None:
    err, outlen, data = g.sysctl([6, 7], new=b"\1\2\3\4", newlen=0)
    assert (err, outlen, _i(data)) == (0, 4, 4096)


# -- kern.arandom ---------------------------------------------------------------------

def test_arandom_length_and_cap(g: Guest) -> None:
    err, outlen, data = g.sysctl([1, 81], oldlen=64)
    assert (err, outlen, len(data)) == (0, 64, 64)
    assert g.read(OLDV + 64, 1) == b"\xAA"
    err, outlen, data = g.sysctl([1, 81], oldlen=300)
    assert (err, outlen) == (0, 256)                # clamped, and not ENOMEM
    assert g.read(OLDV + 256, 1) == b"\xAA"
    err, outlen, _ = g.sysctl([1, 81], oldlen=32, want_old=False)
    assert (err, outlen) == (0, 32)


def test_arandom_deterministic_by_seed() -> None:
    a = Guest(seed=7).sysctl([1, 81], oldlen=64)[2]
    b = Guest(seed=7).sysctl([1, 81], oldlen=64)[2]
    c = Guest(seed=8).sysctl([1, 81], oldlen=64)[2]
    assert a == b and a != c and len(set(a)) > 8


def test_arandom_fast_mode_is_random() -> None:
    a = Guest(deterministic=False).sysctl([1, 81], oldlen=32)[2]
    b = Guest(deterministic=False).sysctl([1, 81], oldlen=32)[2]
    assert len(a) == 32 and a != b


# -- CTL_QUERY / CTL_DESCRIBE -------------------------------------------------------------

def test_query_vm_lists_thread_guard_size(g: Guest) -> None:
    err, outlen, _ = g.sysctl([2, CTL_QUERY], oldlen=0, want_old=False, new=qnode())
    assert err == 0 and outlen % SIZEOF_SYSCTLNODE == 0 and outlen >= 2 * 96
    err, outlen2, data = g.sysctl([2, CTL_QUERY], oldlen=outlen, new=qnode())
    assert err == 0 and outlen2 == outlen
    nodes = {n["name"]: n for n in parse_nodes(data)}
    tgs = nodes["thread_guard_size"]
    assert tgs["num"] == 18 and tgs["type"] == CTLTYPE_INT and tgs["size"] == 4
    assert tgs["flags"] & 0xFF000000 == SYSCTL_VERSION
    assert nodes["guard_size"]["num"] == 17
    assert nodes["loadavg"]["type"] == CTLTYPE_STRUCT and nodes["loadavg"]["size"] == 24


def test_query_root_and_immediates(g: Guest) -> None:
    err, outlen, data = g.sysctl([CTL_QUERY], new=qnode())
    assert err == 0
    top = {n["name"]: n for n in parse_nodes(data)}
    for name, num in [("kern", 1), ("vm", 2), ("hw", 6), ("user", 8), ("security", 13)]:
        assert top[name]["num"] == num and top[name]["type"] == CTLTYPE_NODE
        assert top[name]["size"] == SIZEOF_SYSCTLNODE
    csize, clen = struct.unpack_from("<II", top["hw"]["un"])
    assert clen == 12 and csize == 16
    err, _, data = g.sysctl([6, CTL_QUERY], new=qnode())
    hw = {n["name"]: n for n in parse_nodes(data)}
    assert hw["pagesize"]["flags"] & CTLFLAG_IMMEDIATE
    assert struct.unpack_from("<i", hw["pagesize"]["un"])[0] == 4096


def test_query_small_buffer_copies_whole_nodes(g: Guest) -> None:
    err, outlen, _ = g.sysctl([2, CTL_QUERY], oldlen=150, new=qnode())
    assert err == Errno.ENOMEM and outlen == 7 * 96
    assert len(parse_nodes(g.read(OLDV, 96))) == 1
    assert g.read(OLDV + 96, 1) == b"\xAA"          # the second node did not fit


@pytest.mark.parametrize("new,newlen,error", [
    (None, 0, Errno.EINVAL),                                     # no query node
    (b"\0" * 96, 96, Errno.EINVAL),                              # version 0
    (struct.pack("<I", SYSCTL_VERSION) + b"\0" * 40, 44, Errno.EINVAL),   # wrong size
    (struct.pack("<I", SYSCTL_VERSION).ljust(40, b"\0") + struct.pack("<I", 999)
     + b"\0" * 52, 96, Errno.EINVAL),                            # stale version
])
def test_query_bad_request(g: Guest, new, newlen, error) -> None:
    assert g.sysctl([2, CTL_QUERY], new=new, newlen=newlen)[0] == error


def test_query_leaf_is_enotdir(g: Guest) -> None:
    assert g.sysctl([6, 7, CTL_QUERY], new=qnode())[0] == Errno.ENOTDIR


def _nametomib(g: Guest, path: str) -> list[int]:
    """What libc's sysctlnametomib does: CTL_QUERY each level, match names."""
    mib: list[int] = []
    for part in path.split("."):
        err, _, data = g.sysctl(mib + [CTL_QUERY], new=qnode())
        assert err == 0
        match = [n for n in parse_nodes(data) if n["name"] == part]
        assert match, part
        mib.append(match[0]["num"])
    return mib


def test_sysctlbyname_thread_guard_size(g: Guest) -> None:
    mib = _nametomib(g, "vm.thread_guard_size")
    assert mib == [2, 18]
    err, _, data = g.sysctl(mib)
    assert (err, _i(data)) == (0, 65536)


def test_dynamic_maxlwp(g: Guest) -> None:
    mib = _nametomib(g, "kern.maxlwp")
    assert mib[0] == 1 and mib[1] > 1024
    err, outlen, data = g.sysctl(mib)
    assert (err, outlen, _i(data)) == (0, 4, 8192)


def test_maxlwp_follows_physmem() -> None:
    g = Guest(physmem=32 << 30)                 # nbemu -m 32G
    err, _, data = g.sysctl(_nametomib(g, "kern.maxlwp"))
    assert (err, _i(data)) == (0, 32768)


def test_query_versions_are_stable(g: Guest) -> None:
    a = g.sysctl([CTL_QUERY], new=qnode())[2]
    b = g.sysctl([CTL_QUERY], new=qnode())[2]
    assert a == b and all(n["ver"] > 0 for n in parse_nodes(a))


def test_describe(g: Guest) -> None:
    err, outlen, data = g.sysctl([2, CTL_DESCRIBE])
    assert err == 0 and outlen == len(data)
    descs = {}
    off = 0
    while off < len(data):
        num, ver, dlen = struct.unpack_from("<iII", data, off)
        descs[num] = data[off + 12:off + 12 + dlen - 1].decode()
        off += 12 + ((dlen + 3) & ~3)
    assert descs[18] == "Guard size of other threads"
    one = struct.pack("<Ii", SYSCTL_VERSION, 17).ljust(96, b"\0")
    err, _, data = g.sysctl([2, CTL_DESCRIBE], new=one)
    assert err == 0 and data[12:12 + 25] == b"Guard size of main thread"
    missing = struct.pack("<Ii", SYSCTL_VERSION, 99).ljust(96, b"\0")
    assert g.sysctl([2, CTL_DESCRIBE], new=missing)[0] == Errno.ENOENT


def test_create_and_destroy_need_root(g: Guest) -> None:
    assert g.sysctl([1, -3])[0] == Errno.EINVAL
    assert g.sysctl([1, -3], new=qnode())[0] == Errno.EPERM
    assert g.sysctl([1, -5], new=qnode())[0] == Errno.EPERM


# -- kern.proc_args -------------------------------------------------------------------------

def test_proc_args_pathname(g: Guest) -> None:
    mib = [1, 48, -1, 5]
    assert g.sysctl(mib)[0] == Errno.ENOENT           # no executable path recorded
    g.l.l_proc.p_path = b"/usr/bin/true"
    err, outlen, data = g.sysctl(mib, oldlen=0, want_old=False)
    assert (err, outlen) == (0, 14)
    err, outlen, data = g.sysctl(mib, oldlen=14)
    assert (err, data) == (0, b"/usr/bin/true\0")
    err, outlen, _ = g.sysctl(mib, oldlen=4)
    assert err == Errno.ENOSPC and outlen == 14
    assert g.sysctl([1, 48, 12345, 5])[0] == Errno.ESRCH
    err, _, data = g.sysctl([1, 48, g.l.l_proc.p_pid, 6])
    assert (err, data) == (0, b"/\0")


def test_proc_args_argv(g: Guest) -> None:
    strs = g.write(0x8000, b"prog\0-x\0")
    vec = g.write(0x8100, struct.pack("<QQ", strs, strs + 5))
    ps = g.write(0x8200, struct.pack("<Qi4xQi4x", vec, 2, 0, 0))
    g.l.l_proc.p_psstrp = ps
    pid = g.l.l_proc.p_pid
    err, _, data = g.sysctl([1, 48, pid, 1], oldlen=0x100)
    assert (err, data) == (0, b"prog\0-x\0")
    err, outlen, data = g.sysctl([1, 48, pid, 2])
    assert (err, outlen, _i(data)) == (0, 4, 2)
    assert g.sysctl([1, 48, pid, 9])[0] == Errno.EINVAL
    assert g.sysctl([1, 48, pid])[0] == Errno.EINVAL

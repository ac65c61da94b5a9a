"""The sysctl system call and MIB tree (NetBSD's kern_sysctl.c, with the
nodes of init_sysctl_base.c, init_sysctl.c, subr_cprng.c, uvm_meter.c,
kern_lwp.c and kern_proc.c that programs read).

Model
-----
- One declarative tree of :class:`SysctlNode`: NetBSD's number, name, type
  (CTLTYPE_*), flags, size and description for each node.  A leaf's value is
  an immediate (CTLFLAG_IMMEDIATE int/quad), constant bytes, or a function of
  the calling LWP evaluated at lookup time (a node whose sysctl_data points at
  a kernel variable).  A node with ``func`` has a NetBSD helper (sysctl_func):
  dispatch calls it even when the name runs past it, as sysctl_dispatch does.
- sys___sysctl -> sysctl_dispatch -> sysctl_locate (ENOENT off the end of a
  node, ENOTDIR through a leaf), then sysctl_lookup for a leaf, or the meta
  operations CTL_QUERY (list children as struct sysctlnode, as libc's
  sysctlnametomib and Go's syscall.Sysctl need) and CTL_DESCRIBE (struct
  sysctldesc).  CTL_CREATE/CTL_DESTROY need root; CTL_MMAP is not offered.
- Sizes: oldv NULL reports the size; a buffer too small gets the truncated
  value (strings lose their NUL) and ENOMEM with *oldlenp set to the full
  size; *oldlenp is written back even when the lookup failed.
- The caller is unprivileged: any write (newv != NULL and newlen != 0) to a
  value is EPERM, as kauth's KAUTH_REQ_SYSTEM_SYSCTL_MODIFY answers.
- CTL_USER's children live in libc (lib/libc/gen/sysctl.c answers user.* in
  user space); the kernel only has the empty "user" node, like NetBSD's.

Dynamic (CTL_CREATE) nodes get numbers from CREATE_BASE upwards in creation
order, and every node's version is the tree's creation counter at the time it
(or its last descendant) was added, as sysctl_create numbers them.
"""
from __future__ import annotations

import os
import _socket
import struct
from typing import Callable, Union

from nbemu.plain import Record, ValueRecord

from .cstruct import LOADAVG, PS_STRINGS, SIZE_T, TIMESPEC
from .errno import Errno
from .hostinput import host_input
from .kern_prot import NGROUPS_MAX
from .kern_resource import MAXFILES, NPROC, usermem
from .kern_tc import HZ, TICK_US
from .lwp import Lwp
from .rtsock import PF_ROUTE, sysctl_rtable
from .table import syscall

CTL_MAXNAME = 12
SYSCTL_NAMELEN = 32
CREATE_BASE = 1024
SYSCTL_DEFSIZE = 8

CTLTYPE_NODE, CTLTYPE_INT, CTLTYPE_STRING, CTLTYPE_QUAD, CTLTYPE_STRUCT, CTLTYPE_BOOL = range(1, 7)
CTLFLAG_READONLY = 0x00000000
CTLFLAG_READWRITE = 0x00000070
CTLFLAG_ANYWRITE = 0x00000080
CTLFLAG_PRIVATE = 0x00000100
CTLFLAG_PERMANENT = 0x00000200
CTLFLAG_IMMEDIATE = 0x00000800
CTLFLAG_HEX = 0x00001000
CTLFLAG_ROOT = 0x00002000
CTLFLAG_UNSIGNED = 0x00080000
SYSCTL_VERSION = 0x01000000
SYSCTL_VERS_MASK = 0xFF000000

# Meta-identifiers: CTL_EOL -1 ... CTL_DESCRIBE -7.
CTL_EOL, CTL_QUERY, CTL_CREATE, CTL_CREATESYM, CTL_DESTROY, CTL_MMAP, CTL_DESCRIBE = \
    range(-1, -8, -1)

CTL_KERN, CTL_VM, CTL_VFS, CTL_NET, CTL_DEBUG, CTL_HW, CTL_MACHDEP, CTL_USER = range(1, 9)
CTL_DDB, CTL_PROC, CTL_VENDOR, CTL_EMUL, CTL_SECURITY = range(9, 14)

KERN_ARND = 81
KERN_URND = 61
KERN_PROC_ARGS = 48
KERN_PROC_ARGV, KERN_PROC_NARGV, KERN_PROC_ENV, KERN_PROC_NENV = 1, 2, 3, 4
KERN_PROC_PATHNAME, KERN_PROC_CWD = 5, 6

SIZEOF_SYSCTLNODE = 96
_NODE = struct.Struct("<Ii32sII16sQQQQ")      # struct sysctlnode (LP64)
assert _NODE.size == SIZEOF_SYSCTLNODE

# Facts reported by the kern and hw nodes.
OSTYPE = "NetBSD"
OSRELEASE = "10.1"
OSREVISION = 1001000000                       # __NetBSD_Version__ for 10.1
VERSION = ("NetBSD 10.1 (GENERIC) #0: Mon Dec 16 13:08:11 UTC 2024\n"
           "\tmkrepro@mkrepro.NetBSD.org:/usr/src/sys/arch/amd64/compile/GENERIC\n")
CPU_MODEL = "QEMU Virtual CPU version 2.5+"   # what Unicorn's x86-64 CPUID reports
MAXHOSTNAMELEN = 256
ARG_MAX = 256 * 1024
TICK, TICKADJ = TICK_US, 240000 // (60 * HZ)    # tick (us) and tickadj (240000/(60*hz))
FSCALE = 1 << 11


class SysctlReq(ValueRecord):
    """One sysctl request on its way down the tree (SYSCTLFN_ARGS)."""
    _fields = ("l", "oldp", "oldlen", "newp", "newlen")

    def __init__(self, l: Lwp, oldp: int, oldlen: int, newp: int, newlen: int) -> None:
        self.l = l
        self.oldp = oldp
        self.oldlen = oldlen      # in: the caller's buffer size; out: the size of the answer
        self.newp = newp
        self.newlen = newlen


Value = Union[bytes, Callable[[Lwp], bytes], None]


class SysctlNode(Record):
    _fields = ("num", "name", "type", "flags", "size", "desc", "imm", "data", "func",
               "children", "ver", "parent")

    def __init__(self, num: int, name: str, type: int, flags: int = CTLFLAG_PERMANENT,
                 size: int = 0, desc: str | None = None, imm: int | None = None,
                 data: Value = None, func: Func | None = None,
                 children: list[SysctlNode] | None = None, ver: int = 0,
                 parent: SysctlNode | None = None) -> None:
        self.num = num
        self.name = name
        self.type = type
        self.flags = flags
        self.size = size
        self.desc = desc
        self.imm = imm              # CTLFLAG_IMMEDIATE value
        self.data = data            # the bytes sysctl_data points at
        self.func = func            # sysctl_func
        self.children = [] if children is None else children
        self.ver = ver
        self.parent = parent

    def child(self, num: int) -> "SysctlNode | None":
        for c in self.children:
            if c.num == num:
                return c
        return None

    def value(self, l: Lwp) -> bytes:
        if self.imm is not None:
            return struct.pack("<q" if self.type == CTLTYPE_QUAD else "<i", self.imm)
        d = self.data(l) if callable(self.data) else self.data
        assert d is not None, self.name
        return d


Func = Callable[[SysctlReq, list, SysctlNode], int]   # (no quotes: see cstruct.Member)


# -- building the tree ---------------------------------------------------------------

def _cstr(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return b + b"\0"


def imm_int(num: int, name: str, v: int, desc: str, flags: int = 0) -> SysctlNode:
    return SysctlNode(num, name, CTLTYPE_INT, CTLFLAG_PERMANENT | CTLFLAG_IMMEDIATE | flags,
                      4, desc, imm=v)


def imm_quad(num: int, name: str, v: int, desc: str) -> SysctlNode:
    return SysctlNode(num, name, CTLTYPE_QUAD, CTLFLAG_PERMANENT | CTLFLAG_IMMEDIATE, 8, desc,
                      imm=v)


def int_node(num: int, name: str, get: Callable[[Lwp], int], desc: str,
             flags: int = CTLFLAG_PERMANENT, helper: bool = False) -> SysctlNode:
    """An int read from a kernel variable (or through a helper function)."""
    n = SysctlNode(num, name, CTLTYPE_INT, flags, 4, desc,
                   data=lambda l: struct.pack("<i", _s32(get(l))))
    if helper:
        n.func = _lookup_func
    return n


def str_node(num: int, name: str, get: str | Callable[[Lwp], str], desc: str,
             size: int = 0, flags: int = CTLFLAG_PERMANENT, helper: bool = False) -> SysctlNode:
    if callable(get):
        data: Value = lambda l: _cstr(get(l))     # noqa: E731
    else:
        data = _cstr(get)
        size = size or len(data)
    n = SysctlNode(num, name, CTLTYPE_STRING, flags, size, desc, data=data)
    if helper:
        n.func = _lookup_func
    return n


def struct_node(num: int, name: str, size: int, get: Callable[[Lwp], bytes], desc: str,
                helper: bool = True) -> SysctlNode:
    n = SysctlNode(num, name, CTLTYPE_STRUCT, CTLFLAG_PERMANENT, size, desc, data=get)
    if helper:
        n.func = _lookup_func
    return n


def dir_node(num: int, name: str, desc: str | None, children: list[SysctlNode],
             flags: int = CTLFLAG_PERMANENT, func: Func | None = None) -> SysctlNode:
    return SysctlNode(num, name, CTLTYPE_NODE, flags, SIZEOF_SYSCTLNODE, desc,
                      func=func, children=children)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _k(l: Lwp):
    return l.l_proc.k


def _hostname(l: Lwp) -> str:
    k = _k(l)
    name = k.config.get("hostname")
    if name is None:
        name = "nbemu" if k.deterministic else _socket.gethostname()
    return name[:MAXHOSTNAMELEN - 1]


def _random(l: Lwp, n: int) -> bytes:
    k = _k(l)
    if n <= 0:
        return b""
    if k.deterministic:
        return k.rng.randbytes(n)
    return host_input("random", lambda: os.urandom(n))


def _boottime(l: Lwp) -> bytes:
    ns = _k(l).clock.boottime_ns
    return TIMESPEC.on(_k(l).abi).pack(ns // 10**9, ns % 10**9)


def _clockrate(l: Lwp) -> bytes:
    return struct.pack("<5i", HZ, TICK, TICKADJ, HZ, HZ)       # hz tick tickadj stathz profhz


def _loadavg(l: Lwp) -> bytes:
    return LOADAVG.on(_k(l).abi).pack(0, 0, 0, FSCALE)


def _build_tree(k) -> SysctlNode:
    """The MIB of kernel k (what sysctl_init and the SYSCTL_SETUP functions create)."""
    dyn = iter(range(CREATE_BASE + 1, CREATE_BASE + 1000))   # sysctl_root.sysctl_num++
    kern = [
        str_node(1, "ostype", OSTYPE, "Operating system type"),
        str_node(2, "osrelease", OSRELEASE, "Operating system release"),
        imm_int(3, "osrevision", OSREVISION, "Operating system revision"),
        str_node(4, "version", VERSION, "Kernel version"),
        int_node(6, "maxproc", lambda l: NPROC, "Maximum number of simultaneous processes",
                 CTLFLAG_PERMANENT | CTLFLAG_READWRITE, helper=True),
        int_node(7, "maxfiles", lambda l: MAXFILES, "Maximum number of open files",
                 CTLFLAG_PERMANENT | CTLFLAG_READWRITE),
        imm_int(8, "argmax", ARG_MAX, "Maximum number of bytes of arguments to execve(2)"),
        str_node(10, "hostname", _hostname, "System hostname", MAXHOSTNAMELEN,
                 CTLFLAG_PERMANENT | CTLFLAG_READWRITE, helper=True),
        int_node(11, "hostid", lambda l: _k(l).config.get("hostid", 0), "System host ID number",
                 CTLFLAG_PERMANENT | CTLFLAG_READWRITE | CTLFLAG_HEX, helper=True),
        struct_node(12, "clockrate", 20, _clockrate, "Kernel clock rates"),
        imm_int(17, "posix1version", 200112, "Version of ISO/IEC 9945 (POSIX 1003.1) with "
                "which the operating system attempts to comply"),
        imm_int(18, "ngroups", NGROUPS_MAX, "Maximum number of supplemental groups"),
        imm_int(19, "job_control", 1, "Whether job control is available"),
        imm_int(20, "saved_ids", 1, "Whether POSIX saved set-group/user ID is available"),
        str_node(22, "domainname", lambda l: _k(l).config.get("domainname", ""), "YP domain name",
                 MAXHOSTNAMELEN, CTLFLAG_PERMANENT | CTLFLAG_READWRITE, helper=True),
        imm_int(23, "maxpartitions", 16, "Maximum number of partitions allowed per disk"),
        imm_int(24, "rawpartition", 3, "Raw partition of a disk"),
        imm_int(32, "fsync", 1, "Whether the POSIX 1003.1b File Synchronization Option is "
                "available on this system"),
        imm_int(37, "synchronized_io", 1, "Whether the POSIX 1003.1b Synchronized I/O Option "
                "is available on this system"),
        imm_int(38, "iov_max", 1024, "Maximum number of iovec structures per process"),
        imm_int(40, "mapped_files", 1, "Whether the POSIX 1003.1b Memory Mapped Files Option "
                "is available on this system"),
        imm_int(41, "memlock", 1, "Whether the POSIX 1003.1b Process Memory Locking Option "
                "is available on this system"),
        imm_int(42, "memlock_range", 1, "Whether the POSIX 1003.1b Range Memory Locking "
                "Option is available on this system"),
        imm_int(43, "memory_protection", 1, "Whether the POSIX 1003.1b Memory Protection "
                "Option is available on this system"),
        imm_int(44, "login_name_max", 17, "Maximum login name length"),
        dir_node(KERN_PROC_ARGS, "proc_args", "Process argument information", [],
                 func=_proc_args),
        imm_int(49, "fscale", FSCALE, "Kernel fixed-point scale factor"),
        imm_int(57, "maxphys", 64 * 1024, "Maximum raw I/O transfer size"),
        imm_int(60, "monotonic_clock", 200112, "Implementation version of the POSIX 1003.1b "
                "Monotonic Clock Option"),
        SysctlNode(KERN_URND, "urandom", CTLTYPE_INT, CTLFLAG_READONLY, 4,
                   "Independent uniform random 32-bit integer", func=_urandom),
        imm_int(66, "posix_threads", 200112, "Version of IEEE Std 1003.1 and its Threads "
                "option to which the system attempts to conform"),
        imm_int(67, "posix_semaphores", 200112, "Version of IEEE Std 1003.1 and its "
                "Semaphores option to which the system attempts to conform"),
        imm_int(68, "posix_barriers", 200112, "Version of IEEE Std 1003.1 and its Barriers "
                "option to which the system attempts to conform"),
        imm_int(69, "posix_timers", 200112, "Version of IEEE Std 1003.1 and its Timers option "
                "to which the system attempts to conform"),
        imm_int(70, "posix_spin_locks", 200112, "Version of IEEE Std 1003.1 and its Spin "
                "Locks option to which the system attempts to conform"),
        imm_int(71, "posix_reader_writer_locks", 200112, "Version of IEEE Std 1003.1 and its "
                "Read-Write Locks option to which the system attempts to conform"),
        SysctlNode(KERN_ARND, "arandom", CTLTYPE_INT, CTLFLAG_READONLY, 4,
                   "Independent uniform random bytes, up to 256 bytes", func=_arandom),
        struct_node(83, "boottime", TIMESPEC.on(k.abi).size, _boottime, "System boot time"),
        int_node(next(dyn), "maxlwp", lambda l: l.l_proc.k.maxlwp,
                 "Maximum number of simultaneous threads",
                 CTLFLAG_PERMANENT | CTLFLAG_READWRITE, helper=True),
    ]
    vm = [
        struct_node(2, "loadavg", LOADAVG.on(k.abi).size, _loadavg, "System load average history", helper=False),
        int_node(9, "maxslp", lambda l: 20, "Maximum process sleep time before being swapped"),
        imm_int(10, "uspace", k.abi.uspace, "Number of bytes allocated for a kernel stack"),
        imm_quad(14, "minaddress", 0, "Minimum user address"),
        imm_quad(15, "maxaddress", 0x00007FBFDFEFF000, "Maximum user address"),
        int_node(17, "guard_size", lambda l: 1 << 20, "Guard size of main thread",
                 CTLFLAG_PERMANENT | CTLFLAG_UNSIGNED),
        int_node(18, "thread_guard_size", lambda l: 64 * 1024, "Guard size of other threads",
                 CTLFLAG_PERMANENT | CTLFLAG_UNSIGNED | CTLFLAG_READWRITE),
    ]
    physmem, umem = k.physmem, usermem(k.physmem)       # `-m`
    physmem32 = min(physmem, 0xFFFFFFFF)
    hw = [
        str_node(1, "machine", k.abi.machine, "Machine class"),
        str_node(2, "model", CPU_MODEL, "Machine model"),
        int_node(3, "ncpu", lambda l: k.ncpu, "Number of CPUs configured"),
        imm_int(4, "byteorder", 1234, "System byte order"),
        imm_int(5, "physmem", _s32(physmem32), "Bytes of physical memory"),
        int_node(6, "usermem", lambda l: min(umem, 0xFFFFFFFF), "Bytes of non-kernel memory",
                 helper=True),
        imm_int(7, "pagesize", k.abi.page_size, "Software page size"),
        str_node(10, "machine_arch", k.abi.machine_arch, "Machine CPU class"),
        imm_int(11, "alignbytes", k.abi.alignbytes, "Alignment constraint for all possible data types"),
        imm_quad(13, "physmem64", physmem, "Bytes of physical memory"),
        SysctlNode(14, "usermem64", CTLTYPE_QUAD, CTLFLAG_PERMANENT, 8,
                   "Bytes of non-kernel memory", data=struct.pack("<q", umem),
                   func=_lookup_func),
        int_node(16, "ncpuonline", lambda l: k.ncpu, "Number of CPUs online"),
    ]
    top = [
        dir_node(CTL_KERN, "kern", "High kernel", kern),
        dir_node(CTL_VM, "vm", "Virtual memory", vm),
        dir_node(CTL_VFS, "vfs", "Filesystem", []),
        dir_node(CTL_NET, "net", "Networking", [
            # sysctl_net_route_setup(NULL, PF_ROUTE, "rtable") in rtsock_shared.c 1.21
            dir_node(PF_ROUTE, "rtable", "PF_ROUTE information", [
                dir_node(0, "rtable", "Routing table information", [], func=_rtable),
                struct_node(next(dyn), "stats", 40, lambda l: bytes(40), "Routing statistics",
                            helper=False),
            ]),
        ]),
        dir_node(CTL_DEBUG, "debug", "Debugging", []),
        dir_node(CTL_HW, "hw", "Generic CPU, I/O", hw),
        dir_node(CTL_MACHDEP, "machdep", "Machine dependent", []),
        dir_node(CTL_USER, "user", "User-level", []),
        dir_node(CTL_DDB, "ddb", "In-kernel debugger", []),
        dir_node(CTL_PROC, "proc", "Per-process", []),
        dir_node(CTL_VENDOR, "vendor", "Vendor specific", [],
                 CTLFLAG_PERMANENT | CTLFLAG_READWRITE),
        dir_node(CTL_EMUL, "emul", "Emulation settings", []),
        dir_node(CTL_SECURITY, "security", "Security", []),
    ]
    root = SysctlNode(next(dyn) - 1, "(root)", CTLTYPE_NODE,
                      CTLFLAG_ROOT | CTLFLAG_READWRITE | CTLFLAG_PERMANENT, SIZEOF_SYSCTLNODE,
                      None, children=top)
    # Versions: each creation bumps the root's counter and stamps the path to the root.
    counter = 0

    def stamp(n: SysctlNode) -> None:
        nonlocal counter
        for c in n.children:
            c.parent = n
            counter += 1
            p: SysctlNode | None = c
            while p is not None:
                p.ver = counter
                p = p.parent
            stamp(c)
    stamp(root)
    return root


# -- node helpers (sysctl_func) ---------------------------------------------------------

def _lookup_func(req: SysctlReq, name: list, node: SysctlNode) -> int:
    """A helper that only computes the value, then does sysctl_lookup."""
    return sysctl_lookup(req, name, node, node.value(req.l))


def _urandom(req: SysctlReq, name: list, node: SysctlNode) -> int:
    return sysctl_lookup(req, name, node, _random(req.l, 4) if req.oldp else bytes(4))


def _arandom(req: SysctlReq, name: list, node: SysctlNode) -> int:
    """subr_cprng.c sysctl_kern_arandom: *oldlenp bytes, at most 256."""
    n = min(req.oldlen, 256)
    req.oldlen = n
    data = _random(req.l, n) if req.oldp else bytes(n)
    return sysctl_lookup(req, name, node, data, size=n)


def _rtable(req: SysctlReq, name: list, node: SysctlNode) -> int:
    """net.route.rtable.<af>.<op>.<arg> (rtsock.py); CTL_QUERY lists nothing."""
    if len(name) == 1 and name[0] == CTL_QUERY:
        return sysctl_query(req, name, node)
    error, out, req.oldlen = sysctl_rtable(_k(req.l), name, bool(req.oldp), req.oldlen,
                                           bool(req.newp))
    if out:
        cerror = req.l.l_proc.p_vmspace.copyout(out, req.oldp)
        if cerror:
            req.oldlen = 0                      # copyout failed: w_where is not advanced
            return cerror
    return error


def _copy_sized(req: SysctlReq, data: bytes) -> int:
    """fill_pathname / fill_cwd: copy what fits, ENOSPC if it did not all fit."""
    error = 0
    if req.oldp:
        error = req.l.l_proc.p_vmspace.copyout(data[:req.oldlen], req.oldp)
        if not error and req.oldlen < len(data):
            error = Errno.ENOSPC
    req.oldlen = len(data)
    return error


def _proc_args(req: SysctlReq, name: list, node: SysctlNode) -> int:
    """kern.proc_args.<pid>.<type> (kern_proc.c sysctl_kern_proc_args)."""
    if len(name) == 1 and name[0] == CTL_QUERY:
        return sysctl_query(req, name, node)
    if req.newp or len(name) != 2:
        return Errno.EINVAL
    pid, typ = name
    me = req.l.l_proc
    # proc_find(pid): any live process of the guest (-1: the caller)
    from .kern_proc import pfind
    p = me if pid in (-1, me.p_pid) else pfind(me.k, pid)
    if typ in (KERN_PROC_PATHNAME, KERN_PROC_CWD):
        if p is None:
            return Errno.ESRCH
        if typ == KERN_PROC_CWD:
            # From the held directory: the p_cwd string is stale after a rename.
            from .vfs_lookup import cwd_vnode, vnode_path
            cwd = vnode_path(p.k, cwd_vnode(p))
            if isinstance(cwd, int):
                return cwd
            return _copy_sized(req, _cstr(cwd))
        path = p.p_path
        if path is None:
            return Errno.ENOENT
        return _copy_sized(req, _cstr(path))
    if typ not in (KERN_PROC_ARGV, KERN_PROC_NARGV, KERN_PROC_ENV, KERN_PROC_NENV):
        return Errno.EINVAL
    if p is None:
        return Errno.EINVAL                     # proc_find(pid) failed
    counted = typ in (KERN_PROC_NARGV, KERN_PROC_NENV)
    if not req.oldp:
        req.oldlen = 4 if counted else ARG_MAX
        return 0
    psstr = p.p_psstrp
    vm = p.p_vmspace                            # the target's memory, read
    uvm = me.p_vmspace                          # the caller's, written
    lay = PS_STRINGS.on(p.k.abi)
    ps = vm.copyin(psstr, lay.size) if psstr else Errno.EFAULT
    if isinstance(ps, int):
        return ps
    argv, nargv, envv, nenv = lay.unpack(ps)
    ws = lay.word_size
    vec, count = (argv, nargv) if typ in (KERN_PROC_ARGV, KERN_PROC_NARGV) else (envv, nenv)
    if counted:
        req.oldlen = 4
        return uvm.copyout(struct.pack("<i", count), req.oldp)
    out = b""
    for i in range(count):
        ptr = vm.copyin(vec + ws * i, ws)
        if isinstance(ptr, int):
            return ptr
        s = vm.copyinstr(int.from_bytes(ptr, "little"), ARG_MAX)
        if isinstance(s, int):
            return s
        out += s + b"\0"
        if len(out) >= req.oldlen:
            break
    out = out[:req.oldlen]
    req.oldlen = len(out)
    return uvm.copyout(out, req.oldp)


# -- the tree operations ------------------------------------------------------------

def sysctl_locate(root: SysctlNode, name: list) -> tuple[int, SysctlNode, int]:
    """Walk `name` down from root: (error, deepest node reached, components used)."""
    pnode = root
    for ni, tn in enumerate(name):
        if pnode.type != CTLTYPE_NODE:
            return Errno.ENOTDIR, pnode, ni
        if not pnode.children:
            return Errno.ENOENT, pnode, ni
        node = pnode.child(tn)
        if node is None:
            return Errno.ENOENT, pnode, ni
        pnode = node
    return 0, pnode, len(name)


def sysctl_lookup(req: SysctlReq, name: list, node: SysctlNode, data: bytes | None = None,
                  size: int | None = None) -> int:
    """Copy a leaf's value out (and refuse to write it: the caller is not root)."""
    newp = req.newp if req.newlen else 0
    if node.type == CTLTYPE_NODE or name:
        return Errno.EINVAL
    if newp and not node.flags & CTLFLAG_ANYWRITE:
        return Errno.EPERM                      # kauth: KAUTH_REQ_SYSTEM_SYSCTL_MODIFY
    if data is None:
        data = node.value(req.l)
    if node.type != CTLTYPE_STRING:
        sz = node.size if size is None else size
        data = data[:sz].ljust(sz, b"\0")
    if req.oldp:
        error = req.l.l_proc.p_vmspace.copyout(data[:min(len(data), req.oldlen)], req.oldp)
        if error:
            return error
    req.oldlen = len(data)
    return 0


def _copyin_node(req: SysctlReq) -> tuple[int, bytes]:
    """sysctl_cvt_in: the struct sysctlnode at newp (version 1 only)."""
    if not req.newp or req.newlen < 4:
        return Errno.EINVAL, b""
    vm = req.l.l_proc.p_vmspace
    flags = vm.copyin(req.newp, 4)
    if isinstance(flags, int):
        return flags, b""
    if req.newlen != SIZEOF_SYSCTLNODE or \
            int.from_bytes(flags, "little") & SYSCTL_VERS_MASK != SYSCTL_VERSION:
        return Errno.EINVAL, b""
    data = vm.copyin(req.newp, SIZEOF_SYSCTLNODE)
    if isinstance(data, int):
        return data, b""
    return 0, data


def pack_sysctlnode(n: SysctlNode) -> bytes:
    """struct sysctlnode as the kernel copies it out (kernel pointers zeroed)."""
    un = bytes(16)
    if n.type == CTLTYPE_NODE:
        clen = len(n.children)
        csize = 0
        if clen:
            csize = SYSCTL_DEFSIZE
            while csize < clen:
                csize *= 2
        un = struct.pack("<IIQ", csize, clen, 0)
    elif n.imm is not None:
        un = struct.pack("<q" if n.type == CTLTYPE_QUAD else "<i", n.imm).ljust(16, b"\0")
    name = n.name.encode()[:SYSCTL_NAMELEN - 1].ljust(SYSCTL_NAMELEN, b"\0")
    return _NODE.pack(SYSCTL_VERSION | n.type | n.flags, n.num, name, n.ver, 0, un, n.size,
                      0, 0, 0)


def _root_of(n: SysctlNode) -> SysctlNode:
    while n.parent is not None:
        n = n.parent
    return n


def sysctl_query(req: SysctlReq, name: list, rnode: SysctlNode) -> int:
    """CTL_QUERY: the children of rnode, as whole struct sysctlnode entries."""
    if rnode.type != CTLTYPE_NODE:
        return Errno.ENOTDIR
    if len(name) != 1 or name[0] != CTL_QUERY:
        return Errno.EINVAL
    error, qnode = _copyin_node(req)
    if error:
        return error
    qver = struct.unpack_from("<I", qnode, 40)[0]
    if qver and qver != rnode.ver and qver != _root_of(rnode).ver:
        return Errno.EINVAL
    vm = req.l.l_proc.p_vmspace
    oldp, left, out = req.oldp, req.oldlen, 0
    for c in rnode.children:
        if oldp and left >= SIZEOF_SYSCTLNODE:
            error = vm.copyout(pack_sysctlnode(c), oldp)
            if error:
                return error
        if oldp:
            oldp += SIZEOF_SYSCTLNODE
        out += SIZEOF_SYSCTLNODE
        left -= min(left, SIZEOF_SYSCTLNODE)
    req.oldlen = out
    return 0


def sysctl_describe(req: SysctlReq, name: list, rnode: SysctlNode) -> int:
    """CTL_DESCRIBE: struct sysctldesc for every child, or for the one named."""
    if rnode.type != CTLTYPE_NODE:
        return Errno.ENOTDIR
    if len(name) != 1 or name[0] != CTL_DESCRIBE:
        return Errno.EINVAL
    want: int | None = None
    if req.newp:
        error, dnode = _copyin_node(req)
        if error:
            return error
        if struct.unpack_from("<Q", dnode, 88)[0]:
            return Errno.EPERM                  # setting a description: root only
        want = struct.unpack_from("<i", dnode, 4)[0]
    vm = req.l.l_proc.p_vmspace
    oldp, left, tot = req.oldp, req.oldlen, 0
    for c in rnode.children:
        if want is not None and c.num != want:
            continue
        text = (c.desc or "").encode() + b"\0"
        padded = text.ljust((len(text) + 3) & ~3, b"\0")
        d = struct.pack("<iII", c.num, c.ver, len(text)) + padded
        if oldp and left >= len(d):
            error = vm.copyout(d, oldp)
            if error:
                return error
            left -= len(d)
            oldp += len(d)
        tot += len(d)
        if want is not None:
            break
    if want is not None and tot == 0:
        return Errno.ENOENT
    req.oldlen = tot
    return 0


def sysctl_root(k) -> SysctlNode:
    """Kernel k's MIB tree, built on first use."""
    root = k.config.get("sysctl_root")
    if root is None:
        root = k.config["sysctl_root"] = _build_tree(k)
    return root


def sysctl_dispatch(req: SysctlReq, name: list, root: SysctlNode) -> int:
    """Find the node `name` leads to and apply the operation it asks for."""
    error, rnode, ni = sysctl_locate(root, name)
    rest = name[ni:]
    if rnode.func is not None:
        return rnode.func(req, rest, rnode)
    if error == 0:
        return sysctl_lookup(req, rest, rnode)
    if error == Errno.ENOENT and len(rest) == 1 and rest[0] < 0:
        op = rest[0]
        if op == CTL_QUERY:
            return sysctl_query(req, rest, rnode)
        if op == CTL_DESCRIBE:
            return sysctl_describe(req, rest, rnode)
        if op in (CTL_CREATE, CTL_CREATESYM, CTL_DESTROY):
            return Errno.EPERM if req.newp else Errno.EINVAL
        if op == CTL_MMAP:
            if not req.newp or req.newlen != SIZEOF_SYSCTLNODE:
                return Errno.EINVAL
            return Errno.EOPNOTSUPP             # no node offers mmap
        return Errno.EOPNOTSUPP
    return error


def sysctl_find(k, path: str) -> SysctlNode | None:
    """Kernel k's node with dotted name `path` ("vm.thread_guard_size")."""
    node: SysctlNode | None = sysctl_root(k)
    for part in path.split("."):
        node = next((c for c in node.children if c.name == part), None) if node else None
    return node


@syscall(202, "__sysctl")
def sys___sysctl(l: Lwp, a, retval: list[int]) -> int:
    vm = l.l_proc.p_vmspace
    oldlen = 0
    size_t = SIZE_T.on(l.l_proc.k.abi)
    if a.oldlenp:
        data = vm.copyin(a.oldlenp, size_t.size)
        if isinstance(data, int):
            return data
        oldlen = size_t.unpack(data)[0]
    savelen = oldlen
    if a.namelen > CTL_MAXNAME or a.namelen < 1:
        return Errno.EINVAL
    raw = vm.copyin(a.name, 4 * a.namelen)
    if isinstance(raw, int):
        return raw
    name = list(struct.unpack(f"<{a.namelen}i", raw))
    req = SysctlReq(l, a.oldv, oldlen, a.newv, a.newlen)
    error = sysctl_dispatch(req, name, sysctl_root(l.l_proc.k))
    if a.oldlenp:                   # written back even when the lookup failed
        nerror = vm.copyout(size_t.pack(req.oldlen & ((1 << 8 * size_t.size) - 1)), a.oldlenp)
        if not error:
            error = nerror
    if not error and a.oldv and savelen < req.oldlen:
        error = Errno.ENOMEM
    return error

"""C structure layouts of NetBSD's machine-independent headers, per data model.

A handler that copies a structure in or out describes it once, in C terms
(member types and names as in the header), and asks for the layout of the
running port: `TIMESPEC.on(abi).pack(sec, nsec)`. The layout follows the C
rules (each member at a multiple of its alignment, the struct's size a multiple
of its largest alignment) with the two facts that differ between NetBSD ports:
`abi.word_size` (long, size_t, pointers: 8 on LP64, 4 on ILP32) and
`abi.int64_align` (64-bit members: 8, but 4 on i386). Structures nest and arrays
repeat; pack/unpack take and give the flattened members in declaration order,
as struct.Struct does.
"""
from __future__ import annotations

import struct
from typing import Any, Union

# Fixed-width members: (struct code, size). Machine-dependent ones are resolved
# per model in _scalar().
_FIXED: dict[str, tuple[str, int]] = {
    "int8": ("b", 1), "uint8": ("B", 1), "char": ("b", 1), "bool": ("B", 1),
    "int16": ("h", 2), "uint16": ("H", 2),
    "int32": ("i", 4), "uint32": ("I", 4),
    # NetBSD typedefs of 32 bits on every port
    "int": ("i", 4), "u_int": ("I", 4), "pid_t": ("i", 4), "uid_t": ("I", 4),
    "gid_t": ("I", 4), "mode_t": ("I", 4), "nlink_t": ("I", 4), "lwpid_t": ("i", 4),
    "suseconds_t": ("i", 4), "blksize_t": ("i", 4), "fixpt_t": ("I", 4),
    "tcflag_t": ("I", 4), "speed_t": ("i", 4), "cc_t": ("B", 1), "short": ("h", 2),
    "sigset_word": ("I", 4),
}
# 64 bits on every port (time_t included: NetBSD made it 64-bit everywhere in 6.0).
_WIDE: dict[str, str] = {
    "int64": "q", "uint64": "Q", "time_t": "q", "off_t": "q", "dev_t": "Q", "ino_t": "Q",
    "blkcnt_t": "q", "rlim_t": "Q", "quad_t": "q", "u_quad_t": "Q",
    "fsblkcnt_t": "Q", "fsfilcnt_t": "Q",
}
# long-sized (the word): long, size_t, pointers.
_WORD: dict[str, bool] = {  # name -> signed
    "long": True, "ssize_t": True, "intptr_t": True, "u_long": False, "size_t": False,
    "uintptr_t": False, "ptr": False,
}

class Layout(struct.Struct):
    """A struct.Struct with the C alignment of the structure it lays out and the
    word size of the data model it was laid out for."""
    align: int
    word_size: int


class CStruct:
    """A structure of NetBSD's headers: members are (type, name) or (type, name, count)."""

    def __init__(self, name: str, members: list[Member]) -> None:
        self.name = name
        self.members = members
        self._cache: dict[tuple[int, int], Layout] = {}

    def on(self, abi: Any) -> Layout:
        """The layout on abi's data model (cached)."""
        key = (abi.word_size, abi.int64_align)
        lay = self._cache.get(key)
        if lay is None:
            lay = self._cache[key] = self.layout(*key)
        return lay

    def layout(self, word_size: int, int64_align: int) -> Layout:
        fmt, size, align, _ = self._fmt(word_size, int64_align)
        lay = Layout("<" + fmt)
        assert lay.size == size, (self.name, fmt, size)
        lay.align = align
        lay.word_size = word_size
        return lay

    def offsets(self, word_size: int, int64_align: int) -> dict[str, int]:
        """offsetof() of each top-level member."""
        return self._fmt(word_size, int64_align)[3]

    def _fmt(self, ws: int, a64: int) -> tuple[str, int, int, dict[str, int]]:
        out: list[str] = []
        offs: dict[str, int] = {}
        off = 0
        align = 1
        for m in self.members:
            mtype, count = m[0], (m[2] if len(m) > 2 else 1)  # type: ignore[misc]
            if isinstance(mtype, CStruct):
                code, msize, malign, _ = mtype._fmt(ws, a64)
                code = code * count
            elif mtype == "char[]":     # a byte string: (type "char[]", name, length)
                code, msize, malign, count = f"{count}s", count, 1, 1
            else:
                c, msize, malign = _scalar(mtype, ws, a64)
                code = f"{count}{c}" if count > 1 else c
            pad = -off % malign
            if pad:
                out.append(f"{pad}x")
            offs[m[1]] = off + pad
            out.append(code)
            off += pad + msize * count
            align = max(align, malign)
        tail = -off % align
        if tail:
            out.append(f"{tail}x")
        return "".join(out), off + tail, align, offs


# (after CStruct: a name in quotes in an alias is a typing.ForwardRef, which
# compile()s it at import, and the first compile() of a process costs ~10M instructions)
Member = tuple[Union[str, CStruct], str] | tuple[Union[str, CStruct], str, int]


def _scalar(t: str, ws: int, a64: int) -> tuple[str, int, int]:
    if t in _FIXED:
        c, size = _FIXED[t]
        return c, size, size
    if t in _WIDE:
        return _WIDE[t], 8, a64
    if t in _WORD:
        c = ("q" if _WORD[t] else "Q") if ws == 8 else ("i" if _WORD[t] else "I")
        return c, ws, ws
    raise KeyError(f"cstruct: unknown C type {t!r}")


# -- <sys/time.h>, <sys/resource.h> ------------------------------------------------
TIMESPEC = CStruct("timespec", [("time_t", "tv_sec"), ("long", "tv_nsec")])
TIMEVAL = CStruct("timeval", [("time_t", "tv_sec"), ("suseconds_t", "tv_usec")])
# compat_50: the timespec of NetBSD < 6 (32-bit time_t), still accepted by old kevent.
TIMESPEC50 = CStruct("timespec50", [("int32", "tv_sec"), ("long", "tv_nsec")])
ITIMERVAL = CStruct("itimerval", [(TIMEVAL, "it_interval"), (TIMEVAL, "it_value")])
# compat_50 (compat/sys/time_types.h, resource.h): NetBSD 5's timeval kept both
# members long; its itimerval and rusage are built on it.
TIMEVAL50 = CStruct("timeval50", [("long", "tv_sec"), ("long", "tv_usec")])
ITIMERVAL50 = CStruct("itimerval50", [(TIMEVAL50, "it_interval"), (TIMEVAL50, "it_value")])
RUSAGE50 = CStruct("rusage50", [(TIMEVAL50, "ru_utime"), (TIMEVAL50, "ru_stime"),
                                ("long", "ru_maxrss", 14)])
RLIMIT = CStruct("rlimit", [("rlim_t", "rlim_cur"), ("rlim_t", "rlim_max")])
RUSAGE = CStruct("rusage", [(TIMEVAL, "ru_utime"), (TIMEVAL, "ru_stime"), ("long", "ru_maxrss", 14)])

# -- <sys/stat.h>, <sys/fcntl.h>, <sys/uio.h>, <sys/dirent.h> ---------------------------
STAT = CStruct("stat", [
    ("dev_t", "st_dev"), ("mode_t", "st_mode"), ("ino_t", "st_ino"), ("nlink_t", "st_nlink"),
    ("uid_t", "st_uid"), ("gid_t", "st_gid"), ("dev_t", "st_rdev"),
    (TIMESPEC, "st_atim"), (TIMESPEC, "st_mtim"), (TIMESPEC, "st_ctim"), (TIMESPEC, "st_birthtim"),
    ("off_t", "st_size"), ("blkcnt_t", "st_blocks"), ("blksize_t", "st_blksize"),
    ("uint32", "st_flags"), ("uint32", "st_gen"), ("uint32", "st_spare", 2)])
# compat_50: NetBSD 3-5's struct stat (compat/sys/stat.h): 32-bit device numbers, timespec50s.
STAT30 = CStruct("stat30", [
    ("uint32", "st_dev"), ("mode_t", "st_mode"), ("ino_t", "st_ino"), ("nlink_t", "st_nlink"),
    ("uid_t", "st_uid"), ("gid_t", "st_gid"), ("uint32", "st_rdev"),
    (TIMESPEC50, "st_atimespec"), (TIMESPEC50, "st_mtimespec"), (TIMESPEC50, "st_ctimespec"),
    (TIMESPEC50, "st_birthtimespec"),
    ("off_t", "st_size"), ("blkcnt_t", "st_blocks"), ("blksize_t", "st_blksize"),
    ("uint32", "st_flags"), ("uint32", "st_gen"), ("uint32", "st_spare", 2)])
FLOCK = CStruct("flock", [("off_t", "l_start"), ("off_t", "l_len"), ("pid_t", "l_pid"),
                          ("short", "l_type"), ("short", "l_whence")])
IOVEC = CStruct("iovec", [("ptr", "iov_base"), ("size_t", "iov_len")])

# -- <sys/statvfs.h>, <sys/fstypes.h> (NetBSD 10: __statvfs190 and friends) ------------
_VFS_NAMELEN, _VFS_MNAMELEN = 32, 1024
FSID = CStruct("fsid_t", [("int32", "__fsid_val", 2)])
_STATVFS_HEAD: list[Member] = [
    ("u_long", "f_flag"), ("u_long", "f_bsize"), ("u_long", "f_frsize"), ("u_long", "f_iosize"),
    ("fsblkcnt_t", "f_blocks"), ("fsblkcnt_t", "f_bfree"), ("fsblkcnt_t", "f_bavail"),
    ("fsblkcnt_t", "f_bresvd"),
    ("fsfilcnt_t", "f_files"), ("fsfilcnt_t", "f_ffree"), ("fsfilcnt_t", "f_favail"),
    ("fsfilcnt_t", "f_fresvd"),
    ("uint64", "f_syncreads"), ("uint64", "f_syncwrites"),
    ("uint64", "f_asyncreads"), ("uint64", "f_asyncwrites"),
    (FSID, "f_fsidx"), ("u_long", "f_fsid"), ("u_long", "f_namemax"), ("uid_t", "f_owner")]
STATVFS = CStruct("statvfs", _STATVFS_HEAD + [
    ("uint64", "f_spare", 4),
    ("char[]", "f_fstypename", _VFS_NAMELEN), ("char[]", "f_mntonname", _VFS_MNAMELEN),
    ("char[]", "f_mntfromname", _VFS_MNAMELEN), ("char[]", "f_mntfromlabel", _VFS_MNAMELEN)])
# compat_90: NetBSD 9's struct statvfs (compat/sys/statvfs.h): 32-bit spares and no
# f_mntfromlabel.
STATVFS90 = CStruct("statvfs90", _STATVFS_HEAD + [
    ("uint32", "f_spare", 4),
    ("char[]", "f_fstypename", _VFS_NAMELEN), ("char[]", "f_mntonname", _VFS_MNAMELEN),
    ("char[]", "f_mntfromname", _VFS_MNAMELEN)])

# -- <sys/event.h> (NetBSD 10: ext[4]; the kevent100 compat form stops at udata) ------
KEVENT = CStruct("kevent", [("uintptr_t", "ident"), ("uint32", "filter"), ("uint32", "flags"),
                            ("uint32", "fflags"), ("int64", "data"), ("ptr", "udata"),
                            ("uint64", "ext", 4)])
KEVENT100 = CStruct("kevent100", [("uintptr_t", "ident"), ("uint32", "filter"),
                                  ("uint32", "flags"), ("uint32", "fflags"), ("int64", "data"),
                                  ("ptr", "udata")])

# -- <sys/signal.h> -------------------------------------------------------------------
SIGSET = CStruct("sigset", [("sigset_word", "__bits", 4)])
SIGACTION = CStruct("sigaction", [("ptr", "sa_handler"), (SIGSET, "sa_mask"), ("int", "sa_flags")])
STACK_T = CStruct("sigaltstack", [("ptr", "ss_sp"), ("size_t", "ss_size"), ("int", "ss_flags")])

# -- <sys/sysctl.h>, <sys/exec.h>, ... ----------------------------------------------------
LOADAVG = CStruct("loadavg", [("fixpt_t", "ldavg", 3), ("long", "fscale")])
PS_STRINGS = CStruct("ps_strings", [("ptr", "ps_argvstr"), ("int", "ps_nargvstr"),
                                    ("ptr", "ps_envstr"), ("int", "ps_nenvstr")])
SIZE_T = CStruct("size_t", [("size_t", "value")])
LONG = CStruct("long", [("long", "value")])


def ssize_max(abi: Any) -> int:
    """SSIZE_MAX of the port: 2^63 - 1 on LP64, 2^31 - 1 on ILP32 (a read of
    more bytes is EINVAL there, as NetBSD's dofileread checks)."""
    return (1 << (8 * abi.word_size - 1)) - 1


def set_retval_off(abi: Any, retval: list[int], value: int) -> None:
    """`*(off_t *)retval = value`: a 64-bit result (lseek) spans both result
    registers on ILP32 ports, low word first."""
    if abi.word_size == 4:
        retval[0] = value & 0xFFFFFFFF
        retval[1] = (value >> 32) & 0xFFFFFFFF
    else:
        retval[0] = value

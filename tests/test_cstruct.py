"""The structure layouts of syscalls/cstruct.py against NetBSD's own headers.

For every structure and every port, a C file of static assertions (sizeof,
alignment and each member's offsetof, as cstruct computes them) is compiled by
zig against the NetBSD headers of that target: a wrong layout fails to compile.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fixtures.build import C_TARGETS, ZIG_HOME, zig_command
from nbemu.syscalls import cstruct as C

# The data model of each zig target: (word size, alignment of 64-bit members).
MODELS = {"x86_64": (8, 8), "aarch64": (8, 8), "x86": (4, 4), "arm": (4, 8)}

# cstruct name -> the C type it stands for.
C_NAMES = {
    "TIMESPEC": "struct timespec", "TIMEVAL": "struct timeval", "ITIMERVAL": "struct itimerval",
    "RLIMIT": "struct rlimit", "RUSAGE": "struct rusage", "STAT": "struct stat",
    "FLOCK": "struct flock", "IOVEC": "struct iovec", "KEVENT": "struct kevent",
    "SIGSET": "sigset_t", "SIGACTION": "struct sigaction", "STACK_T": "stack_t",
    "LOADAVG": "struct loadavg", "PS_STRINGS": "struct ps_strings", "SIZE_T": "size_t",
    "LONG": "long", "FSID": "fsid_t", "STATVFS": "struct statvfs",
    "STATVFS90": "struct statvfs90", "TIMEVAL50": "struct timeval50",
    "ITIMERVAL50": "struct itimerval50", "RUSAGE50": "struct rusage50",
    "STAT30": "struct stat30", "TIMESPEC50": "struct timespec50",
}
# Members whose C name differs (a union or macro in the header).
C_MEMBER = {("SIGACTION", "sa_handler"): "_sa_u"}

HEADERS = """#include <sys/types.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <sys/event.h>
#include <signal.h>
#include <sys/exec.h>
#include <sys/statvfs.h>
#include <stddef.h>

/* The compat structures are kernel-side (in sys/compat/sys, not installed): their
 * declarations as NetBSD 9 (statvfs.h) and NetBSD 5 (time_types.h, resource.h) had
 * them, so that the compiler lays them out on each port. */
struct statvfs90 {
	unsigned long f_flag, f_bsize, f_frsize, f_iosize;
	fsblkcnt_t f_blocks, f_bfree, f_bavail, f_bresvd;
	fsfilcnt_t f_files, f_ffree, f_favail, f_fresvd;
	uint64_t f_syncreads, f_syncwrites, f_asyncreads, f_asyncwrites;
	fsid_t f_fsidx;
	unsigned long f_fsid, f_namemax;
	uid_t f_owner;
	uint32_t f_spare[4];
	char f_fstypename[_VFS_NAMELEN];
	char f_mntonname[_VFS_MNAMELEN];
	char f_mntfromname[_VFS_MNAMELEN];
};
struct timeval50 { long tv_sec; long tv_usec; };
struct itimerval50 { struct timeval50 it_interval, it_value; };
struct timespec50 { int32_t tv_sec; long tv_nsec; };
struct stat30 {
	uint32_t st_dev;
	mode_t st_mode;
	ino_t st_ino;
	nlink_t st_nlink;
	uid_t st_uid;
	gid_t st_gid;
	uint32_t st_rdev;
	struct timespec50 st_atimespec, st_mtimespec, st_ctimespec, st_birthtimespec;
	off_t st_size;
	blkcnt_t st_blocks;
	blksize_t st_blksize;
	uint32_t st_flags, st_gen, st_spare[2];
};
struct rusage50 {
	struct timeval50 ru_utime, ru_stime;
	long ru_maxrss, ru_ixrss, ru_idrss, ru_isrss, ru_minflt, ru_majflt, ru_nswap,
	    ru_inblock, ru_oublock, ru_msgsnd, ru_msgrcv, ru_nsignals, ru_nvcsw, ru_nivcsw;
};
"""


def _source(arch: str) -> str:
    ws, a64 = MODELS[arch]
    lines = [HEADERS]
    for name, ctype in C_NAMES.items():
        st = getattr(C, name)
        lay = st.layout(ws, a64)
        lines.append(f"_Static_assert(sizeof({ctype}) == {lay.size}, \"sizeof {ctype}\");")
        lines.append(f"_Static_assert(_Alignof({ctype}) == {lay.align}, \"alignof {ctype}\");")
        if ctype.startswith("struct ") or ctype == "stack_t":
            for member, off in st.offsets(ws, a64).items():
                cm = C_MEMBER.get((name, member), member)
                lines.append(f"_Static_assert(offsetof({ctype}, {cm}) == {off}, "
                             f"\"offsetof {ctype}.{cm}\");")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_layouts_match_netbsd_headers(arch: str, tmp_path: Path) -> None:
    src = tmp_path / "layouts.c"
    src.write_text(_source(arch))
    env = {"ZIG_GLOBAL_CACHE_DIR": str(ZIG_HOME / "global"),
           "ZIG_LOCAL_CACHE_DIR": str(tmp_path / "zig-local"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([*zig_command(), "cc", "-target", C_TARGETS[arch], "-c", str(src),
                        "-o", str(tmp_path / "layouts.o")],
                       capture_output=True, text=True, env=env, timeout=300)
    failed = [ln for ln in r.stderr.splitlines() if "static assertion failed" in ln]
    assert r.returncode == 0 and not failed, "\n".join(failed) or r.stderr


def test_layout_reports_unknown_types() -> None:
    with pytest.raises(KeyError):
        C.CStruct("bad", [("float128", "x")]).layout(8, 8)


def test_i386_packs_64bit_members_at_4() -> None:
    # struct timespec on i386: time_t at 0 (8 bytes, 4-aligned), long at 8: 12 bytes.
    lay = C.TIMESPEC.layout(4, 4)
    assert lay.size == 12 and lay.pack(1, 2) == (1).to_bytes(8, "little") + (2).to_bytes(4, "little")


def test_off_t_result_spans_both_registers_on_ilp32() -> None:
    class Ilp32:
        word_size = 4
    class Lp64:
        word_size = 8
    rv = [0, 0]
    C.set_retval_off(Ilp32, rv, 0x1_2345_6789)
    assert rv == [0x2345_6789, 1]
    rv = [0, 7]
    C.set_retval_off(Lp64, rv, 0x1_2345_6789)
    assert rv == [0x1_2345_6789, 7]

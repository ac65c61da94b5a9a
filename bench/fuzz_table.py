"""The argument kinds of every system call, for fixtures/c/sysfuzz_all.c.

One letter per C argument of syscalls_master.py's rows, telling the fuzzer which pool
to draw from: F fd, P path (const char *), B other pointer, S size/count, L flags or
mode, O 64-bit offset, I an id (pid, lid, uid, timer, semaphore), G a signal number,
N any other int, _ padding.  The C file embeds the output of `python -m
bench.fuzz_table` between its BEGIN/END TABLE markers (fixture builds hash the .c
file only); tests/test_sysfuzz_all.py checks that they agree.
"""
from __future__ import annotations

from nbemu.syscalls.syscalls_master import SYSCALLS

_FD = {"fd", "fd1", "fd2", "fdes", "fildes", "filedes", "s", "from", "to", "fromfd",
       "tofd", "epfd", "fdec"}
_SIZE = {"len", "count", "nfds", "iovcnt", "nent", "nd", "gidsetsize", "bufsize", "length",
         "namelen", "blkcnt", "maxevents", "nsems"}
_FLAGS = {"flags", "flag", "oflag", "oflags", "options", "mode", "prot", "how", "mask",
          "amode", "behav", "advice", "inherit", "msgflg", "semflg", "shmflg", "newmask"}
_SIG = {"signum", "signo"}
_ID = {"pid_t", "id_t", "lwpid_t", "uid_t", "gid_t", "key_t", "timer_t", "intptr_t",
       "psetid_t", "cpuid_t", "idtype_t"}


def kind(ctype: str, name: str) -> str:
    t = ctype.replace("const ", "").strip()
    if name == "PAD":
        return "_"
    if t.endswith("*"):
        return "P" if t == "char *" and ctype.startswith("const") else "B"
    if t == "mqd_t" or (t == "int" and name in _FD):
        return "F"
    if t in ("size_t", "ssize_t", "socklen_t") or name in _SIZE:
        return "O" if t == "off_t" else "S"
    if t == "mode_t" or name in _FLAGS:
        return "O" if t == "off_t" else "L"
    if t == "off_t" or name in ("offset", "pos"):
        return "O"
    if name in _SIG:
        return "G"
    if t in _ID:
        return "I"
    return "N"


def kinds(num: int) -> str:
    _name, args, flags = SYSCALLS.get(num, ("", (), "unimpl"))
    if flags in ("unimpl", "obsolete", "excluded") or flags == "indir":
        return ""
    return "".join(kind(t, n) for t, n in args if not t.startswith("register_t["))


def c_table() -> str:
    lines = ["static const char *const kinds[SYS_NSYSENT_] = {"]
    for num in sorted(SYSCALLS):
        k = kinds(num)
        if k:
            lines.append(f'\t[{num}] = "{k}",\t/* {SYSCALLS[num][0]} */')
    lines.append("};")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(c_table(), end="")
